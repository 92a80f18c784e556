"""A stored patient's laboratory results as inputs of the lab → HPO mapping (issue 10).

The ward doctor's rare-disease check (``/rare?patient_id=N``) adds the patient's own
abnormal (and measured-normal) lab results to the phenotypes typed or extracted from text.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.rare.labs import LabValue
from medbrain.store import models as m

LATEST_PER_CODE = 3


def patient_lab_values(session: Session, patient_id: int) -> tuple[list[LabValue], str | None]:
    """The latest few numeric results per LOINC code, and the patient's sex."""
    rows = session.execute(
        select(
            m.Observation.id,
            m.Observation.fhir_id,
            m.Observation.code,
            m.Observation.value_num,
            m.Observation.unit,
        )
        .where(m.Observation.patient_id == patient_id, m.Observation.value_num.is_not(None))
        .order_by(m.Observation.code, m.Observation.effective_at.desc().nulls_last())
    ).all()
    per_code: dict[str, int] = {}
    labs: list[LabValue] = []
    for row_id, fhir_id, code, value, unit in rows:
        if per_code.get(code, 0) >= LATEST_PER_CODE or value is None or value < 0:
            continue
        per_code[code] = per_code.get(code, 0) + 1
        labs.append(LabValue(code, float(value), unit, f"Observation/{fhir_id or row_id}"))
    sex = session.scalar(select(m.Patient.sex).where(m.Patient.id == patient_id))
    return labs, sex if sex in ("male", "female") else None


def patient_case_fields(session: Session, patient_id: int) -> dict[str, object]:
    """``labs`` and ``sex`` of a ``medbrain rare rank`` case document for a stored patient."""
    labs, sex = patient_lab_values(session, patient_id)
    fields: dict[str, object] = {
        "labs": [
            {"loinc": lab.loinc, "value": lab.value, "unit": lab.unit, "resource": lab.resource}
            for lab in labs
        ]
    }
    if sex is not None:
        fields["sex"] = sex
    return fields
