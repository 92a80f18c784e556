"""Append-only, hash-chained audit log with periodic Ed25519-signed checkpoints.

Every read of patient data and every decision on a finding calls :func:`append` inside the
request's own transaction, so the audit entry commits or rolls back with the action it records.

Each entry's ``hash`` is SHA-256 over the canonical JSON of ``seq, at, who, role, action,
resource, detail, prev_hash`` (sorted keys, no whitespace, UTF-8, no ASCII escaping), and
``prev_hash`` is the previous entry's ``hash`` (64 zeros for ``seq`` 1). ``seq`` is dense, so a
deleted row leaves a gap; changing any field breaks that entry's hash; moving rows breaks the
links. A database writer could still rewrite a whole tail and recompute its hashes, which is
why every ``checkpoint_every`` entries (and on demand) the head's hash is signed with the
instance's Ed25519 key (:mod:`medbrain.audit.keys`), which does not live in the database.

Concurrency: two writers must never both read head ``n`` and both write ``n + 1``. On
PostgreSQL :func:`append` takes a transaction-scoped advisory lock before reading the head; on
SQLite every transaction already starts with ``BEGIN IMMEDIATE`` (:func:`medbrain.store.db.
make_engine`), which serialises writers. Either way the lock lasts until the caller commits,
so append late in a transaction. The ``seq`` primary key is the last guard against a fork. On
PostgreSQL the caller's transaction must be READ COMMITTED (the default): under REPEATABLE READ
the head would be read from a snapshot older than the lock and the insert would fail.

Privacy: ``detail`` is for codes, counts, rule ids, reasons and resource ids (``Patient/42``),
never for patient identifiers such as names, MRNs, 身份证 numbers, phone numbers or addresses.
The audit log is kept forever and copied to auditors; an identifier written here cannot be
erased without breaking the chain. Keys that usually hold identifiers are refused.

References
----------
.. [1] FIPS 180-4, Secure Hash Standard, section 6.2 (SHA-256).
.. [2] RFC 8032, Edwards-Curve Digital Signature Algorithm (EdDSA), section 5.1 (Ed25519).
.. [3] RFC 8785, JSON Canonicalization Scheme: the same idea (sorted keys, no whitespace);
   MedBrain's form is Python's ``json.dumps(sort_keys=True, separators=(",", ":"),
   ensure_ascii=False)``, with floats restricted so they survive a PostgreSQL JSONB round trip.
.. [4] Crosby & Wallach, "Efficient Data Structures for Tamper-Evident Logging", USENIX
   Security 2009: why a hash chain needs signed commitments to its head.
.. [5] PostgreSQL documentation, section 9.27.10 "Advisory Lock Functions".
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit.keys import AuditSigner
from medbrain.core.errors import InputError
from medbrain.store.models import AuditCheckpoint, AuditEntry

GENESIS_HASH: Final = "0" * 64
"""``prev_hash`` of entry 1."""

SESSION_SIGNER_KEY: Final = "medbrain.audit.signer"
SESSION_EVERY_KEY: Final = "medbrain.audit.checkpoint_every"

# One fixed 64-bit key for pg_advisory_xact_lock, derived from a name so it is recognisable.
ADVISORY_LOCK_KEY: Final = int.from_bytes(
    hashlib.sha256(b"medbrain.audit_entry").digest()[:8], "big", signed=True
)

FIELD_LIMITS: Final[Mapping[str, int]] = {"who": 64, "role": 32, "action": 64, "resource": 256}

IDENTIFIER_KEYS: Final = frozenset(
    {
        "name",
        "patient_name",
        "full_name",
        "mrn",
        "resident_id",
        "id_number",
        "id_card",
        "national_id",
        "phone",
        "telephone",
        "mobile",
        "address",
        "birth_date",
        "birthdate",
        "dob",
        "email",
    }
)
"""``detail`` keys refused because they almost always carry a patient identifier."""


def canonical_json(value: Any) -> bytes:
    """The exact bytes that are hashed or signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_fields(
    *,
    seq: int,
    at: str,
    who: str,
    role: str,
    action: str,
    resource: str,
    detail: Any,
    prev_hash: str,
) -> dict[str, Any]:
    """The fields an entry's hash covers (everything but the hash itself).

    ``detail`` is taken as stored: a verifier must hash what is in the row, even if someone
    replaced the mapping by something else.
    """
    return {
        "seq": seq,
        "at": at,
        "who": who,
        "role": role,
        "action": action,
        "resource": resource,
        "detail": detail,
        "prev_hash": prev_hash,
    }


def compute_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 hex over :func:`canonical_json` of :func:`entry_fields`."""
    return hashlib.sha256(canonical_json(dict(fields))).hexdigest()


def checkpoint_message(*, seq: int, entry_hash: str, signed_at: str, key_id: str) -> bytes:
    """The bytes a checkpoint signature covers."""
    return canonical_json(
        {"seq": seq, "entry_hash": entry_hash, "signed_at": signed_at, "key_id": key_id}
    )


def format_at(now: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z``; stored as text so it is hashed as written."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: audit times must be timezone-aware")
    return now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _clean_value(value: Any, path: str) -> Any:
    """Validate one detail value and return the form a JSON/JSONB round trip gives back."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError("audit detail", path, "NUL characters are not allowed")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError("audit detail", path, "NaN and infinity are not JSON")
        if value == 0.0:
            return 0.0  # PostgreSQL numeric has no negative zero
        if "e" in repr(value):
            # JSONB stores numbers as numeric and gives 1e+20 back as an integer: the
            # canonical text, and so the hash, would change.
            raise InputError(
                "audit detail", path, f"{value!r} needs an exponent; record it as a string"
            )
        return value
    if isinstance(value, list | tuple):
        return [_clean_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return _clean_mapping(value, path)
    raise InputError("audit detail", path, f"{type(value).__name__} is not a JSON value")


def _clean_mapping(value: Mapping[Any, Any], path: str) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str):
            raise InputError("audit detail", where, "keys must be strings")
        if key.lower() in IDENTIFIER_KEYS:
            raise InputError(
                "audit detail", where, "patient identifiers do not belong in the audit log"
            )
        cleaned[key] = _clean_value(item, where)
    return cleaned


def clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``detail`` and normalise it to what the database will give back.

    Raises
    ------
    InputError
        A non-JSON value, a float that would not survive JSONB, a NUL character, a non-string
        key, or a key that names a patient identifier.
    """
    return {} if detail is None else _clean_mapping(detail, "")


def _check_field(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InputError("audit entry", name, "must be a non-empty string")
    if len(value) > FIELD_LIMITS[name]:
        raise InputError("audit entry", name, f"longer than {FIELD_LIMITS[name]} characters")
    if "\x00" in value:
        raise InputError("audit entry", name, "NUL characters are not allowed")


def lock_chain(session: Session) -> None:
    """Serialise chain writers until the caller's transaction ends.

    PostgreSQL: ``pg_advisory_xact_lock``. SQLite: nothing to do, because the engine opens
    every transaction with ``BEGIN IMMEDIATE``, which holds the database's write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


_ENTRY_TABLE: Final = cast(Table, AuditEntry.__table__)
_HEAD_SQL: Final = "SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1"
# Two statements in one simple-protocol round trip. Under READ COMMITTED each statement of a
# multi-statement query takes its own snapshot, so the head is read after the lock is held.
_LOCK_AND_HEAD_SQL: Final = f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY}); {_HEAD_SQL}"


def head(session: Session) -> tuple[int, str]:
    """``(seq, hash)`` of the last entry, ``(0, GENESIS_HASH)`` for an empty chain."""
    row = session.execute(text(_HEAD_SQL)).first()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


def _lock_and_read_head(session: Session) -> tuple[int, str]:
    """:func:`lock_chain` then :func:`head`, in one round trip on PostgreSQL."""
    connection = session.connection()  # begins the transaction (BEGIN IMMEDIATE on SQLite)
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        lock_chain(session)
        return head(session)
    dbapi_connection: Any = connection.connection.dbapi_connection
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_LOCK_AND_HEAD_SQL)  # no parameters: psycopg sends a simple query
        cursor.nextset()
        row = cursor.fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


def configure_checkpoints(factory: sessionmaker[Session], signer: AuditSigner, every: int) -> None:
    """Make :func:`append` in sessions from ``factory`` sign a checkpoint every ``every`` entries.

    The signer rides in ``Session.info`` rather than a global, so two apps (or tests) with
    different instance keys can share a process.
    """
    if every < 0:
        raise InputError("settings", "MEDBRAIN_AUDIT_CHECKPOINT_EVERY", "must be >= 0")
    info = dict(factory.kw.get("info") or {})
    info[SESSION_SIGNER_KEY] = signer
    info[SESSION_EVERY_KEY] = every
    factory.configure(info=info)


def _write_checkpoint(
    session: Session, signer: AuditSigner, seq: int, entry_hash: str, signed_at: str
) -> AuditCheckpoint:
    message = checkpoint_message(
        seq=seq, entry_hash=entry_hash, signed_at=signed_at, key_id=signer.key_id
    )
    row = AuditCheckpoint(
        seq=seq,
        entry_hash=entry_hash,
        signed_at=signed_at,
        key_id=signer.key_id,
        signature=signer.sign(message),
    )
    session.add(row)
    return row


def append(
    session: Session,
    *,
    who: str,
    role: str,
    action: str,
    resource: str,
    detail: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    signer: AuditSigner | None = None,
    checkpoint_every: int | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (the caller commits).

    Parameters
    ----------
    who, role : str
        The acting account's username and role (``system`` for background jobs).
    action : str
        Dotted verb, e.g. ``patient.read``, ``finding.overridden``.
    resource : str
        ``Type/id`` of what was touched, e.g. ``Patient/42``.
    detail : mapping, optional
        Codes, counts, rule ids, reasons. Never patient identifiers (see module docstring).
    now : datetime, optional
        Timezone-aware time of the action; default the clock after the lock is taken.
    signer, checkpoint_every : optional
        Sign a checkpoint when ``seq`` is a multiple of ``checkpoint_every``; default from
        ``session.info`` as set by :func:`configure_checkpoints`, else no checkpoint.

    Raises
    ------
    InputError
        A field is empty or too long, or ``detail`` is not acceptable (:func:`clean_detail`).
    """
    for name, value in (("who", who), ("role", role), ("action", action), ("resource", resource)):
        _check_field(name, value)
    cleaned = clean_detail(detail)
    given_at = None if now is None else format_at(now)  # refuse a naive time before locking
    last_seq, last_hash = _lock_and_read_head(session)
    at = given_at if given_at is not None else format_at(datetime.now(UTC))
    seq = last_seq + 1
    fields = entry_fields(
        seq=seq,
        at=at,
        who=who,
        role=role,
        action=action,
        resource=resource,
        detail=cleaned,
        prev_hash=last_hash,
    )
    entry_hash = compute_hash(fields)
    # A Core INSERT, not session.add: written now (the next append in this transaction reads
    # it as the head, autoflush or not; a duplicate seq fails here, not at commit) and without
    # the unit-of-work bookkeeping, which costs more than the hash.
    session.execute(insert(_ENTRY_TABLE).values(**fields, hash=entry_hash))
    signer = signer if signer is not None else session.info.get(SESSION_SIGNER_KEY)
    every = (
        checkpoint_every
        if checkpoint_every is not None
        else int(session.info.get(SESSION_EVERY_KEY, 0))
    )
    if signer is not None and every > 0 and seq % every == 0:
        _write_checkpoint(session, signer, seq, entry_hash, at)
        session.flush()
    return AuditEntry(**fields, hash=entry_hash)  # detached: a record of what was written


def checkpoint(
    session: Session, signer: AuditSigner, *, now: datetime | None = None
) -> AuditCheckpoint | None:
    """Sign the current head now (``medbrain audit checkpoint``, shutdown, nightly job).

    Returns None for an empty chain, and the existing checkpoint when the head is already
    signed by this key, so calling it repeatedly adds nothing.
    """
    lock_chain(session)
    seq, entry_hash = head(session)
    if seq == 0:
        return None
    existing = session.scalars(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.seq == seq, AuditCheckpoint.key_id == signer.key_id)
        .order_by(AuditCheckpoint.id.desc())
        .limit(1)
    ).first()
    if existing is not None and existing.entry_hash == entry_hash:
        return existing
    row = _write_checkpoint(session, signer, seq, entry_hash, format_at(now or datetime.now(UTC)))
    session.flush()
    return row
