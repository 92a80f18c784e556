"""Helpers for the audit tests and benchmark: build a chain, and tamper with it like an attacker.

The tampering helpers go around :mod:`medbrain.audit` on purpose (raw SQL or plain ORM
writes), the way someone with write access to the database would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit import chain
from medbrain.audit.keys import AuditSigner
from medbrain.store.models import AuditCheckpoint, AuditEntry

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def build_chain(
    factory: sessionmaker[Session], signer: AuditSigner | None, count: int, every: int = 10
) -> None:
    """``count`` entries, one transaction each (as requests do), a checkpoint every ``every``."""
    for i in range(1, count + 1):
        with factory() as session, session.begin():
            chain.append(
                session,
                who=f"dr.{i % 3}",
                role="doctor",
                action="patient.read",
                resource=f"Patient/{100 + i}",
                detail={"view": "timeline", "n": i, "note": "复核", "ratio": 0.25},
                now=T0 + timedelta(seconds=i),
                signer=signer,
                checkpoint_every=every,
            )


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def set_detail(engine: Engine, seq: int, detail: dict[str, Any]) -> None:
    cast = "CAST(:d AS JSONB)" if engine.dialect.name == "postgresql" else ":d"
    sql(
        engine,
        f"UPDATE audit_entry SET detail = {cast} WHERE seq = :s",
        d=json.dumps(detail),
        s=seq,
    )


def swap_seq(engine: Engine, a: int, b: int) -> None:
    """Reorder: entry ``a`` takes seq ``b`` and the other way round."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_entry SET seq = -1 WHERE seq = :a"), {"a": a})
        connection.execute(text("UPDATE audit_entry SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
        connection.execute(text("UPDATE audit_entry SET seq = :b WHERE seq = -1"), {"b": b})


def recompute_from(factory: sessionmaker[Session], start: int) -> None:
    """Recompute hash and prev_hash of every entry from ``start`` on, as a careful attacker."""
    with factory() as session, session.begin():
        previous = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == start - 1))
        prev_hash = previous or chain.GENESIS_HASH
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq >= start).order_by(AuditEntry.seq)
        ).all()
        for row in rows:
            row.prev_hash = prev_hash
            row.hash = chain.compute_hash(
                chain.entry_fields(
                    seq=row.seq,
                    at=row.at,
                    who=row.who,
                    role=row.role,
                    action=row.action,
                    resource=row.resource,
                    detail=row.detail,
                    prev_hash=prev_hash,
                )
            )
            session.flush()
            prev_hash = row.hash


def resign_checkpoints(
    factory: sessionmaker[Session], signer: AuditSigner, start: int, *, keep_key_id: bool
) -> None:
    """Re-sign checkpoints from ``start`` on over the current hashes with ``signer``."""
    with factory() as session, session.begin():
        rows = session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.seq >= start)).all()
        for cp in rows:
            cp.entry_hash = session.get_one(AuditEntry, cp.seq).hash
            if not keep_key_id:
                cp.key_id = signer.key_id
            cp.signature = signer.sign(
                chain.checkpoint_message(
                    seq=cp.seq, entry_hash=cp.entry_hash, signed_at=cp.signed_at, key_id=cp.key_id
                )
            )
