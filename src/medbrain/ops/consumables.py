"""Consumables: stock by lot, expiry warnings, consumption-based reorder points.

* Expiry: a lot expiring within a horizon (default 90/30/7 days, configurable) is listed in
  the *smallest* horizon that contains it; a lot past its expiry date is ``expired`` (it must
  be quarantined, never issued) and does not count as usable stock.
* Reorder point (continuous review, normally distributed daily demand):
  ``ROP = L · d̄ + z · σ_d · √L``, where ``d̄`` and ``σ_d`` are the mean and standard
  deviation of daily use over the history window, ``L`` the supplier lead time in days and
  ``z`` the standard normal quantile of the service level (0.95 → 1.645). An item is to be
  reordered when usable stock ≤ ROP; the suggested quantity brings stock up to
  ``ROP + d̄ · review period``.

References
----------
Silver, Pyke & Thomas, *Inventory and Production Management in Supply Chains*, 4th ed.
(2017), ch. 6 (safety stock for a specified cycle service level).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from medbrain.core.errors import InputError
from medbrain.ops.generator import ConsumableItem, ConsumableLot, ConsumableUse


def validate_lots(lots: Sequence[ConsumableLot], known_items: set[str] | None = None) -> None:
    for i, lot in enumerate(lots):
        if lot.quantity < 0:
            raise InputError(
                "consumables", f"lots[{i}].quantity", f"{lot.quantity} is negative ({lot.lot_no})"
            )
        if not 2000 <= lot.expiry_date.year <= 2100:
            raise InputError(
                "consumables",
                f"lots[{i}].expiry_date",
                f"{lot.expiry_date} is out of range ({lot.lot_no})",
            )
        if lot.received_on > lot.expiry_date:
            raise InputError(
                "consumables",
                f"lots[{i}].received_on",
                f"received {lot.received_on} after expiry {lot.expiry_date} ({lot.lot_no})",
            )
        if known_items is not None and lot.item_code not in known_items:
            raise InputError(
                "consumables", f"lots[{i}].item_code", f"unknown item {lot.item_code!r}"
            )


def check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    if not horizons:
        raise InputError("consumables", "horizons", "at least one horizon is needed")
    for h in horizons:
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 3650:
            raise InputError("consumables", "horizons", f"{h!r} is not a number of days in 1–3650")
    return tuple(sorted(set(horizons)))


@dataclass(frozen=True, slots=True)
class ExpiryWarning:
    item_code: str
    item_name: str
    lot_no: str
    quantity: int
    expiry_date: date
    days_left: int
    horizon_days: int | None  # None when already expired
    expired: bool
    severity: str  # critical (expired or ≤ smallest horizon), warning, info

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_code": self.item_code,
            "item_name": self.item_name,
            "lot_no": self.lot_no,
            "quantity": self.quantity,
            "expiry_date": self.expiry_date.isoformat(),
            "days_left": self.days_left,
            "horizon_days": self.horizon_days,
            "expired": self.expired,
            "severity": self.severity,
        }


def expiry_warnings(
    lots: Sequence[ConsumableLot],
    today: date,
    horizons: Sequence[int] = (90, 30, 7),
    *,
    names: dict[str, str] | None = None,
) -> list[ExpiryWarning]:
    """Lots that expired or expire within the largest horizon, soonest first."""
    hs = check_horizons(horizons)
    validate_lots(lots)
    out = []
    for lot in lots:
        if lot.quantity == 0:
            continue
        left = (lot.expiry_date - today).days
        expired = left < 0
        horizon = None if expired else next((h for h in hs if left <= h), None)
        if not expired and horizon is None:
            continue
        if expired or horizon == hs[0]:
            severity = "critical"
        elif horizon == hs[-1]:
            severity = "info"
        else:
            severity = "warning"
        out.append(
            ExpiryWarning(
                item_code=lot.item_code,
                item_name=(names or {}).get(lot.item_code, lot.item_code),
                lot_no=lot.lot_no,
                quantity=lot.quantity,
                expiry_date=lot.expiry_date,
                days_left=left,
                horizon_days=horizon,
                expired=expired,
                severity=severity,
            )
        )
    out.sort(key=lambda w: (w.days_left, w.item_code, w.lot_no))
    return out


@dataclass(frozen=True, slots=True)
class ReorderPoint:
    mean_daily_use: float
    sd_daily_use: float
    lead_time_days: int
    z: float
    safety_stock: float
    reorder_point: float


def reorder_point(
    daily_use: Sequence[float], lead_time_days: int, service_level: float = 0.95
) -> ReorderPoint:
    """``ROP = L·d̄ + z·σ_d·√L`` from observed daily use (see the module docstring)."""
    if len(daily_use) < 2:
        raise InputError("consumables", "daily_use", "at least 2 days of consumption are needed")
    for i, v in enumerate(daily_use):
        if not math.isfinite(v) or v < 0:
            raise InputError("consumables", f"daily_use[{i}]", f"{v} is not a quantity ≥ 0")
    if isinstance(lead_time_days, bool) or not 0 < lead_time_days <= 365:
        raise InputError("consumables", "lead_time_days", f"must be 1–365, got {lead_time_days}")
    if not 0.5 <= service_level < 1:
        raise InputError(
            "consumables", "service_level", f"must be in [0.5, 1), got {service_level}"
        )
    mean = statistics.fmean(daily_use)
    sd = statistics.stdev(daily_use)
    z = statistics.NormalDist().inv_cdf(service_level)
    safety = z * sd * math.sqrt(lead_time_days)
    return ReorderPoint(
        mean_daily_use=mean,
        sd_daily_use=sd,
        lead_time_days=lead_time_days,
        z=z,
        safety_stock=safety,
        reorder_point=lead_time_days * mean + safety,
    )


@dataclass(frozen=True, slots=True)
class ReorderLine:
    item_code: str
    item_name: str
    unit: str
    usable_stock: int
    expired_stock: int
    mean_daily_use: float
    days_of_cover: float | None
    safety_stock: float
    reorder_point: float
    reorder: bool
    suggested_quantity: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_code": self.item_code,
            "item_name": self.item_name,
            "unit": self.unit,
            "usable_stock": self.usable_stock,
            "expired_stock": self.expired_stock,
            "mean_daily_use": round(self.mean_daily_use, 1),
            "days_of_cover": None if self.days_of_cover is None else round(self.days_of_cover, 1),
            "safety_stock": round(self.safety_stock, 1),
            "reorder_point": round(self.reorder_point, 1),
            "reorder": self.reorder,
            "suggested_quantity": self.suggested_quantity,
        }


def reorder_list(
    items: Sequence[ConsumableItem],
    lots: Sequence[ConsumableLot],
    uses: Sequence[ConsumableUse],
    today: date,
    *,
    service_level: float = 0.95,
    review_period_days: int = 7,
    history_days: int = 90,
    lang: str = "zh",
) -> list[ReorderLine]:
    """Every item with its reorder point; items to reorder first, then by days of cover.

    Daily use is read for the ``history_days`` before ``today``; a day with no record counts
    as zero use. An item with fewer than 2 days of history cannot get a reorder point and is
    an :class:`InputError` naming it.
    """
    if not 1 <= review_period_days <= 365:
        raise InputError(
            "consumables", "review_period_days", f"must be 1–365, got {review_period_days}"
        )
    if not 14 <= history_days <= 3660:
        raise InputError("consumables", "history_days", f"must be 14–3660, got {history_days}")
    codes = {i.code for i in items}
    validate_lots(lots, codes)
    since = today - timedelta(days=history_days)
    use: dict[str, dict[date, float]] = defaultdict(dict)
    for i, u in enumerate(uses):
        if u.quantity < 0:
            raise InputError(
                "consumables",
                f"uses[{i}].quantity",
                f"{u.quantity} is negative ({u.item_code} {u.day})",
            )
        if u.item_code not in codes:
            raise InputError("consumables", f"uses[{i}].item_code", f"unknown item {u.item_code!r}")
        if since <= u.day < today:
            use[u.item_code][u.day] = use[u.item_code].get(u.day, 0.0) + u.quantity
    stock: dict[str, int] = defaultdict(int)
    expired: dict[str, int] = defaultdict(int)
    for lot in lots:
        if lot.expiry_date < today:
            expired[lot.item_code] += lot.quantity
        else:
            stock[lot.item_code] += lot.quantity
    out = []
    for item in items:
        days = use.get(item.code, {})
        if not days:
            raise InputError(
                "consumables",
                f"uses[{item.code}]",
                f"no consumption recorded in the last {history_days} days",
            )
        first = min(days)
        series = [days.get(first + timedelta(days=k), 0.0) for k in range((today - first).days)]
        rop = reorder_point(series, item.lead_time_days, service_level)
        on_hand = stock.get(item.code, 0)
        need = on_hand <= rop.reorder_point
        target = rop.reorder_point + rop.mean_daily_use * review_period_days
        out.append(
            ReorderLine(
                item_code=item.code,
                item_name=item.name_en if lang == "en" else item.name_zh,
                unit=item.unit,
                usable_stock=on_hand,
                expired_stock=expired.get(item.code, 0),
                mean_daily_use=rop.mean_daily_use,
                days_of_cover=on_hand / rop.mean_daily_use if rop.mean_daily_use > 0 else None,
                safety_stock=rop.safety_stock,
                reorder_point=rop.reorder_point,
                reorder=need,
                suggested_quantity=max(0, math.ceil(target - on_hand)) if need else 0,
            )
        )
    out.sort(
        key=lambda r: (
            not r.reorder,
            r.days_of_cover if r.days_of_cover is not None else 1e9,
            r.item_code,
        )
    )
    return out
