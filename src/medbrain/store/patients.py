"""Patient search and the patient page, read from the store as frozen dataclasses.

Adapters (REST, web UI, benchmarks) render these values; they never see ORM objects, so a
template cannot lazy-load a relationship and a response model cannot leak a column.

Search follows how Chinese ward staff look patients up: a substring of the name (``张``), the
pinyin initials (``zs`` → 张三), the full pinyin (``zhangsan``) or the MRN. Every query is
parameterised, and LIKE wildcards in the user's text are escaped, so ``%`` or
``' OR 1=1 --`` are searched for literally and simply find nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from medbrain.core.errors import NotFoundError
from medbrain.store.findings import SEVERITY_ORDER, FindingView, finding_view
from medbrain.store.models import (
    AllergyIntolerance,
    Condition,
    Document,
    DocumentVersion,
    Encounter,
    FindingRecord,
    ImagingStudy,
    MedicationRequest,
    Observation,
    Patient,
)

SEARCH_LIMIT_MAX = 50
QUERY_MAX_CHARS = 64
SERIES_MAX_POINTS = 50
"""Points kept per lab test for the trend; the table shows the latest value anyway."""

_LETTERS = re.compile(r"^[a-z]+$")
_ABNORMAL = frozenset({"L", "H", "LL", "HH", "A", "AA"})


@dataclass(frozen=True, slots=True)
class PatientHit:
    """One search result: enough to recognise the patient, nothing more."""

    id: int
    mrn: str
    name: str
    sex: str
    birth_date: date | None
    age_years: int | None


@dataclass(frozen=True, slots=True)
class PatientSummary:
    id: int
    mrn: str
    name: str
    name_pinyin: str
    sex: str
    birth_date: date | None
    age_years: int | None
    phone: str | None
    resident_id_masked: str | None


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    """A document as listed on the timeline: its latest version's metadata, not its text."""

    id: int
    encounter_id: int | None
    doc_type: str
    title: str
    created_at: datetime
    version_count: int
    latest_version: int
    latest_author: str | None
    latest_authored_at: datetime | None


@dataclass(frozen=True, slots=True)
class DocumentVersionView:
    version: int
    text: str
    content_sha256: str
    author: str | None
    authored_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentHistory:
    """A document with every version, newest first (nothing is ever overwritten)."""

    document: DocumentSummary
    versions: tuple[DocumentVersionView, ...]


@dataclass(frozen=True, slots=True)
class EncounterView:
    id: int
    kind: str
    department: str | None
    status: str
    reason: str | None
    admit_time: datetime | None
    discharge_time: datetime | None
    documents: tuple[DocumentSummary, ...]


@dataclass(frozen=True, slots=True)
class LabPoint:
    observation_id: int
    effective_at: datetime | None
    value_num: float | None
    value_text: str | None
    abnormal_flag: str | None

    @property
    def abnormal(self) -> bool:
        return (self.abnormal_flag or "").upper() in _ABNORMAL


@dataclass(frozen=True, slots=True)
class LabSeries:
    """All results of one test (by code), oldest first, with the latest one's range."""

    code: str
    display: str
    category: str
    unit: str | None
    ref_low: float | None
    ref_high: float | None
    ref_text: str | None
    latest: LabPoint
    points: tuple[LabPoint, ...]
    total_count: int

    @property
    def abnormal(self) -> bool:
        return self.latest.abnormal


@dataclass(frozen=True, slots=True)
class MedicationView:
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


@dataclass(frozen=True, slots=True)
class ConditionView:
    id: int
    icd10_code: str | None
    text: str
    clinical_status: str | None
    onset_at: datetime | None
    recorded_at: datetime | None


@dataclass(frozen=True, slots=True)
class AllergyView:
    id: int
    substance: str
    category: str | None
    criticality: str | None
    reaction: str | None


@dataclass(frozen=True, slots=True)
class ImagingView:
    id: int
    study_uid: str
    modality: str | None
    description: str | None
    started_at: datetime | None
    status: str


@dataclass(frozen=True, slots=True)
class PatientPage:
    """Everything the patient page shows, read in one transaction."""

    patient: PatientSummary
    encounters: tuple[EncounterView, ...]
    unlinked_documents: tuple[DocumentSummary, ...]
    labs: tuple[LabSeries, ...]
    medications: tuple[MedicationView, ...]
    conditions: tuple[ConditionView, ...]
    allergies: tuple[AllergyView, ...]
    imaging: tuple[ImagingView, ...]
    open_findings: tuple[FindingView, ...]

    @property
    def document_count(self) -> int:
        return len(self.unlinked_documents) + sum(len(e.documents) for e in self.encounters)


def age_on(birth_date: date | None, today: date) -> int | None:
    """Completed years on ``today``; ``None`` when the birth date is unknown."""
    if birth_date is None:
        return None
    years = (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )
    return max(years, 0)


def mask_resident_id(raw: str | None) -> str | None:
    """Keep the region (first 6) and the last 4 characters: enough to compare with a card."""
    if not raw:
        return None
    if len(raw) <= 10:
        return "*" * len(raw)
    return raw[:6] + "*" * (len(raw) - 10) + raw[-4:]


def normalize_query(raw: str | None) -> str:
    """Trim, collapse inner spaces, drop control characters and cap the length.

    Control characters matter: SQLite ends a LIKE pattern at NUL (so ``%\x00`` would match
    every row) and PostgreSQL refuses NUL in text outright.
    """
    text = "".join(ch if ch.isprintable() else " " for ch in (raw or ""))
    return " ".join(text.split())[:QUERY_MAX_CHARS]


def search_patients(
    session: Session, query: str | None, *, today: date, limit: int = 20
) -> list[PatientHit]:
    """Patients matching ``query`` by name, pinyin initials, full pinyin or MRN.

    Exact MRN and exact initials rank first, then prefixes, then name substrings; ties are
    broken by MRN so the order is stable. An empty query finds nothing (listing every
    patient is not a search).
    """
    q = normalize_query(query)
    if not q:
        return []
    limit = max(1, min(limit, SEARCH_LIMIT_MAX))
    lowered = q.lower()
    compact = lowered.replace(" ", "")
    conditions = [
        Patient.name.contains(q, autoescape=True),
        Patient.mrn.icontains(q, autoescape=True),
    ]
    rank_whens: list[tuple[Any, int]] = [
        (func.lower(Patient.mrn) == lowered, 0),
        (Patient.name == q, 0),
    ]
    if _LETTERS.match(compact):
        conditions += [
            Patient.name_initials.startswith(compact, autoescape=True),
            Patient.name_pinyin.startswith(compact, autoescape=True),
        ]
        rank_whens += [
            (Patient.name_initials == compact, 1),
            (Patient.name_pinyin == compact, 1),
            (Patient.name_initials.startswith(compact, autoescape=True), 2),
            (Patient.name_pinyin.startswith(compact, autoescape=True), 2),
        ]
    rank_whens.append((Patient.mrn.istartswith(q, autoescape=True), 2))
    rank = case(*rank_whens, else_=3)
    rows = session.execute(
        select(Patient.id, Patient.mrn, Patient.name, Patient.sex, Patient.birth_date)
        .where(or_(*conditions))
        .order_by(rank, Patient.mrn, Patient.id)
        .limit(limit)
    ).all()
    return [
        PatientHit(
            id=row.id,
            mrn=row.mrn,
            name=row.name,
            sex=row.sex,
            birth_date=row.birth_date,
            age_years=age_on(row.birth_date, today),
        )
        for row in rows
    ]


def patients_by_id(session: Session, ids: Iterable[int], *, today: date) -> dict[int, PatientHit]:
    """Labels for patients named by id (an inbox shows whom each finding is about)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Patient.id, Patient.mrn, Patient.name, Patient.sex, Patient.birth_date).where(
            Patient.id.in_(wanted)
        )
    ).all()
    return {
        row.id: PatientHit(
            id=row.id,
            mrn=row.mrn,
            name=row.name,
            sex=row.sex,
            birth_date=row.birth_date,
            age_years=age_on(row.birth_date, today),
        )
        for row in rows
    }


# Column lists: the patient page selects only what it shows. Loading whole rows would also
# decode every stored FHIR resource (the JSON ``resource`` column), which was most of the cost.
_PATIENT_COLUMNS = (
    Patient.id,
    Patient.mrn,
    Patient.name,
    Patient.name_pinyin,
    Patient.sex,
    Patient.birth_date,
    Patient.phone,
    Patient.resident_id,
)
_OBSERVATION_COLUMNS = (
    Observation.id,
    Observation.code,
    Observation.display,
    Observation.category,
    Observation.value_num,
    Observation.value_text,
    Observation.unit,
    Observation.ref_low,
    Observation.ref_high,
    Observation.ref_text,
    Observation.abnormal_flag,
    Observation.effective_at,
)


def _patient_row(session: Session, patient_id: int) -> Any:
    """The patient's shown columns as a result row (attribute access like the model)."""
    row = session.execute(select(*_PATIENT_COLUMNS).where(Patient.id == patient_id)).first()
    if row is None:
        raise NotFoundError(f"Patient/{patient_id}")
    return row


def _summary(patient: Any, today: date) -> PatientSummary:
    return PatientSummary(
        id=patient.id,
        mrn=patient.mrn,
        name=patient.name,
        name_pinyin=patient.name_pinyin,
        sex=patient.sex,
        birth_date=patient.birth_date,
        age_years=age_on(patient.birth_date, today),
        phone=patient.phone,
        resident_id_masked=mask_resident_id(patient.resident_id),
    )


def patient_summary(session: Session, patient_id: int, *, today: date) -> PatientSummary:
    return _summary(_patient_row(session, patient_id), today)


def _documents(
    session: Session, patient_id: int, document_id: int | None = None
) -> list[DocumentSummary]:
    """Documents with their version count and latest version's metadata, in two queries."""
    stats = (
        select(
            DocumentVersion.document_id.label("document_id"),
            func.count().label("version_count"),
            func.max(DocumentVersion.version).label("latest_version"),
        )
        .group_by(DocumentVersion.document_id)
        .subquery()
    )
    statement = (
        select(
            Document.id,
            Document.encounter_id,
            Document.doc_type,
            Document.title,
            Document.created_at,
            stats.c.version_count,
            stats.c.latest_version,
        )
        .join(stats, stats.c.document_id == Document.id)
        .where(Document.patient_id == patient_id)
    )
    if document_id is not None:
        statement = statement.where(Document.id == document_id)
    rows = session.execute(statement).all()
    latest_meta: dict[tuple[int, int], tuple[str | None, datetime | None]] = {}
    if rows:
        wanted = [(doc.id, doc.latest_version) for doc in rows]
        meta_rows = session.execute(
            select(
                DocumentVersion.document_id,
                DocumentVersion.version,
                DocumentVersion.author,
                DocumentVersion.authored_at,
                DocumentVersion.created_at,
            ).where(DocumentVersion.document_id.in_([doc_id for doc_id, _ in wanted]))
        ).all()
        wanted_set = set(wanted)
        for m in meta_rows:
            if (m.document_id, m.version) in wanted_set:
                latest_meta[(m.document_id, m.version)] = (m.author, m.authored_at or m.created_at)
    out = []
    for doc in rows:
        count, latest = doc.version_count, doc.latest_version
        author, authored_at = latest_meta.get((doc.id, latest), (None, None))
        out.append(
            DocumentSummary(
                id=doc.id,
                encounter_id=doc.encounter_id,
                doc_type=doc.doc_type,
                title=doc.title,
                created_at=doc.created_at,
                version_count=int(count),
                latest_version=int(latest),
                latest_author=author,
                latest_authored_at=authored_at,
            )
        )
    out.sort(key=lambda d: (d.latest_authored_at or d.created_at, d.id))
    return out


def _lab_series(observations: Sequence[Any]) -> tuple[LabSeries, ...]:
    by_code: dict[str, list[Any]] = defaultdict(list)
    for obs in observations:
        by_code[obs.code].append(obs)
    series = []
    for code, rows in by_code.items():
        rows.sort(key=lambda o: (o.effective_at is None, o.effective_at or datetime.min, o.id))
        points = tuple(
            LabPoint(
                observation_id=o.id,
                effective_at=o.effective_at,
                value_num=o.value_num,
                value_text=o.value_text,
                abnormal_flag=(o.abnormal_flag or None),
            )
            for o in rows[-SERIES_MAX_POINTS:]
        )
        last = rows[-1]
        series.append(
            LabSeries(
                code=code,
                display=last.display,
                category=last.category,
                unit=last.unit,
                ref_low=last.ref_low,
                ref_high=last.ref_high,
                ref_text=last.ref_text,
                latest=points[-1],
                points=points,
                total_count=len(rows),
            )
        )
    series.sort(key=lambda s: (s.category, s.display, s.code))
    return tuple(series)


def patient_page(
    session: Session, patient_id: int, *, today: date, include_findings: bool = True
) -> PatientPage:
    """Read the whole patient page; raise :class:`NotFoundError` for an unknown patient.

    ``include_findings`` is false for a patient's own account: open findings are advice to
    clinicians that nobody has reviewed yet.
    """
    patient = _patient_row(session, patient_id)
    encounters = session.execute(
        select(
            Encounter.id,
            Encounter.kind,
            Encounter.department,
            Encounter.status,
            Encounter.reason,
            Encounter.admit_time,
            Encounter.discharge_time,
        )
        .where(Encounter.patient_id == patient_id)
        .order_by(Encounter.admit_time.desc().nulls_last(), Encounter.id.desc())
    ).all()
    documents = _documents(session, patient_id)
    docs_by_encounter: dict[int | None, list[DocumentSummary]] = defaultdict(list)
    known_encounters = {e.id for e in encounters}
    for doc in documents:
        key = doc.encounter_id if doc.encounter_id in known_encounters else None
        docs_by_encounter[key].append(doc)
    observations = session.execute(
        select(*_OBSERVATION_COLUMNS).where(Observation.patient_id == patient_id)
    ).all()
    medications = session.execute(
        select(
            MedicationRequest.id,
            MedicationRequest.encounter_id,
            MedicationRequest.drug,
            MedicationRequest.dose_value,
            MedicationRequest.dose_unit,
            MedicationRequest.route,
            MedicationRequest.frequency,
            MedicationRequest.days,
            MedicationRequest.status,
            MedicationRequest.prescriber,
            MedicationRequest.authored_at,
        )
        .where(MedicationRequest.patient_id == patient_id)
        .order_by(MedicationRequest.authored_at.desc().nulls_last(), MedicationRequest.id.desc())
    ).all()
    conditions = session.execute(
        select(
            Condition.id,
            Condition.icd10_code,
            Condition.text,
            Condition.clinical_status,
            Condition.onset_at,
            Condition.recorded_at,
        )
        .where(Condition.patient_id == patient_id)
        .order_by(Condition.recorded_at.desc().nulls_last(), Condition.id)
    ).all()
    allergies = session.execute(
        select(
            AllergyIntolerance.id,
            AllergyIntolerance.substance,
            AllergyIntolerance.category,
            AllergyIntolerance.criticality,
            AllergyIntolerance.reaction,
        )
        .where(AllergyIntolerance.patient_id == patient_id)
        .order_by(AllergyIntolerance.id)
    ).all()
    imaging = session.execute(
        select(
            ImagingStudy.id,
            ImagingStudy.study_uid,
            ImagingStudy.modality,
            ImagingStudy.description,
            ImagingStudy.started_at,
            ImagingStudy.status,
        )
        .where(ImagingStudy.patient_id == patient_id)
        .order_by(ImagingStudy.started_at.desc().nulls_last(), ImagingStudy.id)
    ).all()
    findings: list[FindingRecord] = []
    if include_findings:
        findings = list(
            session.scalars(
                select(FindingRecord)
                .where(FindingRecord.patient_id == patient_id, FindingRecord.status == "open")
                .order_by(SEVERITY_ORDER, FindingRecord.created_at.desc(), FindingRecord.id)
            ).all()
        )
    return PatientPage(
        patient=_summary(patient, today),
        encounters=tuple(
            EncounterView(
                id=e.id,
                kind=e.kind,
                department=e.department,
                status=e.status,
                reason=e.reason,
                admit_time=e.admit_time,
                discharge_time=e.discharge_time,
                documents=tuple(docs_by_encounter.get(e.id, ())),
            )
            for e in encounters
        ),
        unlinked_documents=tuple(docs_by_encounter.get(None, ())),
        labs=_lab_series(observations),
        medications=tuple(
            MedicationView(
                id=m.id,
                encounter_id=m.encounter_id,
                drug=m.drug,
                dose_value=m.dose_value,
                dose_unit=m.dose_unit,
                route=m.route,
                frequency=m.frequency,
                days=m.days,
                status=m.status,
                prescriber=m.prescriber,
                authored_at=m.authored_at,
            )
            for m in medications
        ),
        conditions=tuple(
            ConditionView(
                id=c.id,
                icd10_code=c.icd10_code,
                text=c.text,
                clinical_status=c.clinical_status,
                onset_at=c.onset_at,
                recorded_at=c.recorded_at,
            )
            for c in conditions
        ),
        allergies=tuple(
            AllergyView(
                id=a.id,
                substance=a.substance,
                category=a.category,
                criticality=a.criticality,
                reaction=a.reaction,
            )
            for a in allergies
        ),
        imaging=tuple(
            ImagingView(
                id=s.id,
                study_uid=s.study_uid,
                modality=s.modality,
                description=s.description,
                started_at=s.started_at,
                status=s.status,
            )
            for s in imaging
        ),
        open_findings=tuple(finding_view(f) for f in findings),
    )


def document_history(session: Session, patient_id: int, document_id: int) -> DocumentHistory:
    """One document of one patient with all its versions, newest first.

    A document of another patient is reported as not found, like a missing one.
    """
    summaries = _documents(session, patient_id, document_id)
    if not summaries:
        raise NotFoundError(f"Document/{document_id}")
    versions = session.execute(
        select(
            DocumentVersion.version,
            DocumentVersion.text,
            DocumentVersion.content_sha256,
            DocumentVersion.author,
            DocumentVersion.authored_at,
            DocumentVersion.created_at,
        )
        .where(DocumentVersion.document_id == document_id)
        .order_by(DocumentVersion.version.desc())
    ).all()
    return DocumentHistory(
        document=summaries[0],
        versions=tuple(
            DocumentVersionView(
                version=v.version,
                text=v.text,
                content_sha256=v.content_sha256,
                author=v.author,
                authored_at=v.authored_at,
                created_at=v.created_at,
            )
            for v in versions
        ),
    )
