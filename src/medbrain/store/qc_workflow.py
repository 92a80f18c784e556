"""The QC closed loop over the store: defect notices, re-checks, deadline scans, rules.

* :func:`recheck_encounter` — run the QC engine on the latest version of every document of
  one stay, open a :class:`~medbrain.store.qc_models.QCNotice` for each new defect (addressed
  to the author of the document it is in), close (``fixed``) every open defect notice the
  check no longer finds, and store a :class:`~medbrain.store.qc_models.QCRun`.
  :func:`recheck_after_import` is the one call the FHIR import paths make.
* :func:`scan_in_stay` — for every stay in progress (or discharged within a week), ask
  :func:`medbrain.qc.scheduler.due_items` which required notes are due soon or overdue and
  keep one deadline notice per item, closing it once the note exists.
* :func:`justify` — the doctor explains why a defect stands; :func:`reopen` — the QC officer
  rejects that explanation.
* hospital rules in the QC expression language: :func:`save_rule`, :func:`test_rule`,
  :func:`set_rule_enabled`, and :func:`effective_knowledge` (shipped rules + hospital
  overrides + enabled hospital rules: the one knowledge every QC run uses).

Every state change is appended to the audit chain in the caller's transaction. The engines
stay pure: this module builds their input from the store and writes their output back.

References
----------
Issue 7 (closed loop: defect → notice → fix or justify → automatic re-check → closed);
DESIGN.md §2 (findings and decisions are audited), §3 (``qc check`` shape).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from medbrain.audit import chain
from medbrain.core.errors import ConflictError, InputError, KnowledgeError, NotFoundError
from medbrain.core.findings import Finding
from medbrain.core.i18n import t
from medbrain.qc import QCKnowledge, RuleRegistry, check_record, load_qc_knowledge
from medbrain.qc.dsl import ExpressionError
from medbrain.qc.parse import DOCUMENT_TYPES, build_record, parse_meta, record_from_mapping
from medbrain.qc.registry import CATEGORIES
from medbrain.qc.scheduler import DueItem, due_items
from medbrain.store import models as m
from medbrain.store.patients import age_on
from medbrain.store.qc_models import QCNotice, QCRule, QCRun

#: Store document types written as notes inside the QC ``course`` document.
COURSE_TYPES = frozenset({"first_course", "course", "senior_round", "post_op", "rescue"})
SYSTEM_USER = ("qc-scheduler", "system")
SCAN_KEEP_DAYS = 8  # discharged stays stay in the scan this long (death discussion: 1 week)
_CHUNK = 500
log = logging.getLogger("medbrain.qc")


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: str


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_naive(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone).replace(tzinfo=None)


def _utc(naive_local: datetime, zone: ZoneInfo) -> datetime:
    return naive_local.replace(tzinfo=zone).astimezone(UTC)


def qc_type(doc_type: str) -> str | None:
    if doc_type in COURSE_TYPES:
        return "course"
    return doc_type if doc_type in DOCUMENT_TYPES else None


# ---------------------------------------------------------------------------------------------
# Building the engine's input from the store


@dataclass(slots=True)
class StayInput:
    """One stay as the QC engine reads it, plus who wrote what."""

    encounter: m.Encounter
    documents: dict[str, str]
    meta: dict[str, Any]
    authors: dict[str, str] = field(default_factory=dict)  # qc document type → author

    def author_for(self, document: str | None) -> str | None:
        if document and document in self.authors:
            return self.authors[document]
        for fallback in ("admission", "course", "discharge"):
            if fallback in self.authors:
                return self.authors[fallback]
        return next(iter(self.authors.values()), None)


def _load_documents(
    session: Session, encounter_ids: Sequence[int]
) -> dict[int, dict[str, list[tuple[datetime, int, str, str | None]]]]:
    """Latest version of every document of the stays: ``{eid: {qc_type: [(when, id, text,
    author)]}}`` in two queries per chunk."""
    out: dict[int, dict[str, list[tuple[datetime, int, str, str | None]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for start in range(0, len(encounter_ids), _CHUNK):
        chunk = list(encounter_ids[start : start + _CHUNK])
        latest = (
            select(m.DocumentVersion.document_id, func.max(m.DocumentVersion.version).label("v"))
            .join(m.Document, m.Document.id == m.DocumentVersion.document_id)
            .where(m.Document.encounter_id.in_(chunk))
            .group_by(m.DocumentVersion.document_id)
            .subquery()
        )
        rows = session.execute(
            select(
                m.Document.encounter_id,
                m.Document.id,
                m.Document.doc_type,
                m.Document.created_at,
                m.DocumentVersion.text,
                m.DocumentVersion.author,
                m.DocumentVersion.authored_at,
            )
            .join(m.DocumentVersion, m.DocumentVersion.document_id == m.Document.id)
            .join(
                latest,
                (latest.c.document_id == m.DocumentVersion.document_id)
                & (latest.c.v == m.DocumentVersion.version),
            )
        )
        for eid, doc_id, doc_type, created, text, author, authored in rows:
            kind = qc_type(doc_type)
            if kind is None or eid is None:
                continue
            out[eid][kind].append((authored or created, doc_id, text, author))
    return out


def _load_front_pages(
    session: Session, encounters: Sequence[m.Encounter]
) -> dict[int, list[dict[str, Any]]]:
    """Front-page diagnoses from the stay's Conditions; the principal one is the Condition
    the Encounter ranks 1 in ``Encounter.diagnosis`` (FHIR R4 §Encounter), else the first."""
    ids = [e.id for e in encounters]
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows: list[m.Condition] = []
    for start in range(0, len(ids), _CHUNK):
        rows += list(
            session.scalars(
                select(m.Condition)
                .where(m.Condition.encounter_id.in_(ids[start : start + _CHUNK]))
                .order_by(m.Condition.id)
            )
        )
    ranked: dict[int, str] = {}
    for encounter in encounters:
        for diag in (encounter.resource or {}).get("diagnosis") or []:
            if isinstance(diag, dict) and diag.get("rank") == 1:
                ref = str((diag.get("condition") or {}).get("reference", ""))
                ranked[encounter.id] = ref.rsplit("/", 1)[-1]
    for row in rows:
        if row.encounter_id is None:
            continue
        principal = ranked.get(row.encounter_id) == row.fhir_id
        out[row.encounter_id].append(
            {"code": row.icd10_code or "", "name": row.text, "principal": principal}
        )
    return out


def build_inputs(
    session: Session, encounters: Sequence[m.Encounter], zone: ZoneInfo
) -> list[StayInput]:
    """Engine input for each stay: latest document texts, meta (times in local wall clock,
    sex, age, department) and the front page when the stay has coded diagnoses."""
    docs = _load_documents(session, [e.id for e in encounters])
    fronts = _load_front_pages(session, encounters)
    patients = (
        {
            p.id: p
            for p in session.scalars(
                select(m.Patient).where(m.Patient.id.in_({e.patient_id for e in encounters}))
            )
        }
        if encounters
        else {}
    )
    out: list[StayInput] = []
    for encounter in encounters:
        parts = docs.get(encounter.id, {})
        texts: dict[str, str] = {}
        authors: dict[str, str] = {}
        for kind, items in parts.items():
            items.sort(key=lambda x: (x[0], x[1]))
            texts[kind] = "\n\n".join(text for _, _, text, _ in items)
            author = next((a for *_, a in reversed(items) if a), None)
            if author:
                authors[kind] = author
        meta: dict[str, Any] = {}
        if encounter.admit_time is not None:
            meta["admit_time"] = local_naive(encounter.admit_time, zone).strftime("%Y-%m-%d %H:%M")
        if encounter.discharge_time is not None:
            meta["discharge_time"] = local_naive(encounter.discharge_time, zone).strftime(
                "%Y-%m-%d %H:%M"
            )
        patient = patients.get(encounter.patient_id)
        if patient is not None:
            if patient.sex in ("male", "female"):
                meta["sex"] = patient.sex
            on = (encounter.admit_time or datetime.now(UTC)).date()
            age = age_on(patient.birth_date, on)
            if age is not None:
                meta["age_years"] = age
        if encounter.department:
            meta["department"] = encounter.department
        if fronts.get(encounter.id):
            meta["front_page"] = {"diagnoses": fronts[encounter.id]}
        out.append(StayInput(encounter, texts, meta, authors))
    return out


def stay_input(session: Session, encounter: m.Encounter, zone: ZoneInfo) -> StayInput:
    return build_inputs(session, [encounter], zone)[0]


# ---------------------------------------------------------------------------------------------
# Hospital knowledge: shipped rules + enabled hospital rules


def rule_rows(session: Session, *, enabled_only: bool) -> list[dict[str, Any]]:
    statement = select(QCRule).order_by(QCRule.rule_id)
    if enabled_only:
        statement = statement.where(QCRule.enabled.is_(True))
    return [dict(r.row, rule_id=r.rule_id) for r in session.scalars(statement)]


@lru_cache(maxsize=8)
def _knowledge_cached(key: str) -> QCKnowledge:
    overrides = json.loads(key)
    return load_qc_knowledge(overrides or None)


HOSPITAL_FILE = ("qc", "overrides.yaml")


def hospital_knowledge(home: Path | None) -> QCKnowledge:
    """The shipped QC library with the hospital's overrides file
    ``MEDBRAIN_HOME/qc/overrides.yaml`` merged in (rules on/off and weights, thresholds,
    the scoring table or a named ``scoring.profile``); the shipped library when there is no
    such file. Re-read when the file changes; a broken file is a KnowledgeError naming it."""
    from medbrain.knowledge.overrides import read_hospital_file

    overrides = read_hospital_file(home.joinpath(*HOSPITAL_FILE)) if home is not None else None
    if not overrides:
        return _knowledge_cached("{}")
    try:
        return _knowledge_cached(json.dumps(overrides, sort_keys=True, ensure_ascii=False))
    except TypeError:  # YAML values that are not JSON (dates): no cache
        return load_qc_knowledge(overrides)


def effective_knowledge(session: Session, base: QCKnowledge | None = None) -> QCKnowledge:
    """The knowledge every QC run uses: the shipped library, the hospital overrides of
    ``base`` (``app.state.qc_knowledge``; default none) and every enabled hospital rule of the
    rule editor (only a tested version can be enabled, see :func:`set_rule_enabled`).

    Idempotent (a ``base`` that already holds the hospital rules gets them once) and cached
    by content, so a page or an import does not re-read YAML each time.
    """
    extra: dict[str, Any] = dict(base.extra) if base is not None else {}
    rows = rule_rows(session, enabled_only=True)
    if rows:
        local = {r["rule_id"] for r in rows}
        kept = [
            r
            for r in (extra.get("rules") or [])
            if not (isinstance(r, Mapping) and r.get("rule_id") in local)
        ]
        extra["rules"] = kept + rows
    if not extra:
        return base if base is not None else _knowledge_cached("{}")
    try:
        return _knowledge_cached(json.dumps(extra, sort_keys=True, ensure_ascii=False))
    except TypeError:  # overrides that are not JSON (dates in YAML): no cache
        return load_qc_knowledge(extra)


# ---------------------------------------------------------------------------------------------
# Re-check and defect notices


def fingerprint(finding: Finding) -> str:
    """Identity of a defect across re-checks: rule, document, section, and what it quotes
    (or names as missing). Editing the quoted text elsewhere keeps the same identity."""
    quote = next((e.quote for e in finding.evidence if e.quote), "") or ""
    missing = str(finding.extra.get("missing", ""))
    raw = "|".join(
        [
            finding.rule_id,
            str(finding.extra.get("document", "")),
            str(finding.extra.get("section", "")),
            missing or " ".join(quote.split())[:200],
        ]
    )
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RecheckResult:
    encounter_id: int
    opened: int
    closed: int
    still_open: int
    score: float | None
    grade: str | None
    report: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "encounter_id": self.encounter_id,
            "opened": self.opened,
            "closed": self.closed,
            "still_open": self.still_open,
            "score": self.score,
            "grade": self.grade,
        }


def _users_by_author(session: Session) -> dict[str, str]:
    """Author text (display name or username) → username of an active clinical account."""
    out: dict[str, str] = {}
    for user in session.scalars(
        select(m.User).where(m.User.active.is_(True), m.User.role.in_(("doctor",)))
    ):
        out.setdefault(user.display_name, user.username)
        out[user.username] = user.username
    return out


def _quote(finding: Finding) -> str | None:
    return next((e.quote for e in finding.evidence if e.quote), None)


def recheck_encounter(
    session: Session,
    encounter_id: int,
    *,
    knowledge: QCKnowledge,
    now: datetime,
    zone: ZoneInfo,
    actor: Actor,
    trigger: str,
    lang: str = "zh",
    review_threshold: float = 0.7,
    users: Mapping[str, str] | None = None,
    audit: bool = True,
) -> RecheckResult:
    """Check one stay now; open notices for new defects and close the resolved ones.

    ``audit=False`` only for the demo seeder, which writes one audit entry of its own."""
    encounter = session.get(m.Encounter, encounter_id)
    if encounter is None:
        raise NotFoundError(f"Encounter/{encounter_id}")
    stay = stay_input(session, encounter, zone)
    existing = {
        n.fingerprint: n
        for n in session.scalars(
            select(QCNotice).where(QCNotice.encounter_id == encounter_id, QCNotice.kind == "defect")
        )
    }
    if not stay.documents:
        return RecheckResult(encounter_id, 0, 0, 0, None, None)
    record = record_from_mapping(
        {"documents": stay.documents, "meta": stay.meta},
        f"Encounter/{encounter_id}",
        knowledge.vocabulary,
    )
    stage = "final" if encounter.discharge_time is not None else "realtime"
    report = check_record(
        record, knowledge, stage=stage, lang=lang, review_threshold=review_threshold
    )
    users = users if users is not None else _users_by_author(session)
    seen: set[str] = set()
    opened = 0
    for finding in (*report.defects, *report.needs_review):
        key = fingerprint(finding)
        if key in seen:
            continue
        seen.add(key)
        document = str(finding.extra.get("document", "")) or None
        author = stay.author_for(document)
        notice = existing.get(key)
        if notice is None:
            notice = QCNotice(
                encounter_id=encounter_id,
                patient_id=encounter.patient_id,
                kind="defect",
                fingerprint=key,
                opened_at=now,
                trigger=trigger,
                status="open",
            )
            session.add(notice)
            opened += 1
        elif notice.status == "fixed":
            notice.status = "open"  # it came back
            notice.fixed_at = None
            opened += 1
        notice.rule_id = finding.rule_id
        notice.category = finding.category
        notice.severity = finding.severity.value
        notice.message = finding.message
        notice.suggestion = finding.suggestion
        notice.evidence = [e.to_dict() for e in finding.evidence]
        notice.document = document
        notice.quote = _quote(finding)
        notice.deduction = float(finding.extra.get("deduction", 0.0))
        notice.needs_review = finding.needs_review
        notice.responsible = author
        notice.responsible_user = users.get(author or "")
        notice.department = encounter.department
        notice.last_seen_at = now
    closed = 0
    for key, notice in existing.items():
        # a justified defect that a later version no longer has is fixed too; its
        # justification (text, who, when) stays on the notice as history
        if key not in seen and notice.status in ("open", "justified"):
            notice.status = "fixed"
            notice.fixed_at = now
            closed += 1
    out = report.to_dict()
    session.add(
        QCRun(
            encounter_id=encounter_id,
            patient_id=encounter.patient_id,
            checked_at=now,
            stage=stage,
            score=report.score,
            grade=report.grade,
            veto=report.veto,
            defects=len(report.defects),
            by_rule=dict(Counter(d.rule_id for d in report.defects)),
            department=encounter.department,
            doctor=stay.author_for("admission"),
            trigger=trigger,
            rules_version=report.rules_version,
        )
    )
    session.flush()
    still = sum(1 for key in seen if (n := existing.get(key)) is None or n.status == "open")
    if not audit:
        return RecheckResult(encounter_id, opened, closed, still, report.score, report.grade, out)
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.recheck",
        resource=f"Encounter/{encounter_id}",
        detail={
            "trigger": trigger,
            "score": report.score,
            "grade": report.grade,
            "opened": opened,
            "closed": closed,
        },
        now=now,
    )
    return RecheckResult(encounter_id, opened, closed, still, report.score, report.grade, out)


def recheck_after_import(
    session: Session,
    encounter_ids: Iterable[int],
    *,
    knowledge: QCKnowledge,
    zone: ZoneInfo,
    actor: Actor,
    now: datetime | None = None,
    lang: str = "zh",
    review_threshold: float = 0.7,
) -> list[RecheckResult]:
    """The FHIR import hook: re-check every inpatient stay whose documents changed.

    Called in the import's transaction, so the notices commit with the documents.
    """
    now = now or datetime.now(UTC)
    ids = sorted(set(encounter_ids))
    if not ids:
        return []
    knowledge = effective_knowledge(session, knowledge)
    users = _users_by_author(session)
    inpatient = set(
        session.scalars(
            select(m.Encounter.id).where(m.Encounter.id.in_(ids), m.Encounter.kind == "inpatient")
        )
    )
    out: list[RecheckResult] = []
    for eid in ids:
        if eid not in inpatient:
            continue
        try:
            with session.begin_nested():  # a record QC cannot read never blocks the import
                out.append(
                    recheck_encounter(
                        session,
                        eid,
                        knowledge=knowledge,
                        now=now,
                        zone=zone,
                        actor=actor,
                        trigger="import",
                        lang=lang,
                        review_threshold=review_threshold,
                        users=users,
                    )
                )
        except InputError as exc:
            log.warning(
                "qc re-check skipped", extra={"fields": {"encounter": eid, "field": exc.field}}
            )
    return out


# ---------------------------------------------------------------------------------------------
# In-stay deadline scan


@dataclass(frozen=True, slots=True)
class ScanResult:
    encounters: int
    due_soon: int
    overdue: int
    opened: int
    closed: int
    seconds: float
    items: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "encounters": self.encounters,
            "due_soon": self.due_soon,
            "overdue": self.overdue,
            "opened": self.opened,
            "closed": self.closed,
            "seconds": round(self.seconds, 3),
            "items": list(self.items),
        }


def _deadline_key(item: DueItem) -> str:
    return hashlib.sha256(f"deadline|{item.key}".encode()).hexdigest()


def scan_in_stay(
    session: Session,
    *,
    knowledge: QCKnowledge,
    now: datetime,
    zone: ZoneInfo,
    lang: str = "zh",
    actor: Actor = Actor(*SYSTEM_USER),
) -> ScanResult:
    """One pass of the in-stay scheduler over every open (or just discharged) stay."""
    import time

    started = time.perf_counter()
    knowledge = effective_knowledge(session, knowledge)
    since = now - timedelta(days=SCAN_KEEP_DAYS)
    encounters = list(
        session.scalars(
            select(m.Encounter)
            .where(
                m.Encounter.kind == "inpatient",
                m.Encounter.admit_time.is_not(None),
                or_(m.Encounter.discharge_time.is_(None), m.Encounter.discharge_time >= since),
            )
            .order_by(m.Encounter.id)
        )
    )
    users = _users_by_author(session)
    local_now = local_naive(now, zone)
    existing: dict[int, dict[str, QCNotice]] = defaultdict(dict)
    ids = [e.id for e in encounters]
    for start in range(0, len(ids), _CHUNK):
        for notice in session.scalars(
            select(QCNotice).where(
                QCNotice.encounter_id.in_(ids[start : start + _CHUNK]),
                QCNotice.kind == "deadline",
            )
        ):
            existing[notice.encounter_id][notice.fingerprint] = notice
    due_soon = overdue = opened = closed = 0
    items_out: list[dict[str, Any]] = []
    for start in range(0, len(encounters), _CHUNK):
        for stay in build_inputs(session, encounters[start : start + _CHUNK], zone):
            encounter = stay.encounter
            texts = {k: (k, v, "utf-8") for k, v in stay.documents.items() if v.strip()}
            record = build_record(texts, parse_meta(stay.meta), (), knowledge.vocabulary)
            items = due_items(record, knowledge, local_now, lang=lang)
            mine = existing.get(encounter.id, {})
            seen: set[str] = set()
            for item in items:
                key = _deadline_key(item)
                seen.add(key)
                if item.status == "overdue":
                    overdue += 1
                else:
                    due_soon += 1
                found = mine.get(key)
                if found is None:
                    notice = QCNotice(
                        encounter_id=encounter.id,
                        patient_id=encounter.patient_id,
                        kind="deadline",
                        fingerprint=key,
                        rule_id=item.rule_id,
                        category="timeliness",
                        severity="warning",
                        suggestion="",
                        document=item.document,
                        deduction=0.0,
                        needs_review=False,
                        trigger="scan",
                        status="open",
                        opened_at=now,
                    )
                    session.add(notice)
                    opened += 1
                else:
                    notice = found
                    if notice.status == "fixed":
                        notice.status = "open"
                        notice.fixed_at = None
                        opened += 1
                author = stay.author_for(item.document)
                notice.severity = "critical" if item.status == "overdue" else "warning"
                notice.message = item.message
                notice.evidence = [{"source": item.source}]
                notice.quote = None
                notice.due_status = item.status
                notice.due_at = _utc(item.deadline, zone)
                notice.responsible = author
                notice.responsible_user = users.get(author or "")
                notice.department = encounter.department
                notice.last_seen_at = now
                items_out.append({"encounter_id": encounter.id, **item.to_dict()})
            for key, notice in mine.items():
                if key not in seen and notice.status == "open":
                    notice.status = "fixed"
                    notice.fixed_at = now
                    closed += 1
    session.flush()
    result = ScanResult(
        len(encounters),
        due_soon,
        overdue,
        opened,
        closed,
        time.perf_counter() - started,
        tuple(items_out),
    )
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.scan",
        resource="Encounter",
        detail={k: v for k, v in result.to_dict().items() if k != "items"},
        now=now,
    )
    return result


# ---------------------------------------------------------------------------------------------
# Decisions on notices


def _notice_for_update(session: Session, notice_id: int) -> QCNotice:
    row = session.scalar(select(QCNotice).where(QCNotice.id == notice_id).with_for_update())
    if row is None:
        raise NotFoundError(f"QCNotice/{notice_id}")
    return row


def justify(
    session: Session, notice_id: int, actor: Actor, reason: str, now: datetime, lang: str = "zh"
) -> QCNotice:
    """The doctor keeps the defect and says why (reason required; open notices only)."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("justify", "reason", t("qc.notice.reason_required", lang))
    if len(reason) > 2000:
        raise InputError("justify", "reason", t("qc.notice.reason_too_long", lang))
    row = _notice_for_update(session, notice_id)
    if row.status != "open":
        raise ConflictError("justify", "status", t("qc.notice.not_open", lang, status=row.status))
    row.status = "justified"
    row.justified_at = now
    row.justified_by = actor.username
    row.justification = reason
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.notice.justify",
        resource=f"QCNotice/{row.id}",
        detail={"rule_id": row.rule_id, "encounter": row.encounter_id, "reason": reason},
        now=now,
    )
    return row


def reopen(
    session: Session, notice_id: int, actor: Actor, reason: str, now: datetime, lang: str = "zh"
) -> QCNotice:
    """The QC officer rejects a justification: the notice is open again."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("reopen", "reason", t("qc.notice.reason_required", lang))
    row = _notice_for_update(session, notice_id)
    if row.status != "justified":
        raise ConflictError("reopen", "status", t("qc.notice.not_justified", lang))
    row.status = "open"
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.notice.reopen",
        resource=f"QCNotice/{row.id}",
        detail={"rule_id": row.rule_id, "encounter": row.encounter_id, "reason": reason},
        now=now,
    )
    return row


VERDICTS = ("confirmed", "rejected")


def decide(
    session: Session,
    notice_id: int,
    actor: Actor,
    verdict: str,
    reason: str,
    now: datetime,
    lang: str = "zh",
) -> QCNotice:
    """The QC officer confirms a defect notice or rejects it as a false positive (reason
    required, audited). A later decision replaces an earlier one; the audit chain keeps both.
    The verdicts feed :func:`rule_precision`."""
    if verdict not in VERDICTS:
        raise InputError("verdict", "verdict", t("qc.verdict.bad", lang))
    reason = (reason or "").strip()
    if not reason:
        raise InputError("verdict", "reason", t("qc.notice.reason_required", lang))
    if len(reason) > 2000:
        raise InputError("verdict", "reason", t("qc.notice.reason_too_long", lang))
    row = _notice_for_update(session, notice_id)
    if row.kind not in ("defect", "manual"):  # a manual finding may be overruled too
        raise ConflictError("verdict", "kind", t("qc.verdict.not_defect", lang))
    previous = row.verdict
    row.verdict = verdict
    row.verdict_by = actor.username
    row.verdict_at = now
    row.verdict_reason = reason
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.notice.verdict",
        resource=f"QCNotice/{row.id}",
        detail={
            "rule_id": row.rule_id,
            "encounter": row.encounter_id,
            "verdict": verdict,
            "previous": previous,
            "reason": reason,
        },
        now=now,
    )
    return row


def rule_precision(
    session: Session,
    *,
    threshold: float,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Per rule: notices the QC officer confirmed and rejected (decided in ``[since, until)``),
    precision = confirmed / (confirmed + rejected), and ``low`` when precision < ``threshold``.
    Lowest precision first."""
    statement = (
        select(QCNotice.rule_id, QCNotice.verdict, func.count())
        .where(QCNotice.verdict.is_not(None))
        .group_by(QCNotice.rule_id, QCNotice.verdict)
    )
    if since is not None:
        statement = statement.where(QCNotice.verdict_at >= since)
    if until is not None:
        statement = statement.where(QCNotice.verdict_at < until)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(VERDICTS, 0))
    for rule_id, verdict, n in session.execute(statement):
        if verdict in VERDICTS:
            counts[rule_id][verdict] += int(n)
    rows = []
    for rule_id, c in counts.items():
        decided = c["confirmed"] + c["rejected"]
        precision = round(c["confirmed"] / decided, 4)
        rows.append(
            {
                "rule_id": rule_id,
                "confirmed": c["confirmed"],
                "rejected": c["rejected"],
                "decided": decided,
                "precision": precision,
                "low": precision < threshold,
            }
        )
    return sorted(rows, key=lambda r: (r["precision"], -r["decided"], r["rule_id"]))


def notice_state(notice: QCNotice, now: datetime) -> str:
    """open, fixed, justified or overdue (an open deadline notice past its deadline)."""
    if notice.status == "open" and notice.due_at is not None and notice.due_at < now:
        return "overdue"
    return notice.status


def list_notices(
    session: Session,
    *,
    user: str | None = None,
    status: str | None = None,
    encounter_id: int | None = None,
    include_review: bool = True,
    limit: int = 200,
) -> list[QCNotice]:
    statement = select(QCNotice)
    if user is not None:
        statement = statement.where(QCNotice.responsible_user == user)
    if status is not None:
        statement = statement.where(QCNotice.status == status)
    if encounter_id is not None:
        statement = statement.where(QCNotice.encounter_id == encounter_id)
    if not include_review:
        statement = statement.where(QCNotice.needs_review.is_(False))
    statement = statement.order_by(QCNotice.opened_at.desc(), QCNotice.id.desc()).limit(
        max(1, min(limit, 1000))
    )
    return list(session.scalars(statement))


def status_counts(session: Session, now: datetime) -> dict[str, int]:
    counts = dict.fromkeys(("open", "overdue", "fixed", "justified"), 0)
    for status, n in session.execute(
        select(QCNotice.status, func.count()).group_by(QCNotice.status)
    ):
        counts[status] = int(n)
    late = session.scalar(
        select(func.count()).where(QCNotice.status == "open", QCNotice.due_at < now)
    )
    counts["overdue"] = int(late or 0)
    counts["open"] -= counts["overdue"]
    return counts


# ---------------------------------------------------------------------------------------------
# Dashboard


def dashboard(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    bucket_days: int = 1,
    precision_threshold: float = 0.8,
) -> dict[str, Any]:
    """Rates over the stays checked in ``[since, until)``, each stay counted at its latest check.

    ``defect_rate`` = stays with ≥ 1 defect / stays checked; ``grade_a_rate`` = stays graded 甲
    / stays checked (《病案管理质量控制指标(2021年版)》 甲级病历率, over checked stays).
    ``precision`` lists per-rule precision from the QC officer's verdicts in the period
    (:func:`rule_precision`; rules below ``precision_threshold`` are marked ``low``).
    """
    runs = list(
        session.scalars(
            select(QCRun)
            .where(QCRun.checked_at >= since, QCRun.checked_at < until)
            .order_by(QCRun.checked_at, QCRun.id)
        )
    )
    latest: dict[int, QCRun] = {}
    for run in runs:
        latest[run.encounter_id] = run

    def group(key: str) -> list[dict[str, Any]]:
        acc: dict[str, list[QCRun]] = defaultdict(list)
        for run in latest.values():
            acc[str(getattr(run, key) or "—")].append(run)
        rows = [
            {
                "name": name,
                "records": len(items),
                "defective": sum(1 for r in items if r.defects),
                "defect_rate": round(sum(1 for r in items if r.defects) / len(items), 4),
                "grade_a_rate": round(sum(1 for r in items if r.grade == "甲") / len(items), 4),
                "mean_score": round(sum(r.score for r in items) / len(items), 1),
                "encounters": sorted(r.encounter_id for r in items),
            }
            for name, items in acc.items()
        ]
        return sorted(rows, key=lambda r: (-r["defect_rate"], r["name"]))

    by_rule: Counter[str] = Counter()
    rule_encounters: dict[str, set[int]] = defaultdict(set)
    for run in latest.values():
        for rule_id, count in (run.by_rule or {}).items():
            by_rule[rule_id] += int(count)
            rule_encounters[rule_id].add(run.encounter_id)
    total = len(latest)
    trend: list[dict[str, Any]] = []
    step = timedelta(days=max(1, bucket_days))
    cursor = since
    while cursor < until and len(trend) < 400:
        end = min(until, cursor + step)
        bucket: dict[int, QCRun] = {}
        for run in runs:
            if cursor <= run.checked_at < end:
                bucket[run.encounter_id] = run
        n = len(bucket)
        trend.append(
            {
                "start": cursor.date().isoformat(),
                "records": n,
                "defect_rate": round(sum(1 for r in bucket.values() if r.defects) / n, 4)
                if n
                else None,
                "grade_a_rate": round(sum(1 for r in bucket.values() if r.grade == "甲") / n, 4)
                if n
                else None,
            }
        )
        cursor = end
    return {
        "records": total,
        "defective": sum(1 for r in latest.values() if r.defects),
        "defect_rate": round(sum(1 for r in latest.values() if r.defects) / total, 4)
        if total
        else None,
        "grade_a_rate": round(sum(1 for r in latest.values() if r.grade == "甲") / total, 4)
        if total
        else None,
        "by_department": group("department"),
        "by_doctor": group("doctor"),
        "by_rule": [
            {"rule_id": rule_id, "defects": n, "encounters": sorted(rule_encounters[rule_id])}
            for rule_id, n in by_rule.most_common()
        ],
        "trend": trend,
        "precision": rule_precision(
            session, threshold=precision_threshold, since=since, until=until
        ),
        "precision_threshold": precision_threshold,
    }


# ---------------------------------------------------------------------------------------------
# Hospital rules (the QC expression language)

RULE_ID_PREFIX = "qc.local."
_SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class RuleForm:
    """What the editor submits; :func:`validate_rule` turns it into a rule row."""

    rule_id: str
    when: str
    category: str = "content"
    severity: str = "warning"
    deduction: float = 1.0
    message_zh: str = ""
    message_en: str = ""
    suggestion_zh: str = ""
    suggestion_en: str = ""
    source: str = ""
    stages: tuple[str, ...] = ("realtime", "final")
    missing: str = ""


def validate_rule(form: RuleForm, lang: str = "zh") -> dict[str, Any]:
    """Check every field; raise InputError naming the field (ExpressionError with a position
    for the condition). Returns the rule row (``kind: expression``)."""
    rid = form.rule_id.strip()
    if not rid.startswith(RULE_ID_PREFIX) or len(rid) > 128 or len(rid) <= len(RULE_ID_PREFIX):
        raise InputError("rule", "rule_id", t("qc.rules.bad_id", lang, prefix=RULE_ID_PREFIX))
    if not all(c.isalnum() or c in "._-" for c in rid) or not rid.isascii():
        raise InputError("rule", "rule_id", t("qc.rules.bad_id", lang, prefix=RULE_ID_PREFIX))
    if form.category not in CATEGORIES:
        raise InputError("rule", "category", t("qc.rules.bad_category", lang))
    if form.severity not in _SEVERITIES:
        raise InputError("rule", "severity", t("qc.rules.bad_severity", lang))
    if not 0 <= form.deduction <= 100:
        raise InputError("rule", "deduction", t("qc.rules.bad_deduction", lang))
    for name in ("message_zh", "message_en", "source"):
        value = getattr(form, name).strip()
        if not value or len(value) > 500:
            raise InputError("rule", name, t("qc.rules.required", lang))
    if not form.stages or any(s not in ("realtime", "final") for s in form.stages):
        raise InputError("rule", "stages", t("qc.rules.bad_stages", lang))
    from medbrain.qc.facts import compile_condition

    compile_condition(form.when)  # ExpressionError (an InputError) with the position
    row: dict[str, Any] = {
        "rule_id": rid,
        "kind": "expression",
        "category": form.category,
        "stages": list(form.stages),
        "document_types": [],
        "severity": form.severity,
        "deduction": float(form.deduction),
        "params": {"when": form.when, **({"missing": form.missing} if form.missing else {})},
        "message": {"zh": form.message_zh.strip(), "en": form.message_en.strip()},
        "suggestion": {
            "zh": form.suggestion_zh.strip() or form.message_zh.strip(),
            "en": form.suggestion_en.strip() or form.message_en.strip(),
        },
        "source": form.source.strip(),
    }
    try:
        load_qc_knowledge({"rules": [row]})
    except KnowledgeError as exc:
        raise InputError("rule", "rule", str(exc)) from None
    return row


def save_rule(
    session: Session, form: RuleForm, actor: Actor, now: datetime, lang: str = "zh"
) -> QCRule:
    """Create or edit a hospital rule; an edit bumps the version and disables the rule until
    it is tested again."""
    row = validate_rule(form, lang)
    existing = session.scalar(select(QCRule).where(QCRule.rule_id == row["rule_id"]))
    if existing is None:
        existing = QCRule(
            rule_id=row["rule_id"],
            row=row,
            enabled=False,
            version=1,
            updated_by=actor.username,
            updated_at=now,
            created_at=now,
        )
        session.add(existing)
        action = "qc.rule.create"
    else:
        if existing.row == row:
            return existing
        existing.row = row
        existing.version += 1
        existing.enabled = False
        existing.updated_by = actor.username
        existing.updated_at = now
        action = "qc.rule.update"
    session.flush()
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action=action,
        resource=f"QCRule/{existing.rule_id}",
        detail={"version": existing.version, "when": row["params"]["when"]},
        now=now,
    )
    return existing


@dataclass(frozen=True, slots=True)
class SampleResult:
    name: str
    fired: bool
    messages: tuple[str, ...]
    quotes: tuple[str, ...]


def run_rule_on_samples(
    row: Mapping[str, Any], samples: Sequence[tuple[str, Mapping[str, Any]]], lang: str = "zh"
) -> list[SampleResult]:
    """Run one rule row alone on sample records (``(name, {documents, meta})``)."""
    knowledge = load_qc_knowledge({"rules": [dict(row)]})
    only = RuleRegistry(knowledge)
    rules = [r for r in only.rules if r.row.rule_id == row["rule_id"]]
    from medbrain.qc.kinds import CheckContext, read_events

    out: list[SampleResult] = []
    for name, body in samples:
        record = record_from_mapping(dict(body), name, knowledge.vocabulary)
        findings: list[Finding] = []
        for stage in ("final",) if record.meta.discharge_time else ("realtime",):
            ctx = CheckContext(knowledge, stage, lang, read_events(record, knowledge, None))
            for rule in rules:
                if stage in rule.row.stages:
                    findings += rule.check(record, ctx)
        out.append(
            SampleResult(
                name,
                bool(findings),
                tuple(f.message for f in findings),
                tuple(q for f in findings if (q := _quote(f))),
            )
        )
    return out


@lru_cache(maxsize=2)
def sample_records(count: int = 12, seed: int = 7) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Synthetic sample stays to try a rule on (from :mod:`medbrain.qc.corpus`; cached, since
    generating them takes about a second). Callers must not modify them."""
    from medbrain.qc.corpus import generate_corpus

    return tuple(
        (rec.record_id, {"documents": rec.documents, "meta": rec.meta})
        for rec in generate_corpus(count, seed)
    )


def try_rule(
    session: Session,
    rule_id: str,
    actor: Actor,
    now: datetime,
    samples: Sequence[tuple[str, Mapping[str, Any]]],
    lang: str = "zh",
) -> tuple[QCRule, list[SampleResult]]:
    """Run the saved rule on samples and mark this version tested (audited)."""
    rule = session.scalar(select(QCRule).where(QCRule.rule_id == rule_id))
    if rule is None:
        raise NotFoundError(f"QCRule/{rule_id}")
    results = run_rule_on_samples(dict(rule.row, rule_id=rule.rule_id), samples, lang)
    rule.tested_version = rule.version
    rule.tested_at = now
    rule.test_summary = {
        "samples": len(results),
        "fired": sum(1 for r in results if r.fired),
        "fired_on": [r.name for r in results if r.fired][:50],
    }
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.rule.test",
        resource=f"QCRule/{rule.rule_id}",
        detail={"version": rule.version, **rule.test_summary},
        now=now,
    )
    return rule, results


def set_rule_enabled(
    session: Session, rule_id: str, enabled: bool, actor: Actor, now: datetime, lang: str = "zh"
) -> QCRule:
    """Switch a hospital rule on (only a version that was tested) or off."""
    rule = session.scalar(select(QCRule).where(QCRule.rule_id == rule_id).with_for_update())
    if rule is None:
        raise NotFoundError(f"QCRule/{rule_id}")
    if enabled and rule.tested_version != rule.version:
        raise ConflictError("rule", "enabled", t("qc.rules.untested", lang))
    if rule.enabled == enabled:
        return rule
    rule.enabled = enabled
    rule.updated_by = actor.username
    rule.updated_at = now
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="qc.rule.enable" if enabled else "qc.rule.disable",
        resource=f"QCRule/{rule.rule_id}",
        detail={"version": rule.version},
        now=now,
    )
    return rule


def list_rules(session: Session) -> list[QCRule]:
    return list(session.scalars(select(QCRule).order_by(QCRule.rule_id)))


__all__ = [
    "Actor",
    "ExpressionError",
    "RecheckResult",
    "RuleForm",
    "ScanResult",
    "dashboard",
    "decide",
    "effective_knowledge",
    "justify",
    "list_notices",
    "recheck_after_import",
    "recheck_encounter",
    "reopen",
    "rule_precision",
    "save_rule",
    "scan_in_stay",
    "set_rule_enabled",
    "status_counts",
    "try_rule",
    "validate_rule",
]


def seed_demo_qc(
    session: Session, now: datetime | None = None, timezone: str = "Asia/Shanghai"
) -> int:
    """Demo data for /qc/notices and /qc/dashboard: check every demo inpatient stay once, at
    seeding time (trigger ``demo``; no audit entries of its own: ``demo.seed`` records it)."""
    now = now or datetime.now(UTC)
    knowledge = effective_knowledge(session)
    zone = zone_of(timezone)
    users = _users_by_author(session)
    ids = list(
        session.scalars(
            select(m.Encounter.id).where(m.Encounter.kind == "inpatient").order_by(m.Encounter.id)
        )
    )
    opened = 0
    for eid in ids:
        try:
            result = recheck_encounter(
                session,
                eid,
                knowledge=knowledge,
                now=now,
                zone=zone,
                actor=Actor(*SYSTEM_USER),
                trigger="demo",
                users=users,
                audit=False,
            )
        except InputError:
            continue  # a demo stay whose documents the parser refuses: nothing to show
        opened += result.opened
    return opened


def parse_scan_time(raw: str | None) -> datetime:
    """``--now`` of ``medbrain qc scan``: ISO 8601 with an offset, or now (UTC)."""
    if raw is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError("--now", "now", f"not an ISO 8601 date/time: {raw!r}") from None
    if value.tzinfo is None:
        raise InputError("--now", "now", "needs a UTC offset, e.g. 2024-03-05T09:00+08:00")
    return value.astimezone(UTC)


def scan_instance(settings: Any, now: datetime, lang: str = "zh") -> ScanResult:
    """One scan of the instance database in its own transaction (``medbrain qc scan``)."""
    from medbrain.store.db import transaction
    from medbrain.store.instance import open_instance

    instance = open_instance(settings)
    try:
        with transaction(instance.session_factory) as session:
            return scan_in_stay(
                session,
                knowledge=effective_knowledge(session, hospital_knowledge(settings.home)),
                now=now,
                zone=zone_of(settings.timezone),
                lang=lang,
                actor=Actor("cli", "admin"),
            )
    finally:
        instance.dispose()
