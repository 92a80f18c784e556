"""Brock (PanCan) model: monotone in size, refuses to guess without lobe information."""

from __future__ import annotations

import math

import pytest

from medbrain.imaging.brock import BrockInput, brock_probability


def case(**kw: object) -> BrockInput:
    base: dict[str, object] = {
        "age_years": 62.0,
        "female": False,
        "family_history_lung_cancer": False,
        "emphysema": False,
        "mean_diameter_mm": 4.0,
        "type": "solid",
        "nodule_count": 4,
        "upper_lobe": False,
    }
    base.update(kw)
    return BrockInput(**base)  # type: ignore[arg-type]


def test_reference_case_equals_the_intercept() -> None:
    # every centred term is zero: probability = logistic(intercept)
    assert brock_probability(case()) == pytest.approx(1 / (1 + math.exp(6.8071)))


def test_probability_grows_with_size_and_risk_factors() -> None:
    small = brock_probability(case(mean_diameter_mm=5.0))
    large = brock_probability(case(mean_diameter_mm=15.0))
    risky = brock_probability(
        case(mean_diameter_mm=15.0, female=True, emphysema=True, upper_lobe=True)
    )
    assert small is not None and large is not None and risky is not None
    assert small < large < risky < 1.0


def test_unknown_lobe_or_calcified_nodule_gives_no_probability() -> None:
    assert brock_probability(case(upper_lobe=None)) is None
    assert brock_probability(case(type="calcified")) is None
