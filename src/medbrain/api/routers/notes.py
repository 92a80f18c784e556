"""Notes: ask the record, draft, edit with one-click facts, QC the draft, sign (doctor, admin).

``POST /api/v1/patients/{id}/ask``            retrieval over the patient's documents (+ LLM answer)
``POST /api/v1/patients/{id}/notes/draft``    the cited template draft (LLM wording if configured)
``POST /api/v1/patients/{id}/notes``          sign a note: a new document or its next version
``GET  /patients/{id}/ask``                   the same answer as a page fragment
``GET  /patients/{id}/notes/new``             the editor: draft beside the record's facts
``POST /patients/{id}/notes``                 sign from the editor (form, CSRF)

No clinical logic lives here: retrieval and drafting are :mod:`medbrain.notes`, storage is
:mod:`medbrain.store.notes`. The per-patient retrieval index is cached in memory and
rebuilt when any of the patient's documents gets a new version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, Form, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadSessionDep,
    RowId,
    SessionDep,
    SettingsDep,
    ensure_patient_visible,
    require_role,
)
from medbrain.api.routers import portal_help
from medbrain.api.routers import qc as qc_api
from medbrain.api.routers.ui import audit_read, page_router, redirect, render, ui_role
from medbrain.core.config import Settings
from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.interop.fhir.exporter import patient_everything
from medbrain.llm import LLMConfig, LLMGateway
from medbrain.notes import NOTE_TYPES, draft_note, read_note_record
from medbrain.notes.ask import AskResult, ask_record
from medbrain.notes.polish import known_identifiers, polish_note
from medbrain.notes.quality import check_draft
from medbrain.notes.record import NoteRecord
from medbrain.notes.retrieval import RecordIndex, default_embedder
from medbrain.store import notes as notes_store
from medbrain.store.patients import age_on

api = APIRouter(prefix="/api/v1/patients", tags=["notes"])
NotesWriter = Annotated[Principal, Depends(require_role("doctor", "admin"))]

_IndexKey = tuple[int, tuple[tuple[int, int], ...]]
# Embedding a long record takes seconds on a CPU: one background thread adds the vectors
# while questions are answered by BM25 alone, so no request waits for it.
_embedding_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medbrain-embed")


class RecordIndexCache:
    """Per-app LRU of retrieval indexes, keyed by patient and latest document versions."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._indexes: OrderedDict[_IndexKey, RecordIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, patient_id: int) -> RecordIndex:
        notes_store.get_patient(session, patient_id)  # 404 for an unknown patient
        key = (patient_id, notes_store.record_fingerprint(session, patient_id))
        with self._lock:
            if key in self._indexes:
                self._indexes.move_to_end(key)
                return self._indexes[key]
        index = RecordIndex(
            notes_store.record_documents(session, patient_id),
            vocabulary=notes_store.record_vocabulary(session, patient_id),
        )
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > self.size:
                self._indexes.popitem(last=False)
        embedder = default_embedder()
        if embedder is not None:
            _embedding_pool.submit(index.embed, embedder)
        return index


def record_index(request: Request, session: Session, patient_id: int) -> RecordIndex:
    cache = getattr(request.app.state, "record_indexes", None)
    if not isinstance(cache, RecordIndexCache):
        cache = request.app.state.record_indexes = RecordIndexCache()
    return cache.get(session, patient_id)


def _with_pending_mode(result: AskResult, index: RecordIndex) -> AskResult:
    """Say ``pending`` rather than ``bm25`` while the vectors are still being computed."""
    if result.mode == "bm25" and index.passages and default_embedder() is not None:
        return replace(result, mode="pending")
    return result


def _note_record(session: Session, patient_id: int) -> NoteRecord:
    return read_note_record(patient_everything(session, patient_id), source=f"Patient/{patient_id}")


async def _ask(
    request: Request,
    session: Session,
    settings: Settings,
    patient_id: int,
    question: str,
    lang: str,
) -> AskResult:
    index = record_index(request, session, patient_id)
    config = LLMConfig.from_settings(settings)
    if config is None:
        result = await ask_record(index, question, lang=lang)
    else:
        known = known_identifiers(_note_record(session, patient_id))
        async with LLMGateway(config) as gateway:
            result = await ask_record(index, question, lang=lang, gateway=gateway, known=known)
    return _with_pending_mode(result, index)


def _draft_defects(
    request: Request, session: Session, patient_id: int, note_type: str, text: str, lang: str
) -> list[dict[str, Any]]:
    if note_type not in NOTE_TYPES:
        raise InputError("note", "type", f"must be one of {', '.join(NOTE_TYPES)}")
    patient = notes_store.get_patient(session, patient_id)
    return check_draft(
        text,
        note_type,
        qc_api.effective_knowledge_for(request, session),
        sex=patient.sex,
        age_years=age_on(patient.birth_date, datetime.now(UTC).date()),
        lang=lang,
    )


def _signature(user: Principal, settings: Settings, lang: str) -> str:
    """The electronic signature line appended to a signed note (《病历书写基本规范》第八条)."""
    try:
        zone: ZoneInfo | None = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    when = datetime.now(UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return t("notes.signature", lang, name=user.display_name, time=when)


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=500, examples=["入院时血钾多少?"])
    k: int = Field(default=5, ge=1, le=20)


@api.post("/{patient_id}/ask")
async def ask_api(
    patient_id: RowId,
    body: AskIn,
    user: NotesWriter,
    session: ReadSessionDep,
    request: Request,
    settings: SettingsDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Quoted passages of the patient's documents that answer the question, best first."""
    ensure_patient_visible(user, patient_id, lang)
    result = await _ask(request, session, settings, patient_id, body.question, lang)
    audit_read(
        request,
        user,
        "notes.ask",
        f"Patient/{patient_id}",
        {"passages": [h.passage.ref for h in result.hits], "generator": result.generator},
    )
    return result.to_dict()


class DraftIn(BaseModel):
    type: str = Field(default="admission", examples=list(NOTE_TYPES))


@api.post("/{patient_id}/notes/draft")
async def draft_api(
    patient_id: RowId,
    body: DraftIn,
    user: NotesWriter,
    session: ReadSessionDep,
    request: Request,
    settings: SettingsDep,
    lang: LangDep,
) -> dict[str, Any]:
    """A draft note whose every factual sentence cites its source resource."""
    ensure_patient_visible(user, patient_id, lang)
    if body.type not in NOTE_TYPES:
        raise InputError("body", "type", f"must be one of {', '.join(NOTE_TYPES)}")
    record = _note_record(session, patient_id)
    template = draft_note(record, body.type, lang)
    config = LLMConfig.from_settings(settings)
    if config is None:
        note, _ = await polish_note(template, record, None)
    else:
        async with LLMGateway(config) as gateway:
            note, _ = await polish_note(template, record, gateway)
    audit_read(
        request, user, "notes.draft", f"Patient/{patient_id}", {"type": body.type, "via": "api"}
    )
    return note.to_dict()


class DraftTextIn(BaseModel):
    type: str
    text: str = Field(min_length=1, max_length=notes_store.MAX_NOTE_CHARS)


@api.post("/{patient_id}/notes/qc")
def draft_qc_api(
    patient_id: RowId,
    body: DraftTextIn,
    user: NotesWriter,
    session: ReadSessionDep,
    request: Request,
    lang: LangDep,
) -> dict[str, Any]:
    """Record-QC defects of a draft before it is signed (its own sections and content)."""
    ensure_patient_visible(user, patient_id, lang)
    return {"defects": _draft_defects(request, session, patient_id, body.type, body.text, lang)}


class SignIn(BaseModel):
    type: str
    text: str = Field(min_length=1, max_length=notes_store.MAX_NOTE_CHARS)
    citations: list[str] = Field(default_factory=list, max_length=500)
    document_id: int | None = Field(default=None, ge=1)
    base_version: int | None = Field(default=None, ge=1)


@api.post("/{patient_id}/notes", status_code=201)
def sign_api(
    request: Request,
    patient_id: RowId,
    body: Annotated[SignIn, Body()],
    user: NotesWriter,
    session: SessionDep,
    auditor: AuditDep,
    settings: SettingsDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Sign a note (the signature line is appended). A signed version never changes;
    signing again appends a version."""
    ensure_patient_visible(user, patient_id, lang)
    version = notes_store.sign_note(
        session,
        patient_id=patient_id,
        note_type=body.type,
        text=body.text,
        signature=_signature(user, settings, lang),
        citations=body.citations,
        author=user.display_name,
        now=datetime.now(UTC),
        document_id=body.document_id,
        base_version=body.base_version,
        lang=lang,
    )
    auditor.record(
        "notes.sign",
        f"Document/{version.document_id}",
        {"version": version.version, "sha256": version.content_sha256, "type": body.type},
    )
    qc_api.recheck_saved_document(request, session, user, version.document_id)  # issue 7
    return {
        "document_id": version.document_id,
        "version": version.version,
        "sha256": version.content_sha256,
        "resource": version.resource,
    }


# -- pages -------------------------------------------------------------------------------------


pages = page_router()


UiWriter = Annotated[Principal, Depends(ui_role("doctor", "admin"))]


@pages.get("/patients/{patient_id}/ask")
async def ask_page(
    request: Request,
    patient_id: RowId,
    user: UiWriter,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The answer as an HTMX fragment (or a page without HTMX)."""
    ensure_patient_visible(user, patient_id, lang)
    result: dict[str, Any] | None = None
    error: str | None = None
    if q.strip():
        try:
            answer = await _ask(request, session, settings, patient_id, q, lang)
        except InputError as exc:
            error = exc.problem
        else:
            result = answer.to_dict()
            audit_read(
                request,
                user,
                "notes.ask",
                f"Patient/{patient_id}",
                {"passages": [h.passage.ref for h in answer.hits], "via": "ui"},
            )
    return render(
        request,
        "notes/ask.html",
        {"patient_id": patient_id, "q": q, "result": result, "error": error},
        lang=lang,
        user=user,
    )


def _facts(record: NoteRecord) -> list[dict[str, str]]:
    """Facts a doctor can insert with one click: labs, vitals, medications, procedures, diagnoses."""
    out: list[dict[str, str]] = []
    for group, facts in (
        ("labs", record.labs),
        ("vitals", record.vitals),
        ("medications", record.medications),
        ("procedures", record.procedures),
        ("conditions", record.conditions),
    ):
        for fact in facts:
            parts = [fact.label, fact.value, f"({fact.when[:16]})" if fact.when else ""]
            out.append(
                {
                    "group": group,
                    "ref": fact.ref,
                    "flag": fact.flag,
                    "text": " ".join(p for p in parts if p),
                }
            )
    return out


@pages.get("/patients/{patient_id}/notes/new")
def editor_page(
    request: Request,
    patient_id: RowId,
    user: UiWriter,
    session: ReadSessionDep,
    lang: LangDep,
    note_type: Annotated[str, Query(alias="type", max_length=32)] = "admission",
) -> Response:
    """The draft in an editable text box, beside the facts of the record."""
    ensure_patient_visible(user, patient_id, lang)
    if note_type not in NOTE_TYPES:
        raise InputError("query", "type", f"must be one of {', '.join(NOTE_TYPES)}")
    record = _note_record(session, patient_id)
    draft = draft_note(record, note_type, lang)
    text = "\n\n".join(f"【{s.title}】\n{s.text}" for s in draft.sections)
    citations = sorted({ref for s in draft.sections for ref in s.sources})
    audit_read(request, user, "notes.edit", f"Patient/{patient_id}", {"type": note_type})
    return render(
        request,
        "notes/editor.html",
        {
            "patient_id": patient_id,
            "note_type": note_type,
            "note_types": NOTE_TYPES,
            "text": text,
            "citations": citations,
            "facts": _facts(record) + portal_help.preconsult_facts(session, patient_id),
        },
        lang=lang,
        user=user,
    )


@pages.post("/patients/{patient_id}/notes")
def sign_page(
    request: Request,
    patient_id: RowId,
    user: UiWriter,
    session: SessionDep,
    auditor: AuditDep,
    settings: SettingsDep,
    lang: LangDep,
    note_type: Annotated[str, Form(alias="type", max_length=32)],
    text: Annotated[str, Form(max_length=notes_store.MAX_NOTE_CHARS)],
    citations: Annotated[str, Form(max_length=50_000)] = "",
) -> Response:
    """Sign from the editor, then show the stored document."""
    ensure_patient_visible(user, patient_id, lang)
    version = notes_store.sign_note(
        session,
        patient_id=patient_id,
        note_type=note_type,
        text=text,
        signature=_signature(user, settings, lang),
        citations=[c for c in citations.split() if c],
        author=user.display_name,
        now=datetime.now(UTC),
        lang=lang,
    )
    auditor.record(
        "notes.sign",
        f"Document/{version.document_id}",
        {"version": version.version, "sha256": version.content_sha256, "type": note_type},
    )
    qc_api.recheck_saved_document(request, session, user, version.document_id)  # issue 7
    return redirect(request, f"/patients/{patient_id}/documents/{version.document_id}")


@pages.post("/patients/{patient_id}/notes/qc")
def draft_qc_page(
    request: Request,
    patient_id: RowId,
    user: UiWriter,
    session: ReadSessionDep,
    lang: LangDep,
    note_type: Annotated[str, Form(alias="type", max_length=32)],
    text: Annotated[str, Form(max_length=notes_store.MAX_NOTE_CHARS)] = "",
) -> Response:
    """The draft's QC defects as an HTMX fragment beside the editor."""
    ensure_patient_visible(user, patient_id, lang)
    defects: list[dict[str, Any]] = []
    error: str | None = None
    if not text.strip():
        error = t("notes.qc.empty", lang)
    else:
        defects = _draft_defects(request, session, patient_id, note_type, text, lang)
    return render(
        request,
        "notes/_qc.html",
        {"defects": defects, "error": error},
        lang=lang,
        user=user,
    )
