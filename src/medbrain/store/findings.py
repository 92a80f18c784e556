"""Store engine findings and the decisions people make on them (DESIGN.md §2).

A finding is decided once: accepted, overridden (reason required) or dismissed. The decision
and the actor are written to the row and to the audit chain in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from medbrain.audit import chain
from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.core.findings import Finding, FindingStatus
from medbrain.core.i18n import t
from medbrain.store.models import FindingRecord

INBOX_LIMIT_MAX = 200

SEVERITY_ORDER = case(
    (FindingRecord.severity == "critical", 0),
    (FindingRecord.severity == "warning", 1),
    else_=2,
)
"""Most severe first, for inboxes and the patient page alike."""


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: str


@dataclass(frozen=True, slots=True)
class FindingView:
    """A stored finding and its decision state, as an inbox or a patient page shows it."""

    id: int
    patient_id: int | None
    engine: str
    target_role: str
    subject: str | None
    rule_id: str
    category: str
    severity: str
    message: str
    suggestion: str
    evidence: tuple[dict[str, Any], ...]
    confidence: float
    needs_review: bool
    status: str
    created_at: datetime
    decided_by: str | None
    decided_role: str | None
    decided_at: datetime | None
    decision_reason: str | None


def finding_view(row: FindingRecord) -> FindingView:
    return FindingView(
        id=row.id,
        patient_id=row.patient_id,
        engine=row.engine,
        target_role=row.target_role,
        subject=row.subject,
        rule_id=row.rule_id,
        category=row.category,
        severity=row.severity,
        message=row.message,
        suggestion=row.suggestion,
        evidence=tuple(dict(e) for e in (row.evidence or [])),
        confidence=row.confidence,
        needs_review=row.needs_review,
        status=row.status,
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_role=row.decided_role,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


def list_findings(
    session: Session,
    *,
    status: FindingStatus | None = FindingStatus.OPEN,
    target_role: str | None = None,
    patient_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[FindingView]:
    """An inbox: findings for ``target_role`` (``None`` = every role), most severe first.

    Findings that need review come before the others of the same severity, so the queue of
    low-confidence findings is worked first, as DESIGN.md §2 asks.
    """
    statement = select(FindingRecord)
    if status is not None:
        statement = statement.where(FindingRecord.status == status.value)
    if target_role is not None:
        statement = statement.where(FindingRecord.target_role == target_role)
    if patient_id is not None:
        statement = statement.where(FindingRecord.patient_id == patient_id)
    statement = (
        statement.order_by(
            SEVERITY_ORDER,
            FindingRecord.needs_review.desc(),
            FindingRecord.created_at.desc(),
            FindingRecord.id.desc(),
        )
        .limit(max(1, min(limit, INBOX_LIMIT_MAX)))
        .offset(max(0, offset))
    )
    return [finding_view(row) for row in session.scalars(statement).all()]


def get_finding(session: Session, finding_id: int) -> FindingView:
    row = session.get(FindingRecord, finding_id)
    if row is None:
        raise NotFoundError(f"Finding/{finding_id}")
    return finding_view(row)


def save_findings(
    session: Session,
    findings: list[Finding],
    *,
    engine: str,
    target_role: str,
    patient_id: int | None = None,
    encounter_id: int | None = None,
    subject: str | None = None,
) -> list[FindingRecord]:
    rows = [
        FindingRecord(
            patient_id=patient_id,
            encounter_id=encounter_id,
            engine=engine,
            target_role=target_role,
            subject=subject,
            rule_id=f.rule_id,
            category=f.category,
            severity=f.severity.value,
            message=f.message,
            suggestion=f.suggestion,
            evidence=[e.to_dict() for e in f.evidence],
            confidence=f.confidence,
            needs_review=f.needs_review,
            extra=dict(f.extra),
            status=FindingStatus.OPEN.value,
        )
        for f in findings
    ]
    session.add_all(rows)
    session.flush()
    return rows


def decide(
    session: Session,
    finding_id: int,
    status: FindingStatus,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    lang: str = "zh",
) -> FindingRecord:
    """Record a decision; refuse a second decision and an override without a reason."""
    if status is FindingStatus.OPEN:
        raise InputError("decision", "status", "must be accepted, overridden or dismissed")
    reason = (reason or "").strip() or None
    if status is FindingStatus.OVERRIDDEN and reason is None:
        raise InputError("decision", "reason", t("finding.reason_required", lang))
    row = session.scalar(
        select(FindingRecord).where(FindingRecord.id == finding_id).with_for_update()
    )
    if row is None:
        raise NotFoundError(f"Finding/{finding_id}")
    if row.status != FindingStatus.OPEN.value:
        raise ConflictError(
            "decision",
            "status",
            t("finding.already_decided", lang, status=t(f"finding.status.{row.status}", lang)),
        )
    row.status = status.value
    row.decided_by = actor.username
    row.decided_role = actor.role
    row.decided_at = now
    row.decision_reason = reason
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action=f"finding.{status.value}",
        resource=f"Finding/{row.id}",
        detail={"rule_id": row.rule_id, "reason": reason},
        now=now,
    )
    return row
