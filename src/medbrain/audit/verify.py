"""Check the whole audit chain and its signed checkpoints (``medbrain audit verify``).

What is checked, streaming entries in ``seq`` order in batches (memory does not grow with the
log; checkpoints are few and are held in memory):

1. ``seq`` runs 1, 2, 3, ... with no gap: a deleted row shows as a missing number.
2. Each ``prev_hash`` equals the previous entry's ``hash`` (64 zeros for entry 1): a moved,
   inserted or removed row breaks a link.
3. Each ``hash`` equals SHA-256 of the entry's canonical JSON: an edited field shows.
4. Each checkpoint is signed by the trusted key over ``{seq, entry_hash, signed_at, key_id}``,
   and the entry at its ``seq`` still has the signed hash: a tail rewritten with recomputed
   hashes shows, and so does a forged checkpoint.
5. No checkpoint points beyond the last entry: deleted tail entries show.

``first_bad`` is the first ``seq`` the log can no longer vouch for. For a broken entry that
is the entry itself (for an inserted row, the inserted row). When a checkpoint fails, the
rewrite happened somewhere after the last checkpoint that still verifies, so ``first_bad`` is
that checkpoint's ``seq + 1``. For a truncated tail it is the first missing ``seq``.

Limits: entries appended after the last checkpoint can be removed, together with any
checkpoint that covers them, without a trace in the database alone. Sign often
(``MEDBRAIN_AUDIT_CHECKPOINT_EVERY``, ``medbrain audit checkpoint``) and keep copies of the
checkpoints and the public key outside the instance to close that window.

References
----------
.. [1] FIPS 180-4, Secure Hash Standard, section 6.2 (SHA-256).
.. [2] RFC 8032, Edwards-Curve Digital Signature Algorithm (EdDSA), section 5.1.7 (verify).
.. [3] Schneier & Kelsey, "Secure Audit Logs to Support Computer Forensics", ACM TISSEC 2(2),
   1999: hash-chained logs and why truncation needs an external commitment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from medbrain.audit.chain import GENESIS_HASH, checkpoint_message, compute_hash, entry_fields
from medbrain.audit.keys import key_fingerprint, verify_signature
from medbrain.store.models import AuditCheckpoint, AuditEntry

# Problem codes, in the order they win a tie on first_bad.
PROBLEM_CODES: Final = (
    "seq_gap",
    "inserted",
    "link",
    "hash",
    "truncated",
    "checkpoint_mismatch",
    "checkpoint_signature",
    "checkpoint_unknown_key",
    "checkpoint_unverifiable",
    "checkpoint_invalid",
)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify`; ``problem`` is an English sentence for operators."""

    ok: bool
    entries: int
    first_bad: int | None
    problem: str | None
    checkpoints: int = 0
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad": self.first_bad,
            "problem": self.problem,
            "code": self.code,
            "checkpoints": self.checkpoints,
        }


@dataclass(frozen=True, slots=True)
class _Problem:
    first_bad: int
    code: str
    message: str

    def rank(self) -> tuple[int, int]:
        return (self.first_bad, PROBLEM_CODES.index(self.code))


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    id: int
    seq: int
    entry_hash: str
    signed_at: str
    key_id: str
    signature: str


def _load_checkpoints(session: Session) -> list[_Checkpoint]:
    c = AuditCheckpoint.__table__.c
    rows = session.execute(
        select(c.id, c.seq, c.entry_hash, c.signed_at, c.key_id, c.signature).order_by(c.seq, c.id)
    ).all()
    return [_Checkpoint(*row) for row in rows]


def _untrusted_reason(cp: _Checkpoint, public_key: Ed25519PublicKey | None) -> tuple[str, str]:
    """(code, sentence) when ``cp`` is not signed by the trusted key, else ("", "")."""
    where = f"checkpoint {cp.id} at seq {cp.seq}"
    if public_key is None:
        return "checkpoint_unverifiable", f"{where}: no public key to check its signature"
    if cp.key_id != key_fingerprint(public_key):
        return "checkpoint_unknown_key", f"{where} is signed by unknown key {cp.key_id[:16]}"
    message = checkpoint_message(
        seq=cp.seq, entry_hash=cp.entry_hash, signed_at=cp.signed_at, key_id=cp.key_id
    )
    if not verify_signature(public_key, cp.signature, message):
        return "checkpoint_signature", f"{where}: signature does not verify"
    if cp.seq < 1:
        return "checkpoint_invalid", f"{where}: seq must be at least 1"
    return "", ""


def _recomputed_hash(row: Any) -> str | None:
    """The hash the row should carry, or None when its ``detail`` is not even valid JSON."""
    seq, at, who, role, action, resource, detail_json, prev_hash, _ = row
    try:
        detail = json.loads(detail_json)
        return compute_hash(
            entry_fields(
                seq=seq,
                at=at,
                who=who,
                role=role,
                action=action,
                resource=resource,
                detail=detail,
                prev_hash=prev_hash,
            )
        )
    except (TypeError, ValueError):  # not JSON, or NaN written into the JSON text by hand
        return None


def verify(
    session: Session, public_key: Ed25519PublicKey | None, *, batch_size: int = 2000
) -> VerifyResult:
    """Recompute the chain and check every checkpoint; see the module docstring.

    Checkpoints are read before entries, so entries appended while this runs never look like
    a truncation. On SQLite the caller's transaction holds the write lock for the duration.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    checkpoints = _load_checkpoints(session)
    problems: list[_Problem] = []
    trusted_at: dict[int, list[_Checkpoint]] = {}
    untrusted: list[tuple[_Checkpoint, str, str]] = []
    for cp in checkpoints:
        code, message = _untrusted_reason(cp, public_key)
        if code:
            untrusted.append((cp, code, message))
        else:
            trusted_at.setdefault(cp.seq, []).append(cp)

    matched: list[int] = []  # seqs of trusted checkpoints whose entry still has the signed hash
    mismatched: list[_Checkpoint] = []
    entries = 0
    last_seq = 0
    prev_hash, prev_prev_hash = GENESIS_HASH, ""
    broken = False
    e = AuditEntry.__table__.c
    stmt = (
        select(
            e.seq,
            e.at,
            e.who,
            e.role,
            e.action,
            e.resource,
            # As text, parsed here: a row whose JSON was broken by hand must be reported as a
            # bad entry, not crash the result processor of the JSON column type.
            cast(e.detail, Text),
            e.prev_hash,
            e.hash,
        )
        .order_by(e.seq)
        .limit(batch_size)
    )
    after: int | None = None
    while True:
        batch = session.execute(stmt if after is None else stmt.where(e.seq > after)).all()
        for row in batch:
            seq, row_prev, row_hash = row[0], row[7], row[8]
            entries += 1
            if broken:
                continue  # only counting from here on
            expected = last_seq + 1
            problem: _Problem | None = None
            if seq != expected:
                problem = (
                    _Problem(expected, "seq_gap", f"entry {expected} is missing (next is {seq})")
                    if seq > expected
                    else _Problem(seq, "seq_gap", f"entry {seq}: seq must start at 1")
                )
            elif row_prev != prev_hash:
                if seq > 1 and row_prev == prev_prev_hash:
                    problem = _Problem(
                        seq - 1,
                        "inserted",
                        f"entry {seq - 1} was inserted: entry {seq} links to entry {seq - 2}",
                    )
                else:
                    problem = _Problem(
                        seq, "link", f"entry {seq}: prev_hash is not the hash of entry {seq - 1}"
                    )
            elif _recomputed_hash(row) != row_hash:
                problem = _Problem(seq, "hash", f"entry {seq}: content does not match its hash")
            if problem is not None:
                problems.append(problem)
                broken = True
                continue
            for cp in trusted_at.get(seq, ()):
                if cp.entry_hash == row_hash:
                    matched.append(cp.seq)
                else:
                    mismatched.append(cp)
            last_seq = seq
            prev_prev_hash, prev_hash = prev_hash, row_hash
        if len(batch) < batch_size:
            break
        after = batch[-1][0]

    last_entry = last_seq if not broken else None

    def after_last_good(seq: int) -> int:
        return max((m for m in matched if m < seq), default=0) + 1

    for cp in mismatched:
        problems.append(
            _Problem(
                after_last_good(cp.seq),
                "checkpoint_mismatch",
                f"checkpoint {cp.id} at seq {cp.seq}: the entry no longer has the signed hash; "
                f"entries after seq {after_last_good(cp.seq) - 1} were rewritten",
            )
        )
    for cp, code, message in untrusted:
        problems.append(_Problem(after_last_good(cp.seq), code, message))
    if last_entry is not None:
        beyond = [s for s in trusted_at if s > last_entry]
        if beyond:
            problems.append(
                _Problem(
                    last_entry + 1,
                    "truncated",
                    f"a checkpoint signs entry {max(beyond)} but the log ends at {last_entry}: "
                    f"entries {last_entry + 1}..{max(beyond)} were deleted",
                )
            )
    if not problems:
        return VerifyResult(True, entries, None, None, checkpoints=len(matched))
    worst = min(problems, key=_Problem.rank)
    return VerifyResult(
        False, entries, worst.first_bad, worst.message, checkpoints=len(matched), code=worst.code
    )
