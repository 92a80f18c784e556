"""Radiologist review of a CT analysis (issue 5): versioned reports and detector feedback.

A study's review is a sequence of :class:`RadiologyReport` versions. The highest version is the
working copy while its ``status`` is ``draft``; signing sets ``status = "signed"`` and the row is
never written again. An edit after signing copies the signed version into a new draft
(``version + 1``), so every signed version stays retrievable exactly as it was signed.

``nodules`` holds the reviewed nodule list: the DESIGN.md §3 nodule dicts plus review fields
(``key``, ``source`` = ``engine`` | ``radiologist``, ``decision`` = ``pending`` | ``accepted`` |
``rejected``, ``edited``).

:class:`RadiologyFeedback` keeps, per study, the decisions of the latest signed version on each
nodule, keyed by the analysis' ``detector_version``: ``false_positive`` (engine nodule
rejected), ``miss`` (nodule added by a radiologist), ``accepted`` (engine nodule kept, edited or
not). The admin page counts these per detector version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store import radiology_models as _radiology_models  # noqa: F401  (ct_analysis FK)
from medbrain.store.models import Base, JsonDoc, UTCDateTime, utcnow

REPORT_STATUSES: tuple[str, ...] = ("draft", "signed")
FEEDBACK_KINDS: tuple[str, ...] = ("false_positive", "miss", "accepted")


class RadiologyReport(Base):
    __tablename__ = "radiology_report"
    __table_args__ = (UniqueConstraint("study_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"), index=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("ct_analysis.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    nodules: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    findings: Mapped[str] = mapped_column(Text, default="")
    impression: Mapped[str] = mapped_column(Text, default="")
    lung_rads: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_by: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outputs: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    """After signing: ``{"sr": {"series_uid", "sop_uid", "path"}, "seg": {...}}``."""


class RadiologyFeedback(Base):
    __tablename__ = "radiology_feedback"
    __table_args__ = (Index("ix_radiology_feedback_detector_kind", "detector_version", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"), index=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("ct_analysis.id"))
    report_id: Mapped[int] = mapped_column(ForeignKey("radiology_report.id"))
    detector_version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    nodule_key: Mapped[str] = mapped_column(String(16))
    nodule: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
