"""Antimicrobial stewardship metrics over the stored encounters of a period (issue 6).

Builds each encounter's prescription from the store (:mod:`medbrain.store.rx_review`), computes
inpatient patient-days inside the period and hands both to the pure
:mod:`medbrain.rx.stewardship_metrics`.

An encounter counts in the period when its stay overlaps it (inpatients: admission to discharge,
or to the end of the period while still admitted; outpatient and emergency visits: the visit
time). All of an encounter's medication orders count (their ``days`` as written); orders are not
split at the period's edges.

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
    TherapyEpisode,
    culture_submission,
    is_culture,
    load_quality_rules,
    prophylaxis_only,
)
from medbrain.rx.model import Patient, Prescription
from medbrain.rx.stewardship_metrics import load_ddd_table, summarize_prescriptions
from medbrain.store import models as m
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
