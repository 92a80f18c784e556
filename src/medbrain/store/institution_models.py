"""ORM model of institutions' live load for "where to go" (issue 9 item 5).

One row per institution code (``knowledge/triage/institutions.yaml``), replaced on each
``PUT /api/v1/ed/institutions/{code}/load``. Mirrored by migration ``0010_institution_load``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, UTCDateTime


class InstitutionLoad(Base):
    __tablename__ = "institution_load"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue_length: Mapped[int] = mapped_column(Integer)
    free_beds: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
