"""Forecasting: metrics, seasonal naive, holiday adjustment, intervals, backtest (short series)."""

from __future__ import annotations

from datetime import date

import pytest

from medbrain.core.errors import InputError
from medbrain.ops import forecast as fc
from medbrain.ops.generator import DEPARTMENTS, generate_daily


def test_metrics_and_seasonal_naive_by_hand() -> None:
    assert fc.mape([100, 200], [110, 180]) == pytest.approx(10.0)
    assert fc.smape([100, 0], [100, 50]) == pytest.approx(100.0)  # 0 and 200 % averaged
    assert fc.seasonal_naive(list(range(1, 15)), 9) == [8, 9, 10, 11, 12, 13, 14, 8, 9]


@pytest.fixture(scope="module")
def endocrinology() -> fc.Series:
    dept = next(d for d in DEPARTMENTS if d.code == "ENDO")
    rows = generate_daily(date(2024, 6, 1), date(2025, 9, 24), seed=5, departments=[dept])
    return fc.series_from_rows([(r.day, r.dept_code, r.outpatient_visits) for r in rows])[0]


def test_forecast_over_national_day_is_lowered_and_intervals_nest(endocrinology: fc.Series) -> None:
    result = fc.forecast_series(endocrinology, 14, model="ets")
    assert len(result.points) == 14
    assert result.points[0].day == date(2025, 9, 25)
    for p in result.points:
        assert p.lo[95] <= p.lo[80] <= p.mean <= p.hi[80] <= p.hi[95]
    by_day = {p.day: p for p in result.points}
    holiday = by_day[date(2025, 10, 3)]  # Friday of the National Day week
    ordinary = by_day[date(2025, 9, 26)]  # the Friday before
    assert holiday.day_class == "holiday"
    assert holiday.mean < 0.6 * ordinary.mean
    assert result.factors["holiday"] < 0.6


def test_backtest_beats_seasonal_naive_across_a_holiday(endocrinology: fc.Series) -> None:
    extended_end = date(2025, 10, 12)
    dept = next(d for d in DEPARTMENTS if d.code == "ENDO")
    rows = generate_daily(endocrinology.start, extended_end, seed=5, departments=[dept])
    series = fc.series_from_rows([(r.day, r.dept_code, r.outpatient_visits) for r in rows])
    result = fc.backtest(series, horizon=14, origins=2, step_days=7, model="ets")
    row = result.rows[0]
    assert row.origins == 2
    assert row.mape < row.naive_mape
    assert 0 <= row.coverage80 <= 1
    assert set(result.overall()) >= {"mape", "smape", "naive_mape", "naive_smape"}


def test_bad_forecast_input_is_refused() -> None:
    short = fc.Series("X", date(2025, 1, 1), (10.0,) * 20)
    with pytest.raises(InputError, match="at least"):
        fc.forecast_series(short, 7)
    ok = fc.Series("X", date(2025, 1, 1), (10.0,) * 80)
    with pytest.raises(InputError, match="horizon"):
        fc.forecast_series(ok, 15)
    with pytest.raises(InputError, match="model"):
        fc.forecast_series(ok, 7, model="prophet")
    negative = fc.Series("X", date(2025, 1, 1), (10.0,) * 79 + (-1.0,))
    with pytest.raises(InputError, match="values"):
        fc.forecast_series(negative, 7)
    with pytest.raises(InputError, match="missing day"):
        fc.series_from_rows([(date(2025, 1, 1), "X", 1.0), (date(2025, 1, 3), "X", 1.0)])


def test_csv_parsing_names_the_bad_line() -> None:
    good = "day,department,outpatient_visits\n2025-01-01,A,10\n2025-01-02,A,12\n"
    assert fc.parse_csv(good, "f.csv") == [
        (date(2025, 1, 1), "A", 10.0),
        (date(2025, 1, 2), "A", 12.0),
    ]
    with pytest.raises(InputError, match="line 3 outpatient_visits"):
        fc.parse_csv(good.replace("2025-01-02,A,12", "2025-01-02,A,-4"), "f.csv")
    with pytest.raises(InputError, match="line 2 day"):
        fc.parse_csv("day,department,outpatient_visits\n2025-13-01,A,1\n", "f.csv")
    with pytest.raises(InputError, match="header"):
        fc.parse_csv("date,dept,n\n", "f.csv")
    with pytest.raises(InputError, match="duplicate"):
        fc.parse_csv(good + "2025-01-02,A,3\n", "f.csv")
