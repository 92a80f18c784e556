"""Tracked alerts (危急值闭环): raise, deliver, acknowledge, escalate, handle, measure.

Adapter code around the pure :mod:`medbrain.alerts.tracking` policy:

- :func:`track_import_alerts` is the hook the FHIR import calls: it evaluates the alert
  engine for the patients the bundle touched and stores every tracked alert (critical values
  and critical alerts) once, addressed to the responsible roles of the patient's department.
- :func:`acknowledge` and :func:`handle` record who did what and when; :func:`escalate_due`
  (background loop or ``medbrain alerts escalate``) notifies the next level for alerts
  nobody acknowledged in time. Every change is written to the audit chain in the same
  transaction.
- :func:`alert_stats` computes the on-time indicators (危急值处置及时率) for the cockpit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.alerts import AlertKnowledge, RaisedAlert, evaluate_bundle
from medbrain.alerts.escalation import escalation_state
from medbrain.alerts.tracking import TrackedTimes, TrackingPolicy, tracking_policy, tracking_stats
from medbrain.audit import chain
from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.core.findings import Severity
from medbrain.core.i18n import t
from medbrain.store import models as m
from medbrain.store.alerts_models import TrackedAlert, TrackedAlertEvent

SYSTEM_USER = "system"
SYSTEM_ROLE = "system"
LIST_LIMIT_MAX = 500
ACTION_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: str


@dataclass(frozen=True, slots=True)
class TrackedAlertView:
    """A tracked alert as pages and the API show it."""

    id: int
    patient_id: int
    department: str | None
    rule_id: str
    category: str
    severity: str
    message: str
    suggestion: str
    evidence: tuple[dict[str, Any], ...]
    value: float | None
    observed_at: datetime | None
    raised_at: datetime
    acknowledge_due_at: datetime
    handle_due_at: datetime
    recipients: tuple[str, ...]
    level: int
    notified: tuple[str, ...]
    escalated_at: datetime | None
    status: str
    acknowledged_by: str | None
    acknowledged_role: str | None
    acknowledged_at: datetime | None
    handled_by: str | None
    handled_role: str | None
    handled_at: datetime | None
    action: str | None

    def overdue(self, now: datetime) -> bool:
        """Unacknowledged past its acknowledgement deadline."""
        return self.acknowledged_at is None and now >= self.acknowledge_due_at

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "department": self.department,
            "rule_id": self.rule_id,
            "category": self.category,
            "severity": self.severity,
            "message": self.message,
            "suggestion": self.suggestion,
            "evidence": list(self.evidence),
            "value": self.value,
            "observed_at": iso(self.observed_at),
            "raised_at": iso(self.raised_at),
            "acknowledge_due_at": iso(self.acknowledge_due_at),
            "handle_due_at": iso(self.handle_due_at),
            "recipients": list(self.recipients),
            "level": self.level,
            "notified": list(self.notified),
            "escalated_at": iso(self.escalated_at),
            "status": self.status,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_role": self.acknowledged_role,
            "acknowledged_at": iso(self.acknowledged_at),
            "handled_by": self.handled_by,
            "handled_role": self.handled_role,
            "handled_at": iso(self.handled_at),
            "action": self.action,
        }


def alert_view(row: TrackedAlert) -> TrackedAlertView:
    return TrackedAlertView(
        id=row.id,
        patient_id=row.patient_id,
        department=row.department,
        rule_id=row.rule_id,
        category=row.category,
        severity=row.severity,
        message=row.message,
        suggestion=row.suggestion,
        evidence=tuple(dict(e) for e in (row.evidence or [])),
        value=row.value,
        observed_at=row.observed_at,
        raised_at=row.raised_at,
        acknowledge_due_at=row.acknowledge_due_at,
        handle_due_at=row.handle_due_at,
        recipients=tuple(row.recipients or ()),
        level=row.level,
        notified=tuple(row.notified or ()),
        escalated_at=row.escalated_at,
        status=row.status,
        acknowledged_by=row.acknowledged_by,
        acknowledged_role=row.acknowledged_role,
        acknowledged_at=row.acknowledged_at,
        handled_by=row.handled_by,
        handled_role=row.handled_role,
        handled_at=row.handled_at,
        action=row.action,
    )


def policy_of(knowledge: AlertKnowledge) -> TrackingPolicy:
    return tracking_policy(knowledge.critical)


# -- raising ------------------------------------------------------------------------------------


@dataclass(slots=True)
class TrackSummary:
    """What one evaluation pass stored: alert ids per patient, and patients it could not read."""

    patients: int = 0
    raised: list[int] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "Patient/1" → problem

    def to_dict(self) -> dict[str, Any]:
        return {"patients": self.patients, "raised": list(self.raised), "skipped": self.skipped}


def _department(session: Session, patient_id: int) -> tuple[int | None, str | None]:
    """The patient's latest encounter and its department (who is responsible now)."""
    row = session.execute(
        select(m.Encounter.id, m.Encounter.department)
        .where(m.Encounter.patient_id == patient_id)
        .order_by(m.Encounter.admit_time.desc().nulls_last(), m.Encounter.id.desc())
        .limit(1)
    ).first()
    return (None, None) if row is None else (int(row[0]), row[1])


def _previous(session: Session, patient_id: int) -> list[RaisedAlert]:
    rows = session.scalars(select(TrackedAlert).where(TrackedAlert.patient_id == patient_id))
    return [
        RaisedAlert(
            rule_id=r.rule_id,
            subject=r.subject,
            value=r.value,
            time=r.observed_at or r.raised_at,
            severity=Severity(r.severity),
            direction=r.direction,
        )
        for r in rows
    ]


def _event(
    session: Session, row: TrackedAlert, kind: str, actor: Actor, now: datetime, **detail: Any
) -> None:
    session.add(
        TrackedAlertEvent(
            alert_id=row.id, at=now, kind=kind, who=actor.username, role=actor.role, detail=detail
        )
    )


def track_patient(
    session: Session,
    patient_id: int,
    knowledge: AlertKnowledge,
    *,
    now: datetime,
    origin: str,
    lang: str = "zh",
    review_threshold: float | None = None,
) -> list[TrackedAlert]:
    """Evaluate one stored patient and store the tracked alerts not already stored.

    The engine evaluates the whole record as of its latest observation, with the patient's
    earlier tracked alerts as ``previous``, so a repeat inside the suppression window is
    dropped unless it is worse. Raises ``InputError`` when the record cannot be evaluated.
    """
    from medbrain.interop.fhir.exporter import patient_everything

    policy = policy_of(knowledge)
    bundle = patient_everything(session, patient_id)
    report = evaluate_bundle(
        bundle,
        knowledge,
        lang=lang,
        source=f"Patient/{patient_id}",
        previous=_previous(session, patient_id),
        review_threshold=review_threshold,
    )
    encounter_id, department = _department(session, patient_id)
    created: list[TrackedAlert] = []
    for finding, raised in zip(report.alerts, report.raised, strict=True):
        if not policy.is_tracked(finding):
            continue
        first = next((e.resource for e in finding.evidence if e.resource), "") or ""
        key = f"{patient_id}|{finding.rule_id}|{first}|{raised.time.isoformat()}"[:255]
        if session.scalar(select(TrackedAlert.id).where(TrackedAlert.dedup_key == key)):
            continue
        row = TrackedAlert(
            dedup_key=key,
            patient_id=patient_id,
            encounter_id=encounter_id,
            department=department,
            subject=raised.subject,
            rule_id=finding.rule_id,
            category=finding.category,
            severity=finding.severity.value,
            message=finding.message,
            suggestion=finding.suggestion,
            evidence=[e.to_dict() for e in finding.evidence],
            value=raised.value,
            direction=raised.direction,
            observed_at=raised.time,
            origin=origin[:128],
            recipients=list(policy.recipients),
            raised_at=now,
            acknowledge_due_at=policy.acknowledge_due(now),
            handle_due_at=policy.handle_due(now),
            level=0,
            notified=list(policy.recipients),
            status="open",
        )
        session.add(row)
        session.flush()
        _event(
            session,
            row,
            "raised",
            Actor(SYSTEM_USER, SYSTEM_ROLE),
            now,
            recipients=list(policy.recipients),
            department=department,
        )
        created.append(row)
    return created


def affected_patients(session: Session, patient_ids: Iterable[int], bundle: Any) -> list[int]:
    """The bundle's own patients plus the patients of the Observations it carried."""
    ids = set(patient_ids)
    fhir_ids: set[str] = set()
    for entry in (bundle.get("entry") or []) if isinstance(bundle, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
            continue
        if isinstance(resource.get("id"), str):
            fhir_ids.add(resource["id"])
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
            fhir_ids.add(full_url[9:])
    if fhir_ids:
        ids.update(
            session.scalars(
                select(m.Observation.patient_id).where(m.Observation.fhir_id.in_(fhir_ids))
            )
        )
    if not ids:
        return []
    # Only patients with observations can raise alerts; the others are not "skipped".
    with_labs = session.scalars(
        select(m.Observation.patient_id).where(m.Observation.patient_id.in_(ids)).distinct()
    )
    return sorted(set(with_labs))


def track_import_alerts(
    session: Session,
    patient_ids: Iterable[int],
    bundle: Any,
    knowledge: AlertKnowledge,
    *,
    now: datetime,
    origin: str,
    who: str,
    role: str,
    lang: str = "zh",
    review_threshold: float | None = None,
) -> TrackSummary:
    """After a FHIR import: evaluate alerts for the patients it touched and track them.

    A patient whose record the engine refuses (``InputError``, e.g. a lab value without a
    unit) is listed in ``skipped`` with the problem; the import itself stands. Audited as
    ``alerts.track`` (counts and alert ids only).
    """
    summary = TrackSummary()
    for patient_id in affected_patients(session, patient_ids, bundle):
        summary.patients += 1
        try:
            with session.begin_nested():
                rows = track_patient(
                    session,
                    patient_id,
                    knowledge,
                    now=now,
                    origin=origin,
                    lang=lang,
                    review_threshold=review_threshold,
                )
        except InputError as exc:
            summary.skipped[f"Patient/{patient_id}"] = (
                f"{exc.field}: {exc.problem}" if exc.field else exc.problem
            )
            continue
        summary.raised.extend(r.id for r in rows)
    if summary.patients:
        chain.append(
            session,
            who=who,
            role=role,
            action="alerts.track",
            resource=origin[:256],
            detail=summary.to_dict(),
            now=now,
        )
    return summary


# -- reading ------------------------------------------------------------------------------------


def list_alerts(
    session: Session,
    *,
    statuses: Iterable[str] = ("open",),
    department: str | None = None,
    escalated_only: bool = False,
    patient_id: int | None = None,
    limit: int = 100,
) -> list[TrackedAlertView]:
    """Tracked alerts, oldest first (the one waiting longest is on top).

    ``department`` keeps that department's alerts and those of no known department (a
    patient without an encounter): an alert nobody's ward claims must not disappear.
    """
    statement = select(TrackedAlert).where(TrackedAlert.status.in_(list(statuses)))
    if department is not None:
        statement = statement.where(
            or_(TrackedAlert.department == department, TrackedAlert.department.is_(None))
        )
    if escalated_only:
        statement = statement.where(TrackedAlert.level > 0)
    if patient_id is not None:
        statement = statement.where(TrackedAlert.patient_id == patient_id)
    statement = statement.order_by(TrackedAlert.raised_at, TrackedAlert.id).limit(
        max(1, min(limit, LIST_LIMIT_MAX))
    )
    return [alert_view(r) for r in session.scalars(statement)]


def get_alert(session: Session, alert_id: int) -> TrackedAlertView:
    row = session.get(TrackedAlert, alert_id)
    if row is None:
        raise NotFoundError(f"TrackedAlert/{alert_id}")
    return alert_view(row)


def alert_events(session: Session, alert_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(TrackedAlertEvent)
        .where(TrackedAlertEvent.alert_id == alert_id)
        .order_by(TrackedAlertEvent.at, TrackedAlertEvent.id)
    )
    return [
        {"at": r.at.isoformat(), "kind": r.kind, "who": r.who, "role": r.role, "detail": r.detail}
        for r in rows
    ]


def user_department(session: Session, user_id: int) -> str | None:
    return session.scalar(select(m.User.department).where(m.User.id == user_id))


# -- acting -------------------------------------------------------------------------------------


def _locked(session: Session, alert_id: int) -> TrackedAlert:
    row = session.scalar(select(TrackedAlert).where(TrackedAlert.id == alert_id).with_for_update())
    if row is None:
        raise NotFoundError(f"TrackedAlert/{alert_id}")
    return row


def acknowledge(
    session: Session, alert_id: int, actor: Actor, now: datetime, lang: str = "zh"
) -> TrackedAlert:
    """Record who acknowledged the alert and when; a second acknowledgement is a conflict."""
    row = _locked(session, alert_id)
    if row.acknowledged_at is not None:
        raise ConflictError(
            "alert",
            "status",
            t("alerts_tracking.already_acknowledged", lang, who=row.acknowledged_by or "-"),
        )
    row.acknowledged_by, row.acknowledged_role, row.acknowledged_at = (
        actor.username,
        actor.role,
        now,
    )
    row.status = "acknowledged"
    on_time = now <= row.acknowledge_due_at
    _event(session, row, "acknowledged", actor, now, on_time=on_time)
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="alert.acknowledge",
        resource=f"TrackedAlert/{row.id}",
        detail={"rule_id": row.rule_id, "patient_id": row.patient_id, "on_time": on_time},
        now=now,
    )
    return row


def handle(
    session: Session,
    alert_id: int,
    actor: Actor,
    action: str,
    now: datetime,
    lang: str = "zh",
) -> TrackedAlert:
    """Record the action taken (acknowledging too, if nobody had); the action is required."""
    text = (action or "").strip()
    if not text:
        raise InputError("alert", "action", t("alerts_tracking.action_required", lang))
    if len(text) > ACTION_MAX_CHARS:
        raise InputError(
            "alert", "action", t("alerts_tracking.action_too_long", lang, n=ACTION_MAX_CHARS)
        )
    row = _locked(session, alert_id)
    if row.handled_at is not None:
        raise ConflictError(
            "alert",
            "status",
            t("alerts_tracking.already_handled", lang, who=row.handled_by or "-"),
        )
    if row.acknowledged_at is None:
        acknowledge(session, alert_id, actor, now, lang)
    row.handled_by, row.handled_role, row.handled_at, row.action = (
        actor.username,
        actor.role,
        now,
        text,
    )
    row.status = "handled"
    on_time = now <= row.handle_due_at
    _event(session, row, "handled", actor, now, on_time=on_time)
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="alert.handle",
        resource=f"TrackedAlert/{row.id}",
        detail={"rule_id": row.rule_id, "patient_id": row.patient_id, "on_time": on_time},
        now=now,
    )
    return row


def escalate_due(session: Session, policy: TrackingPolicy, now: datetime) -> list[dict[str, Any]]:
    """Move every unacknowledged alert to the escalation level due at ``now``.

    Each step reached notifies its role (``senior_doctor``, ``department_head`` ...): the
    alert then shows in that level's escalation view. Audited as ``alert.escalate`` by the
    system user. Returns one entry per escalated alert.
    """
    rows = session.scalars(
        select(TrackedAlert)
        .where(TrackedAlert.acknowledged_at.is_(None))
        .order_by(TrackedAlert.id)
        .with_for_update()
    ).all()
    out: list[dict[str, Any]] = []
    system = Actor(SYSTEM_USER, SYSTEM_ROLE)
    for row in rows:
        state = escalation_state(row.raised_at, now, policy.steps)
        if state.level <= row.level:
            continue
        new = list(state.notify[row.level :])
        row.level = state.level
        row.notified = [*(row.notified or []), *new]
        row.escalated_at = now
        _event(session, row, "escalated", system, now, level=state.level, notify=new)
        chain.append(
            session,
            who=SYSTEM_USER,
            role=SYSTEM_ROLE,
            action="alert.escalate",
            resource=f"TrackedAlert/{row.id}",
            detail={"level": state.level, "notify": new, "department": row.department},
            now=now,
        )
        out.append(
            {
                "id": row.id,
                "patient_id": row.patient_id,
                "rule_id": row.rule_id,
                "department": row.department,
                "level": state.level,
                "notify": new,
                "raised_at": row.raised_at.isoformat(),
            }
        )
    return out


def run_escalation(
    factory: sessionmaker[Session], policy: TrackingPolicy, now: datetime
) -> list[dict[str, Any]]:
    """One escalation pass in its own transaction (the lifespan loop and the CLI)."""
    with factory() as session, session.begin():
        return escalate_due(session, policy, now)


def alert_stats(
    session: Session,
    policy: TrackingPolicy,
    now: datetime,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    department: str | None = None,
) -> dict[str, Any]:
    """On-time indicators over alerts raised in ``[since, until)`` (see ``tracking_stats``)."""
    statement = select(
        TrackedAlert.category,
        TrackedAlert.raised_at,
        TrackedAlert.acknowledged_at,
        TrackedAlert.handled_at,
        TrackedAlert.level,
    )
    if since is not None:
        statement = statement.where(TrackedAlert.raised_at >= since)
    if until is not None:
        statement = statement.where(TrackedAlert.raised_at < until)
    if department is not None:
        statement = statement.where(TrackedAlert.department == department)
    times = [
        TrackedTimes(category=c, raised_at=r, acknowledged_at=a, handled_at=h, level=lv)
        for c, r, a, h, lv in session.execute(statement)
    ]
    result = tracking_stats(times, policy, now)
    result["since"] = None if since is None else since.isoformat()
    result["until"] = None if until is None else until.isoformat()
    result["department"] = department
    return result


def escalate_instance(
    settings: Any, knowledge: AlertKnowledge, now: datetime
) -> list[dict[str, Any]]:
    """One escalation pass on the instance database (``medbrain alerts escalate``)."""
    from medbrain.store.instance import open_instance

    instance = open_instance(settings)
    try:
        return run_escalation(instance.session_factory, policy_of(knowledge), now)
    finally:
        instance.dispose()


def seed_demo_tracked_alerts(session: Session, now: datetime | None = None) -> int:
    """Demo: deliver the critical values of every stored patient once (``/alerts/my``)."""
    from medbrain.alerts import load_alert_knowledge

    knowledge = load_alert_knowledge(None)
    when = now or datetime.now(UTC)
    count = 0
    for patient_id in session.scalars(select(m.Patient.id).order_by(m.Patient.id)).all():
        try:
            with session.begin_nested():
                count += len(
                    track_patient(session, patient_id, knowledge, now=when, origin="demo.seed")
                )
        except InputError:
            continue
    return count
