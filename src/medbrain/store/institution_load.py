"""Live load of institutions (queue length, free beds) for where-to-go recommendations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.store.institution_models import InstitutionLoad
from medbrain.triage.where import Load


def put_load(
    session: Session,
    code: str,
    *,
    queue_length: int,
    free_beds: int | None,
    by: str,
    at: datetime,
) -> InstitutionLoad:
    """Replace the institution's live load (one row per institution)."""
    row = session.get(InstitutionLoad, code)
    if row is None:
        row = InstitutionLoad(code=code)
        session.add(row)
    row.queue_length = queue_length
    row.free_beds = free_beds
    row.updated_at = at
    row.updated_by = by
    session.flush()
    return row


def loads(session: Session) -> dict[str, Load]:
    """Every stored live load by institution code."""
    return {
        r.code: Load(queue_length=r.queue_length, free_beds=r.free_beds, updated_at=r.updated_at)
        for r in session.scalars(select(InstitutionLoad)).all()
    }
