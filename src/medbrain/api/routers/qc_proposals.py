"""Manual QC findings and mined candidate rules (issue 7 §6): pages and API.

=============================================  ==========================================
route                                          who
=============================================  ==========================================
``POST /qc/encounters/{id}/manual``            qc_officer, admin (record a manual finding)
``GET /qc/proposals``                          qc_officer, admin
``POST /qc/proposals/mine``                    qc_officer, admin
``POST /qc/proposals/{id}/approve|reject``     qc_officer, admin
``POST /api/v1/qc/encounters/{id}/manual``,    API twins
``GET /api/v1/qc/proposals``,
``POST /api/v1/qc/proposals/mine``,
``POST /api/v1/qc/proposals/{id}/approve``,
``POST /api/v1/qc/proposals/{id}/reject``
=============================================  ==========================================

The routes hold no logic: :mod:`medbrain.store.qc_proposals` records, mines and decides, and
every state change is audited there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from medbrain.api.deps import (
    LangDep,
    Principal,
    ReadSessionDep,
    RowId,
    SessionDep,
    SettingsDep,
    require_role,
)
from medbrain.api.routers import qc as qc_api
from medbrain.api.routers.ui import audit_read, page_router, redirect, render, ui_role
from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.qc.mining import NOTE_KINDS, PATTERNS
from medbrain.qc.registry import CATEGORIES
from medbrain.store import qc_proposals as qp
from medbrain.store import qc_workflow as wf
from medbrain.store.qc_models import PROPOSAL_STATUSES

router = page_router()
api = APIRouter(prefix="/api/v1/qc", tags=["qc"])

OfficerUser = Annotated[Principal, Depends(ui_role("qc_officer", "admin"))]
ApiOfficer = Annotated[Principal, Depends(require_role("qc_officer", "admin"))]


def _actor(user: Principal) -> wf.Actor:
    return wf.Actor(user.username, user.role)


def _now() -> datetime:
    return datetime.now(UTC)


class ManualIn(BaseModel):
    note_kind: str = Field(examples=list(NOTE_KINDS))
    section: str = Field(default="", max_length=64)
    pattern: str = Field(examples=list(PATTERNS))
    element: str = Field(max_length=128)
    category: str = Field(default="content", examples=list(CATEGORIES))
    message: str = Field(default="", max_length=500)


def _form(body: ManualIn) -> qp.ManualForm:
    return qp.ManualForm(
        body.note_kind, body.section, body.pattern, body.element, body.category, body.message
    )


@router.post("/qc/encounters/{encounter_id}/manual")
def manual_page(
    request: Request,
    encounter_id: RowId,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    settings: SettingsDep,
    note_kind: Annotated[str, Form(max_length=32)] = "",
    section: Annotated[str, Form(max_length=64)] = "",
    pattern: Annotated[str, Form(max_length=24)] = "",
    element: Annotated[str, Form(max_length=128)] = "",
    category: Annotated[str, Form(max_length=32)] = "content",
    message: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    body = ManualIn(
        note_kind=note_kind,
        section=section,
        pattern=pattern,
        element=element,
        category=category,
        message=message,
    )
    try:
        qp.record_manual(
            session,
            encounter_id,
            _form(body),
            _actor(user),
            _now(),
            qc_api.effective_knowledge_for(request, session),
            wf.zone_of(settings.timezone),
            lang,
        )
    except InputError as exc:
        session.rollback()
        return redirect(request, f"/qc/encounters/{encounter_id}?manual_error={exc.field}")
    return redirect(request, f"/qc/encounters/{encounter_id}?manual=1#qc-manual")


@api.post("/encounters/{encounter_id}/manual")
def manual_api(
    request: Request,
    encounter_id: RowId,
    body: ManualIn,
    user: ApiOfficer,
    session: SessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Record a manual finding (confirmed by the officer who records it)."""
    notice = qp.record_manual(
        session,
        encounter_id,
        _form(body),
        _actor(user),
        _now(),
        qc_api.effective_knowledge_for(request, session),
        wf.zone_of(settings.timezone),
        lang,
    )
    return {
        "id": notice.id,
        "encounter_id": notice.encounter_id,
        "kind": notice.kind,
        "category": notice.category,
        "message": notice.message,
        "evidence": notice.evidence,
        "verdict": notice.verdict,
    }


@router.get("/qc/proposals")
def proposals_page(
    request: Request,
    user: OfficerUser,
    session: ReadSessionDep,
    lang: LangDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    mined: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=64)] = None,
    tested: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    wanted = status if status in PROPOSAL_STATUSES else None
    rows = qp.list_proposals(session, wanted)
    audit_read(request, user, "qc.proposals.read", "QCRuleProposal", {"count": len(rows)})
    knowledge = qc_api.effective_knowledge_for(request, session)
    return render(
        request,
        "workbench/qc_proposals.html",
        {
            "rows": rows,
            "status": wanted,
            "statuses": PROPOSAL_STATUSES,
            "mined": mined,
            "error": error,
            "tested": tested,
            "kind_name": lambda key: knowledge.name(key, lang),
        },
        lang=lang,
        user=user,
    )


def _mine(request: Request, session: Any, user: Principal, settings: Any) -> qp.MineResult:
    return qp.mine_proposals(
        session,
        qc_api.effective_knowledge_for(request, session),
        _actor(user),
        _now(),
        wf.zone_of(settings.timezone),
    )


@router.post("/qc/proposals/mine")
def mine_page(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    result = _mine(request, session, user, settings)
    text = t("qc.proposal.mined", lang, **result.to_dict())
    return redirect(request, "/qc/proposals?" + urlencode({"mined": text}))


@router.post("/qc/proposals/{proposal_id}/approve")
def approve_page(
    request: Request,
    proposal_id: RowId,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    deduction: Annotated[float, Form(ge=0, le=100)] = 1.0,
) -> Response:
    try:
        _, results = qp.approve_proposal(
            session,
            proposal_id,
            _actor(user),
            _now(),
            qc_api.effective_knowledge_for(request, session),
            deduction=deduction,
            lang=lang,
        )
    except InputError as exc:
        session.rollback()
        return redirect(request, "/qc/proposals?" + urlencode({"error": exc.field}))
    fired = sum(1 for r in results if r.fired)
    return redirect(request, f"/qc/proposals?tested={len(results)}:{fired}")


@router.post("/qc/proposals/{proposal_id}/reject")
def reject_page(
    request: Request,
    proposal_id: RowId,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        qp.reject_proposal(session, proposal_id, _actor(user), _now(), reason, lang)
    except InputError as exc:
        session.rollback()
        return redirect(request, "/qc/proposals?" + urlencode({"error": exc.field}))
    return redirect(request, "/qc/proposals")


@api.get("/proposals")
def proposals_api(
    request: Request,
    user: ApiOfficer,
    session: ReadSessionDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    """Mined candidate rules with support, confidence and example stays."""
    if status is not None and status not in PROPOSAL_STATUSES:
        raise InputError("query", "status", f"must be one of {', '.join(PROPOSAL_STATUSES)}")
    rows = qp.list_proposals(session, status)
    audit_read(request, user, "qc.proposals.read", "QCRuleProposal", {"count": len(rows)})
    return {"proposals": [qp.proposal_json(r) for r in rows]}


@api.post("/proposals/mine")
def mine_api(
    request: Request, user: ApiOfficer, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return _mine(request, session, user, settings).to_dict()


class ApproveIn(BaseModel):
    deduction: float = Field(default=1.0, ge=0, le=100)


@api.post("/proposals/{proposal_id}/approve")
def approve_api(
    request: Request,
    proposal_id: RowId,
    user: ApiOfficer,
    session: SessionDep,
    lang: LangDep,
    body: ApproveIn | None = None,
) -> dict[str, Any]:
    """Approve: the proposal becomes a hospital rule, tested on the samples and enabled."""
    row, results = qp.approve_proposal(
        session,
        proposal_id,
        _actor(user),
        _now(),
        qc_api.effective_knowledge_for(request, session),
        deduction=(body or ApproveIn()).deduction,
        lang=lang,
    )
    return {
        **qp.proposal_json(row),
        "samples": len(results),
        "samples_fired": sum(1 for r in results if r.fired),
    }


class RejectIn(BaseModel):
    reason: str = Field(max_length=4000)


@api.post("/proposals/{proposal_id}/reject")
def reject_api(
    proposal_id: RowId,
    body: RejectIn,
    user: ApiOfficer,
    session: SessionDep,
    lang: LangDep,
) -> dict[str, Any]:
    row = qp.reject_proposal(session, proposal_id, _actor(user), _now(), body.reason, lang)
    return qp.proposal_json(row)
