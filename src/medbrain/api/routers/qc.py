"""``POST /api/v1/qc/check``: real-time or final QC of one inpatient record.

Body: ``{"documents": {"admission": "...", "course": "..."}, "meta": {...}, "stage": "realtime"}``
(or a FHIR R4 Bundle of Composition/DocumentReference under ``"bundle"``). Roles: doctor,
qc_officer, admin. The router holds no clinical logic: it reads the record with the QC
parser, calls the pure engine and audits the call with the score.

References
----------
DESIGN.md §3 (``medbrain qc check`` output shape, reused here), STYLE.md §5 (one router per
resource; errors translated once: InputError → 422 naming the field).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadSessionDep,
    SettingsDep,
    require_role,
)
from medbrain.core.errors import InputError
from medbrain.qc import QCKnowledge, check_record, load_qc_knowledge
from medbrain.qc.parse import parse_stamp, record_from_json

router = APIRouter(prefix="/api/v1/qc", tags=["qc"])

QCUser = Annotated[Principal, Depends(require_role("doctor", "qc_officer", "admin"))]


class QCCheckRequest(BaseModel):
    """One record to check: document texts by type (admission, course, …) plus meta."""

    documents: dict[str, str] | None = Field(
        default=None, description="Document texts keyed by type: admission, course, surgery, …"
    )
    meta: dict[str, Any] | None = Field(
        default=None, description="Optional admit_time, discharge_time, sex, age_years"
    )
    bundle: dict[str, Any] | None = Field(
        default=None, description="Alternatively a FHIR R4 Bundle (Composition/DocumentReference)"
    )
    stage: Literal["realtime", "final"] = "realtime"
    now: str | None = Field(
        default=None, description="Time of a real-time check; default the latest time written"
    )


@lru_cache(maxsize=1)
def _default_knowledge() -> QCKnowledge:
    return load_qc_knowledge(None)


def knowledge_for(request: Request) -> QCKnowledge:
    """The app's QC knowledge: ``app.state.qc_knowledge`` if set, else the shipped library
    with the hospital's ``MEDBRAIN_HOME/qc/overrides.yaml`` (re-read when it changes)."""
    configured = getattr(request.app.state, "qc_knowledge", None)
    if isinstance(configured, QCKnowledge):
        return configured
    from medbrain.store import qc_workflow

    settings = getattr(request.app.state, "settings", None)
    home = getattr(settings, "home", None)
    return qc_workflow.hospital_knowledge(home) if home is not None else _default_knowledge()


def effective_knowledge_for(request: Request, session: Session) -> QCKnowledge:
    """What every QC run of the app uses: shipped rules, the hospital overrides of
    :func:`knowledge_for` and the enabled hospital rules of the rule editor."""
    from medbrain.store import qc_workflow

    return qc_workflow.effective_knowledge(session, knowledge_for(request))


def recheck_imported(
    request: Request, session: Session, user: Principal, encounter_ids: Sequence[int]
) -> None:
    """QC hook of the import path: re-check the stays whose documents an import changed,
    opening and closing defect notices in the import's own transaction."""
    if not encounter_ids:
        return
    from medbrain.store import qc_workflow

    settings = request.app.state.settings
    qc_workflow.recheck_after_import(
        session,
        encounter_ids,
        knowledge=effective_knowledge_for(request, session),
        zone=qc_workflow.zone_of(settings.timezone),
        actor=qc_workflow.Actor(user.username, user.role),
        lang=settings.default_lang,
        review_threshold=settings.review_threshold,
    )


def recheck_saved_document(
    request: Request, session: Session, user: Principal, document_id: int
) -> None:
    """QC hook of the note-save path: re-check the stay the saved document belongs to."""
    from medbrain.store.models import Document

    document = session.get(Document, document_id)
    if document is not None and document.encounter_id is not None:
        recheck_imported(request, session, user, [document.encounter_id])


@router.post(
    "/check",
    responses={422: {"description": "Invalid record; `field` names the offending element"}},
)
def check(
    request: Request,
    body: QCCheckRequest,
    _user: QCUser,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
    session: ReadSessionDep,
) -> dict[str, Any]:
    """Score the record and list its defects (DESIGN.md §3 shape) with the review queue."""
    knowledge = effective_knowledge_for(request, session)
    payload: Any = (
        body.bundle if body.bundle is not None else {"documents": body.documents, "meta": body.meta}
    )
    record = record_from_json(payload, "body", knowledge.vocabulary)
    when = None
    if body.now is not None:
        stamp = parse_stamp(body.now)
        if stamp is None:
            raise InputError("body", "now", f"not a date/time: {body.now!r}")
        when = stamp[0]
    report = check_record(
        record,
        knowledge,
        stage=body.stage,
        lang=lang,
        review_threshold=settings.review_threshold,
        now=when,
    )
    out = report.to_dict()
    auditor.record(
        "qc.check",
        "Record/adhoc",
        {
            "score": out["score"],
            "grade": out["grade"],
            "stage": body.stage,
            "defects": len(out["defects"]),
        },
    )
    return out
