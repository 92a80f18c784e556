"""Load the blind case sets (``tests/fixtures/rx/blind``, ``blind2``) and score the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

BLIND_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "rx" / "blind"
ITEM_KEYS = ("drug", "dose", "unit", "route", "frequency", "days", "quantity")
PATIENT_KEYS = {
    "age": "age_years",
    "sex": "sex",
    "wt": "weight_kg",
    "dx": "diagnoses",
    "alg": "allergies",
    "preg": "pregnant",
    "lact": "lactating",
    "ht": "height_cm",
    "cp": "child_pugh",
}
LAB_KEYS = {"scr": "creatinine_umol_l", "k": "potassium_mmol_l"}
ACTIONABLE = ("warning", "critical")


def load(name: str, folder: str = "blind") -> list[dict[str, Any]]:
    path = BLIND_DIR.parent / folder / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(data["cases"])


def prescription_of(case: dict[str, Any]) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    labs: dict[str, Any] = {}
    for key, value in (case.get("p") or {}).items():
        if key in LAB_KEYS:
            labs[LAB_KEYS[key]] = value
        else:
            patient[PATIENT_KEYS[key]] = value
    if labs:
        patient["labs"] = labs
    items = [{k: v for k, v in zip(ITEM_KEYS, row, strict=False)} for row in case["items"]]
    return {"patient": patient, "items": items, **(case.get("rx") or {})}


def found(case: dict[str, Any], findings: list[dict[str, Any]]) -> bool:
    """True when an actionable finding of an expected kind names every expected drug."""
    kinds = set(case["expect"]["kinds"])
    drugs = set(case["expect"]["drugs"])
    return any(
        f["severity"] in ACTIONABLE and f["category"] in kinds and drugs <= set(f["drugs"])
        for f in findings
    )


def alarms(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["severity"] in ACTIONABLE]
