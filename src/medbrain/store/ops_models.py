"""ORM tables of hospital operations (issue 11): the pre-aggregated department-day table and
the consumables store.

* :class:`OpsDepartment` — a clinical department (code, names, open beds).
* :class:`OpsDepartmentDay` — one department's activity on one day (the cockpit's only source:
  a year of a 3,000-bed hospital is ≈ 7,300 rows, however many visits they count). ``source``
  is ``generator`` (synthetic demo history) or ``store`` (derived from the store's encounters,
  see :func:`medbrain.store.ops.derive_from_encounters`).
* :class:`OpsConsumableItem`, :class:`OpsConsumableLot`, :class:`OpsConsumableUse` — items,
  lots with expiry dates, and daily consumption.

Migration: ``store/migrations/versions/0004_ops.py``.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base


class OpsDepartment(Base):
    __tablename__ = "ops_department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    beds: Mapped[int] = mapped_column(Integer)


class OpsDepartmentDay(Base):
    __tablename__ = "ops_department_day"
    __table_args__ = (UniqueConstraint("day", "dept_code", name="uq_ops_department_day_day_dept"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    dept_code: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(16), default="generator")
    beds: Mapped[int] = mapped_column(Integer)
    outpatient_visits: Mapped[int] = mapped_column(Integer)
    emergency_visits: Mapped[int] = mapped_column(Integer)
    admissions: Mapped[int] = mapped_column(Integer)
    discharges: Mapped[int] = mapped_column(Integer)
    occupied_beds: Mapped[int] = mapped_column(Integer)
    discharged_patient_days: Mapped[int] = mapped_column(Integer)
    surgeries: Mapped[int] = mapped_column(Integer)
    surgeries_level4: Mapped[int] = mapped_column(Integer)
    drg_weight_sum: Mapped[float] = mapped_column(Float)
    total_cost: Mapped[float] = mapped_column(Float)
    drug_cost: Mapped[float] = mapped_column(Float)
    consumable_cost: Mapped[float] = mapped_column(Float)
    antibiotic_ddd: Mapped[float] = mapped_column(Float)
    critical_values: Mapped[int] = mapped_column(Integer)
    critical_values_on_time: Mapped[int] = mapped_column(Integer)
    records_graded: Mapped[int] = mapped_column(Integer)
    records_grade_a: Mapped[int] = mapped_column(Integer)


class OpsConsumableItem(Base):
    __tablename__ = "ops_consumable_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str] = mapped_column(String(16))
    lead_time_days: Mapped[int] = mapped_column(Integer)


class OpsConsumableLot(Base):
    __tablename__ = "ops_consumable_lot"
    __table_args__ = (
        UniqueConstraint("item_code", "lot_no", name="uq_ops_consumable_lot_item_lot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32), index=True)
    lot_no: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    expiry_date: Mapped[date] = mapped_column(Date, index=True)
    received_on: Mapped[date] = mapped_column(Date)


class OpsConsumableUse(Base):
    __tablename__ = "ops_consumable_use"
    __table_args__ = (UniqueConstraint("item_code", "day", name="uq_ops_consumable_use_item_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_code: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
