"""Bed management by department: occupancy, turnover, ALOS, tomorrow's discharges, capacity.

Definitions (《国家卫生健康统计调查制度》 indicator explanations):

* 病床使用率 (occupancy) = occupied bed-days / open bed-days × 100 %;
* 病床周转次数 (turnover) = discharges / average open beds, over the window (and scaled to a
  year: × 365 / window days);
* 平均住院日 (ALOS) = bed-days of the window's discharges / discharges;
* expected discharges tomorrow = today's census × the department's discharge rate on
  tomorrow's weekday, estimated over the last 8 weeks as Σ discharges on that weekday /
  Σ previous-midnight census (a data-driven hazard, not a fixed ALOS);
* a department is ``over`` capacity when its window occupancy exceeds the configured over
  threshold (default 100 %: extra beds 加床), ``under`` when below the under threshold
  (default 75 %, 国办发〔2015〕14号), else ``ok``; thresholds are in
  ``knowledge/ops/indicators.yaml`` (``bed_capacity``) and overridable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from medbrain.core.errors import InputError
from medbrain.ops.cockpit import DailyTable
from medbrain.ops.knowledge import BedThresholds

HAZARD_WEEKS = 8


@dataclass(frozen=True, slots=True)
class WardBeds:
    code: str
    name: str
    beds: int
    occupied: int
    occupancy_today_pct: float | None
    occupancy_pct: float | None
    turnover: float
    turnover_per_year: float
    alos_days: float | None
    expected_discharges_tomorrow: float
    status: str  # over | under | ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "beds": self.beds,
            "occupied": self.occupied,
            "occupancy_today_pct": self.occupancy_today_pct,
            "occupancy_pct": self.occupancy_pct,
            "turnover": self.turnover,
            "turnover_per_year": self.turnover_per_year,
            "alos_days": self.alos_days,
            "expected_discharges_tomorrow": self.expected_discharges_tomorrow,
            "status": self.status,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def bed_status(
    table: DailyTable,
    as_of: date,
    thresholds: BedThresholds,
    *,
    window_days: int | None = None,
    lang: str = "zh",
) -> list[WardBeds]:
    """Each department's beds as of the end of ``as_of`` (see the module docstring)."""
    window = thresholds.window_days if window_days is None else window_days
    if not 1 <= window <= 366:
        raise InputError("beds", "window_days", f"must be 1–366, got {window}")
    first, last = table.first_day, table.last_day
    if first is None or last is None or not first <= as_of <= last:
        raise InputError("beds", "as_of", f"{as_of} is outside the data ({first}–{last})")
    start = as_of - timedelta(days=window - 1)
    tomorrow_wd = (as_of + timedelta(days=1)).weekday()
    out = []
    cols = table.columns
    for i, dept in enumerate(table.departments):
        rows = table.dept == i
        win = rows & (table.days >= start.toordinal()) & (table.days <= as_of.toordinal())
        today = rows & (table.days == as_of.toordinal())
        if not today.any():
            continue
        beds = int(cols["beds"][today].sum())
        occupied = int(cols["occupied_beds"][today].sum())
        bed_days = float(cols["beds"][win].sum())
        n_days = int(win.sum())
        discharges = float(cols["discharges"][win].sum())
        occupancy = 100.0 * float(cols["occupied_beds"][win].sum()) / bed_days if bed_days else None
        avg_beds = bed_days / n_days if n_days else 0.0
        turnover = discharges / avg_beds if avg_beds else 0.0
        alos = (
            float(cols["discharged_patient_days"][win].sum()) / discharges if discharges else None
        )
        # Discharge hazard on tomorrow's weekday: Σ discharges(d) / Σ census(d − 1).
        order = np.flatnonzero(rows)
        order = order[np.argsort(table.days[order])]
        days = table.days[order]
        census = cols["occupied_beds"][order]
        dis = cols["discharges"][order]
        lo = as_of.toordinal() - 7 * HAZARD_WEEKS
        num = den = 0.0
        for k in range(1, len(order)):
            d = int(days[k])
            if (
                lo < d <= as_of.toordinal()
                and days[k - 1] == d - 1
                and date.fromordinal(d).weekday() == tomorrow_wd
            ):
                num += float(dis[k])
                den += float(census[k - 1])
        hazard = num / den if den else 0.0
        status = "ok"
        if occupancy is not None and occupancy > thresholds.over_pct:
            status = "over"
        elif occupancy is not None and occupancy < thresholds.under_pct:
            status = "under"
        out.append(
            WardBeds(
                code=dept.code,
                name=dept.name(lang),
                beds=beds,
                occupied=occupied,
                occupancy_today_pct=_round(100.0 * occupied / beds if beds else None, 1),
                occupancy_pct=_round(occupancy, 1),
                turnover=round(turnover, 2),
                turnover_per_year=round(turnover * 365 / window, 1),
                alos_days=_round(alos, 2),
                expected_discharges_tomorrow=round(occupied * hazard, 1),
                status=status,
            )
        )
    return out
