"""Manual QC findings and the candidate rules mined from them (issue 7 §6, "mined rules").

* :func:`record_manual` — the QC officer records a defect found by reading a stay (人工质控):
  note kind, section, pattern (missing section / missing phrase / unwanted phrase), element.
  It is a :class:`QCNotice` of kind ``manual`` addressed like any defect, confirmed by the
  officer who wrote it (``verdict = confirmed``); audited.
* :func:`mine_proposals` — groups the confirmed manual findings with the pure
  :func:`medbrain.qc.mining.mine`, evaluates each drafted condition on the stored stays and
  stores a :class:`QCRuleProposal` per pattern (updating the statistics of one mined before;
  a rejected pattern is never proposed again); audited.
* :func:`approve_proposal` — the proposal becomes a versioned hospital rule through the rule
  editor's own path (:func:`save_rule`, :func:`try_rule` on the sample records, then
  :func:`set_rule_enabled`), so it is validated and tested exactly like a hand-written rule.
* :func:`reject_proposal` — with a reason; audited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.audit import chain
from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.core.i18n import t
from medbrain.qc import QCKnowledge
from medbrain.qc.kinds import CheckContext, _home_document, read_events
from medbrain.qc.mining import ManualFinding, draft_condition, mine, rule_texts, validate_finding
from medbrain.qc.model import Record
from medbrain.qc.parse import record_from_mapping
from medbrain.store import models as m
from medbrain.store import qc_workflow as wf
from medbrain.store.qc_models import QCNotice, QCRuleProposal

MINED_PREFIX = "qc.local.mined-"
MAX_HISTORY = 2000  # stays the drafted conditions are evaluated on (most recent first)


@dataclass(frozen=True, slots=True)
class ManualForm:
    note_kind: str
    section: str
    pattern: str
    element: str
    category: str = "content"
    message: str = ""


def record_manual(
    session: Session,
    encounter_id: int,
    form: ManualForm,
    actor: wf.Actor,
    now: datetime,
    knowledge: QCKnowledge,
    zone: ZoneInfo,
    lang: str = "zh",
    *,
    audit: bool = True,
) -> QCNotice:
    """Store a manual finding on a stay as a confirmed ``manual`` notice (audited; ``audit``
    is False only for the demo seeder, whose ``demo.seed`` entry records it)."""
    encounter = session.get(m.Encounter, encounter_id)
    if encounter is None:
        raise NotFoundError(f"Encounter/{encounter_id}")
    finding = validate_finding(
        ManualFinding(
            encounter_id, form.note_kind, form.section, form.pattern, form.element, form.category
        ),
        lang,
    )
    message = " ".join(form.message.split())
    if len(message) > 500:
        raise InputError("manual", "message", t("qc.rules.required", lang))
    texts = rule_texts(
        finding.note_kind, finding.section, finding.pattern, finding.element, knowledge.name
    )
    raw = "|".join(("manual", finding.pattern, finding.note_kind, finding.section, finding.element))
    key = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    notice = session.scalar(
        select(QCNotice).where(QCNotice.encounter_id == encounter_id, QCNotice.fingerprint == key)
    )
    if notice is not None:
        raise ConflictError("manual", "element", t("qc.manual.duplicate", lang))
    stay = wf.stay_input(session, encounter, zone)
    document = _home_document(finding.note_kind)
    author = stay.author_for(document)
    notice = QCNotice(
        encounter_id=encounter_id,
        patient_id=encounter.patient_id,
        kind="manual",
        fingerprint=key,
        rule_id="manual",
        category=finding.category,
        severity="warning",
        message=message or texts["message"]["zh" if lang != "en" else "en"],
        suggestion=texts["suggestion"]["zh" if lang != "en" else "en"],
        evidence=[
            {
                "note_kind": finding.note_kind,
                "section": finding.section,
                "pattern": finding.pattern,
                "element": finding.element,
                "source": t("qc.manual.source", lang, who=actor.username),
            }
        ],
        document=document,
        quote=None,
        deduction=0.0,
        needs_review=False,
        responsible=author,
        responsible_user=wf._users_by_author(session).get(author or ""),
        department=encounter.department,
        status="open",
        trigger="manual",
        opened_at=now,
        last_seen_at=now,
        verdict="confirmed",
        verdict_by=actor.username,
        verdict_at=now,
        verdict_reason=message or None,
    )
    session.add(notice)
    session.flush()
    if not audit:
        return notice
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.manual.create",
        resource=f"QCNotice/{notice.id}",
        detail={
            "encounter": encounter_id,
            "note_kind": finding.note_kind,
            "section": finding.section,
            "pattern": finding.pattern,
            "element": finding.element,
            "category": finding.category,
        },
        now=now,
    )
    return notice


def confirmed_manual(session: Session) -> list[ManualFinding]:
    """Every confirmed manual finding, as the miner reads it."""
    out: list[ManualFinding] = []
    rows = session.scalars(
        select(QCNotice)
        .where(QCNotice.kind == "manual", QCNotice.verdict == "confirmed")
        .order_by(QCNotice.id)
    )
    for notice in rows:
        ev = (notice.evidence or [{}])[0]
        try:
            out.append(
                validate_finding(
                    ManualFinding(
                        notice.encounter_id,
                        str(ev.get("note_kind", "")),
                        str(ev.get("section", "")),
                        str(ev.get("pattern", "")),
                        str(ev.get("element", "")),
                        notice.category,
                    )
                )
            )
        except InputError:
            continue  # a hand-edited row the miner cannot read: not a pattern
    return out


def history(
    session: Session, zone: ZoneInfo, extra_ids: Sequence[int] = (), limit: int = MAX_HISTORY
) -> dict[Hashable, Record]:
    """Records of the most recent inpatient stays (plus ``extra_ids``) to evaluate on."""
    ids = list(
        session.scalars(
            select(m.Encounter.id)
            .where(m.Encounter.kind == "inpatient")
            .order_by(m.Encounter.id.desc())
            .limit(limit)
        )
    )
    wanted = list(dict.fromkeys([*ids, *extra_ids]))
    encounters = list(session.scalars(select(m.Encounter).where(m.Encounter.id.in_(wanted))))
    out: dict[Hashable, Record] = {}
    for stay in wf.build_inputs(session, encounters, zone):
        if not stay.documents:
            continue
        try:
            out[stay.encounter.id] = record_from_mapping(
                {"documents": stay.documents, "meta": stay.meta}, f"Encounter/{stay.encounter.id}"
            )
        except InputError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class MineResult:
    findings: int
    records: int
    proposed: int
    updated: int

    def to_dict(self) -> dict[str, int]:
        return {
            "findings": self.findings,
            "records": self.records,
            "proposed": self.proposed,
            "updated": self.updated,
        }


def mine_proposals(
    session: Session,
    knowledge: QCKnowledge,
    actor: wf.Actor,
    now: datetime,
    zone: ZoneInfo,
    *,
    min_support: int = 2,
    min_confidence: float = 0.6,
    audit: bool = True,
) -> MineResult:
    """Mine the confirmed manual findings into stored proposals (audited)."""
    findings = confirmed_manual(session)
    records = history(session, zone, [int(str(f.stay)) for f in findings])
    candidates = mine(
        findings, records, knowledge, min_support=min_support, min_confidence=min_confidence
    )
    existing = {p.pattern_key: p for p in session.scalars(select(QCRuleProposal))}
    proposed = updated = 0
    for c in candidates:
        row = existing.get(c.key)
        if row is None:
            row = QCRuleProposal(pattern_key=c.key, status="proposed", created_at=now)
            session.add(row)
            proposed += 1
        elif row.status != "proposed":
            continue  # decided: an approved pattern is a rule, a rejected one stays rejected
        else:
            updated += 1
        row.note_kind = c.note_kind
        row.section = c.section
        row.pattern = c.pattern
        row.element = c.element
        row.category = c.category
        row.condition = c.condition
        row.support = c.support
        row.fires = c.fires
        row.hits = c.hits
        row.records = c.records
        row.confidence = c.confidence
        row.coverage = c.coverage
        row.examples = [dict(e) for e in c.examples]
        row.mined_at = now
    session.flush()
    result = MineResult(len(findings), len(records), proposed, updated)
    if audit:
        chain.append(
            session,
            who=actor.username,
            role=actor.role,
            action="qc.proposal.mine",
            resource="QCRuleProposal",
            detail={
                **result.to_dict(),
                "min_support": min_support,
                "min_confidence": min_confidence,
            },
            now=now,
        )
    return result


def list_proposals(session: Session, status: str | None = None) -> list[QCRuleProposal]:
    statement = select(QCRuleProposal).order_by(
        QCRuleProposal.status, QCRuleProposal.support.desc(), QCRuleProposal.id
    )
    if status:
        statement = statement.where(QCRuleProposal.status == status)
    return list(session.scalars(statement))


def _proposal_for_update(session: Session, proposal_id: int) -> QCRuleProposal:
    row = session.scalar(
        select(QCRuleProposal).where(QCRuleProposal.id == proposal_id).with_for_update()
    )
    if row is None:
        raise NotFoundError(f"QCRuleProposal/{proposal_id}")
    return row


def approve_proposal(
    session: Session,
    proposal_id: int,
    actor: wf.Actor,
    now: datetime,
    knowledge: QCKnowledge,
    *,
    deduction: float = 1.0,
    lang: str = "zh",
) -> tuple[QCRuleProposal, list[wf.SampleResult]]:
    """Turn a proposal into an enabled hospital rule: saved (versioned), tested on the sample
    records, then switched on — the rule editor's own steps, each audited."""
    row = _proposal_for_update(session, proposal_id)
    if row.status != "proposed":
        raise ConflictError("proposal", "status", t("qc.proposal.decided", lang))
    condition = draft_condition(row.note_kind, row.section, row.pattern, row.element)
    texts = rule_texts(row.note_kind, row.section, row.pattern, row.element, knowledge.name)
    source = t(
        "qc.proposal.rule_source",
        "zh",
        id=row.id,
        support=row.support,
        confidence=f"{row.confidence:.0%}",
    )
    form = wf.RuleForm(
        rule_id=f"{MINED_PREFIX}{row.id}",
        when=condition,
        category=row.category,
        severity="warning",
        deduction=deduction,
        message_zh=texts["message"]["zh"],
        message_en=texts["message"]["en"],
        suggestion_zh=texts["suggestion"]["zh"],
        suggestion_en=texts["suggestion"]["en"],
        source=source,
        missing=row.element if row.pattern == "missing_section" else "",
    )
    rule = wf.save_rule(session, form, actor, now, lang)
    rule, results = wf.try_rule(session, rule.rule_id, actor, now, wf.sample_records(), lang)
    wf.set_rule_enabled(session, rule.rule_id, True, actor, now, lang)
    row.status = "approved"
    row.rule_id = rule.rule_id
    row.rule_version = rule.version
    row.decided_by = actor.username
    row.decided_at = now
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.proposal.approve",
        resource=f"QCRuleProposal/{row.id}",
        detail={
            "rule_id": rule.rule_id,
            "version": rule.version,
            "condition": condition,
            "support": row.support,
            "confidence": row.confidence,
            "samples_fired": sum(1 for r in results if r.fired),
        },
        now=now,
    )
    return row, results


def reject_proposal(
    session: Session,
    proposal_id: int,
    actor: wf.Actor,
    now: datetime,
    reason: str,
    lang: str = "zh",
) -> QCRuleProposal:
    """Reject a proposal (reason required, audited); the pattern is not proposed again."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("proposal", "reason", t("qc.notice.reason_required", lang))
    if len(reason) > 2000:
        raise InputError("proposal", "reason", t("qc.notice.reason_too_long", lang))
    row = _proposal_for_update(session, proposal_id)
    if row.status != "proposed":
        raise ConflictError("proposal", "status", t("qc.proposal.decided", lang))
    row.status = "rejected"
    row.decided_by = actor.username
    row.decided_at = now
    row.reason = reason
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.proposal.reject",
        resource=f"QCRuleProposal/{row.id}",
        detail={"pattern": row.pattern_key, "reason": reason},
        now=now,
    )
    return row


def proposal_json(row: QCRuleProposal) -> dict[str, Any]:
    return {
        "id": row.id,
        "pattern_key": row.pattern_key,
        "note_kind": row.note_kind,
        "section": row.section,
        "pattern": row.pattern,
        "element": row.element,
        "category": row.category,
        "condition": row.condition,
        "support": row.support,
        "fires": row.fires,
        "hits": row.hits,
        "records": row.records,
        "confidence": row.confidence,
        "coverage": row.coverage,
        "examples": row.examples,
        "status": row.status,
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "reason": row.reason,
    }


#: Demo patterns (the QC officer's manual review of the demo stays): the cardiac examination
#: (心率) left out of 体格检查, and no monitoring (监测) in the first note's plan.
DEMO_PATTERNS = (
    ("admission", "体格检查", "missing_phrase", "心率", "content", 0.7),
    ("first_course", "诊疗计划", "missing_phrase", "监测", "content", 0.7),
)


def seed_demo_proposals(
    session: Session, now: datetime, timezone: str = "Asia/Shanghai", officer: str = "qc_officer"
) -> int:
    """Demo data for /qc/proposals: the demo QC officer's confirmed manual findings on the
    demo stays (for each pattern, on 70 % of the stays it is true of) and the proposals mined
    from them. Returns the number of proposals."""
    from medbrain.qc import load_qc_knowledge
    from medbrain.qc.mining import _fires, _probe

    zone = wf.zone_of(timezone)
    knowledge = wf.effective_knowledge(session, load_qc_knowledge(None))
    records = history(session, zone)
    actor = wf.Actor(officer, "qc_officer")
    for kind, section, pattern, element, category, share in DEMO_PATTERNS:
        probe = _probe(draft_condition(kind, section, pattern, element), category)
        true_of = sorted(
            (
                int(str(stay))
                for stay, record in records.items()
                if _fires(
                    probe,
                    record,
                    CheckContext(knowledge, "final", "zh", read_events(record, knowledge, None)),
                )[0]
            ),
        )
        for stay in true_of[: max(2, round(len(true_of) * share))]:
            form = ManualForm(kind, section, pattern, element, category)
            try:
                record_manual(session, stay, form, actor, now, knowledge, zone, audit=False)
            except InputError:
                continue  # already recorded (a second seeding run)
    mine_proposals(session, knowledge, actor, now, zone, audit=False)
    return len(list_proposals(session))
