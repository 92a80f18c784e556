"""Store engine findings and the decisions people make on them (DESIGN.md §2).

A finding is decided once: accepted, overridden (reason required) or dismissed. The decision
and the actor are written to the row and to the audit chain in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.audit import chain
from medbrain.core.errors import InputError, NotFoundError
from medbrain.core.findings import Finding, FindingStatus
from medbrain.core.i18n import t
from medbrain.store.models import FindingRecord


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: str


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
            patient_id=patient_id, encounter_id=encounter_id, engine=engine, target_role=target_role,
            subject=subject, rule_id=f.rule_id, category=f.category, severity=f.severity.value,
            message=f.message, suggestion=f.suggestion, evidence=[e.to_dict() for e in f.evidence],
            confidence=f.confidence, needs_review=f.needs_review, extra=dict(f.extra),
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
    row = session.scalar(select(FindingRecord).where(FindingRecord.id == finding_id).with_for_update())
    if row is None:
        raise NotFoundError(f"Finding/{finding_id}")
    if row.status != FindingStatus.OPEN.value:
        raise InputError(
            "decision", "status",
            t("finding.already_decided", lang, status=t(f"finding.status.{row.status}", lang)),
        )
    row.status = status.value
    row.decided_by = actor.username
    row.decided_role = actor.role
    row.decided_at = now
    row.decision_reason = reason
    chain.append(
        session, who=actor.username, role=actor.role, action=f"finding.{status.value}",
        resource=f"Finding/{row.id}", detail={"rule_id": row.rule_id, "reason": reason}, now=now,
    )
    return row
