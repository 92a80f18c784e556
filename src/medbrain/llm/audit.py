"""Wiring the gateway's ``on_call`` records to the audit chain (for adapters).

Why separate: the gateway itself holds no database session (it is used from the API, the
CLI and batch jobs alike); an adapter that has a request transaction builds this callback,
so each request to the model server is audited in the same transaction as the action that
caused it, and commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from medbrain.llm.result import LLMCallRecord

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

AUDIT_ACTION = "llm.call"


def audit_callback(
    session: Session, *, who: str, role: str, resource: str
) -> Callable[[LLMCallRecord], None]:
    """An ``on_call`` that appends ``llm.call`` entries (hashes, model, latency, tokens).

    ``resource`` is what the call was about (``Patient/42``, ``Composition/7``), never a
    patient identifier. The caller commits the session.
    """
    from medbrain.audit.chain import append

    def on_call(record: LLMCallRecord) -> None:
        append(
            session,
            who=who,
            role=role,
            action=AUDIT_ACTION,
            resource=resource,
            detail=record.to_detail(),
        )

    return on_call
