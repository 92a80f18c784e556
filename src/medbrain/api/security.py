"""Passwords, session/API tokens, CSRF tokens and login rate limiting.

Only hashes of tokens are stored, so a copy of the database does not hand out sessions.

References
----------
RFC 9106 (Argon2), OWASP Cheat Sheets: Session Management, CSRF Prevention (synchronizer
token pattern), Authentication (login throttling).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medbrain.store.models import AuthSession, LoginAttempt, User

ROLES: tuple[str, ...] = (
    "doctor",
    "pharmacist",
    "nurse",
    "radiologist",
    "qc_officer",
    "director",
    "insurance_officer",
    "materials",
    "admin",
    "patient",
)
CLINICAL_ROLES: tuple[str, ...] = (
    "doctor",
    "pharmacist",
    "nurse",
    "radiologist",
    "qc_officer",
    "admin",
)

_hasher = PasswordHasher()
# Verifying against this keeps an unknown username as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("medbrain-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    session: AuthSession


def issue_token(
    session: Session, user: User, kind: str, lifetime: timedelta, now: datetime
) -> IssuedToken:
    """Create a cookie session or API token; the raw token is returned once, never stored."""
    token = secrets.token_urlsafe(32)
    row = AuthSession(
        token_hash=hash_token(token),
        user_id=user.id,
        kind=kind,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return IssuedToken(token=token, session=row)


def resolve_token(session: Session, token: str, now: datetime) -> AuthSession | None:
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == hash_token(token)))
    if row is None or row.revoked or row.expires_at <= now or not row.user.active:
        return None
    return row


def recent_failures(session: Session, username: str, client: str, since: datetime) -> int:
    """Failed logins for this username, or from this client, since ``since``."""
    by_user = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.username == username,
            LoginAttempt.success.is_(False),
            LoginAttempt.at >= since,
        )
    )
    by_client = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.client == client, LoginAttempt.success.is_(False), LoginAttempt.at >= since
        )
    )
    return max(by_user or 0, by_client or 0)


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not user.active or not verify_password(user.password_hash, password):
        return None
    return user
