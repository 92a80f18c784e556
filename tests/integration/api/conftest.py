"""A running MedBrain app on SQLite and on a real PostgreSQL, seeded with ``tests.support.world``.

``site`` is fresh for every test (for tests that write); ``shared_site`` is built once per
module and backend for the many read-only, table-driven checks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medbrain.api.app import create_app
from medbrain.api.security import issue_token
from medbrain.core.config import Settings
from medbrain.store.models import AuditEntry, User
from tests.support.postgres import PostgresServer
from tests.support.world import World, password_of, seed_world

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    app: FastAPI
    settings: Settings
    world: World
    _tokens: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.app.state.session_factory() as session, session.begin():
            yield session

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def token(self, role: str) -> str:
        """A bearer token for the user of ``role``, issued directly (no login round trip)."""
        if role not in self._tokens:
            with self.session() as session:
                user = session.get(User, self.world.users[role])
                assert user is not None
                issued = issue_token(session, user, "api", timedelta(hours=1), datetime.now(UTC))
                self._tokens[role] = issued.token
        return self._tokens[role]

    def api(self, role: str) -> TestClient:
        client = self.client()
        client.headers["Authorization"] = f"Bearer {self.token(role)}"
        return client

    def browser(self, role: str) -> tuple[TestClient, str]:
        """A client logged in through the login form; returns it and its CSRF token."""
        client = self.client()
        page = client.get("/login")
        login_csrf = CSRF_FIELD.search(page.text)
        assert login_csrf is not None
        response = client.post(
            "/login",
            data={
                "username": role,
                "password": password_of(role),
                "csrf_token": login_csrf.group(1),
            },
        )
        assert response.status_code == 303, response.text
        home = client.get("/inbox" if role != "patient" else "/no-record")
        token = CSRF_FIELD.search(home.text)
        assert token is not None
        return client, token.group(1)

    def audit_count(self, action: str | None = None, resource: str | None = None) -> int:
        with self.session() as session:
            statement = select(func.count()).select_from(AuditEntry)
            if action is not None:
                statement = statement.where(AuditEntry.action == action)
            if resource is not None:
                statement = statement.where(AuditEntry.resource == resource)
            return int(session.scalar(statement) or 0)


def build_site(home: Path, database_url: str, **overrides: object) -> Site:
    settings = replace(Settings(home=home, database_url=database_url), **overrides)  # type: ignore[arg-type]
    app = create_app(settings)
    with app.state.session_factory() as session, session.begin():
        world = seed_world(session)
    return Site(app=app, settings=settings, world=world)


@pytest.fixture
def site_overrides() -> dict[str, object]:
    """Settings a test module wants changed (override this fixture)."""
    return {}


@pytest.fixture
def site(tmp_path: Path, database_url: str, site_overrides: dict[str, object]) -> Iterator[Site]:
    built = build_site(tmp_path, database_url, **site_overrides)
    try:
        yield built
    finally:
        built.app.state.engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("site")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'medbrain.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    built = build_site(home, url)
    try:
        yield built
    finally:
        built.app.state.engine.dispose()
