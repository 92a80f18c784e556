"""Build small synthetic FHIR R4 Bundles from compact YAML case rows (no real patient data).

A case row::

    id: aki_stage2
    patient: {sex: female, age: 70}          # birthDate derived from `now`
    now: "2024-05-01T12:00:00+08:00"         # optional; default NOW
    obs:                                     # [key, value, unit, offset before now]
      - [Cr, 70, umol/L, 5d]
      - [Cr, 150, umol/L, 0h]
    meds: ["缬沙坦胶囊", {text: Glucophage, atc: A10BA02, status: stopped}]
    conditions: ["社区获得性肺炎", {text: Headache, code: "25064002"}]
    expect: {cv.potassium: critical}         # exact rule_id -> severity mapping
    scores: {news2: 0}                       # optional score checks
    error: "entry[1].resource.valueQuantity.unit"   # or: expected InputError field
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

NOW = "2024-05-01T12:00:00+08:00"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "alerts"

LOINC: dict[str, str] = {
    "K": "2823-3",
    "Na": "2951-2",
    "Glu": "2345-7",
    "Cr": "2160-0",
    "Urea": "22664-7",
    "BUN": "3094-0",
    "Ca": "17861-6",
    "Hb": "718-7",
    "PLT": "777-3",
    "WBC": "6690-2",
    "NEUT": "770-8",
    "BANDS": "764-1",
    "INR": "6301-6",
    "pH": "2744-1",
    "PaCO2": "2019-8",
    "PaO2": "2703-7",
    "cTnI": "10839-9",
    "Lac": "2524-7",
    "BC": "600-7",
    "RR": "9279-1",
    "HR": "8867-4",
    "SpO2": "59408-5",
    "T": "8310-5",
    "SBP": "8480-6",
    "GCS": "9269-2",
    "AVPU": "11454-6",
    "O2": "3151-8",
    "FiO2": "3150-0",
    "Wt": "29463-7",
    "ALT": "1742-6",
}
CODED = {"BC", "AVPU"}
VITAL_SIGNS = {"RR", "HR", "SpO2", "T", "SBP", "Wt", "BP"}
UNITS = {
    "RR": "/min",
    "HR": "/min",
    "SpO2": "%",
    "SBP": "mmHg",
    "T": "Cel",
    "O2": "L/min",
    "FiO2": "%",
    "GCS": "{score}",
    "AVPU": "",
}
NORMAL_VITALS: dict[str, Any] = {"RR": 16, "SpO2": 97, "SBP": 122, "HR": 72, "T": 36.8, "AVPU": "A"}


def offset(text: str | int | float) -> timedelta:
    """'2h', '3d', '30m', '0' → a timedelta before `now`."""
    if isinstance(text, int | float):
        return timedelta(hours=float(text))
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)([mhd]?)", str(text).strip())
    if not match:
        raise ValueError(f"bad offset {text!r}")
    amount = float(match.group(1))
    unit = match.group(2) or "h"
    return {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
    }[unit]


def birth_date(now: datetime, age: int) -> str:
    """A birth date that makes the patient exactly `age` (birthday 30 days before `now`)."""
    born = (now - timedelta(days=30)).date()
    return born.replace(year=born.year - age).isoformat()


def observation(index: int, row: list[Any], now: datetime) -> dict[str, Any]:
    key = row[0]
    value = row[1]
    unit = row[2] if len(row) > 2 else None
    when = now - offset(row[3] if len(row) > 3 else "0")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{key.lower()}{index}",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when.isoformat(),
    }
    if key in VITAL_SIGNS:
        resource["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ]
    if key == "BP":
        systolic, diastolic = (float(v) for v in str(value).split("/"))
        resource["code"] = {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}
        resource["component"] = [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "unit": "mmHg", "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": diastolic, "unit": "mmHg", "code": "mm[Hg]"},
            },
        ]
        return resource
    resource["code"] = {"coding": [{"system": "http://loinc.org", "code": LOINC[key]}], "text": key}
    if key in CODED:
        resource["valueCodeableConcept"] = {"text": str(value)}
    elif isinstance(value, str):
        resource["valueString"] = value
    else:
        quantity: dict[str, Any] = {"value": value}
        if unit not in (None, ""):
            quantity["unit"] = unit
        resource["valueQuantity"] = quantity
    if len(row) > 4 and isinstance(row[4], dict):
        for field, extra in row[4].items():
            if extra is None:
                resource.pop(field, None)
            else:
                resource[field] = extra
    return resource


def medication(index: int, spec: str | dict[str, Any]) -> dict[str, Any]:
    spec = {"text": spec} if isinstance(spec, str) else spec
    concept: dict[str, Any] = {"text": spec["text"]}
    if "atc" in spec:
        concept["coding"] = [
            {"system": "http://www.whocc.no/atc", "code": spec["atc"], "display": spec["text"]}
        ]
    return {
        "resourceType": "MedicationRequest",
        "id": f"med{index}",
        "status": spec.get("status", "active"),
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept,
    }


def condition(index: int, spec: str | dict[str, Any]) -> dict[str, Any]:
    spec = {"text": spec} if isinstance(spec, str) else spec
    concept: dict[str, Any] = {"text": spec["text"]}
    if "code" in spec:
        concept["coding"] = [{"code": str(spec["code"]), "display": spec["text"]}]
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"cond{index}",
        "subject": {"reference": "Patient/p1"},
        "code": concept,
    }
    if "status" in spec:
        resource["clinicalStatus"] = {"coding": [{"code": spec["status"]}]}
    return resource


def build_bundle(case: dict[str, Any]) -> dict[str, Any]:
    now = datetime.fromisoformat(case.get("now", NOW))
    patient_spec = case.get("patient", {})
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if "sex" in patient_spec:
        patient["gender"] = patient_spec["sex"]
    if "age" in patient_spec:
        patient["birthDate"] = birth_date(now, int(patient_spec["age"]))
    if "birthDate" in patient_spec:
        patient["birthDate"] = patient_spec["birthDate"]
    entries: list[dict[str, Any]] = []
    if not case.get("no_patient"):
        entries.append({"fullUrl": "urn:uuid:p1", "resource": patient})
    rows = list(case.get("obs", []))
    if "vitals" in case:
        vitals = {**NORMAL_VITALS, **(case["vitals"] or {})}
        for key, value in vitals.items():
            if value is not None:
                rows.append([key, value, UNITS[key], case.get("vitals_at", "1h")])
    for index, row in enumerate(rows):
        entries.append({"resource": observation(index, row, now)})
    for index, spec in enumerate(case.get("meds", [])):
        entries.append({"resource": medication(index, spec)})
    for index, spec in enumerate(case.get("conditions", [])):
        entries.append({"resource": condition(index, spec)})
    if case.get("extra_patient"):
        entries.append({"resource": {"resourceType": "Patient", "id": "p2"}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def load_cases(name: str = "cases.yaml") -> list[dict[str, Any]]:
    data = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    cases: list[dict[str, Any]] = []
    for group, rows in data.items():
        for row in rows:
            row = dict(row)
            row["group"] = group
            cases.append(row)
    return cases
