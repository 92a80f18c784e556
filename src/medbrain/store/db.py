"""Engine and session factory for SQLite (embedded, WAL) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.errors import BackendUnavailable, InputError

READ_ONLY_OPTION = "medbrain_read_only"
"""Execution option marking connections of :func:`make_read_session_factory`."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(database_url: str) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and write-locking transactions.

    SQLite transactions start with ``BEGIN IMMEDIATE`` so that a request that reads the audit
    chain head and then appends to it cannot interleave with another writer (pysqlite's default
    deferred transactions would fail with ``SQLITE_BUSY`` on the upgrade from read to write).
    """
    try:
        url = make_url(database_url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with a vague message
        raise InputError("MEDBRAIN_DATABASE_URL", "", f"not a database URL: {exc}") from None
    if url.drivername.startswith("postgresql"):
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise BackendUnavailable(
                "PostgreSQL needs the psycopg driver: pip install 'medbrain[postgres]'"
            ) from None
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    if url.drivername != "sqlite":
        raise InputError("MEDBRAIN_DATABASE_URL", "", f"unsupported database {url.drivername!r}")
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # Requests run in a thread pool (40 threads by default): enough connections that
    # concurrent readers do not queue for one. SQLite connections are cheap.
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=20,
        max_overflow=40,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")  # deferred: a WAL reader takes no lock, waits for none
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read: they never hold SQLite's write lock, so reads run concurrently.

    With ``BEGIN IMMEDIATE`` on every transaction, one request reading a patient page would
    block every other request until it finished. Read sessions begin deferred on SQLite and
    ``READ ONLY`` on PostgreSQL (which also catches a write by mistake). Writing in one on
    SQLite could fail with ``SQLITE_BUSY_SNAPSHOT``: audit entries for reads go through a
    separate, short write transaction from :func:`make_session_factory`.
    """
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return sessionmaker(engine.execution_options(**options), expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
