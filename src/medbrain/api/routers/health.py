"""Liveness and readiness: the only JSON endpoints reachable without login."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from medbrain import __version__
from medbrain.store import migrate

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready")
def ready(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is at the latest migration."""
    engine = request.app.state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.is_current(engine)
    except Exception as exc:  # any driver error means "not ready", reported, not raised
        return JSONResponse(
            {"status": "unavailable", "database": type(exc).__name__}, status_code=503
        )
    if not current:
        return JSONResponse(
            {"status": "unavailable", "database": "schema not migrated"}, status_code=503
        )
    return JSONResponse({"status": "ready", "database": engine.dialect.name})
