"""Errors as RFC 9457 ``application/problem+json``, translated once for the whole app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from medbrain.core.errors import (
    ConflictError,
    InputError,
    KnowledgeError,
    NotFoundError,
    PermissionDenied,
)
from medbrain.core.i18n import normalize_lang, t

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("medbrain.api")

HtmlErrorPage = Callable[[Request, int, str, str], Response]
"""Renders an error as a web page: ``(request, status, title, detail) -> Response``."""

HTML_ERRORS_STATE = "html_errors"
"""``request.state`` flag set by the web UI's routes: their errors are pages, not JSON."""


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _request_lang(request: Request) -> str:
    settings = getattr(request.app.state, "settings", None)
    default = normalize_lang(getattr(settings, "default_lang", "zh"))
    return normalize_lang(
        request.query_params.get("lang") or request.cookies.get("medbrain_lang"), default
    )


def _respond(
    request: Request,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """problem+json, or the web UI's error page when a UI route failed."""
    page: HtmlErrorPage | None = getattr(request.app.state, "html_error_page", None)
    response: Response
    if page is not None and getattr(request.state, HTML_ERRORS_STATE, False):
        response = page(request, status, title, detail)
    else:
        response = problem(status, title, detail, **extra)
    if headers:
        response.headers.update(headers)
    return response


def _validation_detail(error: Any, lang: str) -> str:
    """One sentence for the first error; malformed JSON says where the parser stopped."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        loc = error.get("loc") or ()
        position = loc[-1] if loc and isinstance(loc[-1], int) else None
        problem_text = reason if position is None else f"{reason} (position {position})"
        return t("error.invalid_json", lang, problem=problem_text)
    return f"{_loc(error['loc'])}: {error['msg']}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, exc: ConflictError) -> Response:
        return _respond(request, 409, "Conflict", str(exc), field=exc.field, source=exc.source)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        return _respond(request, 422, "Invalid input", str(exc), field=exc.field, source=exc.source)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return _respond(
            request,
            404,
            "Not found",
            t("error.not_found", _request_lang(request), resource=exc.resource),
        )

    @app.exception_handler(PermissionDenied)
    async def _forbidden(request: Request, exc: PermissionDenied) -> Response:
        return _respond(request, 403, "Forbidden", str(exc))

    @app.exception_handler(KnowledgeError)
    async def _configuration(request: Request, exc: KnowledgeError) -> Response:
        # A broken knowledge or hospital override file: the operator must fix the file it names.
        log.error("configuration error: %s", exc)
        return _respond(
            request,
            500,
            "Configuration error",
            t("error.configuration", _request_lang(request), problem=str(exc)),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Validation happens before writing, so a constraint violation here means a
        # concurrent request wrote the same row first (e.g. two imports of one new patient).
        return _respond(
            request, 409, "Conflict", t("error.concurrent_write", _request_lang(request))
        )

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> Response:
        if "locked" not in str(exc.orig).lower():
            raise exc
        return _respond(
            request,
            503,
            "Service unavailable",
            t("error.database_busy", _request_lang(request)),
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        return _respond(
            request,
            422,
            "Invalid input",
            _validation_detail(first, _request_lang(request)),
            errors=[{"field": _loc(e["loc"]), "problem": e["msg"]} for e in errors],
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _respond(
            request,
            exc.status_code,
            _TITLES.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Configuration error",
    503: "Service unavailable",
}
