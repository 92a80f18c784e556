"""Age-band paediatric ranges (PALS) and infant fever (NICE NG143)."""

from __future__ import annotations

import pytest

from medbrain.triage import assess_document, default_knowledge


def _level(age_months: float, complaint: str = "咳嗽", **vitals: float) -> int:
    visit = {"complaint": complaint, "age_months": age_months, "vitals": vitals}
    return assess_document(visit, default_knowledge()).level


@pytest.mark.parametrize(
    ("months", "hr", "level"),
    [
        (1, 200, 4),  # neonate/young infant: 85-205 normal
        (1, 210, 3),
        (6, 185, 4),  # 3-12 months: 100-190
        (6, 195, 3),
        (6, 230, 2),  # > 190 × 1.2
        (6, 95, 3),
        (30, 135, 4),  # 2-10 years: 60-140
        (30, 150, 3),
        (30, 170, 2),
        (144, 105, 3),  # 10-13 years: 60-100
        (144, 95, 4),
    ],
)
def test_heart_rate_against_age_band(months: float, hr: float, level: int) -> None:
    assert _level(months, hr=hr) == level


@pytest.mark.parametrize(
    ("months", "rr", "level"),
    [
        (6, 55, 4),
        (6, 65, 3),
        (6, 75, 2),
        (24, 38, 4),
        (24, 45, 3),
        (60, 34, 4),
        (60, 36, 3),
        (96, 30, 4),
        (96, 31, 3),
    ],
)
def test_respiratory_rate_against_age_band(months: float, rr: float, level: int) -> None:
    assert _level(months, rr=rr) == level


@pytest.mark.parametrize(
    ("months", "sbp", "level"),
    [
        (0.5, 58, 1),
        (0.5, 62, 4),
        (6, 68, 1),
        (6, 72, 4),
        (60, 79, 1),
        (60, 81, 4),
        (132, 88, 1),
        (132, 92, 4),
    ],
)
def test_hypotension_for_age_is_level_1(months: float, sbp: float, level: int) -> None:
    assert _level(months, sbp=sbp) == level


def test_adult_heart_rate_rule_does_not_apply_to_an_infant() -> None:
    # 150/min would be level Ⅱ in an adult; it is normal at 2 months.
    assert _level(2, hr=150) == 4


def test_infant_under_three_months_with_fever_is_level_2_even_with_normal_vitals() -> None:
    assert _level(2, complaint="吃奶少", temp_c=38.2, hr=150, rr=40) == 2
    assert _level(4, complaint="吃奶少", temp_c=38.2, hr=150, rr=40) == 4


def test_child_goes_to_paediatrics_and_adult_to_internal_medicine() -> None:
    child = assess_document({"complaint": "发烧", "age_years": 5}, default_knowledge())
    adult = assess_document({"complaint": "发烧", "age_years": 35}, default_knowledge())
    assert child.department.code == "07"
    assert adult.department.code == "03"
