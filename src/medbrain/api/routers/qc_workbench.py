"""QC workflow pages and API: defect notices, the in-stay scheduler, dashboard, rule editor.

=============================================  ==========================================
route                                          who
=============================================  ==========================================
``GET /qc/notices``                            doctor (own notices), qc_officer, admin (all)
``POST /qc/notices/{id}/justify``              doctor, qc_officer, admin
``POST /qc/notices/{id}/reopen``               qc_officer, admin
``POST /qc/notices/{id}/verdict``              qc_officer, admin (confirm / false positive)
``POST /qc/scan``                              qc_officer, admin (run the scheduler now)
``GET /qc/dashboard``                          qc_officer, admin
``GET /qc/rules``, ``POST /qc/rules``,         qc_officer, admin
``POST /qc/rules/validate``,
``POST /qc/rules/{rule_id}/test|enable|disable``
``GET /api/v1/qc/notices``,                    API twins of the notice list, justify, scan
``POST /api/v1/qc/notices/{id}/justify``,
``POST /api/v1/qc/scan``,
``POST /api/v1/qc/notices/{id}/verdict``,      qc_officer, admin
``GET /api/v1/qc/precision``
=============================================  ==========================================

The background scheduler (:func:`install`) runs :func:`medbrain.store.qc_workflow.scan_in_stay`
every ``MEDBRAIN_QC_SCHEDULE_SECONDS`` (0 disables) inside the app's lifespan. The routes hold
no clinical logic: they call the store workflow and render.

References
----------
Issue 7 (closed loop, in-process reminders, dashboard, low-code rules); STYLE.md §5.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

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
from medbrain.core.config import Settings
from medbrain.core.errors import InputError
from medbrain.qc.dsl import ExpressionError
from medbrain.qc.facts import help_rows
from medbrain.qc.registry import CATEGORIES
from medbrain.store import models as m
from medbrain.store import qc_workflow as wf
from medbrain.store.qc_models import QCNotice

log = logging.getLogger("medbrain.qc")


router = page_router()
api = APIRouter(prefix="/api/v1/qc", tags=["qc"])


NoticeUser = Annotated[Principal, Depends(ui_role("doctor", "qc_officer", "admin"))]
OfficerUser = Annotated[Principal, Depends(ui_role("qc_officer", "admin"))]
ApiNoticeUser = Annotated[Principal, Depends(require_role("doctor", "qc_officer", "admin"))]
ApiOfficer = Annotated[Principal, Depends(require_role("qc_officer", "admin"))]

STATUSES = ("open", "overdue", "fixed", "justified")


def _actor(user: Principal) -> wf.Actor:
    return wf.Actor(user.username, user.role)


def _now() -> datetime:
    return datetime.now(UTC)


# -- notices ---------------------------------------------------------------------------------


def _notice_rows(
    session: Session, user: Principal, status: str | None, encounter: int | None
) -> list[dict[str, Any]]:
    now = _now()
    mine = user.role == "doctor"
    stored_status = "open" if status == "overdue" else status
    rows = wf.list_notices(
        session,
        user=user.username if mine else None,
        status=stored_status,
        encounter_id=encounter,
        include_review=not mine,
    )
    out: list[dict[str, Any]] = []
    encounters = {
        e.id: e
        for e in session.scalars(
            select(m.Encounter).where(m.Encounter.id.in_({r.encounter_id for r in rows}))
        )
    }
    patients = {
        p.id: p
        for p in session.scalars(
            select(m.Patient).where(m.Patient.id.in_({r.patient_id for r in rows}))
        )
    }
    for row in rows:
        state = wf.notice_state(row, now)
        if status == "overdue" and state != "overdue":
            continue
        out.append(
            {
                "n": row,
                "state": state,
                "encounter": encounters.get(row.encounter_id),
                "patient": patients.get(row.patient_id),
            }
        )
    return out


@router.get("/qc/notices")
def notices_page(
    request: Request,
    user: NoticeUser,
    session: ReadSessionDep,
    lang: LangDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    encounter: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """A doctor's QC notices (defects and due notes), or every notice for the QC officer."""
    status = status if status in STATUSES else None
    rows = _notice_rows(session, user, status, encounter)
    counts = wf.status_counts(session, _now()) if user.role != "doctor" else None
    audit_read(
        request,
        user,
        "qc.notices.read",
        "QCNotice",
        {
            "status": status,
            "count": len(rows),
            "encounters": sorted({r["n"].encounter_id for r in rows}),
        },
    )
    return render(
        request,
        "workbench/qc_notices.html",
        {"rows": rows, "status": status, "statuses": STATUSES, "counts": counts, "error": error},
        lang=lang,
        user=user,
    )


@router.post("/qc/notices/{notice_id}/justify")
def justify_page(
    request: Request,
    notice_id: RowId,
    user: NoticeUser,
    session: SessionDep,
    lang: LangDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    notice = session.get(QCNotice, notice_id)
    if (
        notice is not None
        and user.role == "doctor"
        and notice.responsible_user
        not in (
            None,
            user.username,
        )
    ):
        return redirect(request, "/qc/notices?error=forbidden")
    try:
        wf.justify(session, notice_id, _actor(user), reason, _now(), lang)
    except InputError as exc:
        session.rollback()
        return redirect(request, f"/qc/notices?error={exc.field}")
    return redirect(request, "/qc/notices")


@router.post("/qc/notices/{notice_id}/reopen")
def reopen_page(
    request: Request,
    notice_id: RowId,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        wf.reopen(session, notice_id, _actor(user), reason, _now(), lang)
    except InputError as exc:
        session.rollback()
        return redirect(request, f"/qc/notices?error={exc.field}")
    return redirect(request, "/qc/notices?status=open")


@router.post("/qc/notices/{notice_id}/verdict")
def verdict_page(
    request: Request,
    notice_id: RowId,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    verdict: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """The QC officer confirms a defect or rejects it as a false positive (reason required)."""
    try:
        wf.decide(session, notice_id, _actor(user), verdict, reason, _now(), lang)
    except InputError as exc:
        session.rollback()
        return redirect(request, f"/qc/notices?error={exc.field}")
    return redirect(request, "/qc/notices")


def run_scan(
    factory: sessionmaker[Session],
    settings: Settings,
    knowledge: Any,
    actor: wf.Actor | None = None,
    now: datetime | None = None,
) -> wf.ScanResult:
    """One scheduler pass in its own transaction (the background loop and the button)."""
    with factory() as session, session.begin():
        return wf.scan_in_stay(
            session,
            knowledge=knowledge,
            now=now or _now(),
            zone=wf.zone_of(settings.timezone),
            lang=settings.default_lang,
            actor=actor or wf.Actor(*wf.SYSTEM_USER),
        )


@router.post("/qc/scan")
def scan_page(request: Request, user: OfficerUser, settings: SettingsDep) -> Response:
    result = run_scan(
        request.app.state.session_factory,
        settings,
        qc_api.knowledge_for(request),
        _actor(user),
    )
    return redirect(
        request, f"/qc/notices?status=open&scanned={result.encounters}&due={result.due_soon}"
    )


@api.get("/notices")
def notices_api(
    request: Request,
    user: ApiNoticeUser,
    session: ReadSessionDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    encounter: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """Notices with their state (open, overdue, fixed, justified) and timestamps."""
    status = status if status in STATUSES else None
    rows = _notice_rows(session, user, status, encounter)
    audit_read(request, user, "qc.notices.read", "QCNotice", {"count": len(rows), "via": "api"})
    return {"notices": [_notice_json(r["n"], r["state"]) for r in rows]}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _notice_json(n: QCNotice, state: str) -> dict[str, Any]:
    return {
        "id": n.id,
        "encounter_id": n.encounter_id,
        "patient_id": n.patient_id,
        "kind": n.kind,
        "rule_id": n.rule_id,
        "category": n.category,
        "severity": n.severity,
        "message": n.message,
        "suggestion": n.suggestion,
        "evidence": n.evidence,
        "document": n.document,
        "quote": n.quote,
        "responsible": n.responsible,
        "responsible_user": n.responsible_user,
        "status": n.status,
        "state": state,
        "due_status": n.due_status,
        "due_at": _iso(n.due_at),
        "opened_at": _iso(n.opened_at),
        "last_seen_at": _iso(n.last_seen_at),
        "fixed_at": _iso(n.fixed_at),
        "justified_at": _iso(n.justified_at),
        "justified_by": n.justified_by,
        "justification": n.justification,
        "needs_review": n.needs_review,
        "verdict": n.verdict,
        "verdict_by": n.verdict_by,
        "verdict_at": _iso(n.verdict_at),
        "verdict_reason": n.verdict_reason,
    }


@api.post("/notices/{notice_id}/justify")
def justify_api(
    notice_id: RowId,
    user: ApiNoticeUser,
    session: SessionDep,
    lang: LangDep,
    body: dict[str, Any],
) -> dict[str, Any]:
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise InputError("body", "reason", "must be a string")
    row = wf.justify(session, notice_id, _actor(user), reason, _now(), lang)
    return _notice_json(row, row.status)


@api.post("/notices/{notice_id}/verdict")
def verdict_api(
    notice_id: RowId,
    user: ApiOfficer,
    session: SessionDep,
    lang: LangDep,
    body: dict[str, Any],
) -> dict[str, Any]:
    """``{"verdict": "confirmed" | "rejected", "reason": "..."}`` on a defect notice."""
    verdict, reason = body.get("verdict"), body.get("reason")
    if not isinstance(verdict, str):
        raise InputError("body", "verdict", "must be a string")
    if not isinstance(reason, str):
        raise InputError("body", "reason", "must be a string")
    row = wf.decide(session, notice_id, _actor(user), verdict, reason, _now(), lang)
    return _notice_json(row, row.status)


@api.get("/precision")
def precision_api(
    request: Request,
    user: ApiOfficer,
    session: ReadSessionDep,
    settings: SettingsDep,
    precision_below: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
) -> dict[str, Any]:
    """Per-rule confirmed/rejected counts and precision from the QC officer's verdicts."""
    threshold = settings.qc_precision_threshold if precision_below is None else precision_below
    rows = wf.rule_precision(session, threshold=threshold)
    audit_read(request, user, "qc.precision.read", "QCNotice", {"rules": len(rows)})
    return {"threshold": threshold, "rules": rows}


@api.post("/scan")
def scan_api(request: Request, user: ApiOfficer, settings: SettingsDep) -> dict[str, Any]:
    """Run the in-stay deadline scan once now (same as ``medbrain qc scan``)."""
    result = run_scan(
        request.app.state.session_factory, settings, qc_api.knowledge_for(request), _actor(user)
    )
    return result.to_dict()


# -- dashboard -------------------------------------------------------------------------------


@router.get("/qc/dashboard")
def dashboard_page(
    request: Request,
    user: OfficerUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
    bucket: Annotated[int, Query(ge=1, le=365)] = 1,
    precision_below: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
) -> Response:
    """Defect rate by department, doctor and rule; 甲级病历率; trend; links to the records;
    per-rule precision from the QC officer's verdicts (low ones highlighted)."""
    until = _now() + timedelta(seconds=1)
    since = (until - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    threshold = settings.qc_precision_threshold if precision_below is None else precision_below
    stats = wf.dashboard(
        session, since=since, until=until, bucket_days=bucket, precision_threshold=threshold
    )
    knowledge = qc_api.knowledge_for(request)
    audit_read(
        request,
        user,
        "qc.dashboard.read",
        "QCRun",
        {"days": days, "records": stats["records"]},
    )
    return render(
        request,
        "workbench/qc_dashboard.html",
        {
            "stats": stats,
            "days": days,
            "bucket": bucket,
            "counts": wf.status_counts(session, _now()),
            "scoring": knowledge.scoring,
        },
        lang=lang,
        user=user,
    )


# -- rule editor -----------------------------------------------------------------------------


class RuleFormIn(BaseModel):
    """The rule editor's form fields, as typed (validated by :func:`wf.validate_rule`)."""

    rule_id: str = Field("", max_length=4000)
    when: str = Field("", max_length=4000)
    category: str = Field("content", max_length=4000)
    severity: str = Field("warning", max_length=4000)
    deduction: str = Field("1", max_length=4000)
    message_zh: str = Field("", max_length=4000)
    message_en: str = Field("", max_length=4000)
    source: str = Field("", max_length=4000)

    def rule_form(self) -> wf.RuleForm:
        try:
            points = float(self.deduction)
        except ValueError:
            raise InputError("rule", "deduction", "must be a number") from None
        return wf.RuleForm(
            rule_id=self.rule_id,
            when=self.when,
            category=self.category,
            severity=self.severity,
            deduction=points,
            message_zh=self.message_zh,
            message_en=self.message_en,
            source=self.source,
        )


def _rules_page(
    request: Request,
    session: Session,
    user: Principal,
    lang: str,
    *,
    values: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    results: list[wf.SampleResult] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    rules = wf.list_rules(session)
    return render(
        request,
        "workbench/qc_rules.html",
        {
            "rules": rules,
            "values": values or {},
            "error": error,
            "results": results,
            "message": message,
            "categories": CATEGORIES,
            "reference": help_rows(),
        },
        lang=lang,  # type: ignore[arg-type]
        user=user,
        status_code=status_code,
    )


def _error_view(exc: InputError, when: str) -> dict[str, Any]:
    if isinstance(exc, ExpressionError):
        return {
            "field": "when",
            "problem": exc.problem,
            "position": exc.position + 1,
            "pointer": exc.pointer(when),
        }
    return {"field": exc.field, "problem": exc.problem, "position": None, "pointer": None}


@router.get("/qc/rules")
def rules_page(
    request: Request,
    user: OfficerUser,
    session: ReadSessionDep,
    lang: LangDep,
    edit: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    values: dict[str, Any] = {}
    if edit:
        rule = next((r for r in wf.list_rules(session) if r.rule_id == edit), None)
        if rule is not None:
            row = rule.row
            values = {
                "rule_id": rule.rule_id,
                "when": row["params"]["when"],
                "category": row["category"],
                "severity": row["severity"],
                "deduction": row["deduction"],
                "message_zh": row["message"]["zh"],
                "message_en": row["message"]["en"],
                "source": row["source"],
            }
    audit_read(request, user, "qc.rules.read", "QCRule", {"edit": edit})
    return _rules_page(request, session, user, lang, values=values)


@router.post("/qc/rules/validate")
def rules_validate(
    request: Request,
    user: OfficerUser,
    session: ReadSessionDep,
    lang: LangDep,
    fields: Annotated[RuleFormIn, Form()],
) -> Response:
    """Validate the form and run the rule on sample records, without saving anything."""
    values = fields.model_dump()
    try:
        row = wf.validate_rule(fields.rule_form(), lang)
        results = wf.run_rule_on_samples(row, wf.sample_records(), lang)
    except InputError as exc:
        return _rules_page(
            request,
            session,
            user,
            lang,
            values=values,
            error=_error_view(exc, fields.when),
            status_code=422,
        )
    return _rules_page(
        request, session, user, lang, values=values, results=results, message="valid"
    )


@router.post("/qc/rules")
def rules_save(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    lang: LangDep,
    fields: Annotated[RuleFormIn, Form()],
) -> Response:
    """Save (validated; a saved edit is disabled until it has been tested again)."""
    values = fields.model_dump()
    try:
        form = fields.rule_form()
        wf.save_rule(session, form, _actor(user), _now(), lang)
    except InputError as exc:
        session.rollback()
        return _rules_page(
            request,
            session,
            user,
            lang,
            values=values,
            error=_error_view(exc, fields.when),
            status_code=422,
        )
    return redirect(request, f"/qc/rules?edit={form.rule_id.strip()}")


@router.post("/qc/rules/{rule_id}/test")
def rules_test(
    request: Request, rule_id: str, user: OfficerUser, session: SessionDep, lang: LangDep
) -> Response:
    rule, results = wf.try_rule(session, rule_id, _actor(user), _now(), wf.sample_records(), lang)
    session.flush()
    row = rule.row
    values = {
        "rule_id": rule.rule_id,
        "when": row["params"]["when"],
        "category": row["category"],
        "severity": row["severity"],
        "deduction": row["deduction"],
        "message_zh": row["message"]["zh"],
        "message_en": row["message"]["en"],
        "source": row["source"],
    }
    return _rules_page(
        request, session, user, lang, values=values, results=results, message="tested"
    )


@router.post("/qc/rules/{rule_id}/enable")
def rules_enable(
    request: Request, rule_id: str, user: OfficerUser, session: SessionDep, lang: LangDep
) -> Response:
    try:
        wf.set_rule_enabled(session, rule_id, True, _actor(user), _now(), lang)
    except InputError as exc:
        session.rollback()
        return _rules_page(
            request,
            session,
            user,
            lang,
            error={"field": exc.field, "problem": exc.problem, "position": None, "pointer": None},
            status_code=409,
        )
    return redirect(request, "/qc/rules")


@router.post("/qc/rules/{rule_id}/disable")
def rules_disable(
    request: Request, rule_id: str, user: OfficerUser, session: SessionDep, lang: LangDep
) -> Response:
    wf.set_rule_enabled(session, rule_id, False, _actor(user), _now(), lang)
    return redirect(request, "/qc/rules")


# -- background scheduler --------------------------------------------------------------------


async def schedule_loop(app: FastAPI, seconds: int) -> None:
    """Run the scan every ``seconds`` (first run after one interval); errors are logged,
    never fatal to the app."""
    while True:
        await asyncio.sleep(seconds)
        try:
            knowledge = getattr(app.state, "qc_knowledge", None) or wf.hospital_knowledge(
                app.state.settings.home
            )
            result = await asyncio.to_thread(
                run_scan, app.state.session_factory, app.state.settings, knowledge
            )
            log.info(
                "qc scan",
                extra={"fields": {k: v for k, v in result.to_dict().items() if k != "items"}},
            )
        except Exception:  # an adapter loop: log and keep going (engines never do this)
            log.exception("qc scan failed")


def install(app: FastAPI) -> None:
    """Run :func:`schedule_loop` inside the app's lifespan (composed with any other)."""
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with previous(application) as state:
            seconds = application.state.settings.qc_schedule_seconds
            task = asyncio.create_task(schedule_loop(application, seconds)) if seconds > 0 else None
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan
