"""API tokens for programs; the web UI's cookie login lives in ``routers/ui.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.api.deps import SESSION_COOKIE, CurrentUser, LangDep, SessionDep, SettingsDep
from medbrain.api.security import authenticate, hash_token, issue_token, recent_failures
from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.core.i18n import t
from medbrain.store.models import AuthSession, LoginAttempt, User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenRequest(BaseModel):
    # No control characters: PostgreSQL refuses NUL in text, and no username holds one.
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    role: str


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_login(
    session: Session, settings: Settings, username: str, password: str, client: str, lang: str
) -> User:
    """Authenticate with throttling; every attempt is recorded, and audited on success.

    Raises 429 once ``login_max_failures`` failures for the username or the client fall in the
    window, before the password is even checked, so guessing cannot continue.
    """
    now = datetime.now(UTC)
    since = now - timedelta(seconds=settings.login_window_seconds)
    if recent_failures(session, username, client, since) >= settings.login_max_failures:
        minutes = max(1, settings.login_window_seconds // 60)
        raise HTTPException(
            429,
            t("login.rate_limited", lang, minutes=minutes),
            headers={"Retry-After": str(settings.login_window_seconds)},
        )
    user = authenticate(session, username, password)
    session.add(LoginAttempt(username=username, client=client, at=now, success=user is not None))
    if user is None:
        # The failed attempt must persist even though the request fails.
        session.commit()
        raise HTTPException(401, t("login.failed", lang))
    chain.append(
        session, who=user.username, role=user.role, action="login", resource=f"User/{user.id}"
    )
    return user


@router.post("/token", response_model=TokenResponse)
def create_token(
    body: TokenRequest, request: Request, session: SessionDep, settings: SettingsDep, lang: LangDep
) -> TokenResponse:
    user = check_login(session, settings, body.username, body.password, client_of(request), lang)
    issued = issue_token(
        session, user, "api", timedelta(hours=settings.session_hours), datetime.now(UTC)
    )
    return TokenResponse(
        access_token=issued.token, expires_at=issued.session.expires_at, role=user.role
    )


@router.post("/logout", status_code=204)
def logout(principal: CurrentUser, request: Request, session: SessionDep) -> None:
    """Revoke the token or cookie session used for this request."""
    header = request.headers.get("authorization", "")
    token = (
        header[7:].strip()
        if header.lower().startswith("bearer ")
        else request.cookies.get(SESSION_COOKIE, "")
    )
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == hash_token(token)))
    if row is not None:
        row.revoked = True
    chain.append(
        session,
        who=principal.username,
        role=principal.role,
        action="logout",
        resource=f"User/{principal.user_id}",
    )
