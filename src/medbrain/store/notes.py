"""The record's documents for retrieval, and signed notes written back as document versions.

Why versions: a signed note is never overwritten. Signing again (after an edit) appends a
new version, so what a doctor signed stays readable exactly as it was.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.interop.fhir.exporter import logical_id
from medbrain.knowledge.loaders import document_types
from medbrain.notes.retrieval import SourceDocument
from medbrain.store import models as m
from medbrain.store.triage_models import PreConsultation

#: Note type of the drafting engine → document type of the store.
NOTE_DOCUMENT_TYPES = {
    "admission": "admission",
    "first_course": "first_course",
    "progress": "course",
    "discharge": "discharge",
}
MAX_NOTE_CHARS = 50_000


def record_documents(session: Session, patient_id: int) -> list[SourceDocument]:
    """The latest version of each of the patient's documents, oldest first."""
    documents = session.scalars(
        select(m.Document)
        .where(m.Document.patient_id == patient_id)
        .options(selectinload(m.Document.versions))
        .order_by(m.Document.id)
    )
    out: list[tuple[datetime, SourceDocument]] = []
    for doc in documents:
        if not doc.versions:
            continue
        latest = doc.versions[-1]
        when = latest.authored_at or doc.created_at
        out.append(
            (
                when,
                SourceDocument(
                    ref=f"Document/{doc.id}/v{latest.version}",
                    title=doc.title,
                    when=when.isoformat(timespec="minutes"),
                    text=latest.text,
                ),
            )
        )
    return [d for _, d in sorted(out, key=lambda pair: pair[0])]


def record_fingerprint(session: Session, patient_id: int) -> tuple[tuple[int, int], ...]:
    """(document id, latest version id) pairs: changes whenever a document is added or edited."""
    rows = session.execute(
        select(m.DocumentVersion.document_id, m.DocumentVersion.id)
        .join(m.Document, m.Document.id == m.DocumentVersion.document_id)
        .where(m.Document.patient_id == patient_id)
        .order_by(m.DocumentVersion.document_id, m.DocumentVersion.id)
    )
    latest: dict[int, int] = {}
    for document_id, version_id in rows:
        latest[int(document_id)] = int(version_id)
    return tuple(sorted(latest.items()))


def record_vocabulary(session: Session, patient_id: int) -> set[str]:
    """Names of the patient's labs, drugs and diagnoses, kept whole by the tokenizer."""
    terms: set[str] = set()
    columns: tuple[Any, ...] = (m.Observation.display, m.MedicationRequest.drug, m.Condition.text)
    for column in columns:
        terms.update(
            str(v)
            for v in session.scalars(select(column).where(column.class_.patient_id == patient_id))
            if v
        )
    return terms


def _patient_refs(session: Session, patient_id: int) -> set[str]:
    """``Type/id`` of every resource of the patient, with the ids the FHIR export uses."""
    refs = {f"Patient/{logical_id(get_patient(session, patient_id))}"}
    models: tuple[Any, ...] = (
        m.Observation,
        m.MedicationRequest,
        m.Condition,
        m.AllergyIntolerance,
        m.Procedure,
        m.Encounter,
        m.ImagingStudy,
    )
    for model in models:
        for row in session.scalars(select(model).where(model.patient_id == patient_id)):
            refs.add(f"{model.__name__}/{logical_id(row)}")
    # the patient's pre-consultations (issue 9): insertable, cited facts in the note editor
    for pre_id in session.scalars(
        select(PreConsultation.id).where(PreConsultation.patient_id == patient_id)
    ):
        refs.add(f"Preconsultation/{pre_id}")
    return refs


def get_patient(session: Session, patient_id: int) -> m.Patient:
    patient = session.get(m.Patient, patient_id)
    if patient is None:
        raise NotFoundError(f"Patient/{patient_id}")
    return patient


def sign_note(
    session: Session,
    *,
    patient_id: int,
    note_type: str,
    text: str,
    citations: Iterable[str],
    author: str,
    now: datetime,
    signature: str = "",
    document_id: int | None = None,
    base_version: int | None = None,
    lang: str = "zh",
) -> m.DocumentVersion:
    """Store a signed note: a new document, or the next version of ``document_id``.

    ``signature`` (the electronic signature line) is appended to the text. ``base_version``
    is the version the doctor edited; if someone signed a newer one in the meantime, this is
    a conflict rather than a silent overwrite of their text.
    """
    if note_type not in NOTE_DOCUMENT_TYPES:
        raise InputError("note", "type", f"unknown note type {note_type!r}")
    text = text.strip()
    if not text:
        raise InputError("note", "text", "the note is empty")
    if len(text) > MAX_NOTE_CHARS:
        raise InputError("note", "text", f"the note is over {MAX_NOTE_CHARS} characters")
    if signature:
        text = f"{text}\n{signature}"
    patient = get_patient(session, patient_id)
    cited = sorted(set(citations))
    unknown = [c for c in cited if c not in _patient_refs(session, patient_id)]
    if unknown:
        raise InputError("note", "citations", f"not in this patient's record: {', '.join(unknown)}")
    doc_type = NOTE_DOCUMENT_TYPES[note_type]
    if document_id is None:
        encounter = session.scalar(
            select(m.Encounter)
            .where(m.Encounter.patient_id == patient_id)
            .order_by(m.Encounter.admit_time.desc(), m.Encounter.id.desc())
            .limit(1)
        )
        known = document_types().get(doc_type)
        document = m.Document(
            patient_id=patient_id,
            encounter_id=encounter.id if encounter is not None else None,
            doc_type=doc_type,
            title=known.title(lang) if known is not None else doc_type,
            created_at=now,
        )
        session.add(document)
        session.flush()
        number = 1
    else:
        found = session.get(m.Document, document_id)
        if found is None or found.patient_id != patient_id:
            raise NotFoundError(f"Document/{document_id}")
        document = found
        number = max((v.version for v in document.versions), default=0) + 1
        if base_version is not None and base_version != number - 1:
            raise ConflictError(
                f"Document/{document_id}",
                "base_version",
                f"version {number - 1} was signed after version {base_version} was opened",
            )
    version = m.DocumentVersion(
        document_id=document.id,
        version=number,
        text=text,
        content_sha256=hashlib.sha256(text.encode()).hexdigest(),
        author=author,
        authored_at=now,
        created_at=now,
        resource=_document_reference(patient, document, number, text, cited, author, now),
    )
    session.add(version)
    session.flush()
    return version


def _document_reference(
    patient: m.Patient,
    document: m.Document,
    number: int,
    text: str,
    cited: list[str],
    author: str,
    now: datetime,
) -> dict[str, Any]:
    """The signed note as a FHIR R4 DocumentReference; cited resources in ``context.related``."""
    known = document_types().get(document.doc_type)
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": known.loinc if known is not None else "34109-9",
                    "display": document.title,
                }
            ]
        },
        "subject": {"reference": f"Patient/{logical_id(patient)}"},
        "date": now.isoformat(),
        "author": [{"display": author}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": f"{document.title} v{number}",
                }
            }
        ],
    }
    if cited:
        resource["context"] = {"related": [{"reference": ref} for ref in cited]}
    return resource
