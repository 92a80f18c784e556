"""Benchmark the audit chain (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_audit.py [--entries 2000] [--verify-entries 20000]``

Prints, for SQLite (WAL, file in a temp dir) and PostgreSQL (a throw-away server from Debian's
package, started with ``fsync=off`` like the test suite), in entries per second:

- ``baseline``: the same rows inserted into ``audit_entry`` with a precomputed dummy hash, no
  head read, no lock, no hashing: one transaction per row, as one request would.
- ``append``: :func:`medbrain.audit.chain.append`, one transaction per entry, with a signed
  checkpoint every 100 entries (the default ``MEDBRAIN_AUDIT_CHECKPOINT_EVERY``).
- both single-threaded and with 8 threads (separate sessions), so lock waits show;
- ``append (batched)``: 500 appends per transaction (bulk jobs);
- ``verify``: :func:`medbrain.audit.verify.verify` over the whole chain;
- ``hash only``: SHA-256 of canonical JSON in memory, the floor for verify.

Issue 3 asks for the audit append rate to be measured, not for a target: nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit import chain
from medbrain.audit.keys import AuditSigner
from medbrain.audit.verify import verify
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import AuditEntry

THREADS = 8
DETAIL = {"view": "timeline", "rule_id": "rx.interaction.warfarin-nsaid", "count": 3}


def _fresh(url: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine, make_session_factory(engine)


def _timed(workers: int, per_worker: int, job: Callable[[int, int], None]) -> float:
    """Run ``job(worker, i)`` ``per_worker`` times in each of ``workers`` threads; entries/s."""
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        barrier.wait()
        try:
            for i in range(per_worker):
                job(worker, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return workers * per_worker / seconds


def bench_baseline(url: str, workers: int, total: int) -> float:
    """Plain inserts of comparable rows: the cost of a row and a commit, nothing more."""
    engine, factory = _fresh(url)
    counter = itertools.count(1)
    guard = threading.Lock()
    at = chain.format_at(datetime.now(UTC))

    def job(worker: int, i: int) -> None:
        with guard:
            seq = next(counter)
        with factory() as session, session.begin():
            session.add(
                AuditEntry(
                    seq=seq,
                    at=at,
                    who=f"user{worker}",
                    role="nurse",
                    action="patient.read",
                    resource=f"Patient/{i}",
                    detail=DETAIL,
                    prev_hash=chain.GENESIS_HASH,
                    hash=f"{seq:064x}",
                )
            )

    try:
        return _timed(workers, total // workers, job)
    finally:
        engine.dispose()


def bench_append(url: str, workers: int, total: int, signer: AuditSigner) -> float:
    engine, factory = _fresh(url)
    chain.configure_checkpoints(factory, signer, 100)

    def job(worker: int, i: int) -> None:
        with factory() as session, session.begin():
            chain.append(
                session,
                who=f"user{worker}",
                role="nurse",
                action="patient.read",
                resource=f"Patient/{i}",
                detail=DETAIL,
            )

    try:
        rate = _timed(workers, total // workers, job)
        with factory() as session:
            result = verify(session, signer.public_key)
        if not result.ok or result.entries != total // workers * workers:
            raise RuntimeError(f"benchmark chain is broken: {result}")
        return rate
    finally:
        engine.dispose()


def bench_batched_and_verify(
    url: str, total: int, signer: AuditSigner, batch: int = 500
) -> tuple[float, float, int]:
    """(batched append entries/s, verify entries/s, entries verified)."""
    engine, factory = _fresh(url)
    chain.configure_checkpoints(factory, signer, 100)
    try:
        started = time.perf_counter()
        done = 0
        while done < total:
            with factory() as session, session.begin():
                for i in range(min(batch, total - done)):
                    chain.append(
                        session,
                        who="batch",
                        role="qc_officer",
                        action="qc.check",
                        resource=f"Encounter/{done + i}",
                        detail=DETAIL,
                    )
            done += min(batch, total - done)
        batched = total / (time.perf_counter() - started)
        with factory() as session:
            started = time.perf_counter()
            result = verify(session, signer.public_key)
            verify_rate = result.entries / (time.perf_counter() - started)
            count = session.scalar(select(func.count()).select_from(AuditEntry))
        if not result.ok or result.entries != count:
            raise RuntimeError(f"benchmark chain is broken: {result}")
        return batched, verify_rate, result.entries
    finally:
        engine.dispose()


def bench_hash_only(count: int) -> float:
    fields = chain.entry_fields(
        seq=1,
        at=chain.format_at(datetime.now(UTC)),
        who="user1",
        role="nurse",
        action="patient.read",
        resource="Patient/1",
        detail=DETAIL,
        prev_hash=chain.GENESIS_HASH,
    )
    started = time.perf_counter()
    for seq in range(count):
        fields["seq"] = seq
        chain.compute_hash(fields)
    return count / (time.perf_counter() - started)


def run_database(name: str, url_for: Callable[[str], str], args: argparse.Namespace) -> None:
    signer = AuditSigner.generate()
    n = args.entries
    rows = [
        ("baseline insert, 1 thread", bench_baseline(url_for("b1"), 1, n)),
        ("audit append,    1 thread", bench_append(url_for("a1"), 1, n, signer)),
        (f"baseline insert, {THREADS} threads", bench_baseline(url_for("b8"), THREADS, n)),
        (f"audit append,    {THREADS} threads", bench_append(url_for("a8"), THREADS, n, signer)),
    ]
    batched, verify_rate, verified = bench_batched_and_verify(
        url_for("v"), args.verify_entries, signer
    )
    print(f"\n{name}  ({n} entries per run, one transaction per entry)")
    for label, rate in rows:
        print(f"  {label:<28} {rate:>10.0f} entries/s")
    base1, app1, base8, app8 = (rate for _, rate in rows)
    print(f"  append / baseline, 1 thread    {app1 / base1:>9.2f}x")
    print(f"  append / baseline, {THREADS} threads  {app8 / base8:>9.2f}x")
    print(f"  audit append (500 per txn)     {batched:>10.0f} entries/s")
    print(f"  verify ({verified} entries)      {verify_rate:>10.0f} entries/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=2000, help="entries per append run")
    parser.add_argument("--verify-entries", type=int, default=20000, help="chain size to verify")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    print(f"audit chain benchmark · Python {platform.python_version()} · {platform.machine()}")
    print(f"hash only (SHA-256 of canonical JSON): {bench_hash_only(50_000):.0f} entries/s")
    with tempfile.TemporaryDirectory(prefix="medbrain-bench-audit-") as tmp:
        run_database("SQLite (WAL, synchronous=NORMAL)", lambda k: f"sqlite:///{tmp}/{k}.db", args)
    if args.no_postgres:
        return
    from tests.support.postgres import start_postgres

    try:
        server = start_postgres()
    except (RuntimeError, OSError) as exc:
        print(f"\nPostgreSQL skipped: {exc}")
        return
    try:
        run_database(
            "PostgreSQL (local, fsync=off)",
            lambda k: server.create_database(f"bench_audit_{k}"),
            args,
        )
    finally:
        with suppress(Exception):
            server.stop()


if __name__ == "__main__":
    main()
