"""ORM tables of stored retrospective batch runs (prescription review and record QC).

* :class:`BatchRun` — one run over a period: ``kind`` (``rx`` | ``qc``), parameters, status
  ``queued`` → ``running`` → ``done`` | ``failed``, progress (``done`` of ``total``), who
  started it, and the summary written when it finishes. ``active_kind`` equals ``kind`` while
  the run is queued or running and is NULL afterwards; its unique constraint lets only one run
  of a kind be active at a time, even when two requests race.
* :class:`BatchItem` — one reviewed prescription or QC-checked stay of a run, in input order
  (``seq``). Items are written chunk by chunk, each chunk in the same transaction as the run's
  ``done`` count, so ``done`` always equals the number of stored items.

Migration: ``store/migrations/versions/0013_batch_runs.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow

KINDS = ("rx", "qc")
STATUSES = ("queued", "running", "done", "failed")
ACTIVE = ("queued", "running")


class BatchRun(Base):
    __tablename__ = "batch_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), index=True)
    active_kind: Mapped[str | None] = mapped_column(String(8), unique=True)
    period_from: Mapped[date | None] = mapped_column(Date)
    period_to: Mapped[date | None] = mapped_column(Date)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    error: Mapped[str | None] = mapped_column(Text)


class BatchItem(Base):
    __tablename__ = "batch_item"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_batch_item_run_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("batch_run.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    item_key: Mapped[str] = mapped_column(String(256))
    encounter_id: Mapped[int | None] = mapped_column(Integer, index=True)
    patient_id: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(64))
    doctor: Mapped[str | None] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(16))  # rx: pass|warn|block; qc: clean|defective
    grade: Mapped[str | None] = mapped_column(String(8))
    score: Mapped[float | None] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    categories: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    rules: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    error: Mapped[str | None] = mapped_column(Text)
