"""Cockcroft–Gault and Schwartz estimates (Nephron 1976; JASN 2009)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbrain.rx.renal import cockcroft_gault, dosing_weight, ideal_body_weight, schwartz_bedside


def test_cockcroft_gault_textbook_male() -> None:
    # 60-year-old man, 72 kg, SCr 1.0 mg/dL (88.4 µmol/L): (140-60)*72/72 = 80 mL/min.
    assert cockcroft_gault(60, "male", 72, 88.4) == pytest.approx(80.0)


def test_cockcroft_gault_female_is_085_of_male() -> None:
    male = cockcroft_gault(70, "male", 60, 120)
    assert cockcroft_gault(70, "female", 60, 120) == pytest.approx(male * 0.85)


def test_cockcroft_gault_case_value_used_in_the_table() -> None:
    # 70 y, 60 kg, 300 µmol/L → about 17 mL/min (metformin contraindicated).
    assert cockcroft_gault(70, "male", 60, 300) == pytest.approx(17.19, abs=0.01)


def test_cockcroft_gault_never_negative_for_the_very_old() -> None:
    assert cockcroft_gault(150, "male", 60, 80) == 0.0


@pytest.mark.parametrize(
    ("weight", "scr", "sex"), [(0, 80, "male"), (60, 0, "male"), (60, 80, "x")]
)
def test_cockcroft_gault_rejects_impossible_inputs(weight: float, scr: float, sex: str) -> None:
    with pytest.raises(ValueError):
        cockcroft_gault(50, sex, weight, scr)


@given(
    age=st.floats(18, 120),
    weight=st.floats(30, 200),
    scr=st.floats(20, 2000),
)
def test_cockcroft_gault_falls_as_creatinine_rises(age: float, weight: float, scr: float) -> None:
    assert cockcroft_gault(age, "male", weight, scr * 1.5) <= cockcroft_gault(
        age, "male", weight, scr
    )


def test_adjusted_body_weight_only_in_obesity() -> None:
    ibw = ideal_body_weight(175, "male")
    assert ibw == pytest.approx(50 + 2.3 * (175 / 2.54 - 60))
    assert dosing_weight(70, 175, "male") == 70
    assert dosing_weight(130, 175, "male") == pytest.approx(ibw + 0.4 * (130 - ibw))
    assert dosing_weight(130, None, "male") == 130


def test_schwartz_bedside() -> None:
    # 120 cm, SCr 0.5 mg/dL (44.2 µmol/L): 0.413*120/0.5 = 99.1
    assert schwartz_bedside(120, 44.2) == pytest.approx(99.12, abs=0.01)
