"""Dose arithmetic as properties (hypothesis): limits fire exactly when the numbers say so."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from medbrain.rx import load_rx_knowledge, review

KB = load_rx_knowledge()


def _rules(document: dict[str, Any]) -> set[str]:
    return {f.rule_id for f in review(document, KB).findings}


def _adult(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "patient": {"age_years": 40, "sex": "male", "weight_kg": 70, "diagnoses": ["急性扁桃体炎"]},
        "items": [item],
    }


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=50, max_value=3000))
def test_amoxicillin_daily_and_single_limits(dose_mg: int) -> None:
    rules = _rules(
        _adult(
            {
                "drug": "阿莫西林胶囊",
                "dose": dose_mg,
                "unit": "mg",
                "route": "po",
                "frequency": "tid",
            }
        )
    )
    assert ("rx.dose.daily-max" in rules) == (3 * dose_mg > 4000)
    assert ("rx.dose.single-max" in rules) == (dose_mg > 1000 and 3 * dose_mg <= 4000)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=4000))
def test_same_dose_in_g_or_mg_gives_same_findings(dose_mg: int) -> None:
    base = {"drug": "阿莫西林胶囊", "route": "po", "frequency": "bid"}
    in_mg = _rules(_adult({**base, "dose": dose_mg, "unit": "mg"}))
    in_g = _rules(_adult({**base, "dose": dose_mg / 1000, "unit": "g"}))
    assert in_mg == in_g


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=12))
def test_tablets_and_mg_are_equivalent(tablets: int) -> None:
    base = {"route": "po", "frequency": "qd", "days": 30}
    dx = {"age_years": 50, "sex": "male", "weight_kg": 70, "diagnoses": ["高脂血症"]}
    by_count = review(
        {
            "patient": dx,
            "items": [{**base, "drug": "阿托伐他汀钙片(10mg)", "dose": tablets, "unit": "片"}],
        },
        KB,
    )
    by_mass = review(
        {
            "patient": dx,
            "items": [{**base, "drug": "阿托伐他汀钙片", "dose": tablets * 10, "unit": "mg"}],
        },
        KB,
    )
    assert {f.rule_id for f in by_count.findings} == {f.rule_id for f in by_mass.findings}
    assert ("rx.dose.daily-max" in {f.rule_id for f in by_count.findings}) == (tablets * 10 > 80)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=5, max_value=39), st.integers(min_value=40, max_value=800))
def test_child_paracetamol_mg_per_kg(weight_kg: int, dose_mg: int) -> None:
    # Below the policy's adult_weight_kg_min (40 kg) children are dosed per kg.
    document = {
        "patient": {"age_years": 5, "sex": "female", "weight_kg": weight_kg, "diagnoses": ["发热"]},
        "items": [
            {
                "drug": "对乙酰氨基酚片",
                "dose": dose_mg,
                "unit": "mg",
                "route": "po",
                "frequency": "q6h",
            }
        ],
    }
    rules = _rules(document)
    per_kg_day = 4 * dose_mg / weight_kg
    assert ("rx.dose.pediatric-daily-max" in rules) == (per_kg_day > 75)
    if per_kg_day <= 75:
        assert ("rx.dose.pediatric-single-max" in rules) == (dose_mg / weight_kg > 15)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=20, max_value=900), st.integers(min_value=30, max_value=90))
def test_metformin_renal_band_follows_cockcroft_gault(creatinine: float, age: int) -> None:
    document = {
        "patient": {
            "age_years": age,
            "sex": "male",
            "weight_kg": 60,
            "diagnoses": ["2型糖尿病"],
            "labs": {"creatinine_umol_l": creatinine},
        },
        "items": [
            {"drug": "二甲双胍片", "dose": 0.5, "unit": "g", "route": "po", "frequency": "tid"}
        ],
    }
    crcl = (140 - age) * 60 / (72 * creatinine / 88.4)
    renal = [f for f in review(document, KB).findings if f.rule_id == "rx.renal.metformin"]
    if crcl < 30:
        assert renal and renal[0].severity.value == "critical"
    elif crcl < 45:
        assert renal and renal[0].severity.value == "warning"
    else:
        assert renal == []
