"""ORM models of tracked alerts (危急值闭环): delivery, acknowledgement, escalation, handling.

A :class:`TrackedAlert` is one alert raised for one patient and followed until a person
records the action taken; :class:`TrackedAlertEvent` keeps every step (raised, escalated,
acknowledged, handled) with who and when. Migration ``0009_alert_tracking`` mirrors this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow

STATUSES = ("open", "acknowledged", "handled")


class TrackedAlert(Base):
    """One alert delivered to a ward, with its acknowledgement and handling."""

    __tablename__ = "tracked_alert"
    __table_args__ = (Index("ix_tracked_alert_status_raised", "status", "raised_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"))
    department: Mapped[str | None] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(128))  # the engine's patient reference
    rule_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    suggestion: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    value: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(String(8), default="none")
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    origin: Mapped[str] = mapped_column(String(128))  # e.g. "fhir.import Bundle/abc"
    recipients: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledge_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handle_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[int] = mapped_column(Integer, default=0)
    notified: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_role: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    handled_role: Mapped[str | None] = mapped_column(String(32))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    action: Mapped[str | None] = mapped_column(Text)


class TrackedAlertEvent(Base):
    """One step in a tracked alert's life: raised, escalated, acknowledged or handled."""

    __tablename__ = "tracked_alert_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("tracked_alert.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    who: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
