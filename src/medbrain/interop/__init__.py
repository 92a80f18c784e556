"""Adapters between MedBrain's store and the hospital's interchange formats (FHIR R4, ...)."""
