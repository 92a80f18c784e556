"""ORM models of the emergency department: visits on the ED board, their pathway step times,
and patients' pre-consultations (预问诊).

Mirrored by migration ``0008_triage_pathway`` (a branch off ``0001``). The door-to-step
timeline API (``POST /api/v1/triage/timeline``) only computes from the times it is sent; these
tables are where the ED board keeps those times, so door-to-ECG, door-to-CT and
door-to-antimicrobial can be reported from stored data by the same
:func:`medbrain.triage.pathway_timeline`.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (§1.3 响应时限, §1.4 候诊时间).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow


class EdVisit(Base):
    """One arrival at the emergency department, from the door to disposition."""

    __tablename__ = "ed_visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    label: Mapped[str] = mapped_column(String(128))  # name or bed label shown on the board
    door_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    complaint: Mapped[str] = mapped_column(Text)
    visit: Mapped[dict[str, Any]] = mapped_column(JsonDoc)  # DESIGN.md §3 visit, last vitals
    suggested_level: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)  # the nurse's level (confirmed or overridden)
    zone: Mapped[str] = mapped_column(String(16))
    max_wait_minutes: Mapped[int] = mapped_column(Integer)
    department_code: Mapped[str] = mapped_column(String(16))
    pathway: Mapped[str | None] = mapped_column(String(32))
    red_flags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    news2: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting|seen|departed
    disposition: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[EdEvent]] = relationship(
        back_populates="visit_row", order_by="EdEvent.at", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_ed_visit_status_level", "status", "level"),)


class EdEvent(Base):
    """A pathway step (door, triage, doctor, ECG, CT, lab, needle, antimicrobial, disposition…)
    or a re-assessment (``vitals``, ``retriage``) of one ED visit, with when it happened."""

    __tablename__ = "ed_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("ed_visit.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer, default=0)  # 0 for a once-only step
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)

    visit_row: Mapped[EdVisit] = relationship(back_populates="events")

    __table_args__ = (
        UniqueConstraint("visit_id", "step", "seq", name="uq_ed_event_visit_id"),
        Index("ix_ed_event_visit_id", "visit_id"),
    )


class PreConsultation(Base):
    """A patient's own pre-consultation: answers, suggested department, structured HPI draft."""

    __tablename__ = "pre_consultation"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    answers: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    result: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    care: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str] = mapped_column(String(16))
    go_to_ed: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
