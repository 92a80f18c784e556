"""``/api/v1/findings``: the caller's inbox and decisions on findings (DESIGN.md §2).

A finding lands in one role's inbox (``target_role``). Each clinical role sees and decides its
own inbox; an administrator sees and may decide every inbox; a ``patient`` account has none.
Deciding is done by :func:`medbrain.store.findings.decide`, which refuses a second decision
(409) and an override without a reason (422) and writes the audit entry itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from medbrain.api.deps import (
    JsonContent,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    RowId,
    SessionDep,
    require_role,
)
from medbrain.api.routers.patients import no_store
from medbrain.api.schemas import DecisionIn, FindingListOut, FindingOut
from medbrain.api.security import CLINICAL_ROLES
from medbrain.core.errors import PermissionDenied
from medbrain.core.findings import FindingStatus
from medbrain.core.i18n import t
from medbrain.store import findings as store

router = APIRouter(
    prefix="/api/v1/findings",
    tags=["findings"],
    responses={
        401: {"description": "Not logged in"},
        403: {"description": "Role not allowed, or missing CSRF token on a cookie request"},
    },
)

Clinician = Annotated[Principal, Depends(require_role(*CLINICAL_ROLES))]


def inbox_role(principal: Principal) -> str | None:
    """The ``target_role`` whose findings the caller works on; ``None`` means every role."""
    return None if principal.role == "admin" else principal.role


def ensure_may_decide(principal: Principal, finding: store.FindingView, lang: str) -> None:
    role = inbox_role(principal)
    if role is not None and finding.target_role != role:
        raise PermissionDenied(t("error.forbidden", lang))


@router.get("", response_model=FindingListOut, dependencies=[Depends(no_store)])
def list_findings(
    principal: Clinician,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    status: Annotated[
        Literal["open", "accepted", "overridden", "dismissed", "all"],
        Query(description="Decision state to list; `all` for every state"),
    ] = "open",
    patient_id: Annotated[int | None, Query(ge=1, description="Only this patient's")] = None,
    limit: Annotated[int, Query(ge=1, le=store.INBOX_LIMIT_MAX)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FindingListOut:
    """The caller's role inbox, most severe first, findings needing review first within that."""
    items = store.list_findings(
        session,
        status=None if status == "all" else FindingStatus(status),
        target_role=inbox_role(principal),
        patient_id=patient_id,
        limit=limit,
        offset=offset,
    )
    auditor.record(
        "finding.list",
        "Finding",
        {"status": status, "count": len(items), "finding_ids": [f.id for f in items]},
    )
    return FindingListOut.model_validate(
        {"status": status, "count": len(items), "items": items}, from_attributes=True
    )


@router.post(
    "/{finding_id}/decision",
    response_model=FindingOut,
    responses={
        404: {"description": "No such finding"},
        409: {"description": "The finding was already decided"},
        415: {"description": "The body is not application/json"},
        422: {"description": "Invalid decision, e.g. an override without a reason"},
    },
)
def decide_finding(
    finding_id: RowId,
    principal: Clinician,
    _json: JsonContent,
    body: DecisionIn,
    session: SessionDep,
    lang: LangDep,
) -> FindingOut:
    """Accept, override (with a reason) or dismiss; the decision is audited with its reason."""
    ensure_may_decide(principal, store.get_finding(session, finding_id), lang)
    row = store.decide(
        session,
        finding_id,
        FindingStatus(body.status),
        store.Actor(username=principal.username, role=principal.role),
        datetime.now(UTC),
        body.reason,
        lang,
    )
    return FindingOut.model_validate(store.finding_view(row))
