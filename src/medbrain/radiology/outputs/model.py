"""The input of every output builder: what the radiologist signed, and the study it is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """Identifiers of the study and its CT series (DICOM UIDs, patient as the hospital knows it)."""

    study_uid: str
    series_uid: str
    patient_name: str
    patient_id: str
    patient_ref: str | None = None
    """FHIR reference of the patient (``Patient/12``) when the study is linked to one."""
    study_date: datetime | None = None
    accession: str | None = None
    description: str | None = None
    slices: int = 0
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class SignedReport:
    """One reviewed (usually signed) report version.

    ``nodules`` are the DESIGN.md §3 nodule dicts the radiologist kept (rejected ones removed),
    each with a ``key`` (``e1`` for the engine's nodule 1, ``a1`` for the first one a
    radiologist added) and ``source`` (``engine`` | ``radiologist``); ``lung_rads`` is the
    category recomputed on those nodules.
    """

    version: int
    status: str
    language: str
    findings: str
    impression: str
    nodules: tuple[dict[str, Any], ...]
    lung_rads: dict[str, Any]
    detector: str
    signed_by: str | None = None
    signed_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_signed(self) -> bool:
        return self.status == "signed" and self.signed_at is not None
