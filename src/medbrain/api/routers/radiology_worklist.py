"""Radiology worklist and zipped-series upload; the background detection worker's lifespan.

==================================  =========================================  ===================
route                               what                                       roles
==================================  =========================================  ===================
``GET /radiology``                  worklist page (+ upload form)              radiologist, admin
``GET /radiology/worklist/rows``    the table only (HTMX polling while a job   radiologist, admin
                                    runs)
``POST /radiology/upload``          zip of DICOM files (or one DICOM file)     radiologist, admin
``GET /api/v1/radiology/worklist``  the same rows as JSON                      radiologist, admin
==================================  =========================================  ===================

Each row links to ``/radiology/studies/{study_uid}`` (the viewer). Order: unsigned first, then
highest Lung-RADS category, then longest waiting. The upload streams to disk (Starlette spools
the multipart file), is checked by :mod:`medbrain.radiology.zipsafe` (traversal, symlinks, bombs,
size) before anything is stored, and is ingested as whole series (due without settling).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from medbrain.api.deps import (
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    require_role,
)
from medbrain.api.poll_audit import audit_poll
from medbrain.api.routers.ui import page_router, render, ui_role
from medbrain.core.config import Settings
from medbrain.core.i18n import Lang, t
from medbrain.radiology.zipsafe import ZipLimits, ZipRefused, extract_zip
from medbrain.store import radiology as store

ROLES = ("radiologist", "admin")
ACTIVE = ("received", "processing")


RadiologyUiUser = Annotated[Principal, Depends(ui_role(*ROLES))]
RadiologyApiUser = Annotated[Principal, Depends(require_role(*ROLES))]

pages = page_router()
api = APIRouter(prefix="/api/v1/radiology", tags=["radiology"])
router = APIRouter()


def since(received_at: datetime | None, now: datetime, lang: str) -> str:
    if received_at is None:
        return ""
    minutes = max(0, int((now - received_at).total_seconds() // 60))
    if minutes < 60:
        return t("radiology_ingest.minutes", lang, n=minutes)
    if minutes < 48 * 60:
        return t("radiology_ingest.hours", lang, n=minutes // 60)
    return t("radiology_ingest.days", lang, n=minutes // (24 * 60))


def _context(session: Any, settings: Settings, lang: Lang, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    rows = store.worklist(session)
    return {
        "rows": rows,
        "since": lambda r: since(r.received_at, now, lang),
        "error_text": lambda r: store.error_text(r.error, lang),
        "polling": any(r.status in ACTIVE for r in rows),
        "limit_mb": settings.max_dicom_upload_bytes // (1024 * 1024),
        "message": None,
        "error": None,
        **extra,
    }


@pages.get("/radiology")
def worklist_page(
    request: Request,
    user: RadiologyUiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
) -> Response:
    context = _context(session, settings, lang)
    audit_poll(
        request,
        user,
        "radiology.worklist.read",
        "ImagingStudy",
        {"rows": len(context["rows"]), "via": "page"},
        shown=_study_ids(context),
        force=True,
    )
    return render(request, "radiology/worklist.html", context, lang=lang, user=user)


def _study_ids(context: dict[str, Any]) -> list[object]:
    return [row.study_id for row in context["rows"]]


@pages.get("/radiology/worklist/rows")
def worklist_rows(
    request: Request,
    user: RadiologyUiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
) -> Response:
    """The table alone, polled by HTMX while something is received or processing. It shows
    patients, so it is audited, but once per user per window or when the studies shown change
    (:func:`medbrain.api.poll_audit.audit_poll`), not every 2 s."""
    context = _context(session, settings, lang)
    audit_poll(
        request,
        user,
        "radiology.worklist.read",
        "ImagingStudy",
        {"rows": len(context["rows"]), "via": "poll"},
        shown=_study_ids(context),
    )
    return render(request, "radiology/worklist_rows.html", context, lang=lang, user=user)


def _limits(settings: Settings) -> ZipLimits:
    return ZipLimits(
        max_members=settings.max_study_instances,  # a bigger zip is refused whole, not cut
        max_total_bytes=2 * settings.max_dicom_upload_bytes,
    )


def _ingest_upload(
    session: Any, settings: Settings, upload: UploadFile, user: Principal
) -> store.IngestResult:
    """Extract (or take) the uploaded file(s) and ingest them; temp files always removed."""
    work = settings.uploads_dir / "radiology" / uuid.uuid4().hex
    name = (upload.filename or "upload")[:120]
    try:
        upload.file.seek(0)
        head = upload.file.read(132)
        upload.file.seek(0)
        if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
            files = extract_zip(upload.file, work, name, _limits(settings))
        elif head[128:132] == b"DICM":
            work.mkdir(parents=True, exist_ok=True)
            single = work / "00000.dcm"
            with open(single, "wb") as out:
                shutil.copyfileobj(upload.file, out)
            files = [single]
        else:
            raise ZipRefused(name, "radiology_ingest.not_zip", name)
        return store.ingest_instances(
            session,
            settings,
            files,
            source="upload",
            actor=(user.username, user.role),
            complete=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pages.post("/radiology/upload")
async def upload(
    request: Request,
    user: RadiologyUiUser,
    session: SessionDep,
    settings: SettingsDep,
    lang: LangDep,
) -> Response:
    form = await request.form()
    file = form.get("file")
    status = 200
    message = error = None
    if not isinstance(file, UploadFile) or not file.filename:
        error, status = t("radiology_ingest.upload_missing", lang), 422
    else:
        try:
            result = await run_in_threadpool(_ingest_upload, session, settings, file, user)
        except ZipRefused as exc:
            error, status = f"{t(exc.key, lang)} ({exc.detail[:120]})", 422
        else:
            if not result.stored:
                reasons = "; ".join(sorted({f.text(lang) for f in result.failed}))
                error, status = f"{t('radiology_ingest.no_instances', lang)}: {reasons}", 422
            else:
                message = t(
                    "radiology_ingest.upload_done",
                    lang,
                    stored=result.new_count,
                    duplicates=result.duplicate_count,
                    failed=len(result.failed),
                )
                if result.failed:
                    reasons = "; ".join(sorted({f.text(lang) for f in result.failed}))
                    message = f"{message} — {reasons}"
                worker = getattr(request.app.state, "radiology_worker", None)
                if worker is not None:
                    worker.wake()
    session.flush()
    context = _context(session, settings, lang, message=message, error=error)
    return render(
        request, "radiology/worklist.html", context, lang=lang, user=user, status_code=status
    )


@api.get("/worklist", summary="Radiology worklist (studies received as DICOM)")
def worklist_json(
    user: RadiologyApiUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    lang: LangDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    now = datetime.now(UTC)
    rows = store.worklist(session, limit=limit)
    auditor.record("radiology.worklist.read", "ImagingStudy", {"rows": len(rows)})
    return JSONResponse({"studies": [r.to_dict(lang, now) for r in rows]})


router.include_router(pages)
router.include_router(api)


def install(app: FastAPI) -> None:
    """Run the detection worker for the app's lifetime (``MEDBRAIN_RADIOLOGY_WORKER=0``: off)."""
    settings: Settings = app.state.settings
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        worker = None
        if settings.radiology_worker:
            worker = store.RadiologyWorker(app.state.session_factory, settings)
            worker.start()
            app.state.radiology_worker = worker
        try:
            async with inner(application) as state:
                yield state
        finally:
            if worker is not None:
                worker.stop()
                app.state.radiology_worker = None

    app.router.lifespan_context = lifespan
