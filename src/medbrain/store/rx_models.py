"""Pharmacist review of stored prescriptions (issue 6): review state, history, rule outcomes.

One :class:`RxReview` per encounter's prescription (the encounter's active medication
requests). ``status`` moves through the pharmacist loop of 《医疗机构处方审核规范》(2018)
第十八条::

    pending ──approve──▶ approved
       │                    ▲
       └──return──▶ returned ──modify / justify──▶ resubmitted ──approve──┘

``pending`` and ``resubmitted`` are the pharmacist's queue; ``returned`` is the prescriber's
inbox. Every step adds a :class:`RxReviewEvent` (and an audit entry).

:class:`RxFindingOutcome` keeps one row per finding raised on a prescription (keyed by rule and
items) and what became of it: ``open``, ``accepted`` (the prescriber changed the prescription and
the finding went away), ``overridden`` (a pharmacist or the prescriber kept the order, with a
reason), ``resolved`` (gone without a return, e.g. the rule was disabled). Per-rule statistics
are counted from these rows.

:class:`RxRuleConfig` rows are the hospital's rx knowledge override documents (the format of
``medbrain rx review --overrides``); the newest row is in force, older rows are its history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow

REVIEW_STATUSES: tuple[str, ...] = ("pending", "approved", "returned", "resubmitted")
QUEUE_STATUSES: tuple[str, ...] = ("pending", "resubmitted")
OUTCOME_STATUSES: tuple[str, ...] = ("open", "accepted", "overridden", "resolved")


class RxReview(Base):
    __tablename__ = "rx_review"

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounter.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    department: Mapped[str | None] = mapped_column(String(64))
    prescriber: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    verdict: Mapped[str | None] = mapped_column(String(8))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    items_hash: Mapped[str] = mapped_column(String(64))
    knowledge_key: Mapped[str] = mapped_column(String(64))
    return_reason: Mapped[str | None] = mapped_column(Text)
    prescriber_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RxReviewEvent(Base):
    __tablename__ = "rx_review_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("rx_review.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rule_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class RxFindingOutcome(Base):
    __tablename__ = "rx_finding_outcome"
    __table_args__ = (UniqueConstraint("review_id", "finding_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("rx_review.id"), index=True)
    finding_key: Mapped[str] = mapped_column(String(192))
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_role: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class RxRuleConfig(Base):
    __tablename__ = "rx_rule_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
