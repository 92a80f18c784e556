"""The hand-written Synthea-style FHIR fixture and helpers to break it in specific ways."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "synthea_transaction.json"

#: What importing the fixture into an empty store must report.
FIXTURE_IMPORTED = {
    "AllergyIntolerance": 1,
    "Condition": 2,
    "DocumentReference": 1,
    "Encounter": 2,
    "ImagingStudy": 1,
    "MedicationRequest": 1,
    "Observation": 5,
    "Patient": 2,
    "Procedure": 1,
}
FIXTURE_SKIPPED = {"Claim": 3, "Organization": 1, "Practitioner": 1}
PATIENT_ID = "6f1c2d3e-0a1b-4c5d-8e9f-101112131415"
SECOND_PATIENT_ID = "7a2b3c4d-5e6f-4a1b-9c2d-202122232425"
DOCUMENT_ID = "b3000000-0000-4000-8000-000000000001"


def fixture_bundle() -> dict[str, Any]:
    """A fresh deep copy of the fixture (tests may change it)."""
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def entry_index(bundle: dict[str, Any], resource_type: str, nth: int = 0) -> int:
    found = [
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == resource_type
    ]
    return found[nth]


def resource(bundle: dict[str, Any], resource_type: str, nth: int = 0) -> dict[str, Any]:
    entry: dict[str, Any] = bundle["entry"][entry_index(bundle, resource_type, nth)]["resource"]
    return entry


def set_document_text(bundle: dict[str, Any], text: str) -> None:
    doc = resource(bundle, "DocumentReference")
    doc["content"][0]["attachment"]["data"] = base64.b64encode(text.encode()).decode()
