"""Tracked alerts (危急值闭环): the nurse's and doctor's list, acknowledgement, escalation.

=====================================================  ==========================================
route                                                  what
=====================================================  ==========================================
``GET /api/v1/alerts/tracked``                         tracked alerts (``status``, ``department``)
``POST /api/v1/alerts/tracked/{id}/acknowledge``       acknowledge (nurse, doctor, admin)
``POST /api/v1/alerts/tracked/{id}/handle``            record the action taken (doctor, admin)
``GET /api/v1/alerts/stats``                           on-time rates (cockpit: 危急值处置及时率)
``GET /alerts/my``                                     page: my unacknowledged alerts (htmx ack)
``POST /alerts/tracked/{id}/ack``, ``.../handle``      page actions (CSRF, htmx fragment)
``GET /alerts/escalations``                            page: alerts escalated past their limit
=====================================================  ==========================================

The escalation loop runs in the app's lifespan every ``MEDBRAIN_ALERT_ESCALATION_SECONDS``
(0 disables it; ``medbrain alerts escalate`` runs one pass). Every acknowledgement, action and
escalation is written to the audit chain (see :mod:`medbrain.store.alert_tracking`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker

from medbrain.alerts.record import parse_time
from medbrain.api.deps import (
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    RowId,
    SessionDep,
    require_role,
)
from medbrain.api.routers import alerts as alerts_api
from medbrain.api.routers.ui import audit_read, page_router, render, ui_role
from medbrain.core.errors import ConflictError, InputError, PermissionDenied
from medbrain.core.i18n import t
from medbrain.store import alert_tracking as store
from medbrain.store import patients as patients_store

log = logging.getLogger("medbrain.alerts.escalation")

ACK_ROLES = ("nurse", "doctor", "admin")
HANDLE_ROLES = ("doctor", "admin")
STATUSES = ("open", "acknowledged", "handled")

api = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


pages = page_router()
router = APIRouter()

Acknowledger = Annotated[Principal, Depends(require_role(*ACK_ROLES))]
Handler = Annotated[Principal, Depends(require_role(*HANDLE_ROLES))]
StatsUser = Annotated[Principal, Depends(require_role("doctor", "nurse", "admin", "director"))]


def _actor(user: Principal) -> store.Actor:
    return store.Actor(username=user.username, role=user.role)


def _optional_time(name: str, raw: str | None) -> datetime | None:
    return None if raw is None else parse_time("query", name, raw)


# -- API ----------------------------------------------------------------------------------------


@api.get("/tracked")
def list_tracked(
    user: Acknowledger,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    status: Annotated[list[str] | None, Query(description="open|acknowledged|handled")] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    escalated: bool = False,
    patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=store.LIST_LIMIT_MAX)] = 100,
) -> dict[str, Any]:
    """Tracked alerts, the one waiting longest first."""
    statuses = status or ["open"]
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise InputError("query", "status", f"must be one of {', '.join(STATUSES)}, got {bad}")
    items = store.list_alerts(
        session,
        statuses=statuses,
        department=department,
        escalated_only=escalated,
        patient_id=patient_id,
        limit=limit,
    )
    auditor.record(
        "alert.list", "TrackedAlert", {"count": len(items), "ids": [i.id for i in items]}
    )
    now = datetime.now(UTC)
    return {
        "now": now.isoformat(),
        "alerts": [i.to_dict() | {"overdue": i.overdue(now)} for i in items],
    }


@api.get("/tracked/{alert_id}")
def get_tracked(
    alert_id: RowId, user: Acknowledger, session: ReadSessionDep, auditor: ReadAuditDep
) -> dict[str, Any]:
    """One tracked alert with its history (raised, escalated, acknowledged, handled)."""
    view = store.get_alert(session, alert_id)
    auditor.record("alert.read", f"TrackedAlert/{alert_id}", {"patient_id": view.patient_id})
    return view.to_dict() | {"events": store.alert_events(session, alert_id)}


@api.post("/tracked/{alert_id}/acknowledge", responses={409: {"description": "Already done"}})
def acknowledge_api(
    alert_id: RowId, user: Acknowledger, session: SessionDep, lang: LangDep
) -> dict[str, Any]:
    """Acknowledge receipt (who and when are recorded and audited)."""
    row = store.acknowledge(session, alert_id, _actor(user), datetime.now(UTC), lang)
    return store.alert_view(row).to_dict()


@api.post("/tracked/{alert_id}/handle", responses={409: {"description": "Already handled"}})
def handle_api(
    alert_id: RowId,
    user: Handler,
    session: SessionDep,
    lang: LangDep,
    body: Annotated[dict[str, Any], Body(examples=[{"action": "复查血钾, 予葡萄糖酸钙静推"}])],
) -> dict[str, Any]:
    """Record the action taken (required text); acknowledges too if nobody had."""
    action = body.get("action")
    if not isinstance(action, str):
        raise InputError("body", "action", "must be text")
    row = store.handle(session, alert_id, _actor(user), action, datetime.now(UTC), lang)
    return store.alert_view(row).to_dict()


@api.get("/stats")
def stats(
    request: Request,
    user: StatsUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    since: Annotated[str | None, Query(description="ISO 8601; alerts raised at or after")] = None,
    until: Annotated[str | None, Query(description="ISO 8601; alerts raised before")] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """On-time acknowledgement and handling rates (危急值处置及时率), counts, median minutes."""
    policy = store.policy_of(alerts_api.knowledge_for(request))
    result = store.alert_stats(
        session,
        policy,
        datetime.now(UTC),
        since=_optional_time("since", since),
        until=_optional_time("until", until),
        department=department,
    )
    auditor.record("alert.stats", "TrackedAlert", {"department": department})
    return result


# -- pages --------------------------------------------------------------------------------------


PageUser = Annotated[Principal, Depends(ui_role(*ACK_ROLES))]


def _page_context(session: Session, items: list[store.TrackedAlertView]) -> dict[str, Any]:
    patients = patients_store.patients_by_id(
        session, {i.patient_id for i in items}, today=datetime.now(UTC).date()
    )
    return {"patients": patients, "now": datetime.now(UTC)}


@pages.get("/alerts/my")
def my_alerts(request: Request, user: PageUser, session: ReadSessionDep, lang: LangDep) -> Response:
    """Open alerts of the user's department (every department for an administrator or a user
    without one), the one waiting longest first, each with an acknowledge button."""
    department = None if user.role == "admin" else store.user_department(session, user.user_id)
    items = store.list_alerts(session, statuses=("open",), department=department, limit=200)
    policy = store.policy_of(alerts_api.knowledge_for(request))
    stats_doc = store.alert_stats(session, policy, datetime.now(UTC), department=department)
    audit_read(
        request,
        user,
        "alert.list",
        "TrackedAlert",
        {"via": "ui", "count": len(items), "ids": [i.id for i in items]},
    )
    return render(
        request,
        "alerts/my.html",
        {
            "items": items,
            "department": department,
            "stats": stats_doc["critical_value"],
            **_page_context(session, items),
        },
        lang=lang,
        user=user,
    )


@pages.get("/alerts/escalations")
def escalations(
    request: Request, user: PageUser, session: ReadSessionDep, lang: LangDep
) -> Response:
    """Alerts nobody acknowledged in time, with who has been notified at each level."""
    department = None if user.role == "admin" else store.user_department(session, user.user_id)
    items = store.list_alerts(
        session, statuses=("open",), department=department, escalated_only=True, limit=200
    )
    audit_read(
        request,
        user,
        "alert.list",
        "TrackedAlert",
        {"via": "ui", "escalated": True, "count": len(items)},
    )
    return render(
        request,
        "alerts/escalations.html",
        {"items": items, "department": department, **_page_context(session, items)},
        lang=lang,
        user=user,
    )


def _row_response(
    request: Request,
    session: Session,
    user: Principal,
    lang: Any,
    alert_id: int,
    error: str | None,
    status_code: int,
) -> Response:
    view = store.get_alert(session, alert_id)
    return render(
        request,
        "alerts/_row.html",
        {"a": view, "error": error, **_page_context(session, [view])},
        lang=lang,
        user=user,
        status_code=status_code,
    )


@pages.post("/alerts/tracked/{alert_id}/ack")
def acknowledge_page(
    request: Request,
    alert_id: RowId,
    user: PageUser,
    session: SessionDep,
    lang: LangDep,
) -> Response:
    """Acknowledge from the list; htmx gets the updated row."""
    error, status_code = None, 200
    try:
        store.acknowledge(session, alert_id, _actor(user), datetime.now(UTC), lang)
    except ConflictError as exc:
        error, status_code = exc.problem, 409
    return _row_response(request, session, user, lang, alert_id, error, status_code)


@pages.post("/alerts/tracked/{alert_id}/handle")
def handle_page(
    request: Request,
    alert_id: RowId,
    user: PageUser,
    session: SessionDep,
    lang: LangDep,
    action: Annotated[str, Form(max_length=store.ACTION_MAX_CHARS)] = "",
) -> Response:
    """Record the action taken (doctor, admin); htmx gets the updated row."""
    if user.role not in HANDLE_ROLES:
        raise PermissionDenied(t("error.forbidden", lang))
    error, status_code = None, 200
    try:
        store.handle(session, alert_id, _actor(user), action, datetime.now(UTC), lang)
    except ConflictError as exc:
        error, status_code = exc.problem, 409
    except InputError as exc:
        error, status_code = exc.problem, 422
    return _row_response(request, session, user, lang, alert_id, error, status_code)


def track_after_import(
    request: Request, session: Session, user: Principal, result: Any, bundle: Any
) -> store.TrackSummary:
    """The FHIR import hook: evaluate and track alerts of the patients the import touched."""
    settings = request.app.state.settings
    return store.track_import_alerts(
        session,
        result.patient_ids,
        bundle,
        alerts_api.knowledge_for(request),
        now=datetime.now(UTC),
        origin=f"fhir.import {result.bundle}",
        who=user.username,
        role=user.role,
        lang=settings.default_lang,
        review_threshold=settings.review_threshold,
    )


router.include_router(api)
router.include_router(pages)


# -- background escalation ------------------------------------------------------------------------


async def escalation_loop(
    factory: sessionmaker[Session], app: FastAPI, interval_seconds: float
) -> None:
    """Every ``interval_seconds``: one escalation pass; errors are logged, the loop goes on."""
    from medbrain.alerts import AlertKnowledge, load_alert_knowledge

    while True:
        await asyncio.sleep(interval_seconds)
        configured = getattr(app.state, "alert_knowledge", None)
        knowledge = (
            configured if isinstance(configured, AlertKnowledge) else load_alert_knowledge(None)
        )
        try:
            done = await asyncio.to_thread(
                store.run_escalation, factory, store.policy_of(knowledge), datetime.now(UTC)
            )
        except Exception:  # an adapter loop: one failed pass must not stop the next
            log.exception("escalation pass failed")
            continue
        if done:
            log.info("escalated", extra={"fields": {"count": len(done)}})


def install(app: FastAPI) -> None:
    """Run :func:`escalation_loop` inside the app's lifespan (composed with any other)."""
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with previous(application) as state:
            seconds = application.state.settings.alert_escalation_seconds
            task = None
            if seconds > 0:
                task = asyncio.create_task(
                    escalation_loop(application.state.session_factory, application, seconds)
                )
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan
