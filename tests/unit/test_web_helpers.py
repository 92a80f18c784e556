"""Presentation helpers of the web UI and patient store: trend geometry, age, masking, search text."""

from __future__ import annotations

from datetime import date

import pytest

from medbrain.store.patients import age_on, mask_resident_id, normalize_query
from medbrain.web.sparkline import sparkline


def test_sparkline_needs_two_numbers() -> None:
    assert sparkline([], [], None, None) is None
    assert sparkline([4.2], ["N"], 3.5, 5.3) is None
    assert sparkline([None, 4.2, float("nan")], [None, "N", None], 3.5, 5.3) is None


def test_sparkline_scales_into_the_box_with_the_reference_band() -> None:
    line = sparkline([4.0, 6.0], ["N", "H"], 3.5, 5.3, width=100, height=20, pad=0)
    assert line is not None
    assert [(d.x, d.flag) for d in line.dots] == [(0.0, "N"), (100.0, "H")]
    # domain 3.5..6.0: the high value is at the top, the band spans 5.3 down to 3.5
    assert line.dots[1].y == 0.0
    assert line.band_y == pytest.approx(20 * (6.0 - 5.3) / 2.5, abs=0.1)
    assert line.band_y + line.band_height == pytest.approx(20.0, abs=0.1)
    assert line.points == "0.0,16.0 100.0,0.0"
    assert line.label == "4 → 6"


def test_flat_series_sits_mid_box_without_dividing_by_zero() -> None:
    line = sparkline([5.0, 5.0, 5.0], ["N"] * 3, None, None, width=40, height=20, pad=0)
    assert line is not None
    assert {d.y for d in line.dots} == {10.0}
    assert line.band_y is None


def test_one_sided_reference_range_draws_a_band_to_the_edge() -> None:
    line = sparkline([1.0, 3.0], ["N", "N"], None, 2.0, width=10, height=10, pad=0)
    assert line is not None
    assert line.band_y == 5.0 and line.band_height == 5.0


@pytest.mark.parametrize(
    ("birth", "today", "years"),
    [
        (date(1958, 4, 12), date(2025, 4, 11), 66),
        (date(1958, 4, 12), date(2025, 4, 12), 67),
        (date(2000, 2, 29), date(2025, 2, 28), 24),
        (None, date(2025, 1, 1), None),
    ],
)
def test_age_counts_completed_years(birth: date | None, today: date, years: int | None) -> None:
    assert age_on(birth, today) == years


def test_resident_id_keeps_region_and_last_four() -> None:
    assert mask_resident_id("11010519491231002X") == "110105********002X"
    assert mask_resident_id(None) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("  zhang  san ", "zhang san"), ("zs\x00", "zs"), ("a\tb\nc", "a b c"), ("x" * 100, "x" * 64)],
)
def test_search_text_is_trimmed_and_stripped_of_control_characters(raw: str, clean: str) -> None:
    assert normalize_query(raw) == clean
