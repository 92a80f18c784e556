"""Response and request models of the patient and finding endpoints.

They mirror the store's frozen dataclasses (``from_attributes``), so /docs describes exactly
what the repositories return, and nothing an ORM row carries beyond that can leak out.
Times are UTC (ISO 8601 with offset).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PatientHitOut(_Out):
    id: int
    mrn: str = Field(description="Medical record number (病历号)")
    name: str
    sex: str = Field(description="male | female | other | unknown")
    birth_date: date | None
    age_years: int | None


class PatientSearchOut(BaseModel):
    query: str = Field(description="The search text as used (trimmed, at most 64 characters)")
    count: int
    results: list[PatientHitOut]


class PatientSummaryOut(_Out):
    id: int
    mrn: str
    name: str
    name_pinyin: str
    sex: str
    birth_date: date | None
    age_years: int | None
    phone: str | None
    resident_id_masked: str | None = Field(
        description="身份证 number with the middle digits masked; the full number is never sent"
    )


class DocumentSummaryOut(_Out):
    id: int
    encounter_id: int | None
    doc_type: str = Field(description="Key in knowledge/document_types.yaml, e.g. admission")
    title: str
    created_at: datetime
    version_count: int
    latest_version: int
    latest_author: str | None
    latest_authored_at: datetime | None


class DocumentVersionOut(_Out):
    version: int
    text: str
    content_sha256: str
    author: str | None
    authored_at: datetime | None
    created_at: datetime


class DocumentHistoryOut(_Out):
    document: DocumentSummaryOut
    versions: list[DocumentVersionOut] = Field(description="Every version, newest first")


class EncounterOut(_Out):
    id: int
    kind: str = Field(description="outpatient | inpatient | emergency")
    department: str | None
    status: str
    reason: str | None
    admit_time: datetime | None
    discharge_time: datetime | None
    documents: list[DocumentSummaryOut]


class LabPointOut(_Out):
    observation_id: int
    effective_at: datetime | None
    value_num: float | None
    value_text: str | None
    abnormal_flag: str | None = Field(description="N, L, H, LL, HH or A (HL7 v2 table 0078)")
    abnormal: bool


class LabSeriesOut(_Out):
    code: str = Field(description="LOINC code where known")
    display: str
    category: str
    unit: str | None = Field(description="UCUM unit")
    ref_low: float | None
    ref_high: float | None
    ref_text: str | None
    abnormal: bool = Field(description="Whether the latest result is flagged abnormal")
    latest: LabPointOut
    points: list[LabPointOut] = Field(description="Oldest first, at most the last 50 results")
    total_count: int


class MedicationOut(_Out):
    id: int
    encounter_id: int | None
    drug: str
    dose_value: float | None
    dose_unit: str | None
    route: str | None
    frequency: str | None
    days: int | None
    status: str
    prescriber: str | None
    authored_at: datetime | None


class ConditionOut(_Out):
    id: int
    icd10_code: str | None
    text: str
    clinical_status: str | None
    onset_at: datetime | None
    recorded_at: datetime | None


class AllergyOut(_Out):
    id: int
    substance: str
    category: str | None
    criticality: str | None
    reaction: str | None


class ImagingOut(_Out):
    id: int
    study_uid: str
    modality: str | None
    description: str | None
    started_at: datetime | None
    status: str


class FindingOut(_Out):
    """A finding (DESIGN.md §2) with the decision a person made on it, if any."""

    id: int
    patient_id: int | None
    engine: str
    target_role: str = Field(description="Whose inbox it lands in")
    subject: str | None
    rule_id: str
    category: str
    severity: str = Field(description="info | warning | critical")
    message: str
    suggestion: str
    evidence: list[dict[str, Any]]
    confidence: float
    needs_review: bool
    status: str = Field(description="open | accepted | overridden | dismissed")
    created_at: datetime
    decided_by: str | None
    decided_role: str | None
    decided_at: datetime | None
    decision_reason: str | None


class FindingListOut(BaseModel):
    status: str
    count: int
    items: list[FindingOut]


class PatientDetailOut(_Out):
    patient: PatientSummaryOut
    encounters: list[EncounterOut] = Field(description="Newest first, with their documents")
    unlinked_documents: list[DocumentSummaryOut]
    labs: list[LabSeriesOut] = Field(description="One entry per test, with its series")
    medications: list[MedicationOut]
    conditions: list[ConditionOut]
    allergies: list[AllergyOut]
    imaging: list[ImagingOut]
    open_findings: list[FindingOut] = Field(
        description="Open findings about this patient; empty for a patient's own account"
    )


class DecisionIn(BaseModel):
    """Accept, override (a reason is required) or dismiss an open finding."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["accepted", "overridden", "dismissed"]
    reason: str | None = Field(default=None, max_length=2000)
