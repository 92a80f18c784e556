"""Repository of the ED board and pre-consultations: visits, step times, re-assessments.

Functions take a :class:`~sqlalchemy.orm.Session` (the caller owns the transaction) and return
ORM rows or the engine's :class:`~medbrain.triage.ed.EdVisitState`. Invalid requests raise
``InputError`` (422) or ``ConflictError`` (409, a once-only step recorded twice) before anything
is written, so a refused request leaves no half-written data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.store import models as m
from medbrain.store.triage_models import EdEvent, EdVisit, PreConsultation
from medbrain.triage import TriageKnowledge, TriageResult
from medbrain.triage.ed import REASSESSMENT_STEPS, EdKnowledge, EdVisitState

#: A step may be stamped a little ahead of the server clock (device clocks drift), not more.
FUTURE_TOLERANCE = timedelta(minutes=5)
#: Departed patients stay on the board this long after their disposition.
DEPARTED_VISIBLE = timedelta(hours=2)


def create_visit(
    session: Session,
    *,
    visit: Mapping[str, Any],
    result: TriageResult,
    suggested_level: int,
    label: str,
    door_at: datetime,
    triage_at: datetime,
    by: str,
    patient_id: int | None = None,
) -> EdVisit:
    """Store an arrival, already triaged (``result`` carries the nurse's level)."""
    if patient_id is not None and session.get(m.Patient, patient_id) is None:
        raise InputError("body", "patient_id", f"Patient/{patient_id} does not exist")
    if triage_at < door_at:
        raise InputError("body", "triage_at", "is before the door time")
    row = EdVisit(
        patient_id=patient_id,
        label=label,
        door_at=door_at,
        complaint=str(visit.get("complaint", "")),
        visit=dict(visit),
        suggested_level=suggested_level,
        level=result.level,
        zone=result.zone,
        max_wait_minutes=result.max_wait_minutes,
        department_code=result.department.code,
        pathway=result.pathway,
        red_flags=list(result.red_flags),
        news2=float(result.news2) if result.news2 is not None else None,
        status="waiting",
        created_by=by,
    )
    session.add(row)
    session.flush()
    session.add(EdEvent(visit_id=row.id, step="triage", seq=0, at=triage_at, recorded_by=by))
    session.flush()
    return row


def get_visit(session: Session, visit_id: int) -> EdVisit:
    row = session.get(EdVisit, visit_id, options=[selectinload(EdVisit.events)])
    if row is None:
        raise NotFoundError(f"EdVisit/{visit_id}")
    return row


def _check_time(at: datetime, door_at: datetime, now: datetime, field: str) -> None:
    if at.utcoffset() is None:
        raise InputError("body", field, "needs a time zone (e.g. 2026-11-23T08:00:00+08:00)")
    if at < door_at:
        raise InputError("body", field, "is before the door time")
    if at > now + FUTURE_TOLERANCE:
        raise InputError("body", field, "is in the future")


def record_step(
    session: Session,
    visit_id: int,
    step: str,
    at: datetime,
    *,
    by: str,
    now: datetime,
    ed: EdKnowledge,
    triage: TriageKnowledge,
    disposition: str | None = None,
) -> EdEvent:
    """Stamp one pathway step (once per visit). ``doctor`` marks the patient seen;
    ``disposition`` (with a known disposition id) marks the patient departed."""
    row = get_visit(session, visit_id)
    allowed = ed.step_ids(row.pathway, triage)
    if step in ("door", *REASSESSMENT_STEPS) or step not in allowed:
        choices = ", ".join(s for s in allowed if s != "door")
        raise InputError("body", "step", f"unknown step {step!r} for this visit: use {choices}")
    _check_time(at, row.door_at, now, "at")
    if step == "disposition":
        if disposition not in ed.dispositions:
            raise InputError("body", "disposition", f"must be one of {', '.join(ed.dispositions)}")
    elif disposition is not None:
        raise InputError("body", "disposition", "is only given with the disposition step")
    if any(e.step == step for e in row.events):
        raise ConflictError("body", "step", f"{step} is already recorded for this visit")
    if row.status == "departed":
        raise ConflictError("body", "step", "the patient has already left the department")
    event = EdEvent(
        visit_id=row.id,
        step=step,
        seq=0,
        at=at,
        recorded_by=by,
        detail={"disposition": disposition} if disposition else {},
    )
    session.add(event)
    if step == "doctor" and row.status == "waiting":
        row.status = "seen"
    if step == "disposition":
        row.status = "departed"
        row.disposition = disposition
    session.flush()
    return event


def _next_seq(row: EdVisit, step: str) -> int:
    return 1 + max((e.seq for e in row.events if e.step == step), default=0)


def record_reassessment(
    session: Session,
    visit_id: int,
    *,
    vitals: Mapping[str, Any],
    result: TriageResult,
    at: datetime,
    by: str,
    now: datetime,
) -> EdEvent:
    """Re-measured vital signs and what the engine makes of them (the level is not changed:
    the nurse decides with :func:`retriage`)."""
    row = get_visit(session, visit_id)
    _check_time(at, row.door_at, now, "at")
    if row.status == "departed":
        raise ConflictError("body", "vitals", "the patient has already left the department")
    event = EdEvent(
        visit_id=row.id,
        step="vitals",
        seq=_next_seq(row, "vitals"),
        at=at,
        recorded_by=by,
        detail={"vitals": dict(vitals), "level": result.level, "news2": result.news2},
    )
    session.add(event)
    session.flush()
    return event


def retriage(
    session: Session,
    visit_id: int,
    *,
    result: TriageResult,
    reason: str,
    at: datetime,
    by: str,
) -> EdEvent:
    """The nurse's new level (``result`` from :func:`medbrain.triage.apply_decision`)."""
    row = get_visit(session, visit_id)
    if row.status == "departed":
        raise ConflictError("body", "final_level", "the patient has already left the department")
    event = EdEvent(
        visit_id=row.id,
        step="retriage",
        seq=_next_seq(row, "retriage"),
        at=at,
        recorded_by=by,
        detail={"from": row.level, "to": result.level, "reason": reason},
    )
    row.level = result.level
    row.zone = result.zone
    row.max_wait_minutes = result.max_wait_minutes
    if result.care == "emergency":
        row.department_code = result.department.code
    session.add(event)
    session.flush()
    return event


def state_of(row: EdVisit) -> EdVisitState:
    """The engine's view of a stored visit (latest re-assessment included)."""
    events = {e.step: e.at for e in row.events if e.step not in REASSESSMENT_STEPS}
    vitals = [e for e in row.events if e.step == "vitals"]
    latest = max(vitals, key=lambda e: (e.at, e.seq)) if vitals else None
    retriaged = [e for e in row.events if e.step == "retriage"]
    if latest is not None and retriaged and max(e.at for e in retriaged) >= latest.at:
        latest = None  # the nurse re-triaged after the last vitals: that prompt is answered
    visit = row.visit or {}
    age = visit.get("age_years")
    news2_new = latest.detail.get("news2") if latest is not None else None
    return EdVisitState(
        visit_id=row.id,
        label=row.label,
        door_at=row.door_at,
        level=row.level,
        pathway=row.pathway,
        department_code=row.department_code,
        status=row.status,
        complaint=row.complaint,
        patient_id=row.patient_id,
        age_years=float(age) if isinstance(age, int | float) else None,
        sex=visit.get("sex") if isinstance(visit.get("sex"), str) else None,
        red_flags=tuple(row.red_flags or ()),
        news2=row.news2,
        events=events,
        reassessed_level=int(latest.detail["level"]) if latest is not None else None,
        reassessed_news2=float(news2_new) if isinstance(news2_new, int | float) else None,
        disposition=row.disposition,
    )


def board_states(session: Session, now: datetime) -> list[EdVisitState]:
    """Visits in the department now, and those that left in the last two hours."""
    since = now - DEPARTED_VISIBLE
    rows = session.scalars(
        select(EdVisit)
        .where(or_(EdVisit.status != "departed", EdVisit.updated_at >= since))
        .options(selectinload(EdVisit.events))
        .order_by(EdVisit.door_at, EdVisit.id)
    ).all()
    return [state_of(r) for r in rows]


def active_visit_for_patient(session: Session, patient_id: int) -> EdVisit | None:
    return session.scalars(
        select(EdVisit)
        .where(EdVisit.patient_id == patient_id)
        .options(selectinload(EdVisit.events))
        .order_by(EdVisit.door_at.desc(), EdVisit.id.desc())
        .limit(1)
    ).first()


def count_visits(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(EdVisit)) or 0)


# --------------------------------------------------------------------------- pre-consultation


def save_preconsult(
    session: Session,
    *,
    patient_id: int,
    answers: Mapping[str, Any],
    result: Mapping[str, Any],
    by: str,
    at: datetime,
) -> PreConsultation:
    row = PreConsultation(
        patient_id=patient_id,
        answers=dict(answers),
        result=dict(result),
        care=str(result["care"]),
        department_code=str(result["department"]["code"]),
        go_to_ed=bool(result["go_to_ed"]),
        created_by=by,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return row


def latest_preconsults(
    session: Session, patient_id: int, limit: int = 1
) -> Sequence[PreConsultation]:
    return session.scalars(
        select(PreConsultation)
        .where(PreConsultation.patient_id == patient_id)
        .order_by(PreConsultation.created_at.desc(), PreConsultation.id.desc())
        .limit(limit)
    ).all()
