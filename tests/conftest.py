"""Shared fixtures: a migrated database on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.app import create_app
from medbrain.api.security import ROLES
from medbrain.core.config import Settings
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from tests.support.accounts import make_tokens
from tests.support.postgres import PostgresServer, start_postgres

# CI must not fail on an example no one has seen before: property tests run the same examples
# every time. Explore new ones locally with HYPOTHESIS_PROFILE=explore.
hypothesis_settings.register_profile("medbrain", derandomize=True)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "medbrain"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'medbrain.db'}"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL; tests using it run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'medbrain.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def client_and_tokens(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """A real app on a fresh SQLite instance, a bearer token per role, and its session factory."""
    app = create_app(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}"))
    factory = app.state.session_factory
    tokens = make_tokens(factory, ROLES)
    with TestClient(app) as client:
        yield client, tokens, factory
