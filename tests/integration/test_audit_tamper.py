"""Tamper with the audit tables directly and check that verify names the right entry.

The chain used here has 35 entries with signed checkpoints at seq 10, 20 and 30. Every test
runs on SQLite and on a real PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit import chain
from medbrain.audit.keys import AuditSigner, load_or_create_signer
from medbrain.audit.verify import VerifyResult, verify
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import AuditCheckpoint, AuditEntry
from tests.support.audit import (
    T0,
    build_chain,
    recompute_from,
    resign_checkpoints,
    set_detail,
    sql,
    swap_seq,
)

ENTRIES = 35


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner.generate()


@pytest.fixture
def built(session_factory: sessionmaker[Session], signer: AuditSigner) -> sessionmaker[Session]:
    build_chain(session_factory, signer, ENTRIES, every=10)
    return session_factory


def _verify(factory: sessionmaker[Session], signer: AuditSigner) -> VerifyResult:
    with factory() as session:
        return verify(session, signer.public_key, batch_size=8)


def test_clean_chain_verifies(built: sessionmaker[Session], signer: AuditSigner) -> None:
    result = _verify(built, signer)
    assert (result.ok, result.entries, result.first_bad, result.checkpoints) == (
        True,
        ENTRIES,
        None,
        3,
    )


def _delete_and_renumber(engine: Engine, seq: int) -> None:
    """Delete an entry and close the gap, so that seq stays dense."""
    sql(engine, "DELETE FROM audit_entry WHERE seq = :s", s=seq)
    sql(engine, "UPDATE audit_entry SET seq = -(seq - 1) WHERE seq > :s", s=seq)
    sql(engine, "UPDATE audit_entry SET seq = -seq WHERE seq < 0")


@pytest.mark.parametrize(
    ("tamper", "first_bad", "code"),
    [
        pytest.param(
            lambda e: set_detail(e, 7, {"view": "timeline", "n": 8, "note": "复核", "ratio": 0.25}),
            7,
            "hash",
            id="edit-detail",
        ),
        pytest.param(
            lambda e: sql(e, "UPDATE audit_entry SET who = 'mallory' WHERE seq = 7"),
            7,
            "hash",
            id="edit-who",
        ),
        pytest.param(
            lambda e: sql(
                e, "UPDATE audit_entry SET at = '2025-03-01T07:00:00.000000Z' WHERE seq = 23"
            ),
            23,
            "hash",
            id="edit-at",
        ),
        pytest.param(
            lambda e: sql(e, "DELETE FROM audit_entry WHERE seq = 12"), 12, "seq_gap", id="delete"
        ),
        pytest.param(
            lambda e: _delete_and_renumber(e, 12),
            12,
            "link",
            id="delete-and-renumber",
        ),
        pytest.param(
            lambda e: sql(e, "DELETE FROM audit_entry WHERE seq > 25"),
            26,
            "truncated",
            id="delete-tail",
        ),
        pytest.param(lambda e: swap_seq(e, 8, 9), 8, "link", id="swap-adjacent"),
        pytest.param(lambda e: swap_seq(e, 5, 17), 5, "link", id="swap-distant"),
        pytest.param(
            lambda e: sql(
                e,
                "UPDATE audit_entry SET who = (SELECT who FROM audit_entry WHERE seq = 6),"
                " resource = (SELECT resource FROM audit_entry WHERE seq = 6) WHERE seq = 5",
            ),
            5,
            "hash",
            id="copy-contents-keep-hash",
        ),
        pytest.param(
            lambda e: sql(e, "UPDATE audit_entry SET prev_hash = :h WHERE seq = 31", h="f" * 64),
            31,
            "link",
            id="edit-prev-hash",
        ),
    ],
)
def test_raw_sql_tampering_is_found_at_the_tampered_entry(
    built: sessionmaker[Session],
    engine: Engine,
    signer: AuditSigner,
    tamper: Callable[[Engine], Any],
    first_bad: int,
    code: str,
) -> None:
    tamper(engine)
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code) == (False, first_bad, code), result.problem


def test_detail_broken_into_invalid_json_is_reported_not_crashed_on(
    built: sessionmaker[Session], engine: Engine, signer: AuditSigner
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's JSONB refuses invalid JSON on write")
    sql(engine, "UPDATE audit_entry SET detail = '{\"n\": NaN' WHERE seq = 9")
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code, result.entries) == (False, 9, "hash", ENTRIES)


def test_swapping_two_rows_contents_with_their_hashes_is_found(
    built: sessionmaker[Session], signer: AuditSigner
) -> None:
    with built() as session, session.begin():
        a, b = (session.get_one(AuditEntry, s) for s in (14, 15))
        columns = ("at", "who", "role", "action", "resource", "detail", "prev_hash", "hash")
        values = {name: (getattr(a, name), getattr(b, name)) for name in columns}
        for name, (va, vb) in values.items():
            if name == "hash":
                continue
            setattr(a, name, vb)
            setattr(b, name, va)
        a.hash, b.hash = "a" * 64, "b" * 64  # hash is unique: swap via placeholders
        session.flush()
        a.hash, b.hash = values["hash"][1], values["hash"][0]
    result = _verify(built, signer)
    assert (result.ok, result.first_bad) == (False, 14)


def test_forged_row_inserted_in_the_middle_is_named(
    built: sessionmaker[Session], engine: Engine, signer: AuditSigner
) -> None:
    sql(engine, "UPDATE audit_entry SET seq = -seq WHERE seq >= 15")
    sql(engine, "UPDATE audit_entry SET seq = -seq + 1 WHERE seq < 0")
    with built() as session, session.begin():
        prev_hash = session.get_one(AuditEntry, 14).hash
        fields = chain.entry_fields(
            seq=15,
            at="2025-03-01T08:00:14.500000Z",
            who="dr.0",
            role="doctor",
            action="patient.read",
            resource="Patient/999",
            detail={},
            prev_hash=prev_hash,
        )
        session.add(AuditEntry(**fields, hash=chain.compute_hash(fields)))
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code, result.entries) == (
        False,
        15,
        "inserted",
        ENTRIES + 1,
    )


def test_forged_row_appended_with_a_made_up_hash_is_found(
    built: sessionmaker[Session], engine: Engine, signer: AuditSigner
) -> None:
    with built() as session:
        head_hash = session.get_one(AuditEntry, ENTRIES).hash
    sql(
        engine,
        "INSERT INTO audit_entry (seq, at, who, role, action, resource, detail, prev_hash, hash)"
        " VALUES (:s, '2025-03-02T00:00:00.000000Z', 'admin', 'admin', 'patient.read',"
        " 'Patient/1', '{}', :p, :h)",
        s=ENTRIES + 1,
        p=head_hash,
        h="e" * 64,
    )
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code) == (False, ENTRIES + 1, "hash")


def test_edit_with_all_hashes_recomputed_is_caught_by_the_next_checkpoint(
    built: sessionmaker[Session], engine: Engine, signer: AuditSigner
) -> None:
    sql(engine, "UPDATE audit_entry SET who = 'mallory' WHERE seq = 15")
    recompute_from(built, 15)
    result = _verify(built, signer)
    # Checkpoint 10 still matches, checkpoint 20 does not: entries 11.. are unproven.
    assert (result.ok, result.first_bad, result.code) == (False, 11, "checkpoint_mismatch")


@pytest.mark.parametrize(
    ("keep_key_id", "code"),
    [(False, "checkpoint_unknown_key"), (True, "checkpoint_signature")],
)
def test_checkpoints_re_signed_by_another_key_are_refused(
    built: sessionmaker[Session],
    engine: Engine,
    signer: AuditSigner,
    keep_key_id: bool,
    code: str,
) -> None:
    sql(engine, "UPDATE audit_entry SET who = 'mallory' WHERE seq = 15")
    recompute_from(built, 15)
    resign_checkpoints(built, AuditSigner.generate(), 20, keep_key_id=keep_key_id)
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code) == (False, 11, code)


def test_extra_forged_checkpoint_is_refused(
    built: sessionmaker[Session], signer: AuditSigner
) -> None:
    mallory = AuditSigner.generate()
    with built() as session, session.begin():
        entry_hash = session.get_one(AuditEntry, 25).hash
        message = chain.checkpoint_message(
            seq=25,
            entry_hash=entry_hash,
            signed_at="2025-03-02T00:00:00.000000Z",
            key_id=signer.key_id,
        )
        session.add(
            AuditCheckpoint(
                seq=25,
                entry_hash=entry_hash,
                signed_at="2025-03-02T00:00:00.000000Z",
                key_id=signer.key_id,
                signature=mallory.sign(message),
            )
        )
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code) == (False, 21, "checkpoint_signature")


def test_checkpoint_moved_to_another_seq_is_refused(
    built: sessionmaker[Session], engine: Engine, signer: AuditSigner
) -> None:
    sql(engine, "UPDATE audit_checkpoint SET seq = 35 WHERE seq = 30")
    result = _verify(built, signer)
    assert (result.ok, result.first_bad, result.code) == (False, 21, "checkpoint_signature")


# -- concurrency -----------------------------------------------------------------------------------


def test_eight_threads_appending_concurrently_keep_one_dense_chain(
    session_factory: sessionmaker[Session], signer: AuditSigner
) -> None:
    chain.configure_checkpoints(session_factory, signer, 25)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(thread: int) -> None:
        try:
            start.wait()
            for i in range(50):
                with session_factory() as session, session.begin():
                    chain.append(
                        session,
                        who=f"user{thread}",
                        role="nurse",
                        action="patient.read",
                        resource=f"Patient/{thread * 100 + i}",
                        detail={"thread": thread, "i": i},
                    )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert errors == []
    with session_factory() as session:
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        writers = set(session.scalars(select(AuditEntry.who).distinct()))
        result = verify(session, signer.public_key)
    assert seqs == list(range(1, 401))
    assert writers == {f"user{n}" for n in range(8)}
    assert (result.ok, result.entries, result.checkpoints) == (True, 400, 16)


def test_second_writer_waits_for_the_first_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    first = session_factory()
    first.begin()
    chain.append(first, who="a", role="doctor", action="x", resource="P/1", now=T0)
    done = threading.Event()
    seen: list[int] = []

    def second() -> None:
        with session_factory() as session, session.begin():
            seen.append(
                chain.append(session, who="b", role="doctor", action="x", resource="P/2").seq
            )
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert not done.wait(0.5), "second writer did not wait for the open audit transaction"
    finally:
        first.commit()
        first.close()
    thread.join(timeout=30)
    assert seen == [2]


# -- command line ----------------------------------------------------------------------------------


def _medbrain(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MEDBRAIN_")}
    environ.update({"MEDBRAIN_HOME": str(home), **env})
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def test_cli_verify_reports_ok_then_the_tampered_row(tmp_path: Path) -> None:
    home = tmp_path / "instance"
    fresh = _medbrain(home, "audit", "verify", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["entries"] == 0  # migrated on first use

    engine = make_engine(f"sqlite:///{home / 'medbrain.db'}")
    assert migrate.is_current(engine)
    build_chain(make_session_factory(engine), load_or_create_signer(home / "keys"), 12, every=5)
    engine.dispose()

    clean = _medbrain(home, "audit", "verify", "--json")
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert {k: report[k] for k in ("ok", "entries", "first_bad", "checkpoints")} == {
        "ok": True,
        "entries": 12,
        "first_bad": None,
        "checkpoints": 2,
    }
    assert "审计链完整" in _medbrain(home, "audit", "verify").stdout

    with sqlite3.connect(home / "medbrain.db") as db:
        db.execute("UPDATE audit_entry SET resource = 'Patient/1' WHERE seq = 4")
    db.close()
    broken = _medbrain(home, "audit", "verify", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert (report["ok"], report["entries"], report["first_bad"]) == (False, 12, 4)
    assert "审计链已被篡改" in _medbrain(home, "audit", "verify").stdout
    english = _medbrain(home, "audit", "verify", "--lang", "en")
    assert english.returncode == 1 and "Audit chain broken" in english.stdout


def test_cli_verify_with_an_outside_public_key_rejects_the_instance_key(tmp_path: Path) -> None:
    home = tmp_path / "instance"
    assert _medbrain(home, "audit", "checkpoint", "--json").returncode == 0
    engine = make_engine(f"sqlite:///{home / 'medbrain.db'}")
    build_chain(make_session_factory(engine), load_or_create_signer(home / "keys"), 5, every=5)
    engine.dispose()
    outside = tmp_path / "auditor.pub.pem"
    outside.write_bytes((home / "keys" / "audit_ed25519.pub.pem").read_bytes())
    assert _medbrain(home, "audit", "verify", "--public-key", str(outside)).returncode == 0
    from cryptography.hazmat.primitives import serialization

    outside.write_bytes(
        AuditSigner.generate().public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    result = _medbrain(home, "audit", "verify", "--json", "--public-key", str(outside))
    assert result.returncode == 1
    assert json.loads(result.stdout)["problem"].startswith("checkpoint")


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (("--lang", "fr"), {}, "--lang"),
        ((), {"MEDBRAIN_DATABASE_URL": "mysql://db/medbrain"}, "MEDBRAIN_DATABASE_URL"),
        (("--public-key", "/nonexistent/key.pem"), {}, "/nonexistent/key.pem"),
    ],
)
def test_cli_verify_bad_configuration_exits_2_with_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], names: str
) -> None:
    result = _medbrain(tmp_path, "audit", "verify", "--json", *args, **env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert names in result.stderr
