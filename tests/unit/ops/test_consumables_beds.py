"""Reorder points, expiry horizons and bed status on hand-computed data."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.ops.beds import bed_status
from medbrain.ops.cockpit import DailyTable, DeptInfo
from medbrain.ops.consumables import expiry_warnings, reorder_list, reorder_point
from medbrain.ops.generator import ConsumableItem, ConsumableLot, ConsumableUse
from medbrain.ops.knowledge import FIELDS, BedThresholds

TODAY = date(2026, 6, 1)


def test_reorder_point_is_lead_time_demand_plus_z_sigma_root_lead_time() -> None:
    rop = reorder_point([10, 12, 8, 10], lead_time_days=4, service_level=0.95)
    sd = math.sqrt(8 / 3)
    assert rop.mean_daily_use == pytest.approx(10)
    assert rop.sd_daily_use == pytest.approx(sd)
    assert rop.z == pytest.approx(1.6449, abs=1e-4)
    assert rop.safety_stock == pytest.approx(1.6449 * sd * 2, abs=1e-3)
    assert rop.reorder_point == pytest.approx(40 + 1.6449 * sd * 2, abs=1e-3)
    higher = reorder_point([10, 12, 8, 10], lead_time_days=4, service_level=0.99)
    assert higher.safety_stock > rop.safety_stock


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"daily_use": [5, -1], "lead_time_days": 3}, r"daily_use\[1\]"),
        ({"daily_use": [5], "lead_time_days": 3}, "daily_use"),
        ({"daily_use": [5, 6], "lead_time_days": 0}, "lead_time_days"),
        ({"daily_use": [5, 6], "lead_time_days": 3, "service_level": 1.0}, "service_level"),
    ],
)
def test_reorder_point_refuses_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError, match=field):
        reorder_point(**kwargs)


def lot(no: str, days: int, qty: int = 10, item: str = "X") -> ConsumableLot:
    return ConsumableLot(item, no, qty, TODAY + timedelta(days=days), TODAY - timedelta(days=400))


def test_each_lot_lands_in_the_smallest_horizon_that_contains_it() -> None:
    lots = [lot(f"L{d}", d) for d in (-1, 0, 7, 8, 30, 31, 90, 91)]
    got = {w.lot_no: (w.horizon_days, w.expired, w.severity) for w in expiry_warnings(lots, TODAY)}
    assert got == {
        "L-1": (None, True, "critical"),
        "L0": (7, False, "critical"),
        "L7": (7, False, "critical"),
        "L8": (30, False, "warning"),
        "L30": (30, False, "warning"),
        "L31": (90, False, "info"),
        "L90": (90, False, "info"),
    }
    custom = expiry_warnings(lots, TODAY, horizons=[60])
    assert [w.lot_no for w in custom] == ["L-1", "L0", "L7", "L8", "L30", "L31"]


def test_expiry_refuses_negative_quantities_bad_dates_and_horizons() -> None:
    with pytest.raises(InputError, match=r"lots\[0\]\.quantity"):
        expiry_warnings([lot("N", 5, qty=-3)], TODAY)
    bad_date = ConsumableLot("X", "Old", 1, date(1900, 1, 1), date(1899, 1, 1))
    with pytest.raises(InputError, match="expiry_date"):
        expiry_warnings([bad_date], TODAY)
    with pytest.raises(InputError, match="horizons"):
        expiry_warnings([lot("A", 5)], TODAY, horizons=[0])
    with pytest.raises(InputError, match="horizons"):
        expiry_warnings([lot("A", 5)], TODAY, horizons=[])


def test_reorder_list_ignores_expired_stock_and_orders_up_to_target() -> None:
    items = [
        ConsumableItem("X", "甲", "X", "支", 4, 10, 365),
        ConsumableItem("Y", "乙", "Y", "支", 4, 10, 365),
    ]
    uses = [
        ConsumableUse(code, TODAY - timedelta(days=k), q)
        for code in ("X", "Y")
        for k, q in zip((4, 3, 2, 1), (10, 12, 8, 10), strict=True)
    ]
    lots = [lot("X1", -2, qty=500), lot("X2", 100, qty=30), lot("Y1", 100, qty=200, item="Y")]
    lines = {r.item_code: r for r in reorder_list(items, lots, uses, TODAY, history_days=14)}
    x, y = lines["X"], lines["Y"]
    assert x.usable_stock == 30 and x.expired_stock == 500
    assert x.reorder and not y.reorder
    assert x.suggested_quantity == math.ceil(x.reorder_point + 10 * 7 - 30)
    assert y.suggested_quantity == 0
    with pytest.raises(InputError, match="unknown item"):
        reorder_list(items, [lot("Z1", 10, item="Z")], uses, TODAY, history_days=14)


def _ward_rows(
    census: list[int], discharges: list[int], beds: int, code: str
) -> list[dict[str, Any]]:
    start = TODAY - timedelta(days=len(census) - 1)
    return [
        {
            "day": start + timedelta(days=i),
            "dept_code": code,
            **dict.fromkeys(FIELDS, 0),
            "beds": beds,
            "occupied_beds": c,
            "discharges": d,
            "discharged_patient_days": d * 5,
        }
        for i, (c, d) in enumerate(zip(census, discharges, strict=True))
    ]


def test_bed_status_flags_over_and_under_capacity_and_predicts_discharges() -> None:
    days = 28
    rows = _ward_rows([11] * days, [2] * days, 10, "A") + _ward_rows(
        [5] * days, [1] * days, 10, "B"
    )
    table = DailyTable.from_rows(rows, (DeptInfo("A", "甲", "A"), DeptInfo("B", "乙", "B")))
    thresholds = BedThresholds(over_pct=100, under_pct=75, window_days=14, source="test")
    wards = {w.code: w for w in bed_status(table, TODAY, thresholds)}
    a, b = wards["A"], wards["B"]
    assert a.status == "over" and a.occupancy_pct == pytest.approx(110.0)
    assert b.status == "under" and b.occupancy_pct == pytest.approx(50.0)
    assert a.alos_days == pytest.approx(5.0)
    assert a.turnover == pytest.approx(28 / 10)  # 14 days × 2 discharges / 10 beds
    # hazard on tomorrow's weekday = 2 / 11 per bed-night → 11 × 2/11 = 2 expected
    assert a.expected_discharges_tomorrow == pytest.approx(2.0)
    assert b.expected_discharges_tomorrow == pytest.approx(1.0)
    strict = BedThresholds(over_pct=120, under_pct=40, window_days=14, source="test")
    assert {w.status for w in bed_status(table, TODAY, strict)} == {"ok"}
    with pytest.raises(InputError, match="as_of"):
        bed_status(table, TODAY + timedelta(days=1), thresholds)
