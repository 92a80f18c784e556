"""HTTP adapters: REST /api/v1, FHIR facade /fhir, CDS Hooks, and the web UI."""
