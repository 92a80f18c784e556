"""Load the clinical case table (``cases.yaml``) into prescription documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CASES_PATH = Path(__file__).with_name("cases.yaml")
DEFAULT_PATIENT: dict[str, Any] = {"age_years": 45, "sex": "male", "weight_kg": 70}
ITEM_KEYS = ("drug", "dose", "unit", "route", "frequency", "days", "quantity")
SHORTHAND = {"dx": "diagnoses", "alg": "allergies"}
LABS = {"scr": "creatinine_umol_l", "alt": "alt_u_l", "k": "potassium_mmol_l"}


def load_cases() -> list[dict[str, Any]]:
    data = yaml.safe_load(CASES_PATH.read_text(encoding="utf-8"))
    return list(data["cases"])


def prescription_of(case: dict[str, Any]) -> dict[str, Any]:
    patient = dict(DEFAULT_PATIENT)
    labs: dict[str, Any] = {}
    for key, value in (case.get("p") or {}).items():
        if key in LABS:
            labs[LABS[key]] = value
        else:
            patient[SHORTHAND.get(key, key)] = value
    patient = {k: v for k, v in patient.items() if v is not None}
    if labs:
        patient["labs"] = labs
    items = []
    for item in case["items"]:
        if isinstance(item, dict):
            items.append(dict(item))
        else:
            items.append({k: v for k, v in zip(ITEM_KEYS, item, strict=False) if v is not None})
    return {"patient": patient, "items": items, **(case.get("rx") or {})}
