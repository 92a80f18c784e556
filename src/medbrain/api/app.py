"""Assemble the FastAPI application from its routers; no clinical logic lives here."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medbrain import __version__
from medbrain.api import problems
from medbrain.api.routers import (
    alert_tracking,
    alerts,
    auth,
    batch_runs,
    cds_hooks,
    dicomweb,
    docs,
    ed,
    ed_where,
    fhir,
    findings,
    health,
    insurance,
    notes,
    ops,
    patient_portal,
    patients,
    portal_help,
    qc,
    qc_proposals,
    qc_workbench,
    radiology_viewer,
    radiology_worklist,
    rx,
    rx_workbench,
    triage,
    ui,
    workbench,
)
from medbrain.core.config import Settings
from medbrain.core.i18n import t
from medbrain.store.db import make_read_session_factory
from medbrain.store.instance import open_instance

log = logging.getLogger("medbrain.access")


class BodySizeLimit:
    """Refuse request bodies over the configured limit with 413, before they are buffered.

    Checks the declared Content-Length and counts streamed chunks, so a chunked upload that
    lies about its size is cut off too.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # (path prefix, limit): DICOM uploads (/dicomweb, /radiology/upload) are larger.
        self.path_limits = path_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = next(
            (n for prefix, n in self.path_limits if scope["path"].startswith(prefix)),
            self.max_bytes,
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(send, max_bytes)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._reject(send, max_bytes)

    async def _reject(self, send: Send, max_bytes: int) -> None:
        limit_mb = max_bytes // (1024 * 1024)
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Payload too large",
                "status": 413,
                "detail": f"{t('error.too_large', 'zh', limit_mb=limit_mb)} / {t('error.too_large', 'en', limit_mb=limit_mb)}",
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", problems.PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class JsonFormatter(logging.Formatter):
    """One JSON object per line; callers pass fields through ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("medbrain")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    instance = open_instance(settings)
    engine = instance.engine
    app = FastAPI(
        title="MedBrain",
        version=__version__,
        description="Hospital AI brain: REST /api/v1, FHIR R4 facade /fhir, CDS Hooks /cds-services, web UI /.",
        # Served by routers/docs.py behind the login, with Swagger UI vendored (no CDN).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = instance.session_factory
    app.state.read_session_factory = make_read_session_factory(engine)
    problems.install(app)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Response:
        """Method, route template, status, duration and user id: no names, no query strings."""
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = request.scope.get("route")
        log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "route": getattr(route, "path", "unmatched"),
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": getattr(request.state, "user_id", None),
                }
            },
        )
        return response

    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_upload_bytes,
        path_limits=(
            ("/dicomweb/", settings.max_dicom_upload_bytes),
            ("/radiology/upload", settings.max_dicom_upload_bytes),
        ),
    )
    for router in (
        health.router,
        auth.router,
        alerts.router,
        rx.router,
        rx_workbench.router,
        fhir.router,
        cds_hooks.router,
        triage.router,
        qc.router,
        patients.router,
        findings.router,
        docs.router,
        ui.router,
        workbench.router,
        notes.api,
        notes.pages,
        alert_tracking.router,
        ed.api,
        ed.pages,
        ed_where.api,
        patient_portal.router,
        portal_help.router,
        radiology_viewer.api,
        radiology_viewer.pages,
        dicomweb.router,
        radiology_worklist.router,
        qc_workbench.router,
        qc_workbench.api,
        qc_proposals.router,
        qc_proposals.api,
        ops.api,
        ops.pages,
        insurance.api,
        insurance.pages,
        batch_runs.router,
        batch_runs.api,
    ):
        app.include_router(router)
    # Background loops (started and stopped with the app): radiology jobs, alert escalation,
    # in-stay QC deadlines.
    radiology_worklist.install(app)
    alert_tracking.install(app)
    qc_workbench.install(app)
    ui.install(app)
    return app
