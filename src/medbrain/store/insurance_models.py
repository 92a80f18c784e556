"""Tables of the insurance office's review workflow (issue 11): cases, flags, decisions.

A case is one discharge as it was grouped and checked (front page and DRG result kept as
JSON); a flag is one compliance finding on it with its quoted evidence. Review decisions
(confirm / dismiss with a reason) are columns on the flag and entries in the audit chain.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow


class InsuranceCase(Base):
    __tablename__ = "insurance_case"
    __table_args__ = (Index("ix_insurance_case_risk", "review_status", "risk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_ref: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(64), index=True)
    doctor: Mapped[str | None] = mapped_column(String(64))
    admit_date: Mapped[date | None] = mapped_column(Date)
    discharge_date: Mapped[date | None] = mapped_column(Date)
    drg: Mapped[str] = mapped_column(String(8))
    drg_name: Mapped[str] = mapped_column(String(128), default="")
    mdc: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))  # grouped | ambiguous | ungroupable
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    total_cost: Mapped[float] = mapped_column(Float, default=0.0)
    rule_risk: Mapped[float] = mapped_column(Float, default=0.0)
    anomaly: Mapped[float] = mapped_column(Float, default=0.0)
    risk: Mapped[float] = mapped_column(Float, default=0.0)
    # open (warning/critical flags to review) | reviewed | info (info flags only) | clean
    review_status: Mapped[str] = mapped_column(String(16), default="open")
    frontpage: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    drg_result: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    demo: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    flags: Mapped[list[InsuranceFlag]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="InsuranceFlag.id"
    )


class InsuranceFlag(Base):
    __tablename__ = "insurance_flag"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("insurance_case.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc)
    amount_yuan: Mapped[float] = mapped_column(Float, default=0.0)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|confirmed|dismissed
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_role: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)

    case: Mapped[InsuranceCase] = relationship(back_populates="flags")
