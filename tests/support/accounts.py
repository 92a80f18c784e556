"""Accounts for API tests: one user per role with a bearer token."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.security import hash_password, issue_token
from medbrain.store.models import User

PASSWORD = "pw-for-tests"


def make_tokens(factory: sessionmaker[Session], roles: Iterable[str]) -> dict[str, str]:
    """Create user ``u_<role>`` for each role and return its one-hour API token by role."""
    tokens: dict[str, str] = {}
    with factory() as session, session.begin():
        for role in roles:
            user = User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=hash_password(PASSWORD),
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(
                session, user, "api", timedelta(hours=1), datetime.now(UTC)
            ).token
    return tokens
