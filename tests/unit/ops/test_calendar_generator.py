"""The synthetic hospital: holidays from chinese-calendar, reproducibility, plausible volumes."""

from __future__ import annotations

from datetime import date
from statistics import fmean

import pytest

from medbrain.core.errors import InputError
from medbrain.ops.calendar import day_kind, supported_years
from medbrain.ops.generator import (
    DEPARTMENTS,
    generate_consumables,
    generate_daily,
)


def test_spring_festival_makeup_and_return_days_are_classified() -> None:
    assert day_kind(date(2025, 1, 29)).kind == "spring_festival"
    assert day_kind(date(2025, 1, 26)).kind == "makeup"  # Sunday worked for the festival
    back = day_kind(date(2025, 2, 5))
    assert back.kind == "workday" and back.after_holiday
    assert day_kind(date(2025, 10, 3)).kind == "holiday"
    ordinary_monday = day_kind(date(2025, 3, 10))
    assert ordinary_monday.kind == "workday" and not ordinary_monday.after_holiday


def test_unknown_year_is_an_error_unless_fallback_is_asked_for() -> None:
    _first, last = supported_years()
    later = date(last + 1, 10, 2)
    with pytest.raises(InputError, match="chinese-calendar"):
        day_kind(later)
    fallback = day_kind(later, strict=False)
    assert fallback.fallback and fallback.kind == "holiday"
    assert day_kind(date(last + 1, 3, 11), strict=False).kind in ("workday", "weekend")


def test_generator_is_reproducible_with_its_seed() -> None:
    a = generate_daily(date(2025, 1, 1), date(2025, 1, 31), seed=7, departments=DEPARTMENTS[:3])
    b = generate_daily(date(2025, 1, 1), date(2025, 1, 31), seed=7, departments=DEPARTMENTS[:3])
    c = generate_daily(date(2025, 1, 1), date(2025, 1, 31), seed=8, departments=DEPARTMENTS[:3])
    assert a == b
    assert a != c
    assert len(a) == 3 * 31


@pytest.fixture(scope="module")
def two_years() -> list:
    return generate_daily(date(2024, 1, 1), date(2025, 12, 31), seed=11)


def test_holidays_reduce_outpatient_volume(two_years: list) -> None:
    by_kind: dict[str, list[float]] = {}
    totals: dict[date, int] = {}
    for row in two_years:
        totals[row.day] = totals.get(row.day, 0) + row.outpatient_visits
    for day, total in totals.items():
        kind = day_kind(day)
        if kind.kind == "workday" and not kind.after_holiday:
            by_kind.setdefault("workday", []).append(total)
        else:
            by_kind.setdefault(kind.kind, []).append(total)
    workday = fmean(by_kind["workday"])
    assert fmean(by_kind["holiday"]) < 0.5 * workday
    assert fmean(by_kind["spring_festival"]) < 0.3 * workday
    assert fmean(by_kind["weekend"]) < 0.7 * workday
    assert fmean(by_kind["makeup"]) > 0.8 * workday  # a worked weekend looks like a weekday


def test_influenza_season_lifts_pediatrics_more_than_ophthalmology(two_years: list) -> None:
    def winter_summer_ratio(code: str) -> float:
        rows = [r for r in two_years if r.dept_code == code and day_kind(r.day).kind == "workday"]
        winter = fmean(r.outpatient_visits for r in rows if r.day.month == 1)
        summer = fmean(r.outpatient_visits for r in rows if r.day.month in (7, 8))
        return winter / summer

    assert winter_summer_ratio("PEDI") > winter_summer_ratio("OPHT") + 0.2


def test_a_year_looks_like_a_3000_bed_hospital(two_years: list) -> None:
    year = [r for r in two_years if r.day.year == 2025]
    beds = {r.dept_code: r.beds for r in year}
    assert sum(beds.values()) == 3000
    assert len(beds) == 20
    admissions = sum(r.admissions for r in year)
    visits = sum(r.outpatient_visits for r in year)
    assert 90_000 < admissions < 160_000
    assert 1_500_000 < visits < 2_600_000
    occupancy = sum(r.occupied_beds for r in year) / sum(r.beds for r in year)
    assert 0.8 < occupancy < 1.0
    for r in year:
        assert r.surgeries_level4 <= r.surgeries
        assert r.critical_values_on_time <= r.critical_values
        assert r.records_grade_a <= r.records_graded == r.discharges
        assert r.drug_cost <= r.total_cost and r.consumable_cost <= r.total_cost - r.drug_cost


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(InputError, match="before start"):
        generate_daily(date(2025, 2, 1), date(2025, 1, 1))
    with pytest.raises(InputError, match="beds_scale"):
        generate_daily(date(2025, 1, 1), date(2025, 1, 2), beds_scale=0)
    with pytest.raises(InputError, match="history_days"):
        generate_consumables(date(2025, 1, 1), history_days=3)


def test_consumables_have_lots_in_every_warning_horizon() -> None:
    today = date(2026, 11, 20)
    items, lots, uses = generate_consumables(today, seed=3)
    left = sorted((lot.expiry_date - today).days for lot in lots)
    assert any(d < 0 for d in left)
    assert any(0 <= d <= 7 for d in left)
    assert any(7 < d <= 30 for d in left)
    assert {u.item_code for u in uses} == {i.code for i in items}
    assert all(u.day < today for u in uses)
