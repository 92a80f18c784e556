"""Stored retrospective batch runs in the web app: prescriptions (/rx/batch, the pharmacist)
and discharged records (/qc/batch, the QC officer).

=============================================  ==========================================
route                                          who
=============================================  ==========================================
``GET /{kind}/batch``                          runs of the kind and the form to start one
``POST /{kind}/batch``                         start a run for a period (audited); 409 while
                                               one of the kind is queued or running
``GET /{kind}/batch/{id}``                     the run: progress, then its summary (audited)
``POST /{kind}/batch/{id}/resume``             a failed run goes on after its stored items
                                               (audited); 409 unless failed and none active
``GET /{kind}/batch/{id}/progress``            the progress fragment htmx polls (not audited:
                                               it shows counts only)
``GET /{kind}/batch/{id}/export.csv|.xlsx``    the stored results (audited)
=============================================  ==========================================

The same runs for other systems, with a bearer token (JSON):

=================================================  ======================================
``GET /api/v1/batch-runs/{kind}``                  the latest runs of the kind
``POST /api/v1/batch-runs/{kind}``                 ``{"from", "to", "engine"}``: start a run
                                                   (202, audited); 409 while one is active
``GET /api/v1/batch-runs/{kind}/{id}``             progress, then the summary
``POST /api/v1/batch-runs/{kind}/{id}/resume``      resume a failed run (202, audited)
``GET /api/v1/batch-runs/{kind}/{id}/items``       per-item results, ``offset``/``limit``
                                                   pages (audited: they name patients)
=================================================  ======================================

``kind`` is ``rx`` (pharmacist, admin) or ``qc`` (qc_officer, admin). A run executes in a
background thread (:func:`medbrain.store.batch_runs.start_background`) with the single-process
or process-pool engine, so the request that starts it returns at once.

References
----------
Issue 6 §6, issue 7 §5 and §7; STYLE.md §5 (pages hold no logic: they call the store).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Form, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from medbrain.api.deps import (
    CurrentUser,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    SettingsDep,
)
from medbrain.api.routers import qc as qc_api
from medbrain.api.routers import rx as rx_api
from medbrain.api.routers.ui import UiUser, audit_read, page_router, redirect, render
from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.core.errors import ConflictError, InputError, PermissionDenied
from medbrain.core.i18n import t
from medbrain.store import batch_runs as store
from medbrain.store.batch_models import ACTIVE, BatchItem, BatchRun

router = page_router()
api = APIRouter(prefix="/api/v1/batch-runs", tags=["batch runs"])

ROLES = {"rx": ("pharmacist", "admin"), "qc": ("qc_officer", "admin")}
Kind = Annotated[str, Path(pattern="^(rx|qc)$")]
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DateField = Annotated[str, Form(max_length=32)]
#: Seconds between two progress polls of the page.
POLL_SECONDS = 1


def _allowed(kind: str, user: Principal, lang: str) -> None:
    if user.role not in ROLES[kind]:
        raise PermissionDenied(t("error.forbidden", lang))


def _threads(request: Request) -> dict[int, threading.Thread]:
    threads: dict[int, threading.Thread] | None = getattr(request.app.state, "batch_threads", None)
    if threads is None:
        threads = {}
        request.app.state.batch_threads = threads
    return threads


def _today(zone: ZoneInfo) -> datetime:
    return datetime.now(UTC).astimezone(zone)


@router.get("/{kind}/batch")
def runs_page(
    request: Request,
    kind: Kind,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    _allowed(kind, user, lang)
    today = _today(ZoneInfo(settings.timezone)).date()
    return render(
        request,
        "batch/index.html",
        {
            "kind": kind,
            "runs": store.list_runs(session, kind),
            "active": store.active_run(session, kind),
            "default_from": (today - timedelta(days=30)).isoformat(),
            "default_to": today.isoformat(),
            "engines": store.WEB_ENGINES,
        },
        lang=lang,
        user=user,
    )


@router.post("/{kind}/batch")
def start_page(
    request: Request,
    kind: Kind,
    user: UiUser,
    lang: LangDep,
    settings: SettingsDep,
    period_from: Annotated[str, Form(alias="from", max_length=32)] = "",
    period_to: Annotated[str, Form(alias="to", max_length=32)] = "",
    engine: Annotated[str, Form(max_length=16)] = "process",
) -> Response:
    """Start a run for the period; 409 while a run of the kind is active."""
    run_id = start(request, kind, user, lang, settings, period_from, period_to, engine, "web")
    return redirect(request, f"/{kind}/batch/{run_id}")


def start(
    request: Request,
    kind: str,
    user: Principal,
    lang: str,
    settings: Settings,
    period_from: str,
    period_to: str,
    engine: str,
    source: str,
) -> int:
    """Start a run (audited, committed before its background thread starts) for the page and
    the API alike; returns its id."""
    _allowed(kind, user, lang)
    first, last = store.parse_period(period_from, period_to)
    if engine not in store.WEB_ENGINES:
        raise InputError("form", "engine", f"must be one of {', '.join(store.WEB_ENGINES)}")
    scope = store.factory_scope(request.app.state.session_factory)
    with scope() as session:
        work = _work(request, session, kind, lang, settings, engine)
        try:
            run = store.start_run(
                session,
                kind=kind,
                first=first,
                last=last,
                who=user.username,
                params={"engine": engine, "lang": lang, "source": source},
            )
        except ConflictError:
            raise ConflictError("form", "run", t("batch.busy", lang)) from None
        chain.append(
            session,
            who=user.username,
            role=user.role,
            action="batch.run.start",
            resource=f"BatchRun/{run.id}",
            detail={"kind": kind, "from": str(first), "to": str(last), "engine": engine},
        )
        run_id = run.id
    _threads(request)[run_id] = store.start_background(
        request.app.state.session_factory, run_id, ZoneInfo(settings.timezone), work
    )
    return run_id


def resume(
    request: Request, kind: str, run_id: int, user: Principal, lang: str, settings: Settings
) -> None:
    """Resume a failed run (audited) with the engine and language it was started with; it
    goes on after its stored items."""
    _allowed(kind, user, lang)
    scope = store.factory_scope(request.app.state.session_factory)
    with scope() as session:
        run = store.get_run(session, run_id, kind)
        if run.status != "failed":
            raise ConflictError("form", "run", t("batch.not_failed", lang))
        params = run.params or {}
        engine = str(params.get("engine") or "process")
        if engine not in store.WEB_ENGINES:  # started from the command line, e.g. on Ray
            engine = "process"
        run_lang = str(params.get("lang") or lang)
        work = _work(request, session, kind, run_lang, settings, engine)
        try:
            store.resume_run(session, run_id, kind)
        except ConflictError:
            raise ConflictError("form", "run", t("batch.busy", lang)) from None
        chain.append(
            session,
            who=user.username,
            role=user.role,
            action="batch.run.resume",
            resource=f"BatchRun/{run_id}",
            detail={"kind": kind, "stored": run.done, "engine": engine},
        )
    _threads(request)[run_id] = store.start_background(
        request.app.state.session_factory, run_id, ZoneInfo(settings.timezone), work
    )


def _work(
    request: Request, session: Any, kind: str, lang: str, settings: Settings, engine: str
) -> store.Work:
    if kind == "rx":
        return store.rx_work(
            rx_api.knowledge_for(request),
            lang=lang,
            threshold=settings.review_threshold,
            engine=engine,
        )
    return store.qc_work(
        qc_api.effective_knowledge_for(request, session),
        lang=lang,
        threshold=settings.review_threshold,
        engine=engine,
    )


@router.post("/{kind}/batch/{run_id}/resume")
def resume_page(
    request: Request,
    kind: Kind,
    run_id: RunId,
    user: UiUser,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Resume a failed run; 409 when it is not failed or another run of the kind is active."""
    resume(request, kind, run_id, user, lang, settings)
    return redirect(request, f"/{kind}/batch/{run_id}")


def _context(run: BatchRun) -> dict[str, Any]:
    return {
        "run": run,
        "kind": run.kind,
        "view": store.run_view(run),
        "polling": run.status in ACTIVE,
        "poll_seconds": POLL_SECONDS,
    }


@router.get("/{kind}/batch/{run_id}")
def run_page(
    request: Request,
    kind: Kind,
    run_id: RunId,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    _allowed(kind, user, lang)
    run = store.get_run(session, run_id, kind)
    audit_read(
        request, user, "batch.run.read", f"BatchRun/{run.id}", {"kind": kind, "status": run.status}
    )
    return render(request, "batch/run.html", _context(run), lang=lang, user=user)


@router.get("/{kind}/batch/{run_id}/progress")
def progress_fragment(
    request: Request,
    kind: Kind,
    run_id: RunId,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    """Counts only (no patient data), polled every second while the run is active: no audit
    entry per poll."""
    _allowed(kind, user, lang)
    run = store.get_run(session, run_id, kind)
    return render(request, "batch/_progress.html", _context(run), lang=lang, user=user)


def _export(
    request: Request, kind: str, run_id: int, user: Principal, session: Any, lang: str, fmt: str
) -> Response:
    _allowed(kind, user, lang)
    run = store.get_run(session, run_id, kind)
    if run.status != "done":
        raise InputError("batch", "status", f"batch run {run_id} is {run.status}, not done")
    if fmt == "csv":
        data, media = store.export_csv(session, run), "text/csv; charset=utf-8"
    else:
        data = store.export_xlsx(session, run)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    audit_read(
        request,
        user,
        "batch.run.export",
        f"BatchRun/{run.id}",
        {"kind": kind, "format": fmt, "items": run.done},
    )
    name = f"{kind}-batch-{run.id}-{run.period_from}-{run.period_to}.{fmt}"
    return Response(
        data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/{kind}/batch/{run_id}/export.csv")
def export_csv(
    request: Request,
    kind: Kind,
    run_id: RunId,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    return _export(request, kind, run_id, user, session, lang, "csv")


@router.get("/{kind}/batch/{run_id}/export.xlsx")
def export_xlsx(
    request: Request,
    kind: Kind,
    run_id: RunId,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    return _export(request, kind, run_id, user, session, lang, "xlsx")


# -- JSON API ----------------------------------------------------------------------------------

#: Items per page of ``/items`` at most.
MAX_ITEMS_PAGE = 1000


@api.get("/{kind}")
def list_runs_api(
    kind: Kind, user: CurrentUser, session: ReadSessionDep, lang: LangDep
) -> dict[str, Any]:
    _allowed(kind, user, lang)
    return {"runs": [store.run_view(run) for run in store.list_runs(session, kind)]}


@api.post("/{kind}", status_code=202)
def start_api(
    request: Request,
    kind: Kind,
    user: CurrentUser,
    lang: LangDep,
    settings: SettingsDep,
    period_from: Annotated[str, Body(alias="from", max_length=32)],
    period_to: Annotated[str, Body(alias="to", max_length=32)],
    engine: Annotated[str, Body(max_length=16)] = "process",
) -> JSONResponse:
    """Queue a run for the period; poll ``Location`` for its progress and summary."""
    run_id = start(request, kind, user, lang, settings, period_from, period_to, engine, "api")
    with request.app.state.session_factory() as session:
        view = store.run_view(store.get_run(session, run_id, kind))
    return JSONResponse(
        view, status_code=202, headers={"Location": f"/api/v1/batch-runs/{kind}/{run_id}"}
    )


@api.post("/{kind}/{run_id}/resume", status_code=202)
def resume_api(
    request: Request,
    kind: Kind,
    run_id: RunId,
    user: CurrentUser,
    lang: LangDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Resume a failed run after its stored items; poll ``Location`` as for a new run."""
    resume(request, kind, run_id, user, lang, settings)
    with request.app.state.session_factory() as session:
        view = store.run_view(store.get_run(session, run_id, kind))
    return JSONResponse(
        view, status_code=202, headers={"Location": f"/api/v1/batch-runs/{kind}/{run_id}"}
    )


@api.get("/{kind}/{run_id}")
def run_api(
    kind: Kind, run_id: RunId, user: CurrentUser, session: ReadSessionDep, lang: LangDep
) -> dict[str, Any]:
    """Counts and the summary by department, doctor, category and rule (no patient names)."""
    _allowed(kind, user, lang)
    return store.run_view(store.get_run(session, run_id, kind))


def _item(item: BatchItem) -> dict[str, Any]:
    return {
        "seq": item.seq,
        "key": item.item_key,
        "encounter_id": item.encounter_id,
        "patient_id": item.patient_id,
        "department": item.department,
        "doctor": item.doctor,
        "verdict": item.verdict,
        "grade": item.grade,
        "score": item.score,
        "flagged": item.flagged,
        "categories": item.categories or [],
        "rules": item.rules or [],
        "findings": item.findings or [],
        "error": item.error,
    }


@api.get("/{kind}/{run_id}/items")
def items_api(
    kind: Kind,
    run_id: RunId,
    user: CurrentUser,
    session: ReadSessionDep,
    lang: LangDep,
    auditor: ReadAuditDep,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS_PAGE)] = 100,
    flagged: Annotated[bool, Query(description="only items with a finding")] = False,
) -> dict[str, Any]:
    """A page of the stored results in input order; ``next_offset`` is null on the last page."""
    _allowed(kind, user, lang)
    run = store.get_run(session, run_id, kind)
    rows = store.item_page(session, run.id, offset=offset, limit=limit, flagged_only=flagged)
    auditor.record(
        "batch.run.items",
        f"BatchRun/{run.id}",
        {"kind": kind, "offset": offset, "items": len(rows), "flagged": flagged},
    )
    more = len(rows) == limit
    return {
        "run": store.run_view(run),
        "items": [_item(item) for item in rows],
        "next_offset": offset + len(rows) if more else None,
    }
