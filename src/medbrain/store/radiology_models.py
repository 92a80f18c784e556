"""Radiology tables (issue 5): the persisted detection queue and the stored detections.

A series that arrives (web upload, DICOMweb STOW-RS, C-STORE) gets one :class:`RadiologyJob`;
the job runner in :mod:`medbrain.store.radiology` turns it into one :class:`CtAnalysis` row per
completed detection. Studies and series themselves live in ``imaging_study`` /
``imaging_series`` (:mod:`medbrain.store.models`).

Job ``status``: ``received`` (instances still arriving, waiting for the settle time) →
``processing`` (``progress`` 0–100) → ``ready`` | ``failed`` (``error``) | ``skipped``
(``error`` holds the reason, e.g. not a CT). ``waiting`` is a job that failed transiently and
will be retried (``attempts`` counts tries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow

JOB_STATUSES: tuple[str, ...] = ("received", "waiting", "processing", "ready", "failed", "skipped")


class RadiologyJob(Base):
    __tablename__ = "radiology_job"
    __table_args__ = (Index("ix_radiology_job_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="received")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(32))  # loading | lungs | detection | report
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_instance_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # True when the sender said the series is whole (zip upload, C-STORE association
    # released): due at once instead of after the settle time.
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detector_version: Mapped[str | None] = mapped_column(String(64))
    # The worker running a ``processing`` job and until when its lease holds (renewed by a
    # heartbeat); only a job whose lease expired is re-queued (migration 0011).
    worker_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CtAnalysis(Base):
    """One completed detection; ``result`` is exactly the ``medbrain ct detect --json`` dict."""

    __tablename__ = "ct_analysis"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("radiology_job.id"), index=True)
    detector_version: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
