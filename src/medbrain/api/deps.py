"""Request-scoped dependencies: settings, database session, current user, roles, audit.

Authentication is a bearer token (API) or the ``medbrain_session`` cookie (web UI). Requests
authenticated by cookie that change state must carry the session's CSRF token, either in the
``X-CSRF-Token`` header (HTMX) or in a ``csrf_token`` form field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.security import CLINICAL_ROLES, csrf_matches, resolve_token
from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.core.errors import PermissionDenied
from medbrain.core.i18n import Lang, normalize_lang, t

SESSION_COOKIE = "medbrain_session"
ROW_ID_MAX = 2**31 - 1  # INTEGER primary keys; a larger id would be a driver error, not a 404
LANG_COOKIE = "medbrain_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the endpoint returns, rolled back on error."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session, session.begin():
        yield session


def get_read_db(request: Request) -> Iterator[Session]:
    """A read-only transaction (no SQLite write lock), for requests and checks that only read.

    Falls back to the ordinary factory for an app built without a read factory.
    """
    factory: sessionmaker[Session] = getattr(
        request.app.state, "read_session_factory", request.app.state.session_factory
    )
    with factory() as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_db, scope="function")]


RowId = Annotated[int, PathParam(ge=1, le=ROW_ID_MAX, description="Database id")]
"""A path id checked against the column's range before it reaches the database."""


def get_lang(request: Request) -> Lang:
    """Language from ``?lang=``, then the cookie, then the instance default."""
    settings: Settings = request.app.state.settings
    raw = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return normalize_lang(raw, default=normalize_lang(settings.default_lang))


LangDep = Annotated[Lang, Depends(get_lang)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as the rest of the request sees it."""

    user_id: int
    username: str
    display_name: str
    role: str
    patient_id: int | None
    csrf_token: str
    via: str  # "cookie" | "api"


# Declared only so that /docs shows both ways to authenticate; get_principal reads the
# header and the cookie itself because it needs to know which one was used (CSRF).
_bearer_scheme = HTTPBearer(auto_error=False, description="Token from POST /api/v1/auth/token")
_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Web UI session (POST /login)"
)


async def get_principal(
    request: Request,
    session: ReadSessionDep,
    lang: LangDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)] = None,
    _cookie: Annotated[str | None, Depends(_cookie_scheme)] = None,
) -> Principal:
    now = datetime.now(UTC)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token, via = header[7:].strip(), "api"
    else:
        token, via = request.cookies.get(SESSION_COOKIE, ""), "cookie"
    row = resolve_token(session, token, now) if token else None
    if row is None:
        raise HTTPException(
            401, t("error.unauthenticated", lang), headers={"WWW-Authenticate": "Bearer"}
        )
    if via == "cookie" and request.method not in SAFE_METHODS:
        given = request.headers.get("x-csrf-token")
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not csrf_matches(row.csrf_token, given):
            raise HTTPException(403, t("error.csrf", lang))
    user = row.user
    request.state.user_id = user.id  # for the access log: an id, never a name
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        patient_id=user.patient_id,
        csrf_token=row.csrf_token,
        via=via,
    )


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require_json(request: Request, lang: LangDep) -> None:
    """415 for a request body that is not JSON, instead of a confusing validation error.

    Declare it after the user dependency, so an anonymous caller still gets 401 first.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise HTTPException(
        415,
        t("error.content_type", lang, content_type=media or "-", expected="application/json"),
    )


JsonContent = Annotated[None, Depends(require_json)]


def require_role(*roles: str) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold one of ``roles`` (admin is not implied)."""

    def check(principal: CurrentUser, lang: LangDep) -> Principal:
        if principal.role not in roles:
            raise PermissionDenied(t("error.forbidden", lang))
        return principal

    return check


def ensure_patient_visible(principal: Principal, patient_id: int, lang: str = "zh") -> None:
    """A patient account sees only its own record; clinical roles see all patients; roles
    outside patient care (director, insurance office, materials) see no record here."""
    if principal.role == "patient":
        if principal.patient_id != patient_id:
            # Same answer as a missing record, so ids cannot be probed.
            raise HTTPException(404, t("error.not_found", lang, resource=f"Patient/{patient_id}"))
    elif principal.role not in CLINICAL_ROLES:
        raise HTTPException(403, t("error.forbidden", lang))


@dataclass(frozen=True, slots=True)
class Auditor:
    """Appends to the audit chain as the current user, inside the request's transaction."""

    session: Session
    principal: Principal

    def record(self, action: str, resource: str, detail: dict[str, Any] | None = None) -> None:
        chain.append(
            self.session,
            who=self.principal.username,
            role=self.principal.role,
            action=action,
            resource=resource,
            detail=detail,
        )


def get_auditor(session: SessionDep, principal: CurrentUser) -> Auditor:
    return Auditor(session=session, principal=principal)


AuditDep = Annotated[Auditor, Depends(get_auditor)]


@dataclass(frozen=True, slots=True)
class ReadAuditor:
    """Audits a read in its own short write transaction, committed before the data is returned.

    Read endpoints use :data:`ReadSessionDep`, which cannot write; recording the read
    separately keeps the audit chain's lock (SQLite's write lock, PostgreSQL's advisory lock)
    held for one insert rather than for the whole request. If the entry cannot be written the
    request fails, so no patient data leaves without its audit entry.
    """

    factory: sessionmaker[Session]
    principal: Principal

    def record(self, action: str, resource: str, detail: dict[str, Any] | None = None) -> None:
        with self.factory() as session, session.begin():
            Auditor(session=session, principal=self.principal).record(action, resource, detail)


def get_read_auditor(request: Request, principal: CurrentUser) -> ReadAuditor:
    return ReadAuditor(factory=request.app.state.session_factory, principal=principal)


ReadAuditDep = Annotated[ReadAuditor, Depends(get_read_auditor)]
