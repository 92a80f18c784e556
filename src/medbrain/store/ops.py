"""Store functions for hospital operations: department-day statistics and consumables.

* :func:`seed_ops_demo` — bulk-inserts the generator's history (≥ 3 years, 20 departments,
  ≈ 22k rows) and a consumables store, once.
* :func:`derive_from_encounters` — turns the store's own encounters into department-day rows
  (``source = "store"``): per department (matched by the encounter's department name) and day,
  outpatient visits (``kind = outpatient``, by admit day), emergency visits
  (``kind = emergency``), admissions (inpatient admit day), discharges (inpatient discharge
  day), midnight census (inpatients whose stay spans that midnight), bed-days of discharges and
  surgeries (``procedure`` rows by performed day). Costs, DDDs, critical values and record
  grades are not in the encounter model and stay 0 (those indicators then show no value).
  Days already present (e.g. generated) are left alone and counted as skipped.
* :func:`load_table` — the rows for a period as a :class:`~medbrain.ops.cockpit.DailyTable`
  (one Core query on the ``(day, dept_code)`` unique index; no ORM objects).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from medbrain.core.errors import InputError
from medbrain.ops.cockpit import DailyTable, DeptInfo
from medbrain.ops.generator import (
    DEPARTMENT_ALIASES,
    DEPARTMENTS,
    ConsumableItem,
    ConsumableLot,
    ConsumableUse,
    generate_consumables,
    generate_daily,
)
from medbrain.ops.knowledge import FIELDS
from medbrain.store import models as m
from medbrain.store.ops_models import (
    OpsConsumableItem,
    OpsConsumableLot,
    OpsConsumableUse,
    OpsDepartment,
    OpsDepartmentDay,
)

DEMO_SEED = 2026
DEMO_YEARS = 3
CHUNK = 5000


def departments(session: Session) -> list[DeptInfo]:
    rows = session.execute(
        select(OpsDepartment.code, OpsDepartment.name_zh, OpsDepartment.name_en).order_by(
            OpsDepartment.id
        )
    )
    return [DeptInfo(code, zh, en) for code, zh, en in rows]


def data_range(session: Session) -> tuple[date | None, date | None]:
    first, last = session.execute(
        select(func.min(OpsDepartmentDay.day), func.max(OpsDepartmentDay.day))
    ).one()
    return first, last


def _bulk(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Core executemany in chunks (no ORM unit of work: tens of thousands of rows a second)."""
    table = model.__table__
    for i in range(0, len(rows), CHUNK):
        session.execute(insert(table), list(rows[i : i + CHUNK]))


def _record(obj: Any) -> dict[str, Any]:
    """A flat dataclass as a dict (``dataclasses.asdict`` deep-copies and is 10× slower)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def ops_present(session: Session) -> bool:
    return session.scalar(select(OpsDepartmentDay.id).limit(1)) is not None


def seed_ops_demo(
    session: Session,
    *,
    end: date,
    years: int = DEMO_YEARS,
    seed: int = DEMO_SEED,
    beds_scale: float = 1.0,
) -> dict[str, int]:
    """Insert ``years`` of generated department-day history ending ``end`` and a consumables
    store as of ``end``, unless operations data is already there. Runs in the caller's
    transaction; returns row counts."""
    if ops_present(session):
        return {}
    if not 1 <= years <= 10:
        raise InputError("ops seed", "years", f"must be 1–10, got {years}")
    start = date(end.year - years, end.month, end.day if (end.month, end.day) != (2, 29) else 28)
    start += timedelta(days=1)
    rows = generate_daily(start, end, seed=seed, beds_scale=beds_scale)
    existing = set(session.scalars(select(OpsDepartment.code)))
    depts = [
        {
            "code": d.code,
            "name_zh": d.name_zh,
            "name_en": d.name_en,
            "beds": max(1, round(d.beds * beds_scale)),
        }
        for d in DEPARTMENTS
        if d.code not in existing
    ]
    if depts:
        _bulk(session, OpsDepartment, depts)
    _bulk(session, OpsDepartmentDay, [{**_record(r), "source": "generator"} for r in rows])
    items, lots, uses = generate_consumables(end + timedelta(days=1), seed=seed)
    counts = save_consumables(session, items, lots, uses)
    return {"department_days": len(rows), "departments": len(depts), **counts}


def save_consumables(
    session: Session,
    items: Sequence[ConsumableItem],
    lots: Sequence[ConsumableLot],
    uses: Sequence[ConsumableUse],
) -> dict[str, int]:
    """Insert items, lots and daily use (all-or-nothing: validated before anything is written)."""
    from medbrain.ops.consumables import validate_lots

    validate_lots(
        lots, {i.code for i in items} | set(session.scalars(select(OpsConsumableItem.code)))
    )
    for i, u in enumerate(uses):
        if u.quantity < 0:
            raise InputError("consumables", f"uses[{i}].quantity", f"{u.quantity} is negative")
    _bulk(
        session,
        OpsConsumableItem,
        [
            {
                "code": i.code,
                "name_zh": i.name_zh,
                "name_en": i.name_en,
                "unit": i.unit,
                "lead_time_days": i.lead_time_days,
            }
            for i in items
        ],
    )
    _bulk(session, OpsConsumableLot, [_record(lot) for lot in lots])
    _bulk(session, OpsConsumableUse, [_record(u) for u in uses])
    return {
        "consumable_items": len(items),
        "consumable_lots": len(lots),
        "consumable_uses": len(uses),
    }


def load_table(session: Session, start: date, end: date) -> DailyTable:
    """Department-day rows with ``start <= day <= end`` as a columnar table."""
    cols = [getattr(OpsDepartmentDay, f) for f in FIELDS]
    result = session.execute(
        select(OpsDepartmentDay.dept_code, OpsDepartmentDay.day, *cols).where(
            OpsDepartmentDay.day >= start, OpsDepartmentDay.day <= end
        )
    ).all()
    return _table_from(session, result)


def load_monthly_table(session: Session, start: date, end: date) -> DailyTable:
    """The cockpit's table for ``start..end`` and the previous period of equal length, summed
    in the database: one row per department and calendar month of the period (dated the
    month's first day inside the period) plus one row per department for the whole previous
    period (dated its first day). Sums of the same days as :func:`load_table`, so every ratio,
    department value and monthly trend is identical, from ≈ 20 × 13 + 20 rows instead of
    ≈ 14,600; daily or weekly trends need :func:`load_table`."""
    prev_end = start - timedelta(days=1)
    prev_start = prev_end - (end - start)
    day = OpsDepartmentDay.day
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        bucket = func.to_char(day, "YYYY-MM")
    else:
        bucket = func.strftime("%Y-%m", day)
    sums = [func.sum(getattr(OpsDepartmentDay, f)) for f in FIELDS]
    first = func.min(day).label("first_day")
    current = session.execute(
        select(OpsDepartmentDay.dept_code, first, *sums)
        .where(day >= start, day <= end)
        .group_by(OpsDepartmentDay.dept_code, bucket)
    ).all()
    previous = session.execute(
        select(OpsDepartmentDay.dept_code, first, *sums)
        .where(day >= prev_start, day <= prev_end)
        .group_by(OpsDepartmentDay.dept_code)
    ).all()
    return _table_from(session, [*current, *previous])


def _table_from(session: Session, result: Sequence[Any]) -> DailyTable:
    depts = departments(session)
    index = {d.code: i for i, d in enumerate(depts)}
    n = len(result)

    def ordinal(value: Any) -> int:
        return (value if isinstance(value, date) else date.fromisoformat(str(value))).toordinal()

    days = np.fromiter((ordinal(r[1]) for r in result), dtype=np.int64, count=n)
    dept = np.fromiter((index.get(r[0], -1) for r in result), dtype=np.int64, count=n)
    if n and dept.min() < 0:
        raise InputError(
            "ops_department_day", "dept_code", "a row names a department not in ops_department"
        )
    data = np.array([[float(v or 0) for v in r[2:]] for r in result], dtype=float).reshape(
        n, len(FIELDS)
    )
    return DailyTable(days, dept, {f: data[:, k] for k, f in enumerate(FIELDS)}, depts)


def outpatient_series(
    session: Session, start: date, end: date, dept_codes: Sequence[str] | None = None
) -> list[tuple[date, str, float]]:
    """``(day, dept_code, outpatient_visits)`` rows for forecasting."""
    q = select(
        OpsDepartmentDay.day, OpsDepartmentDay.dept_code, OpsDepartmentDay.outpatient_visits
    ).where(OpsDepartmentDay.day >= start, OpsDepartmentDay.day <= end)
    if dept_codes is not None:
        q = q.where(OpsDepartmentDay.dept_code.in_(list(dept_codes)))
    return [(d, c, float(v)) for d, c, v in session.execute(q)]


def load_consumables(
    session: Session,
) -> tuple[list[ConsumableItem], list[ConsumableLot], list[ConsumableUse]]:
    items = [
        ConsumableItem(r.code, r.name_zh, r.name_en, r.unit, r.lead_time_days, 0.0, 0)
        for r in session.scalars(select(OpsConsumableItem).order_by(OpsConsumableItem.code))
    ]
    lots = [
        ConsumableLot(r.item_code, r.lot_no, r.quantity, r.expiry_date, r.received_on)
        for r in session.scalars(select(OpsConsumableLot).order_by(OpsConsumableLot.id))
    ]
    uses = [
        ConsumableUse(c, d, q)
        for c, d, q in session.execute(
            select(OpsConsumableUse.item_code, OpsConsumableUse.day, OpsConsumableUse.quantity)
        )
    ]
    return items, lots, uses


def _local_day(value: datetime, zone: ZoneInfo) -> date:
    return (
        value.astimezone(zone).date()
        if value.tzinfo
        else value.replace(tzinfo=UTC).astimezone(zone).date()
    )


def derive_from_encounters(
    session: Session, *, timezone: str = "Asia/Shanghai", today: date | None = None
) -> dict[str, int]:
    """Aggregate the store's encounters into department-day rows (see the module docstring)."""
    zone = ZoneInfo(timezone)
    depts = departments(session)
    codes = {d.code for d in depts}
    known = {alias: code for alias, code in DEPARTMENT_ALIASES.items() if code in codes}
    known.update({d.name_en: d.code for d in depts} | {d.name_zh: d.code for d in depts})
    agg: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    new_depts: dict[str, str] = {}

    def code_for(name: str | None) -> str:
        label = name or "未分科"
        if label in known:
            return known[label]
        if label not in new_depts:
            new_depts[label] = f"S{len(new_depts) + 1:03d}"
        return new_depts[label]

    last = today or datetime.now(zone).date()
    for enc in session.scalars(select(m.Encounter)):
        if enc.admit_time is None:
            continue
        code = code_for(enc.department)
        start = _local_day(enc.admit_time, zone)
        if enc.kind == "outpatient":
            agg[(start, code)]["outpatient_visits"] += 1
        elif enc.kind == "emergency":
            agg[(start, code)]["emergency_visits"] += 1
        elif enc.kind == "inpatient":
            agg[(start, code)]["admissions"] += 1
            stop = _local_day(enc.discharge_time, zone) if enc.discharge_time else last
            d = start
            while d < stop and d <= last:
                agg[(d, code)]["occupied_beds"] += 1  # in the ward at midnight after day d
                d += timedelta(days=1)
            if enc.discharge_time is not None:
                agg[(stop, code)]["discharges"] += 1
                agg[(stop, code)]["discharged_patient_days"] += max(1, (stop - start).days)
    for when, dept_name in session.execute(
        select(m.Procedure.performed_at, m.Encounter.department).join(
            m.Encounter, m.Procedure.encounter_id == m.Encounter.id
        )
    ):
        if when is not None:
            agg[(_local_day(when, zone), code_for(dept_name))]["surgeries"] += 1
    if new_depts:
        _bulk(
            session,
            OpsDepartment,
            [{"code": c, "name_zh": n, "name_en": n, "beds": 0} for n, c in new_depts.items()],
        )
    present = {
        (day, code)
        for day, code in session.execute(select(OpsDepartmentDay.day, OpsDepartmentDay.dept_code))
    }
    rows = []
    skipped = 0
    for (day, code), values in sorted(agg.items()):
        if (day, code) in present:
            skipped += 1
            continue
        rows.append({"day": day, "dept_code": code, "source": "store", **values})
    _bulk(session, OpsDepartmentDay, rows)
    return {"inserted": len(rows), "skipped_existing": skipped, "new_departments": len(new_depts)}


def seed_demo_ops(session: Session, anchor: datetime) -> dict[str, int]:
    """``medbrain demo seed``'s call: 3 years of history ending the day before the demo
    world's "now" (``anchor``), then what the demo encounters add (days not generated)."""
    end = anchor.date() - timedelta(days=1)
    counts = seed_ops_demo(session, end=end)
    if counts:
        derived = derive_from_encounters(session, today=end)
        counts["derived_from_encounters"] = derived["inserted"]
    return counts
