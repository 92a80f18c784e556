"""The CapabilityStatement MedBrain's ``/fhir`` facade publishes at ``GET /fhir/metadata``.

It states what the facade really does: it accepts collection and transaction Bundles by
``POST /fhir`` (answered with MedBrain import counts, not a transaction-response Bundle)
and serves ``Patient/{id}/$everything``.

References
----------
HL7 FHIR R4 (4.0.1) §2.37 CapabilityStatement; §3.1.0.16 capabilities interaction;
OperationDefinition Patient-everything.
"""

from __future__ import annotations

from typing import Any

from medbrain import __version__
from medbrain.interop.fhir.importer import SUPPORTED_TYPES

#: Release date of this statement's content (changes when the facade's abilities change).
STATEMENT_DATE = "2026-11-23"


def capability_statement(base_url: str | None = None) -> dict[str, Any]:
    """A valid R4 CapabilityStatement (``kind: instance``) for this server."""
    resources: list[dict[str, Any]] = []
    for resource_type in SUPPORTED_TYPES:
        entry: dict[str, Any] = {
            "type": resource_type,
            "documentation": "Accepted in Bundles posted to /fhir; exported by Patient/$everything.",
        }
        if resource_type == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    "documentation": "All of the patient's resources as a searchset Bundle.",
                }
            ]
        resources.append(entry)
    implementation: dict[str, Any] = {"description": "MedBrain FHIR R4 facade"}
    if base_url:
        implementation["url"] = base_url
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "MedBrain",
        "kind": "instance",
        "software": {"name": "MedBrain", "version": __version__},
        "implementation": implementation,
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "POST /fhir accepts a collection or transaction Bundle (all-or-nothing, "
                    "idempotent) and answers with import counts per resource type."
                ),
                "security": {
                    "description": "Bearer token from POST /api/v1/auth/token, or the web "
                    "session cookie; every read is written to the audit chain."
                },
                "resource": resources,
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": "Answered with MedBrain import counts "
                        "(application/json), not a transaction-response Bundle.",
                    }
                ],
            }
        ],
    }
