"""FHIR R4 in and out: Bundle import (validated, all-or-nothing, idempotent) and export.

References
----------
HL7 FHIR R4 (4.0.1), https://hl7.org/fhir/R4/; validation with the ``fhir.resources`` R4B
models.
"""

from medbrain.interop.fhir.capability import capability_statement
from medbrain.interop.fhir.exporter import find_patient, patient_everything
from medbrain.interop.fhir.importer import (
    SUPPORTED_TYPES,
    ImportResult,
    PreparedBundle,
    import_bundle,
    import_prepared,
    prepare_bundle,
)

__all__ = [
    "SUPPORTED_TYPES",
    "ImportResult",
    "PreparedBundle",
    "capability_statement",
    "find_patient",
    "import_bundle",
    "import_prepared",
    "patient_everything",
    "prepare_bundle",
]
