"""The web UI: login, patient search, patient page, document reader, role inbox.

Server-rendered Jinja2 pages; HTMX (vendored in ``web/static``) swaps fragments for live
search, the document reader and inbox decisions. Every page needs a login: a browser without a
session is redirected to ``/login`` (an HTMX request gets 401 with ``HX-Redirect``). Forms carry
the session's CSRF token (``csrf_token`` field, or the ``X-CSRF-Token`` header that the page
sets for every HTMX request); the login form, which has no session yet, uses a double-submit
cookie. The routes only read and call repositories: no clinical logic lives here.

References
----------
OWASP Cheat Sheets: Session Management (cookie attributes), CSRF Prevention (synchronizer
token; double-submit cookie for the login form), Content Security Policy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

import medbrain
from medbrain.api.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    LangDep,
    Principal,
    ReadAuditor,
    ReadSessionDep,
    RowId,
    SessionDep,
    SettingsDep,
    ensure_patient_visible,
    get_principal,
    require_role,
)
from medbrain.api.problems import HTML_ERRORS_STATE
from medbrain.api.routers.auth import check_login, client_of
from medbrain.api.routers.findings import ensure_may_decide, inbox_role
from medbrain.api.security import csrf_matches, hash_token, issue_token
from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.core.errors import ConflictError, InputError, PermissionDenied
from medbrain.core.findings import FindingStatus
from medbrain.core.i18n import Lang, normalize_lang, t
from medbrain.knowledge.loaders import document_types
from medbrain.store import findings as findings_store
from medbrain.store import patients as patients_store
from medbrain.store.models import AuthSession
from medbrain.web.sparkline import sparkline

WEB_DIR = Path(medbrain.__file__).resolve().parent / "web"
LOGIN_CSRF_COOKIE = "medbrain_login_csrf"
DECISIONS = ("accepted", "overridden", "dismissed")

templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def mark_html(request: Request) -> None:
    """Errors raised by page routes are rendered as pages (see ``problems._respond``)."""
    setattr(request.state, HTML_ERRORS_STATE, True)


def page_router() -> APIRouter:
    """A router for web pages: left out of the OpenAPI schema, its errors shown as pages."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(mark_html)])


router = page_router()


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


async def ui_principal(request: Request, session: ReadSessionDep, lang: LangDep) -> Principal:
    """The logged-in user, or :class:`LoginRequired` (a redirect) instead of a bare 401."""
    try:
        return await get_principal(request, session, lang)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise LoginRequired from None
        raise


UiUser = Annotated[Principal, Depends(ui_principal)]


def ui_role(*roles: str) -> Callable[..., Principal]:
    """:func:`require_role` on the UI's user: no session → login page; wrong role → 403 page."""
    check = require_role(*roles)

    def dependency(user: UiUser, lang: LangDep) -> Principal:
        return check(user, lang)

    return dependency


# -- rendering -------------------------------------------------------------------------------


def _zone(settings: Settings) -> ZoneInfo | None:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _formatters(settings: Settings) -> dict[str, Any]:
    zone = _zone(settings)

    def local(value: datetime) -> datetime:
        return value.astimezone(zone) if zone is not None else value.astimezone(UTC)

    def fmt_dt(value: datetime | None) -> str:
        return "" if value is None else local(value).strftime("%Y-%m-%d %H:%M")

    def fmt_date(value: datetime | date | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = local(value).date()
        return value.isoformat()

    def fmt_num(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    return {"fmt_dt": fmt_dt, "fmt_date": fmt_date, "fmt_num": fmt_num}


def _safe_next(raw: str | None) -> str:
    """Only a local path may follow login or a language switch (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _lang_switch_url(request: Request, lang: Lang) -> str:
    params = dict(request.query_params)
    params["lang"] = "en" if lang == "zh" else "zh"
    return f"{request.url.path}?{urlencode(params)}"


def _finish(request: Request, response: Response, settings: Settings) -> Response:
    """Security headers, and remember a language chosen with ``?lang=``."""
    response.headers.update(SECURITY_HEADERS)
    chosen = request.query_params.get("lang")
    if chosen in ("zh", "en"):
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=settings.cookie_secure,
        )
    return response


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    lang: Lang,
    user: Principal | None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings

    def translate(key: str, **params: object) -> str:
        return t(key, lang, **params)

    def doc_label(doc: patients_store.DocumentSummary) -> str:
        known = document_types().get(doc.doc_type)
        return known.title(lang) if known is not None else doc.title

    full = {
        "_": translate,
        "lang": lang,
        "user": user,
        "csrf": user.csrf_token if user is not None and user.via == "cookie" else "",
        "lang_switch_url": _lang_switch_url(request, lang),
        "doc_label": doc_label,
        "sparkline": sparkline,
        "is_htmx": request.headers.get("hx-request") == "true",
        **_formatters(settings),
        **context,
    }
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    return _finish(request, response, settings)


def redirect(request: Request, url: str) -> Response:
    return _finish(request, RedirectResponse(url, status_code=303), request.app.state.settings)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """The UI's rendering of an error (installed as ``app.state.html_error_page``)."""
    lang = normalize_lang(
        request.query_params.get("lang") or request.cookies.get(LANG_COOKIE),
        normalize_lang(request.app.state.settings.default_lang),
    )
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail},
        lang=lang,
        user=None,
        status_code=status,
    )


def install(app: FastAPI) -> None:
    """Mount static files, and turn missing logins and errors into pages for UI routes."""
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    app.state.html_error_page = error_page

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        if request.method != "GET":
            return RedirectResponse("/login", status_code=303)  # a form post cannot be resumed
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


# -- login / logout --------------------------------------------------------------------------


def _login_form(
    request: Request,
    settings: Settings,
    lang: Lang,
    *,
    next_url: str,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_url, "error": error, "username": username},
        lang=lang,
        user=None,
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/login",
    )
    return response


@router.get("/login")
async def login_page(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> Response:
    try:
        user = await get_principal(request, session, lang)
    except HTTPException:
        user = None
    if user is not None:
        return redirect(request, _home_of(user))
    return _login_form(request, settings, lang, next_url=_safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    lang: LangDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the login CSRF cookie, then the password (throttled); start a cookie session."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not csrf_matches(expected, csrf_token or None):
        return _login_form(
            request,
            settings,
            lang,
            next_url=_safe_next(next),
            error=t("error.csrf", lang),
            username=username,
            status_code=403,
        )
    # Control characters cannot be part of a username (and PostgreSQL refuses NUL in text).
    username = "".join(ch for ch in username if ch.isprintable()).strip()
    try:
        user = check_login(session, settings, username, password, client_of(request), lang)
    except HTTPException as exc:
        response = _login_form(
            request,
            settings,
            lang,
            next_url=_safe_next(next),
            error=str(exc.detail),
            username=username,
            status_code=exc.status_code,
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    lifetime = timedelta(hours=settings.session_hours)
    issued = issue_token(session, user, "cookie", lifetime, datetime.now(UTC))
    target = _safe_next(next)
    if user.role == "patient" or target in ("/", "/login"):
        target = _home_of_user(user.role, user.patient_id)
    response = redirect(request, target)
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, user: UiUser, session: SessionDep, settings: SettingsDep) -> Response:
    """Revoke the cookie session (the CSRF token was checked by the user dependency)."""
    row = session.scalar(
        select(AuthSession).where(
            AuthSession.token_hash == hash_token(request.cookies.get(SESSION_COOKIE, ""))
        )
    )
    if row is not None:
        row.revoked = True
    chain.append(
        session, who=user.username, role=user.role, action="logout", resource=f"User/{user.user_id}"
    )
    response = redirect(request, "/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _home_of_user(role: str, patient_id: int | None) -> str:
    if role == "patient":
        return f"/patients/{patient_id}" if patient_id is not None else "/no-record"
    return "/"


def _home_of(user: Principal) -> str:
    return _home_of_user(user.role, user.patient_id)


def audit_read(
    request: Request, user: Principal, action: str, resource: str, detail: dict[str, Any]
) -> None:
    """Pages read in a read-only session; their audit entry gets its own short transaction."""
    ReadAuditor(request.app.state.session_factory, user).record(action, resource, detail)


# -- search ----------------------------------------------------------------------------------


def _search(request: Request, session: Session, user: Principal, q: str) -> tuple[str, list[Any]]:
    query = patients_store.normalize_query(q)
    hits = patients_store.search_patients(session, query, today=datetime.now(UTC).date())
    if query:
        audit_read(
            request,
            user,
            "patient.search",
            "Patient",
            {"results": len(hits), "patient_ids": [h.id for h in hits]},
        )
    return query, hits


#: Landing pages of the roles outside patient care (they have no patient search).
NON_CLINICAL_HOMES = {
    "director": "/ops",
    "insurance_officer": "/insurance",
    "materials": "/materials",
}


@router.get("/")
def home(
    request: Request,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Patient search; a patient account goes straight to its own record, and roles outside
    patient care to their own page (they may not search records)."""
    if user.role == "patient":
        return redirect(request, _home_of(user))
    if user.role in NON_CLINICAL_HOMES:
        return redirect(request, NON_CLINICAL_HOMES[user.role])
    query, hits = _search(request, session, user, q)
    return render(request, "search.html", {"q": query, "hits": hits}, lang=lang, user=user)


@router.get("/search")
def search_fragment(
    request: Request,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Live results for the search box (HTMX); a plain browser request gets the whole page."""
    if user.role == "patient" or user.role in NON_CLINICAL_HOMES:
        raise PermissionDenied(t("error.forbidden", lang))
    if request.headers.get("hx-request") != "true":
        return redirect(request, "/?" + urlencode({"q": q}))
    query, hits = _search(request, session, user, q)
    return render(request, "_results.html", {"q": query, "hits": hits}, lang=lang, user=user)


@router.get("/no-record")
def no_record(request: Request, user: UiUser, lang: LangDep) -> Response:
    """A patient account that is not linked to a record yet."""
    return render(
        request,
        "error.html",
        {"status": 404, "title": t("error.title", lang), "detail": t("error.no_record", lang)},
        lang=lang,
        user=user,
        status_code=404,
    )


# -- patient page and documents --------------------------------------------------------------


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request, patient_id: RowId, user: UiUser, session: ReadSessionDep, lang: LangDep
) -> Response:
    ensure_patient_visible(user, patient_id, lang)
    page = patients_store.patient_page(
        session,
        patient_id,
        today=datetime.now(UTC).date(),
        include_findings=user.role != "patient",
    )
    audit_read(request, user, "patient.read", f"Patient/{patient_id}", {"via": "ui"})
    return render(request, "patient.html", {"page": page}, lang=lang, user=user)


@router.get("/patients/{patient_id}/documents/{document_id}")
def document_view(
    request: Request,
    patient_id: RowId,
    document_id: RowId,
    user: UiUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    """The reader panel (HTMX) or a page of its own: latest text and every earlier version."""
    ensure_patient_visible(user, patient_id, lang)
    history = patients_store.document_history(session, patient_id, document_id)
    summary = None
    if request.headers.get("hx-request") != "true":
        summary = patients_store.patient_summary(
            session, patient_id, today=datetime.now(UTC).date()
        )
    audit_read(
        request,
        user,
        "document.read",
        f"Document/{document_id}",
        {"patient": f"Patient/{patient_id}", "versions": len(history.versions)},
    )
    name = "_document.html" if summary is None else "document.html"
    return render(
        request,
        name,
        {"history": history, "patient": summary, "patient_id": patient_id},
        lang=lang,
        user=user,
    )


# -- inbox -----------------------------------------------------------------------------------


def _require_inbox(user: Principal, lang: str) -> str | None:
    if user.role == "patient":
        raise PermissionDenied(t("error.forbidden", lang))
    return inbox_role(user)


@router.get("/inbox")
def inbox(request: Request, user: UiUser, session: ReadSessionDep, lang: LangDep) -> Response:
    """Open findings of the user's role (every role for an administrator)."""
    role = _require_inbox(user, lang)
    items = findings_store.list_findings(session, target_role=role, limit=200)
    patients = patients_store.patients_by_id(
        session, (f.patient_id for f in items if f.patient_id), today=datetime.now(UTC).date()
    )
    audit_read(
        request,
        user,
        "finding.list",
        "Finding",
        {"status": "open", "count": len(items), "finding_ids": [f.id for f in items]},
    )
    return render(
        request,
        "inbox.html",
        {"items": items, "patients": patients, "scope": role},
        lang=lang,
        user=user,
    )


@router.post("/inbox/{finding_id}/decision")
def inbox_decision(
    request: Request,
    finding_id: RowId,
    user: UiUser,
    session: SessionDep,
    lang: LangDep,
    status: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Decide from the inbox; HTMX gets the updated card, a plain form post a redirect."""
    _require_inbox(user, lang)
    current = findings_store.get_finding(session, finding_id)
    ensure_may_decide(user, current, lang)
    error: str | None = None
    status_code = 200
    finding = current
    try:
        if status not in DECISIONS:
            raise InputError("decision", "status", t("finding.choose_decision", lang))
        row = findings_store.decide(
            session,
            finding_id,
            FindingStatus(status),
            findings_store.Actor(username=user.username, role=user.role),
            datetime.now(UTC),
            reason,
            lang,
        )
        finding = findings_store.finding_view(row)
    except ConflictError as exc:
        error, status_code = exc.problem, 409
        finding = findings_store.get_finding(session, finding_id)
    except InputError as exc:
        error, status_code = exc.problem, 422
    if request.headers.get("hx-request") != "true":
        if error is None:
            return redirect(request, "/inbox")
        raise HTTPException(status_code, error)
    patients = patients_store.patients_by_id(
        session, [finding.patient_id] if finding.patient_id else [], today=datetime.now(UTC).date()
    )
    return render(
        request,
        "_finding.html",
        {"f": finding, "patients": patients, "error": error, "reason": reason},
        lang=lang,
        user=user,
        status_code=status_code,
    )
