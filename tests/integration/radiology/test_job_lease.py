"""Two workers on one database (SQLite and PostgreSQL): a job is claimed and analysed once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.config import Settings
from medbrain.store import radiology as store
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.radiology_models import CtAnalysis, RadiologyJob
from tests.integration.radiology._ingest_support import write_series


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct") / "s1", seed=21)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, series_settle_seconds=0)


@pytest.fixture
def other_process(engine: Engine, database_url: str) -> Iterator[sessionmaker[Session]]:
    """A second worker's own engine and connections on the same database (like a 2nd process)."""
    other = make_engine(database_url)
    try:
        yield make_session_factory(other)
    finally:
        other.dispose()


def _job_id(factory: sessionmaker[Session], settings: Settings, files: list[Path]) -> int:
    with factory() as session, session.begin():
        return store.ingest_instances(session, settings, files, source="test").job_ids[0]


def _job(factory: sessionmaker[Session], job_id: int) -> RadiologyJob:
    with factory() as session:
        job = session.get(RadiologyJob, job_id)
        assert job is not None
        return job


def _analyses(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count(CtAnalysis.id))) or 0)


def test_second_worker_starting_leaves_a_running_job_alone(
    session_factory: sessionmaker[Session],
    other_process: sessionmaker[Session],
    settings: Settings,
    series_files: list[Path],
) -> None:
    job_id = _job_id(session_factory, settings, series_files)
    assert store._claim_next(session_factory, settings, None, "worker-a") == job_id
    claimed = _job(session_factory, job_id)
    assert claimed.worker_id == "worker-a" and claimed.lease_until is not None
    assert claimed.lease_until > datetime.now(UTC) + timedelta(seconds=30)

    second = store.RadiologyWorker(other_process, settings, poll_seconds=0.05)
    second.start()  # startup recovery must not take worker A's job
    second.stop()
    assert store.process_pending(other_process, settings) == []
    job = _job(session_factory, job_id)
    assert (job.status, job.worker_id, job.error) == ("processing", "worker-a", None)

    assert store.run_job(session_factory, settings, job_id, worker_id="worker-a") == "ready"
    job = _job(session_factory, job_id)
    assert (job.status, job.attempts, job.lease_until) == ("ready", 1, None)
    assert _analyses(session_factory) == 1


def test_concurrent_claims_give_the_job_to_one_worker(
    session_factory: sessionmaker[Session],
    other_process: sessionmaker[Session],
    settings: Settings,
    series_files: list[Path],
) -> None:
    job_id = _job_id(session_factory, settings, series_files)
    barrier = threading.Barrier(2)
    won: dict[str, int | None] = {}

    def claim(name: str, factory: sessionmaker[Session]) -> None:
        barrier.wait()
        won[name] = store._claim_next(factory, settings, None, name)

    threads = [
        threading.Thread(target=claim, args=("a", session_factory)),
        threading.Thread(target=claim, args=("b", other_process)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won.values(), key=lambda v: v is None) == [job_id, None]
    winner = next(name for name, got in won.items() if got == job_id)
    job = _job(session_factory, job_id)
    assert (job.status, job.worker_id, job.attempts) == ("processing", winner, 1)


def test_expired_lease_is_requeued_and_the_late_worker_writes_nothing(
    session_factory: sessionmaker[Session],
    other_process: sessionmaker[Session],
    settings: Settings,
    series_files: list[Path],
) -> None:
    job_id = _job_id(session_factory, settings, series_files)
    assert store._claim_next(session_factory, settings, None, "worker-a", 60.0) == job_id
    assert store.renew_lease(session_factory, job_id, "worker-a", 60.0)
    assert not store.renew_lease(other_process, job_id, "worker-b", 60.0)  # not B's job
    assert store.recover_interrupted(other_process) == 0
    later = datetime.now(UTC) + timedelta(seconds=61)  # worker A stopped renewing
    assert store.recover_interrupted(other_process, now=later) == 1
    job = _job(session_factory, job_id)
    assert (job.status, job.worker_id, job.error) == ("received", None, "radiology_ingest.requeued")

    assert store._claim_next(other_process, settings, None, "worker-b") == job_id
    store.run_job(session_factory, settings, job_id, worker_id="worker-a")  # A wakes up late
    assert _job(session_factory, job_id).status == "processing" and _analyses(session_factory) == 0
    assert store.run_job(other_process, settings, job_id, worker_id="worker-b") == "ready"
    job = _job(session_factory, job_id)
    assert (job.status, job.worker_id, job.attempts) == ("ready", "worker-b", 2)
    assert _analyses(session_factory) == 1


def test_heartbeat_keeps_a_long_job_leased(
    session_factory: sessionmaker[Session],
    other_process: sessionmaker[Session],
    settings: Settings,
    series_files: list[Path],
) -> None:
    job_id = _job_id(session_factory, settings, series_files)
    assert store._claim_next(session_factory, settings, None, "worker-a", 0.4) == job_id
    first_lease = _job(session_factory, job_id).lease_until
    assert first_lease is not None
    with store._Heartbeat(session_factory, job_id, "worker-a", 0.4):
        time.sleep(0.9)  # longer than the lease: only the heartbeat keeps it
        assert store.recover_interrupted(other_process) == 0
    renewed = _job(session_factory, job_id).lease_until
    assert renewed is not None and renewed > first_lease + timedelta(seconds=0.3)
