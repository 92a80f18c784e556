"""Stored retrospective batch runs in the web app: prescriptions (/rx/batch, the pharmacist)
and discharged records (/qc/batch, the QC officer).

=============================================  ==========================================
route                                          who
=============================================  ==========================================
``GET /{kind}/batch``                          runs of the kind and the form to start one
``POST /{kind}/batch``                         start a run for a period (audited); 409 while
                                               one of the kind is queued or running
``GET /{kind}/batch/{id}``                     the run: progress, then its summary (audited)
``GET /{kind}/batch/{id}/progress``            the progress fragment htmx polls (not audited:
                                               it shows counts only)
``GET /{kind}/batch/{id}/export.csv|.xlsx``    the stored results (audited)
=============================================  ==========================================

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

from fastapi import Form, Path, Request
from fastapi.responses import Response

from medbrain.api.deps import LangDep, Principal, ReadSessionDep, SettingsDep
from medbrain.api.routers import qc as qc_api
from medbrain.api.routers import rx as rx_api
from medbrain.api.routers.ui import UiUser, audit_read, page_router, redirect, render
from medbrain.audit import chain
from medbrain.core.errors import ConflictError, InputError, PermissionDenied
from medbrain.core.i18n import t
from medbrain.store import batch_runs as store
from medbrain.store.batch_models import ACTIVE, BatchRun

router = page_router()

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
    """Start a run for the period (audited, committed before its background thread starts);
    409 while a run of the kind is active."""
    _allowed(kind, user, lang)
    first, last = store.parse_period(period_from, period_to)
    if engine not in store.WEB_ENGINES:
        raise InputError("form", "engine", f"must be one of {', '.join(store.WEB_ENGINES)}")
    scope = store.factory_scope(request.app.state.session_factory)
    with scope() as session:
        if kind == "rx":
            work = store.rx_work(
                rx_api.knowledge_for(request),
                lang=lang,
                threshold=settings.review_threshold,
                engine=engine,
            )
        else:
            work = store.qc_work(
                qc_api.effective_knowledge_for(request, session),
                lang=lang,
                threshold=settings.review_threshold,
                engine=engine,
            )
        try:
            run = store.start_run(
                session,
                kind=kind,
                first=first,
                last=last,
                who=user.username,
                params={"engine": engine, "lang": lang, "source": "web"},
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
