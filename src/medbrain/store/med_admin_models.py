"""ORM model of FHIR MedicationAdministration: when a dose was actually given (issue 6).

Medication orders (:class:`~medbrain.store.models.MedicationRequest`) carry when a drug was
ordered, not when it was given; surgical prophylaxis timing (first dose 0.5–1 h before the
incision, duration ≤ 24 h for clean surgery) needs the administration times. The FHIR importer
stores each MedicationAdministration here, with its start (``given_at``: effectiveDateTime or
effectivePeriod.start) and end, and the logical id of the order it fulfils. Migration
``0015_med_administration`` mirrors this.

References
----------
HL7 FHIR R4 (4.0.1) MedicationAdministration: status, medication[x], subject, context,
effective[x], request, dosage.route / dosage.dose.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from medbrain.store.models import Base, JsonDoc, UTCDateTime


class MedicationAdministration(Base):
    __tablename__ = "medication_administration"
    __table_args__ = (
        Index("ix_medication_administration_patient_given", "patient_id", "given_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fhir_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    request_fhir_id: Mapped[str | None] = mapped_column(String(128))  # MedicationRequest id
    drug: Mapped[str] = mapped_column(String(256))
    drug_code: Mapped[str | None] = mapped_column(String(64))
    dose_value: Mapped[float | None] = mapped_column(Float)
    dose_unit: Mapped[str | None] = mapped_column(String(32))
    route: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="completed")
    given_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    given_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resource: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
