"""Invalid prescriptions raise InputError naming the field (never a silent pass)."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.rx import load_rx_knowledge, review

KB = load_rx_knowledge()
GOOD_ITEM = {
    "drug": "阿莫西林胶囊",
    "dose": 0.5,
    "unit": "g",
    "route": "po",
    "frequency": "tid",
    "days": 5,
}


def _rx(patient: dict[str, Any] | None = None, **item: Any) -> dict[str, Any]:
    return {"patient": patient or {"age_years": 40}, "items": [GOOD_ITEM, {**GOOD_ITEM, **item}]}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (_rx({"age_years": 250}), "patient.age_years"),
        (_rx({"age_years": -1}), "patient.age_years"),
        (_rx({"age_years": "old"}), "patient.age_years"),
        (_rx({"weight_kg": 0}), "patient.weight_kg"),
        (_rx({"sex": "robot"}), "patient.sex"),
        (_rx({"labs": {"creatinine_umol_l": -5}}), "patient.labs.creatinine_umol_l"),
        (_rx({"labs": "high"}), "patient.labs"),
        (_rx({"pregnant": "yes"}), "patient.pregnant"),
        (_rx({"child_pugh": "D"}), "patient.child_pugh"),
        (_rx(dose=-0.5), "items[1].dose"),
        (_rx(dose=0), "items[1].dose"),
        (_rx(dose="a lot"), "items[1].dose"),
        (_rx(dose=None), "items[1].dose"),
        (_rx(unit="spoonful"), "items[1].unit"),
        (_rx(route="by magic"), "items[1].route"),
        (_rx(frequency="often"), "items[1].frequency"),
        (_rx(days=-3), "items[1].days"),
        (_rx(quantity=-1), "items[1].quantity"),
        (_rx(drug=""), "items[1].drug"),
        (_rx(spec="big"), "items[1].spec"),
        ({"items": []}, "items"),
        ({"items": "阿莫西林"}, "items"),
        ({"patient": [], "items": [GOOD_ITEM]}, "patient"),
        ({"items": [GOOD_ITEM], "prescriber_level": "神医"}, "prescriber_level"),
        ({"items": [GOOD_ITEM], "setting": "space"}, "setting"),
        ({"items": [GOOD_ITEM, 3]}, "items[1]"),
    ],
)
def test_invalid_value_names_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as raised:
        review(document, KB, source="rx.json")
    assert raised.value.field == field
    assert str(raised.value).startswith(f"rx.json: {field}: ")


def test_not_an_object() -> None:
    with pytest.raises(InputError):
        review([1, 2], KB)


def test_child_without_weight_is_a_finding_not_a_pass() -> None:
    result = review(
        {
            "patient": {"age_years": 4},
            "items": [
                {
                    "drug": "头孢克洛颗粒",
                    "dose": 125,
                    "unit": "mg",
                    "route": "po",
                    "frequency": "tid",
                }
            ],
        },
        KB,
        lang="en",
    )
    weight = [f for f in result.findings if f.rule_id == "rx.dose.weight-missing"]
    assert weight and "weight missing" in weight[0].message
    assert result.verdict == "warn"


def test_mg_per_kg_without_weight_is_reported() -> None:
    result = review(
        {
            "patient": {"diagnoses": ["肺炎"]},
            "items": [
                {"drug": "头孢曲松", "dose": 50, "unit": "mg/kg", "route": "iv", "frequency": "qd"}
            ],
        },
        KB,
    )
    assert [f.rule_id for f in result.findings] == ["rx.dose.weight-missing"]
