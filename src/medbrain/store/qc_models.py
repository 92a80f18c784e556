"""ORM tables of the QC workflow: defect and deadline notices, check runs, hospital rules.

* :class:`QCNotice` — one defect found in a record, or one note that is due soon or overdue,
  addressed to the responsible doctor; its life is ``open`` → ``fixed`` (a re-check no longer
  finds it, or the due note was written) or ``justified`` (the doctor explains why it stands).
  ``fingerprint`` identifies the same defect across re-checks of the same stay.
* :class:`QCRun` — the score of one check of one stay (for the dashboard's rates and trends).
* :class:`QCRule` — a hospital-defined rule written in the QC expression language, versioned;
  ``tested_version`` is the version last run on sample records (a rule is enabled only then).

``verdict`` is the QC officer's decision on a defect notice (``confirmed`` or ``rejected`` as a
false positive); the dashboard turns the verdicts into per-rule precision.

Migrations: ``store/migrations/versions/0007_qc_workflow.py``, ``0012_qc_notice_verdict.py``,
``0014_qc_rule_proposals.py`` (:class:`QCRuleProposal`, mined candidate rules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow

NOTICE_STATUSES = ("open", "fixed", "justified")


class QCNotice(Base):
    __tablename__ = "qc_notice"
    __table_args__ = (
        UniqueConstraint("encounter_id", "fingerprint", name="uq_qc_notice_encounter_fingerprint"),
        Index("ix_qc_notice_status_user", "status", "responsible_user"),
        Index("ix_qc_notice_verdict_rule", "verdict", "rule_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # defect | deadline
    fingerprint: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    suggestion: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    document: Mapped[str | None] = mapped_column(String(32))
    quote: Mapped[str | None] = mapped_column(Text)
    deduction: Mapped[float] = mapped_column(Float, default=0.0)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    responsible: Mapped[str | None] = mapped_column(String(128))  # author as written
    responsible_user: Mapped[str | None] = mapped_column(String(64))  # matched account
    department: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    due_status: Mapped[str | None] = mapped_column(String(16))  # due_soon | overdue
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trigger: Mapped[str] = mapped_column(String(32))  # import | scan | page
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    justified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    justified_by: Mapped[str | None] = mapped_column(String(64))
    justification: Mapped[str | None] = mapped_column(Text)
    # the QC officer's decision on the finding itself (migration 0012): confirmed | rejected
    verdict: Mapped[str | None] = mapped_column(String(16))
    verdict_by: Mapped[str | None] = mapped_column(String(64))
    verdict_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verdict_reason: Mapped[str | None] = mapped_column(Text)


class QCRun(Base):
    __tablename__ = "qc_run"
    __table_args__ = (Index("ix_qc_run_encounter_checked", "encounter_id", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounter.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    stage: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(8))
    veto: Mapped[bool] = mapped_column(Boolean, default=False)
    defects: Mapped[int] = mapped_column(Integer, default=0)
    by_rule: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    department: Mapped[str | None] = mapped_column(String(64))
    doctor: Mapped[str | None] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(32))
    rules_version: Mapped[str] = mapped_column(String(64), default="")


class QCRule(Base):
    __tablename__ = "qc_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(128), unique=True)
    row: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    tested_version: Mapped[int | None] = mapped_column(Integer)
    tested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    test_summary: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


PROPOSAL_STATUSES = ("proposed", "approved", "rejected")


class QCRuleProposal(Base):
    """A candidate rule mined from confirmed manual findings (migration 0014).

    ``pattern_key`` identifies the pattern (``pattern|note_kind|section|element``), so mining
    again updates the statistics of a proposal instead of proposing it twice, and a rejected
    pattern is never proposed again. ``support``: stays with a confirmed manual finding of the
    pattern; ``fires``/``records``: stays (of those checked) where the drafted condition holds;
    ``hits``: stays where both; ``confidence`` = hits / fires; ``coverage`` = hits / support.
    An approved proposal becomes the hospital rule ``rule_id`` (version ``rule_version``)."""

    __tablename__ = "qc_rule_proposal"
    __table_args__ = (
        UniqueConstraint("pattern_key", name="uq_qc_rule_proposal_pattern"),
        Index("ix_qc_rule_proposal_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pattern_key: Mapped[str] = mapped_column(String(300))
    note_kind: Mapped[str] = mapped_column(String(32))
    section: Mapped[str] = mapped_column(String(64), default="")
    pattern: Mapped[str] = mapped_column(String(24))
    element: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    condition: Mapped[str] = mapped_column(Text)
    support: Mapped[int] = mapped_column(Integer, default=0)
    fires: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    coverage: Mapped[float] = mapped_column(Float, default=0.0)
    examples: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    rule_id: Mapped[str | None] = mapped_column(String(128))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    mined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
