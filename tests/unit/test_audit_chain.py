"""Audit chain: hashing, append, checkpoints, keys, verify on a clean chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit import chain
from medbrain.audit.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    AuditSigner,
    key_fingerprint,
    load_or_create_signer,
    load_public_key,
    verify_signature,
)
from medbrain.audit.verify import PROBLEM_CODES, verify
from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.store.models import AuditCheckpoint, AuditEntry
from tests.support.audit import T0, build_chain


def _append(session: Session, n: int = 1, **overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "who": "dr.wang",
        "role": "doctor",
        "action": "patient.read",
        "resource": f"Patient/{n}",
        "now": T0 + timedelta(seconds=n),
    }
    fields.update(overrides)
    return chain.append(session, **fields)


# -- hashing -----------------------------------------------------------------------------------


def test_hash_is_sha256_of_sorted_compact_utf8_json() -> None:
    fields = chain.entry_fields(
        seq=1,
        at="2025-03-01T08:00:01.000000Z",
        who="dr.li",
        role="doctor",
        action="finding.overridden",
        resource="Finding/7",
        detail={"reason": "已复核", "count": 2},
        prev_hash=chain.GENESIS_HASH,
    )
    written_by_hand = (
        '{"action":"finding.overridden","at":"2025-03-01T08:00:01.000000Z",'
        '"detail":{"count":2,"reason":"已复核"},"prev_hash":"' + "0" * 64 + '",'
        '"resource":"Finding/7","role":"doctor","seq":1,"who":"dr.li"}'
    )
    assert chain.compute_hash(fields) == hashlib.sha256(written_by_hand.encode()).hexdigest()


def test_any_field_change_changes_the_hash() -> None:
    base = chain.entry_fields(
        seq=3, at="a", who="w", role="r", action="x", resource="P/1", detail={}, prev_hash="0"
    )
    original = chain.compute_hash(base)
    for key, value in [
        ("seq", 4),
        ("at", "b"),
        ("who", "v"),
        ("detail", {"k": 1}),
        ("prev_hash", "1"),
    ]:
        assert chain.compute_hash({**base, key: value}) != original, key


def test_format_at_is_utc_with_z_and_refuses_naive_time() -> None:
    beijing = timezone(timedelta(hours=8))
    assert chain.format_at(datetime(2025, 3, 1, 16, 0, tzinfo=beijing)) == (
        "2025-03-01T08:00:00.000000Z"
    )
    with pytest.raises(ValueError, match="naive"):
        chain.format_at(datetime(2025, 3, 1, 8, 0))


# -- detail and field validation (no database needed) ------------------------------------------


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"mrn": "0012345"}, "mrn"),
        ({"patient": {"Name": "张三"}}, "patient.Name"),
        ({"contacts": [{"phone": "13800138000"}]}, "contacts[0].phone"),
        ({"resident_id": "110101199003074477"}, "resident_id"),
        ({"x": float("nan")}, "x"),
        ({"x": 1e20}, "x"),
        ({"x": 1.5e-7}, "x"),
        ({1: "a"}, "1"),
        ({"x": "a\x00b"}, "x"),
        ({"x": datetime(2025, 1, 1, tzinfo=UTC)}, "x"),
    ],
)
def test_unacceptable_detail_is_refused_naming_the_field(
    detail: dict[Any, Any], field: str
) -> None:
    with pytest.raises(InputError) as info:
        chain.clean_detail(detail)
    assert info.value.field == field


def test_ids_codes_counts_and_plain_floats_are_accepted_as_json_gives_them_back() -> None:
    detail = {
        "rule_id": "rx.interaction.warfarin-nsaid",
        "resources": ("Patient/1", "Encounter/9"),
        "count": 3,
        "ratio": 0.25,
        "neg_zero": -0.0,
        "big": 2**70,
        "ok": True,
        "none": None,
        "reason": "已与主治医师沟通",
    }
    cleaned = chain.clean_detail(detail)
    assert cleaned["resources"] == ["Patient/1", "Encounter/9"]
    assert str(cleaned["neg_zero"]) == "0.0"
    assert cleaned["big"] == 2**70
    assert chain.clean_detail(None) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [("who", ""), ("who", "x" * 65), ("role", "r" * 33), ("action", ""), ("resource", "P/" * 129)],
)
def test_empty_or_too_long_fields_are_refused(field: str, value: str) -> None:
    fields: dict[str, Any] = {"who": "w", "role": "r", "action": "a", "resource": "P/1"}
    fields[field] = value
    with Session() as unbound, pytest.raises(InputError) as info:
        chain.append(unbound, **fields)  # refused before the database is touched
    assert info.value.field == field


# -- append on SQLite and PostgreSQL ------------------------------------------------------------


def test_entries_count_up_from_one_and_link_to_genesis(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        first = _append(session, 1)
        second = _append(session, 2, detail={"view": "labs"})
    with session_factory() as session, session.begin():
        third = _append(session, 3)
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == chain.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert first.at == "2025-03-01T08:00:01.000000Z"


def test_stored_entry_hashes_the_same_after_a_database_round_trip(
    session_factory: sessionmaker[Session],
) -> None:
    detail = {
        "z": 1,
        "a": [1.5, "肺炎", None, True, 0.1],
        "nested": {"k": 123456.789},
        "big": 2**62,
    }
    with session_factory() as session, session.begin():
        written = _append(session, detail=detail)
    with session_factory() as session:
        row = session.scalars(select(AuditEntry)).one()
        fields = chain.entry_fields(
            seq=row.seq,
            at=row.at,
            who=row.who,
            role=row.role,
            action=row.action,
            resource=row.resource,
            detail=row.detail,
            prev_hash=row.prev_hash,
        )
        assert row.detail == detail
        assert chain.compute_hash(fields) == row.hash == written.hash


def test_append_rolls_back_with_the_callers_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        _append(session, 1)
    with session_factory() as session:
        session.begin()
        _append(session, 2)
        session.rollback()
    with session_factory() as session, session.begin():
        again = _append(session, 3)
    assert again.seq == 2


def test_default_time_is_the_clock_in_utc(session_factory: sessionmaker[Session]) -> None:
    before = datetime.now(UTC)
    with session_factory() as session, session.begin():
        entry = chain.append(
            session, who="system", role="admin", action="job.run", resource="Job/1"
        )
    at = datetime.fromisoformat(entry.at)
    assert entry.at.endswith("Z")
    assert before <= at <= datetime.now(UTC)


# -- checkpoints ---------------------------------------------------------------------------------


def _checkpoints(factory: sessionmaker[Session]) -> list[AuditCheckpoint]:
    with factory() as session:
        return list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))


def test_configured_factory_signs_a_checkpoint_every_n_entries(
    session_factory: sessionmaker[Session],
) -> None:
    signer = AuditSigner.generate()
    chain.configure_checkpoints(session_factory, signer, 5)
    for n in range(1, 13):
        with session_factory() as session, session.begin():
            _append(session, n)
    cps = _checkpoints(session_factory)
    assert [cp.seq for cp in cps] == [5, 10]
    with session_factory() as session:
        hashes = {s: h for s, h in session.execute(select(AuditEntry.seq, AuditEntry.hash))}
    for cp in cps:
        assert cp.entry_hash == hashes[cp.seq]
        assert cp.key_id == signer.key_id
        message = chain.checkpoint_message(
            seq=cp.seq, entry_hash=cp.entry_hash, signed_at=cp.signed_at, key_id=cp.key_id
        )
        assert verify_signature(signer.public_key, cp.signature, message)
        assert not verify_signature(AuditSigner.generate().public_key, cp.signature, message)


def test_unconfigured_session_writes_no_checkpoint(session_factory: sessionmaker[Session]) -> None:
    for n in range(1, 4):
        with session_factory() as session, session.begin():
            _append(session, n, checkpoint_every=1)  # no signer: nothing to sign with
    assert _checkpoints(session_factory) == []


def test_on_demand_checkpoint_signs_the_head_once(session_factory: sessionmaker[Session]) -> None:
    signer = AuditSigner.generate()
    with session_factory() as session, session.begin():
        assert chain.checkpoint(session, signer) is None  # empty chain
        for n in range(1, 4):
            _append(session, n)
        first = chain.checkpoint(session, signer)
        again = chain.checkpoint(session, signer)
    assert first is not None and again is not None
    assert (first.seq, again.id) == (3, first.id)
    assert len(_checkpoints(session_factory)) == 1


def test_negative_checkpoint_interval_is_refused(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(InputError):
        chain.configure_checkpoints(session_factory, AuditSigner.generate(), -1)


# -- keys ----------------------------------------------------------------------------------------


def test_key_is_created_private_and_reloaded_unchanged(tmp_path: Path) -> None:
    keys_dir = tmp_path / "home" / "keys"
    signer = load_or_create_signer(keys_dir)
    private = keys_dir / PRIVATE_KEY_FILE
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert (keys_dir / PUBLIC_KEY_FILE).exists()
    assert load_or_create_signer(keys_dir).key_id == signer.key_id
    raw = signer.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signer.key_id == hashlib.sha256(raw).hexdigest()
    loaded = load_public_key(keys_dir)
    assert loaded is not None and key_fingerprint(loaded) == signer.key_id
    assert not list(keys_dir.glob(".tmp-*"))


def test_world_readable_private_key_is_refused(tmp_path: Path) -> None:
    load_or_create_signer(tmp_path)
    os.chmod(tmp_path / PRIVATE_KEY_FILE, 0o644)
    with pytest.raises(InputError, match="too open"):
        load_or_create_signer(tmp_path)


def test_corrupt_private_key_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / PRIVATE_KEY_FILE
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(InputError) as info:
        load_or_create_signer(tmp_path)
    assert info.value.source == str(path)


def test_swapped_public_key_file_is_refused(tmp_path: Path) -> None:
    load_or_create_signer(tmp_path)
    other = AuditSigner.generate().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / PUBLIC_KEY_FILE).write_bytes(other)
    with pytest.raises(InputError, match="does not match"):
        load_public_key(tmp_path)


def test_instance_without_keys_has_no_public_key(tmp_path: Path) -> None:
    assert load_public_key(tmp_path) is None


# -- verify on a clean chain -----------------------------------------------------------------------


def test_empty_chain_verifies(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        result = verify(session, AuditSigner.generate().public_key)
    assert (result.ok, result.entries, result.first_bad) == (True, 0, None)


@pytest.mark.parametrize("batch_size", [1, 7, 2000])
def test_clean_chain_verifies_in_any_batch_size(
    session_factory: sessionmaker[Session], batch_size: int
) -> None:
    signer = AuditSigner.generate()
    build_chain(session_factory, signer, 23, every=5)
    with session_factory() as session:
        result = verify(session, signer.public_key, batch_size=batch_size)
    assert result.to_dict() == {
        "ok": True,
        "entries": 23,
        "first_bad": None,
        "problem": None,
        "code": None,
        "checkpoints": 4,
    }


def test_checkpoints_without_a_public_key_are_not_trusted(
    session_factory: sessionmaker[Session],
) -> None:
    build_chain(session_factory, AuditSigner.generate(), 12, every=5)
    with session_factory() as session:
        result = verify(session, None)
        count = session.scalar(select(func.count()).select_from(AuditEntry))
    assert (result.ok, result.code, result.first_bad, result.entries) == (
        False,
        "checkpoint_unverifiable",
        1,
        count,
    )


@pytest.mark.parametrize("code", PROBLEM_CODES)
def test_every_problem_code_has_a_zh_and_en_message(code: str) -> None:
    zh, en = t(f"audit.problem.{code}", "zh"), t(f"audit.problem.{code}", "en")
    assert zh and en and zh != en
