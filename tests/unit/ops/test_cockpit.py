"""Cockpit indicator formulas on small hand-computed data; knowledge and overrides."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.ops.cockpit import (
    DailyTable,
    DeptInfo,
    ForecastComparison,
    compute_cockpit,
    drill_down,
    series,
)
from medbrain.ops.knowledge import FIELDS, load_ops_knowledge

DEPTS = (DeptInfo("A", "甲科", "Dept A"), DeptInfo("B", "乙科", "Dept B"))
D1, D2 = date(2025, 3, 10), date(2025, 3, 11)
P1, P2 = date(2025, 3, 8), date(2025, 3, 9)


def row(day: date, code: str, **values: float) -> dict[str, Any]:
    return {"day": day, "dept_code": code, **dict.fromkeys(FIELDS, 0), **values}


ROWS = [
    row(D1, "A", beds=10, occupied_beds=9, discharges=2, discharged_patient_days=10,
        drg_weight_sum=3.0, total_cost=1000, drug_cost=300, consumable_cost=140,
        antibiotic_ddd=4.5, surgeries=4, surgeries_level4=1, critical_values=3,
        critical_values_on_time=3, records_graded=2, records_grade_a=2, outpatient_visits=100),
    row(D2, "A", beds=10, occupied_beds=10, discharges=1, discharged_patient_days=9,
        drg_weight_sum=2.0, total_cost=500, drug_cost=100, consumable_cost=100,
        antibiotic_ddd=5.5, critical_values=1, records_graded=1, outpatient_visits=50),
    row(D1, "B", beds=20, occupied_beds=15, discharges=5, discharged_patient_days=20,
        drg_weight_sum=5.0, total_cost=2000, drug_cost=400, consumable_cost=100,
        surgeries=6, surgeries_level4=3, records_graded=5, records_grade_a=5,
        outpatient_visits=300),
    row(D2, "B", beds=20, occupied_beds=16),
    row(P1, "A", beds=10, outpatient_visits=200),
    row(P2, "A", beds=10, outpatient_visits=200),
]  # fmt: skip


@pytest.fixture
def table() -> DailyTable:
    return DailyTable.from_rows(ROWS, DEPTS)


def values(table: DailyTable, **kw: Any) -> dict[str, Any]:
    cockpit = compute_cockpit(table, load_ops_knowledge(), D1, D2, **kw)
    return {t.key: t for t in cockpit.tiles}


def test_indicator_formulas_sum_before_dividing(table: DailyTable) -> None:
    tiles = values(table)
    assert len(tiles) == 14
    assert tiles["outpatient_visits"].value == 450
    assert tiles["bed_occupancy"].value == pytest.approx(100 * 50 / 60, abs=0.05)
    # ALOS = Σ bed-days / Σ discharges = 39 / 8, not the mean of daily ALOS (6.0)
    assert tiles["alos"].value == pytest.approx(4.875, abs=0.006)
    assert tiles["cmi"].value == pytest.approx(1.25)
    assert tiles["drug_share"].value == pytest.approx(22.9)
    # 耗占比: consumables / (revenue − drugs) = 340 / 2700
    assert tiles["consumable_share"].value == pytest.approx(12.6)
    # DDD per 100 patient-days = 100 × 10 / 50
    assert tiles["antibiotic_intensity"].value == pytest.approx(20.0)
    assert tiles["operations"].value == 10
    assert tiles["operations"].secondary is not None
    assert tiles["operations"].secondary["value"] == pytest.approx(40.0)
    assert tiles["critical_value_on_time"].value == pytest.approx(75.0)
    assert tiles["grade_a_records"].value == pytest.approx(87.5)


def test_status_and_change_against_the_previous_period(table: DailyTable) -> None:
    tiles = values(table)
    assert tiles["outpatient_visits"].previous == 400
    assert tiles["outpatient_visits"].change_pct == pytest.approx(12.5)
    assert tiles["outpatient_visits"].status == "none"
    assert tiles["critical_value_on_time"].status == "warning"  # 75 % < 95 %
    assert tiles["drug_share"].status == "ok"  # 22.9 % ≤ 30 %
    assert tiles["bed_occupancy"].status == "warning"  # below the 85–93 % band
    assert tiles["forecast_accuracy"].value is None  # no forecast passed in


def test_hospital_overrides_change_targets_without_code(table: DailyTable) -> None:
    strict = load_ops_knowledge({"indicators": [{"id": "drug_share", "target_high": 20}]})
    cockpit = compute_cockpit(table, strict, D1, D2)
    tile = next(t for t in cockpit.tiles if t.key == "drug_share")
    assert tile.status == "warning"
    assert tile.target_high == 20


def test_drill_down_gives_each_department_its_own_ratio(table: DailyTable) -> None:
    rows = {d.code: d for d in drill_down(table, load_ops_knowledge(), "bed_occupancy", D1, D2)}
    assert rows["A"].value == pytest.approx(95.0)
    assert rows["B"].value == pytest.approx(77.5)
    ops = {d.code: d for d in drill_down(table, load_ops_knowledge(), "operations", D1, D2)}
    assert ops["A"].value == 4 and ops["A"].secondary == pytest.approx(25.0)
    assert ops["B"].value == 6 and ops["B"].secondary == pytest.approx(50.0)


def test_department_cockpit_and_daily_series(table: DailyTable) -> None:
    tiles = values(table, department="B")
    assert tiles["outpatient_visits"].value == 300
    assert tiles["alos"].value == pytest.approx(4.0)
    ind = load_ops_knowledge().indicator("bed_occupancy")
    assert ind is not None
    daily = series(table, ind.ratio, D1, D2, granularity="day", department="A")
    assert daily == [("2025-03-10", 90.0), ("2025-03-11", 100.0)]


def test_forecast_tile_uses_the_comparison_it_is_given(table: DailyTable) -> None:
    comparison = ForecastComparison(
        days=(D1, D2), actual=(100.0, 200.0), forecast=(110.0, 180.0),
        lo80=(90.0, 170.0), hi80=(120.0, 210.0),
    )  # fmt: skip
    tiles = values(table, forecast=comparison)
    assert tiles["forecast_accuracy"].value == pytest.approx(10.0)  # (10 % + 10 %) / 2
    assert tiles["forecast_accuracy"].status == "ok"


def test_bad_input_is_named(table: DailyTable) -> None:
    with pytest.raises(InputError, match="before start"):
        compute_cockpit(table, load_ops_knowledge(), D2, D1)
    with pytest.raises(InputError, match="unknown department"):
        compute_cockpit(table, load_ops_knowledge(), D1, D2, department="Z")
    with pytest.raises(InputError, match="unknown indicator"):
        drill_down(table, load_ops_knowledge(), "happiness", D1, D2)
    with pytest.raises(InputError, match=r"rows\[0\]\.discharges"):
        DailyTable.from_rows([row(D1, "A", discharges=-1)], DEPTS)
    with pytest.raises(InputError, match="unknown department"):
        DailyTable.from_rows([row(D1, "Q")], DEPTS)


def test_every_indicator_cites_a_source_and_bad_knowledge_is_refused() -> None:
    knowledge = load_ops_knowledge()
    assert len(knowledge.indicators) == 14
    assert all(ind.source for ind in knowledge.indicators)
    with pytest.raises(KnowledgeError, match="direction"):
        load_ops_knowledge({"indicators": [{"id": "alos", "direction": "sideways"}]})
    with pytest.raises(KnowledgeError, match="unknown field"):
        load_ops_knowledge({"indicators": [{"id": "alos", "numerator": ["bed_days"]}]})
    with pytest.raises(KnowledgeError, match="under_occupancy_pct"):
        load_ops_knowledge({"bed_capacity": {"under_occupancy_pct": 120}})
