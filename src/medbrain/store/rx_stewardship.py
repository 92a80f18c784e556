"""Antimicrobial stewardship metrics over the stored encounters of a period (issue 6).

Builds each encounter's prescription from the store (:mod:`medbrain.store.rx_review`), computes
inpatient patient-days inside the period and hands both to the pure
:mod:`medbrain.rx.stewardship_metrics`.

An encounter counts in the period when its stay overlaps it (inpatients: admission to discharge,
or to the end of the period while still admitted; outpatient and emergency visits: the visit
time). All of an encounter's medication orders count (their ``days`` as written); orders are not
split at the period's edges.

Surgical prophylaxis of stored stays: each inpatient stay's first operation (a Procedure with a
performed time whose ICD-9-CM-3 code is an operation), unless a diagnosis names an infection
(then the antimicrobials are treatment), timed against the stay's imported
MedicationAdministration doses of systemic antimicrobials (:mod:`medbrain.store.med_admin_models`).
Incision = ``performedPeriod.start`` (or ``performedDateTime``), end = ``performedPeriod.end``.

References
----------
《抗菌药物临床应用管理办法》(卫生部令第84号, 2012); WHO ATC/DDD methodology (patient-days
denominator, "DDD per 100 bed-days").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.rx import RxKnowledge, parse_prescription
from medbrain.rx.culture_metrics import (
    SYSTEMIC_ANTIMICROBIAL_ATC,
    Dose,
    ProphylaxisCase,
    QualityRules,
    TherapyEpisode,
    culture_submission,
    has_infection_indication,
    is_culture,
    is_operation,
    load_quality_rules,
    prophylaxis_case_from_doses,
    prophylaxis_only,
    prophylaxis_timing,
)
from medbrain.rx.model import Patient, Prescription
from medbrain.rx.names import resolve_name
from medbrain.rx.stewardship_metrics import load_ddd_table, summarize_prescriptions
from medbrain.store import models as m
from medbrain.store.med_admin_models import MedicationAdministration
from medbrain.store.rx_review import stored_prescriptions

MAX_PERIOD_DAYS = 3660


def latest_activity(session: Session) -> datetime | None:
    """The newest medication order time (the demo data's "now")."""
    return session.scalar(select(func.max(m.MedicationRequest.authored_at)))


def patient_days(encounter: m.Encounter, start: datetime, end: datetime) -> float:
    """Days of the stay inside ``[start, end)`` (0 for a stay outside it)."""
    if encounter.admit_time is None:
        return 0.0
    stay_end = encounter.discharge_time or end
    overlap = min(stay_end, end) - max(encounter.admit_time, start)
    return max(overlap.total_seconds() / 86400.0, 0.0)


def stewardship_report(
    session: Session, knowledge: RxKnowledge, start: date, end: date, *, lang: str = "zh"
) -> dict[str, Any]:
    """Stewardship numbers for encounters in ``[start, end]`` (calendar days, UTC).

    Raises
    ------
    InputError
        ``start`` after ``end`` or a period longer than ten years.
    """
    if start > end:
        raise InputError("query", "start", t("rx.wb.bad_period", lang))
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InputError("query", "end", t("rx.wb.period_too_long", lang, n=MAX_PERIOD_DAYS))
    lo = datetime.combine(start, time.min, UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, UTC)
    encounters = list(
        session.scalars(
            select(m.Encounter)
            .where(m.Encounter.admit_time.is_not(None), m.Encounter.admit_time < hi)
            .where(
                or_(
                    m.Encounter.admit_time >= lo,
                    (m.Encounter.kind == "inpatient")
                    & or_(m.Encounter.discharge_time.is_(None), m.Encounter.discharge_time >= lo),
                )
            )
            .order_by(m.Encounter.id)
        )
    )
    with_meds = {p.encounter.id: p for p in stored_prescriptions(session, encounters)}
    table = load_ddd_table(knowledge)
    rules = load_quality_rules()
    episodes: list[TherapyEpisode] = []
    rows = []
    skipped = 0
    for encounter in encounters:
        if encounter.kind not in ("outpatient", "emergency", "inpatient"):
            continue
        stored = with_meds.get(encounter.id)
        if stored is None:  # no medication: counts in the denominators only
            prescription = Prescription(
                patient=Patient(), items=(), department=encounter.department, setting=encounter.kind
            )
        else:
            try:
                prescription = parse_prescription(
                    stored.document, knowledge, f"Encounter/{encounter.id}"
                )
            except InputError:
                skipped += 1
                continue
        days = patient_days(encounter, lo, hi) if encounter.kind == "inpatient" else 0.0
        prescriber = (
            next((r.prescriber for r in stored.requests if r.prescriber), None) if stored else None
        )
        rows.append((f"Encounter/{encounter.id}", prescription, days, prescriber))
        if stored is not None and encounter.kind == "inpatient":
            episode = _therapy_episode(encounter, stored.requests, prescription, table, knowledge)
            if episode is not None:
                episodes.append(episode)
    report = summarize_prescriptions(rows, table, knowledge, lang)
    report["culture"] = culture_submission(_with_cultures(session, episodes, rules), rules)
    inpatients = [e for e in encounters if e.kind == "inpatient"]
    report["prophylaxis"] = prophylaxis_timing(
        prophylaxis_cases(session, inpatients, knowledge, rules), rules
    )
    report["skipped"] = skipped
    report["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    return report


def _therapy_episode(
    encounter: m.Encounter,
    requests: list[m.MedicationRequest],
    prescription: Prescription,
    table: Any,
    knowledge: RxKnowledge,
) -> TherapyEpisode | None:
    """The stay's therapeutic antimicrobial use: first order time and grades (None when the
    stay had no antimicrobial, only prophylaxis, or no order time)."""
    am = knowledge.antimicrobial
    if prophylaxis_only(prescription.patient.diagnoses, am.infection_terms, am.prophylaxis_terms):
        return None
    times = []
    grades = set()
    for item, request in zip(prescription.items, requests, strict=False):
        if item.drug is None or not table.is_antimicrobial(item.drug):
            continue
        if request.authored_at is not None:
            times.append(request.authored_at)
        grade = am.grade(item.drug.id, item.route)
        if grade:
            grades.add(grade)
    if not times:
        return None
    return TherapyEpisode(
        key=f"Encounter/{encounter.id}",
        department=encounter.department or "—",
        first_order_at=min(times),
        grades=frozenset(grades),
        admit_at=encounter.admit_time,
    )


def _with_cultures(
    session: Session, episodes: list[TherapyEpisode], rules: Any
) -> list[TherapyEpisode]:
    """Attach each stay's culture sample times: Observations of the same patient whose code is a
    listed culture LOINC or whose display names a culture (collection time = effective_at)."""
    if not episodes:
        return []
    ids = [int(e.key.split("/", 1)[1]) for e in episodes]
    patient_of: dict[int, int] = {
        enc_id: patient_id
        for enc_id, patient_id in session.execute(
            select(m.Encounter.id, m.Encounter.patient_id).where(m.Encounter.id.in_(ids))
        )
    }
    times: dict[int, list[datetime]] = {}
    statement = select(
        m.Observation.patient_id, m.Observation.code, m.Observation.display,
        m.Observation.effective_at,
    ).where(
        m.Observation.patient_id.in_(sorted(set(patient_of.values()))),
        m.Observation.effective_at.is_not(None),
        m.Observation.status.not_in(("cancelled", "entered-in-error")),
    )  # fmt: skip
    for patient_id, code, display, at in session.execute(statement):
        if at is not None and is_culture(code, display, rules):
            times.setdefault(patient_id, []).append(at)
    return [
        TherapyEpisode(
            key=e.key,
            department=e.department,
            first_order_at=e.first_order_at,
            grades=e.grades,
            culture_times=tuple(times.get(patient_of[i], ())),
            admit_at=e.admit_at,
        )
        for e, i in zip(episodes, ids, strict=True)
    ]


# -- surgical prophylaxis from administered doses --------------------------------------------

#: Administrations that were not (or not validly) given.
NOT_GIVEN = ("not-done", "entered-in-error", "unknown")


def _end_of(procedure: m.Procedure) -> datetime | None:
    period = (procedure.resource or {}).get("performedPeriod") or {}
    raw = period.get("end") if isinstance(period, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        end = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return end if end.tzinfo is not None else end.replace(tzinfo=UTC)


def stay_diagnoses(session: Session, encounters: list[m.Encounter]) -> dict[int, list[str]]:
    """Each stay's diagnoses, whatever their clinical status (an operation for an appendicitis
    that is "resolved" now was still treatment), plus the patient's diagnoses without a stay."""
    patient_ids = sorted({e.patient_id for e in encounters})
    by_patient: dict[int, list[tuple[int | None, str]]] = {}
    for patient_id, encounter_id, text in session.execute(
        select(m.Condition.patient_id, m.Condition.encounter_id, m.Condition.text).where(
            m.Condition.patient_id.in_(patient_ids)
        )
    ):
        by_patient.setdefault(patient_id, []).append((encounter_id, text))
    return {
        e.id: [t for enc, t in by_patient.get(e.patient_id, []) if enc in (None, e.id)]
        for e in encounters
    }


def prophylaxis_cases(
    session: Session,
    encounters: list[m.Encounter],
    knowledge: RxKnowledge,
    rules: QualityRules,
) -> list[ProphylaxisCase]:
    """One case per inpatient stay with an operation and an administered systemic antimicrobial
    around it (see the module docstring); stays treated for an infection are left out."""
    if not encounters:
        return []
    ids = [e.id for e in encounters]
    first_operation: dict[int, m.Procedure] = {}
    for proc in session.scalars(
        select(m.Procedure)
        .where(m.Procedure.encounter_id.in_(ids), m.Procedure.performed_at.is_not(None))
        .order_by(m.Procedure.performed_at, m.Procedure.id)
    ):
        if proc.encounter_id is not None and is_operation(proc.code, rules):
            first_operation.setdefault(proc.encounter_id, proc)
    if not first_operation:
        return []
    doses: dict[int, list[Dose]] = {}
    for row in session.scalars(
        select(MedicationAdministration).where(
            MedicationAdministration.encounter_id.in_(sorted(first_operation)),
            MedicationAdministration.given_at.is_not(None),
            MedicationAdministration.status.not_in(NOT_GIVEN),
        )
    ):
        found = resolve_name(row.drug, knowledge)
        drug = knowledge.drugs.get(found.drug_id) if found else None
        if drug is None or not str(drug.atc or "").startswith(SYSTEMIC_ANTIMICROBIAL_ATC):
            continue
        if row.encounter_id is not None and row.given_at is not None:
            doses.setdefault(row.encounter_id, []).append(
                Dose(given_at=row.given_at, drug_id=drug.id, given_end=row.given_end)
            )
    diagnoses = stay_diagnoses(session, [e for e in encounters if e.id in doses])
    am = knowledge.antimicrobial
    cases = []
    for encounter in encounters:
        operation = first_operation.get(encounter.id)
        if operation is None or operation.performed_at is None or encounter.id not in doses:
            continue
        texts = diagnoses.get(encounter.id, [])
        if has_infection_indication(texts, am.infection_terms, am.prophylaxis_terms):
            continue
        case = prophylaxis_case_from_doses(
            f"Encounter/{encounter.id}",
            encounter.department or "—",
            operation.performed_at,
            _end_of(operation),
            doses[encounter.id],
            rules,
        )
        if case is not None:
            cases.append(case)
    return cases


# -- demo data -------------------------------------------------------------------------------

_LAB = "http://terminology.hl7.org/CodeSystem/observation-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
#: (LOINC, LOINC long common name, Chinese display) of the demo's culture samples.
DEMO_CULTURES = (
    ("600-7", "Bacteria identified in Blood by Culture", "血培养"),
    ("6460-0", "Bacteria identified in Sputum by Culture", "痰培养"),
)
#: (minutes from incision to the first dose, hours after the end of the operation of the last)
DEMO_PROPHYLAXIS_PATTERNS = ((-40, 8.0), (-150, 48.0), (15, 0.0))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _systemic_antimicrobial(name: str, knowledge: RxKnowledge) -> str | None:
    found = resolve_name(name, knowledge)
    drug = knowledge.drugs.get(found.drug_id) if found else None
    if drug is None or not str(drug.atc or "").startswith(SYSTEMIC_ANTIMICROBIAL_ATC):
        return None
    return drug.id


def demo_stewardship_bundle(session: Session, knowledge: RxKnowledge) -> dict[str, Any]:
    """A FHIR Bundle of synthetic administrations and culture samples for the demo's stays.

    * Stays with an operation, an antimicrobial order and no infection diagnosis get
      MedicationAdministration doses (the ordered drug, IV) in turn on time with a short
      course, on time with a 48-h course, and late (after the incision).
    * Stays treated for an infection get a culture sample (blood, sputum) 30 min before the
      first antimicrobial order, every third one 2 h after it instead (not counted).
    """
    rules = load_quality_rules()
    am = knowledge.antimicrobial
    stays = list(
        session.scalars(
            select(m.Encounter).where(m.Encounter.kind == "inpatient").order_by(m.Encounter.id)
        )
    )
    stored = {p.encounter.id: p for p in stored_prescriptions(session, stays)}
    operations: dict[int, m.Procedure] = {}
    for proc in session.scalars(
        select(m.Procedure)
        .where(m.Procedure.performed_at.is_not(None))
        .order_by(m.Procedure.performed_at, m.Procedure.id)
    ):
        if proc.encounter_id is not None and is_operation(proc.code, rules):
            operations.setdefault(proc.encounter_id, proc)
    patients = {
        p.id: p.fhir_id
        for p in session.scalars(select(m.Patient).where(m.Patient.fhir_id.is_not(None)))
    }
    all_diagnoses = stay_diagnoses(session, stays)
    entries: list[dict[str, Any]] = []
    surgical = cultured = 0
    for stay in stays:
        prescription = stored.get(stay.id)
        patient_ref = patients.get(stay.patient_id)
        if prescription is None or patient_ref is None or stay.fhir_id is None:
            continue
        orders = [
            (r, drug_id)
            for r in prescription.requests
            if (drug_id := _systemic_antimicrobial(r.drug, knowledge)) is not None
        ]
        if not orders:
            continue
        diagnoses = all_diagnoses.get(stay.id, [])
        refs = {
            "subject": {"reference": f"Patient/{patient_ref}"},
        }
        infection = has_infection_indication(diagnoses, am.infection_terms, am.prophylaxis_terms)
        operation = operations.get(stay.id)
        if operation is not None and operation.performed_at is not None and not infection:
            request, _drug = orders[0]
            first, last_hours = DEMO_PROPHYLAXIS_PATTERNS[surgical % 3]
            surgical += 1
            start = operation.performed_at + timedelta(minutes=first)
            end = (_end_of(operation) or operation.performed_at) + timedelta(hours=last_hours)
            times = [start]
            while times[-1] + timedelta(hours=8) <= end:
                times.append(times[-1] + timedelta(hours=8))
            for k, at in enumerate(times):
                dose: dict[str, Any] = {
                    "resourceType": "MedicationAdministration",
                    "id": f"demo-ma-{stay.id}-{k}",
                    "status": "completed",
                    "medicationCodeableConcept": {"text": request.drug},
                    **refs,
                    "context": {"reference": f"Encounter/{stay.fhir_id}"},
                    "effectivePeriod": {
                        "start": _iso(at),
                        "end": _iso(at + timedelta(minutes=30)),
                    },
                    "dosage": {"route": {"text": "静脉滴注"}},
                    "note": [{"text": "synthetic demo data"}],
                }
                if request.fhir_id:
                    dose["request"] = {"reference": f"MedicationRequest/{request.fhir_id}"}
                entries.append({"resource": dose})
        elif infection:
            times = [r.authored_at for r, _ in orders if r.authored_at is not None]
            if not times:
                continue
            code, display, zh = DEMO_CULTURES[cultured % len(DEMO_CULTURES)]
            late = cultured % 3 == 2
            cultured += 1
            at = min(times) + (timedelta(hours=2) if late else timedelta(minutes=-30))
            entries.append(
                {
                    "resource": {
                        "resourceType": "Observation",
                        "id": f"demo-culture-{stay.id}",
                        "status": "final",
                        "category": [{"coding": [{"system": _LAB, "code": "laboratory"}]}],
                        "code": {
                            "coding": [
                                {"system": "http://loinc.org", "code": code, "display": display}
                            ],
                            "text": zh,
                        },
                        **refs,
                        "encounter": {"reference": f"Encounter/{stay.fhir_id}"},
                        "effectiveDateTime": _iso(at),
                        "valueString": "无细菌生长",
                        "interpretation": [
                            {"coding": [{"system": _INTERPRETATION, "code": "NEG"}]}
                        ],
                    }
                }
            )
    return {
        "resourceType": "Bundle",
        "id": "demo-stewardship",
        "type": "collection",
        "entry": entries,
    }


def seed_demo_stewardship(session: Session, knowledge: RxKnowledge | None = None) -> int:
    """Import :func:`demo_stewardship_bundle` through the FHIR importer; returns its size."""
    from medbrain.interop.fhir.importer import import_bundle
    from medbrain.rx import load_rx_knowledge

    bundle = demo_stewardship_bundle(session, knowledge or load_rx_knowledge(None))
    if bundle["entry"]:
        import_bundle(session, bundle, source="demo-stewardship")
    return len(bundle["entry"])
