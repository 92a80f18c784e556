"""Child–Pugh from bilirubin, albumin, INR, ascites and encephalopathy (Pugh 1973), and the
hepatic dose ceilings it drives in a review."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.rx import load_rx_knowledge, review
from medbrain.rx.hepatic import (
    albumin_points,
    bilirubin_points,
    child_pugh,
    child_pugh_class,
    grade_points,
    inr_points,
)


@pytest.mark.parametrize(
    ("value", "points"), [(10, 1), (33.9, 1), (34, 2), (50, 2), (50.1, 3), (300, 3)]
)
def test_bilirubin_points_follow_the_34_and_50_umol_l_cut_offs(value: float, points: int) -> None:
    assert bilirubin_points(value) == points


@pytest.mark.parametrize(("value", "points"), [(40, 1), (35.1, 1), (35, 2), (28, 2), (27.9, 3)])
def test_albumin_points_follow_the_35_and_28_g_l_cut_offs(value: float, points: int) -> None:
    assert albumin_points(value) == points


@pytest.mark.parametrize(("value", "points"), [(1.0, 1), (1.69, 1), (1.7, 2), (2.3, 2), (2.31, 3)])
def test_inr_points_follow_the_1_7_and_2_3_cut_offs(value: float, points: int) -> None:
    assert inr_points(value) == points


@pytest.mark.parametrize(
    ("score", "klass"), [(5, "A"), (6, "A"), (7, "B"), (9, "B"), (10, "C"), (15, "C")]
)
def test_class_boundaries(score: int, klass: str) -> None:
    assert child_pugh_class(score) == klass


def test_complete_data_give_one_score_and_class() -> None:
    cp = child_pugh(bilirubin_umol_l=60, albumin_g_l=26, inr=2.5, ascites=3, encephalopathy=2)
    assert cp is not None and cp.complete
    assert (cp.score_min, cp.score_max, cp.klass) == (14, 14, "C")
    assert cp.describe() == "Child-Pugh C (14)"


def test_missing_grades_give_a_range_and_the_class_the_data_prove() -> None:
    cp = child_pugh(bilirubin_umol_l=45, albumin_g_l=30, inr=1.5)
    assert cp is not None and not cp.complete
    assert (cp.score_min, cp.score_max) == (7, 11)  # 2+2+1 known, 2 unknown at 1–3
    assert cp.klass is None and cp.at_least == "B"
    decided = child_pugh(bilirubin_umol_l=80, albumin_g_l=20, inr=3.0)
    assert decided is not None and decided.klass == "C"  # 11–15: C whatever the grades
    assert child_pugh() is None


@pytest.mark.parametrize(
    ("word", "points"), [("none", 1), ("无", 1), ("mild", 2), ("轻度", 2), ("重度", 3), (4, 3)]
)
def test_grade_words(word: str | int, points: int) -> None:
    assert grade_points(word, "patient.ascites") == points


def _rx(patient: dict[str, Any], dose_mg: float) -> dict[str, Any]:
    return {
        "patient": {"age_years": 60, "sex": "male", "weight_kg": 60, **patient},
        "items": [
            {
                "drug": "塞来昔布胶囊",
                "dose": dose_mg,
                "unit": "mg",
                "route": "po",
                "frequency": "qd",
                "days": 5,
            }
        ],
    }


CIRRHOSIS_B = {
    "diagnoses": ["乙肝肝硬化"],
    "labs": {"bilirubin_umol_l": 45, "albumin_g_l": 30, "inr": 1.5},
    "ascites": "mild",
}


def _hepatic(document: dict[str, Any]) -> list[str]:
    result = review(document, load_rx_knowledge(None), lang="en")
    return [f.rule_id for f in result.findings if f.category == "hepatic"]


def test_computed_class_b_caps_celecoxib_at_half_the_dose() -> None:
    result = review(_rx(CIRRHOSIS_B, 400), load_rx_knowledge(None), lang="en")
    found = [f for f in result.findings if f.category == "hepatic"]
    assert [f.rule_id for f in found] == ["rx.hepatic.celecoxib-child-pugh-b"]
    assert "Child-Pugh ≥B" in found[0].message and "200" in found[0].suggestion
    assert _hepatic(_rx(CIRRHOSIS_B, 200)) == []  # within the class B ceiling


def test_labs_alone_without_liver_disease_do_not_assign_a_class() -> None:
    patient = {**CIRRHOSIS_B, "diagnoses": ["骨关节炎"]}
    patient.pop("ascites")
    assert _hepatic(_rx(patient, 400)) == []


def test_given_class_wins_over_the_labs() -> None:
    assert _hepatic(_rx({**CIRRHOSIS_B, "child_pugh": "A"}, 400)) == []
    assert _hepatic(_rx({**CIRRHOSIS_B, "child_pugh": "C"}, 200)) == [
        "rx.hepatic.nsaid-severe-liver"
    ]


@pytest.mark.parametrize(
    ("patient", "field"),
    [
        ({"ascites": "lots"}, "patient.ascites"),
        ({"encephalopathy": "grade 7"}, "patient.encephalopathy"),
        ({"labs": {"albumin_g_l": 400}}, "patient.labs.albumin_g_l"),
        ({"labs": {"inr": -1}}, "patient.labs.inr"),
    ],
)
def test_unreadable_liver_values_name_the_field(patient: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        review(_rx(patient, 200), load_rx_knowledge(None))
    assert caught.value.field == field
