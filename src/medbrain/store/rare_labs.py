"""A stored patient's record as a rare-disease case (issue 10).

The ward doctor's rare-disease check (``/rare?patient_id=N``) adds the patient's own
abnormal (and measured-normal) lab results to the phenotypes typed or extracted from text.
The record screen (:func:`screen_patient`, run after a FHIR import) reads the coded
diagnoses and the lab results, not the free-text notes: a note's differential-diagnosis
section names findings the patient does not have.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.audit import chain
from medbrain.core.errors import InputError
from medbrain.rare import PhenotypeIndex, RareKnowledge, parse_case
from medbrain.rare.labs import LabValue
from medbrain.rare.screen import screen_case
from medbrain.store import models as m
from medbrain.store.findings import save_findings

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


def screen_fields(session: Session, patient_id: int, now: datetime) -> dict[str, object]:
    """The case document of the record screen: labs, sex, age and the diagnoses' text."""
    fields = patient_case_fields(session, patient_id)
    diagnoses = session.scalars(
        select(m.Condition.text)
        .where(m.Condition.patient_id == patient_id)
        .order_by(m.Condition.id)
    ).all()
    if diagnoses:
        fields["text"] = "。".join(dict.fromkeys(d.strip() for d in diagnoses if d.strip()))
    born = session.scalar(select(m.Patient.birth_date).where(m.Patient.id == patient_id))
    if born is not None:
        fields["age_years"] = max(0.0, min(130.0, (now.date() - born).days / 365.25))
    return fields


def screen_patient(
    session: Session,
    patient_id: int,
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    *,
    now: datetime,
    lang: str = "zh",
    extra: dict[str, object] | None = None,
) -> list[m.FindingRecord]:
    """Screen one stored patient and store the rule packs it raises for the doctor's inbox,
    each once per patient: a pack the doctor already decided on is not raised again.

    A record with no abnormal finding is not screened; one the screen cannot read (a lab
    value in a unit it cannot convert) raises ``InputError`` naming the value. ``extra`` is
    added to each stored finding's ``extra`` (the demo marks its own)."""
    fields = screen_fields(session, patient_id, now)
    try:
        case = parse_case(fields, index, knowledge, source=f"Patient/{patient_id}", lang=lang)
    except InputError as exc:
        if exc.field == "hpo":  # no abnormal finding: nothing to screen
            return []
        raise
    raised = set(
        session.scalars(
            select(m.FindingRecord.rule_id).where(
                m.FindingRecord.patient_id == patient_id, m.FindingRecord.engine == "rare"
            )
        )
    )
    findings = [
        f for f in screen_case(case, index, knowledge, lang=lang) if f.rule_id not in raised
    ]
    if not findings:
        return []
    encounter_id = session.scalar(
        select(m.Encounter.id)
        .where(m.Encounter.patient_id == patient_id)
        .order_by(m.Encounter.admit_time.desc().nulls_last(), m.Encounter.id.desc())
        .limit(1)
    )
    fhir_id = session.scalar(select(m.Patient.fhir_id).where(m.Patient.id == patient_id))
    return save_findings(
        session,
        [replace(f, extra={**f.extra, **(extra or {})}) for f in findings],
        engine="rare",
        target_role="doctor",
        patient_id=patient_id,
        encounter_id=encounter_id,
        subject=f"Patient/{fhir_id or patient_id}",
    )


def screen_import(
    session: Session,
    patient_ids: list[int],
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    *,
    now: datetime,
    origin: str,
    who: str,
    role: str,
    lang: str = "zh",
) -> dict[str, object]:
    """After a FHIR import: screen the patients it brought lab results for and store what
    the screen raises. A record the screen cannot read is listed in ``skipped`` with the
    problem; the import stands. Audited as ``rare.screen`` (counts and finding ids)."""
    raised: list[int] = []
    skipped: dict[str, str] = {}
    for patient_id in patient_ids:
        try:
            with session.begin_nested():
                rows = screen_patient(session, patient_id, index, knowledge, now=now, lang=lang)
        except InputError as exc:
            skipped[f"Patient/{patient_id}"] = f"{exc.field}: {exc.problem}"
            continue
        raised.extend(r.id for r in rows)
    summary: dict[str, object] = {
        "patients": len(patient_ids),
        "raised": raised,
        "skipped": skipped,
    }
    if patient_ids:
        chain.append(
            session,
            who=who,
            role=role,
            action="rare.screen",
            resource=origin[:256],
            detail=summary,
            now=now,
        )
    return summary
