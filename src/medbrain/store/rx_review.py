"""The pharmacist's review loop over stored prescriptions (issue 6).

A *prescription* here is one encounter's active medication requests. :func:`sync_queue` builds
the DESIGN.md §3 prescription of each recent encounter from the store, reviews it with the pure
engine (:mod:`medbrain.rx`) and keeps one :class:`~medbrain.store.rx_models.RxReview` per
encounter, re-reviewing when the items or the hospital's rule configuration change. The actions
(:func:`approve`, :func:`return_to_prescriber`, :func:`override_finding`, :func:`justify`,
:func:`modify`) check the state, write a history event and an audit entry in the caller's
transaction (the caller commits).

The hospital's rule configuration (:func:`save_rule_config`) is an rx knowledge override
document, merged into the shipped knowledge by the same mechanism as
``medbrain rx review --overrides`` (:func:`medbrain.rx.knowledge.merge_overrides`).

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第十五条–第十八条 (审核, 退回开方医师, 医师修改或
确认, 记录); DESIGN.md §2 (every decision on a finding is audited).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medbrain.audit import chain
from medbrain.core.errors import ConflictError, InputError, KnowledgeError, NotFoundError
from medbrain.core.i18n import t
from medbrain.rx import RxKnowledge, load_rx_knowledge, review
from medbrain.rx.knowledge import build_knowledge, load_raw
from medbrain.store import models as m
from medbrain.store.patients import age_on
from medbrain.store.rx_models import (
    QUEUE_STATUSES,
    RxFindingOutcome,
    RxReview,
    RxReviewEvent,
    RxRuleConfig,
)

#: LOINC codes of the labs the review reads, by the name the engine expects.
RX_LABS: dict[str, str] = {
    "14682-9": "creatinine_umol_l",
    "1742-6": "alt_u_l",
    "1920-8": "ast_u_l",
    "2823-3": "potassium_mmol_l",
    "1975-2": "bilirubin_umol_l",
    "1751-7": "albumin_g_l",
    "6301-6": "inr",
}
WEIGHT_LOINC = ("29463-7", "3141-9")
HEIGHT_LOINC = "8302-2"
CREATININE_MASS_LOINC = "2160-0"
SEVERITY_RANK = {"critical": 2, "warning": 1, "info": 0}
VERDICT_RANK = {"block": 2, "warn": 1, "pass": 0}
SYNC_LIMIT = 200
REASON_MAX = 2000
#: Numeric policy thresholds a hospital may change from the rule page (policy.yaml keys).
THRESHOLDS: dict[str, tuple[float, float, bool]] = {
    # key: (min, max, integer)
    "supply_days.outpatient": (1, 90, True),
    "supply_days.emergency": (1, 30, True),
    "quantity_oversupply_factor": (1.0, 10.0, False),
    "alt_uln_u_l": (10.0, 200.0, False),
    "pediatric_below_years": (1.0, 18.0, False),
}


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: str


# -- knowledge with the hospital's configuration ---------------------------------------------


@lru_cache(maxsize=4)
def _knowledge_of(document_json: str) -> RxKnowledge:
    document = json.loads(document_json)
    if not document:
        return load_rx_knowledge(None)
    return build_knowledge(load_raw(document, "rx_rule_config"))


def knowledge_from_document(document: Mapping[str, Any]) -> RxKnowledge:
    """Shipped knowledge merged with an override document (cached by content).

    Raises
    ------
    KnowledgeError
        The document does not merge into valid knowledge (names the file and key).
    """
    return _knowledge_of(json.dumps(document, sort_keys=True, ensure_ascii=False))


def active_config(session: Session) -> RxRuleConfig | None:
    return session.scalar(select(RxRuleConfig).order_by(RxRuleConfig.id.desc()).limit(1))


def current_knowledge(session: Session) -> tuple[str, RxKnowledge]:
    """``(key, knowledge)``: the key changes whenever the configuration does."""
    config = active_config(session)
    if config is None:
        return "shipped", load_rx_knowledge(None)
    return f"config/{config.id}", knowledge_from_document(config.document or {})


def config_document(session: Session) -> dict[str, Any]:
    config = active_config(session)
    if config is None:
        return {}
    doc: dict[str, Any] = json.loads(json.dumps(config.document))
    return doc


def save_rule_config(
    session: Session,
    document: Mapping[str, Any],
    actor: Actor,
    now: datetime,
    *,
    note: str | None = None,
    change: Mapping[str, Any] | None = None,
) -> RxRuleConfig:
    """Store a new configuration (validated by building the knowledge) and audit it."""
    try:
        knowledge_from_document(document)
    except KnowledgeError as exc:
        raise InputError("rx_rule_config", "document", str(exc)) from None
    row = RxRuleConfig(
        document=dict(document), created_by=actor.username, created_at=now, note=note
    )
    session.add(row)
    session.flush()
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action="rx.rules.configure",
        resource=f"RxRuleConfig/{row.id}",
        detail={"change": dict(change or {}), "note": note},
        now=now,
    )
    return row


def rule_config_change(
    document: Mapping[str, Any],
    *,
    rule_id: str,
    enabled: bool | None = None,
    severity: str | None = None,
    lang: str = "zh",
) -> dict[str, Any]:
    """A copy of ``document`` with one rule enabled/disabled or its severity set.

    ``severity`` ``""`` removes the hospital's severity for the rule (the shipped one applies).
    """
    rule_id = rule_id.strip()
    if not rule_id.startswith("rx.") or len(rule_id) > 128 or " " in rule_id:
        raise InputError("form", "rule_id", t("rx.wb.bad_rule_id", lang, rule=rule_id))
    doc: dict[str, Any] = json.loads(json.dumps(document))
    policy = doc.setdefault("policy", {})
    if enabled is not None:
        disabled = [r for r in policy.get("disabled_rules") or [] if r != rule_id]
        if not enabled:
            disabled.append(rule_id)
        policy["disabled_rules"] = sorted(disabled)
    if severity is not None:
        overrides = dict(policy.get("severity_overrides") or {})
        if severity == "":
            overrides.pop(rule_id, None)
        elif severity in SEVERITY_RANK:
            overrides[rule_id] = severity
        else:
            raise InputError("form", "severity", t("rx.wb.bad_severity", lang))
        policy["severity_overrides"] = overrides
    return doc


def threshold_change(
    document: Mapping[str, Any], key: str, raw: str, lang: str = "zh"
) -> dict[str, Any]:
    """A copy of ``document`` with one policy threshold (:data:`THRESHOLDS`) set."""
    if key not in THRESHOLDS:
        raise InputError("form", "threshold", t("rx.wb.bad_threshold_key", lang, name=key))
    low, high, integer = THRESHOLDS[key]
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (low <= value <= high) or (integer and not value.is_integer()):
        raise InputError(
            "form", key, t("rx.wb.bad_threshold", lang, name=key, low=f"{low:g}", high=f"{high:g}")
        )
    doc: dict[str, Any] = json.loads(json.dumps(document))
    policy = doc.setdefault("policy", {})
    number: float | int = int(value) if integer else value
    if "." in key:
        group, name = key.split(".", 1)
        policy.setdefault(group, {})[name] = number
    else:
        policy[key] = number
    return doc


def threshold_values(knowledge: RxKnowledge) -> dict[str, float | int | None]:
    policy = knowledge.policy
    return {
        "supply_days.outpatient": policy.supply_days.get("outpatient"),
        "supply_days.emergency": policy.supply_days.get("emergency"),
        "quantity_oversupply_factor": policy.quantity_oversupply_factor,
        "alt_uln_u_l": policy.alt_uln_u_l,
        "pediatric_below_years": policy.pediatric_below_years,
    }


# -- prescriptions from the store --------------------------------------------------------------


def latest_values(session: Session, patient_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Per patient, the latest numeric value of each lab or body measure the review uses."""
    codes = [*RX_LABS, *WEIGHT_LOINC, HEIGHT_LOINC, CREATININE_MASS_LOINC]
    rows = session.execute(
        select(
            m.Observation.patient_id,
            m.Observation.code,
            m.Observation.value_num,
            m.Observation.unit,
        )
        .where(m.Observation.patient_id.in_(patient_ids), m.Observation.code.in_(codes))
        .where(m.Observation.value_num.is_not(None))
        .order_by(m.Observation.effective_at)
    )
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for patient_id, code, value, unit in rows:
        if value is None:
            continue
        if code in WEIGHT_LOINC:
            out[patient_id]["weight_kg"] = value
        elif code == HEIGHT_LOINC:
            out[patient_id]["height_cm"] = value
        elif code == CREATININE_MASS_LOINC:  # mg/dL → µmol/L (× 88.42)
            umol = value * 88.42 if unit and "mg" in unit.lower() else value
            out[patient_id]["creatinine_umol_l"] = round(umol, 1)
        elif code == "1975-2" and unit and "mg" in unit.lower():  # bilirubin mg/dL → µmol/L
            out[patient_id]["bilirubin_umol_l"] = round(value * 17.1, 1)
        elif code == "1751-7" and unit and "dl" in unit.lower():  # albumin g/dL → g/L
            out[patient_id]["albumin_g_l"] = value * 10
        else:
            out[patient_id][RX_LABS[code]] = value
    return out


def prescription_document(
    encounter: m.Encounter,
    patient: m.Patient,
    requests: Sequence[m.MedicationRequest],
    allergies: Sequence[str],
    diagnoses: Sequence[str],
    values: Mapping[str, float],
) -> dict[str, Any]:
    """The DESIGN.md §3 prescription JSON of one encounter, from what the store holds."""
    on = (encounter.admit_time or datetime.now(UTC)).date()
    labs = {k: v for k, v in values.items() if k not in ("weight_kg", "height_cm")}
    patient_doc: dict[str, Any] = {
        "age_years": age_on(patient.birth_date, on),
        "sex": patient.sex if patient.sex in ("male", "female") else None,
        "weight_kg": values.get("weight_kg"),
        "height_cm": values.get("height_cm"),
        "allergies": list(allergies),
        "diagnoses": list(diagnoses),
        "labs": labs,
    }
    items = [
        {
            k: v
            for k, v in (
                ("drug", r.drug),
                ("dose", r.dose_value),
                ("unit", r.dose_unit),
                ("route", r.route),
                ("frequency", r.frequency),
                ("days", r.days),
                ("quantity", r.quantity),
            )
            if v is not None
        }
        for r in requests
    ]
    document: dict[str, Any] = {
        "patient": {k: v for k, v in patient_doc.items() if v is not None},
        "department": encounter.department,
        "items": items,
    }
    if encounter.kind in ("outpatient", "emergency", "inpatient"):
        document["setting"] = encounter.kind
    return document


@dataclass(slots=True)
class StoredPrescription:
    encounter: m.Encounter
    patient: m.Patient
    requests: list[m.MedicationRequest]
    document: dict[str, Any]


def active_requests(session: Session, encounter_ids: Sequence[int]) -> dict[int, list[Any]]:
    out: dict[int, list[m.MedicationRequest]] = defaultdict(list)
    if not encounter_ids:
        return out
    for med in session.scalars(
        select(m.MedicationRequest)
        .where(m.MedicationRequest.encounter_id.in_(encounter_ids))
        .order_by(m.MedicationRequest.authored_at, m.MedicationRequest.id)
    ):
        if med.encounter_id is not None and med.status not in ("cancelled", "entered-in-error"):
            out[med.encounter_id].append(med)
    return out


def stored_prescriptions(
    session: Session, encounters: Sequence[m.Encounter]
) -> list[StoredPrescription]:
    """Each encounter's active medication requests as a review document (batched queries)."""
    if not encounters:
        return []
    encounter_ids = [e.id for e in encounters]
    patient_ids = sorted({e.patient_id for e in encounters})
    patients = {
        p.id: p for p in session.scalars(select(m.Patient).where(m.Patient.id.in_(patient_ids)))
    }
    requests = active_requests(session, encounter_ids)
    allergies: dict[int, list[str]] = defaultdict(list)
    for a in session.scalars(
        select(m.AllergyIntolerance).where(m.AllergyIntolerance.patient_id.in_(patient_ids))
    ):
        allergies[a.patient_id].append(a.substance)
    conditions: dict[int, list[m.Condition]] = defaultdict(list)
    for c in session.scalars(select(m.Condition).where(m.Condition.patient_id.in_(patient_ids))):
        if c.clinical_status in (None, "active", "recurrence", "relapse"):
            conditions[c.patient_id].append(c)
    values = latest_values(session, patient_ids)
    out = []
    for encounter in encounters:
        meds = requests.get(encounter.id, [])
        if not meds:
            continue
        patient = patients[encounter.patient_id]
        diagnoses = [
            c.text for c in conditions.get(patient.id, []) if c.encounter_id in (None, encounter.id)
        ]
        document = prescription_document(
            encounter, patient, meds, allergies.get(patient.id, []), diagnoses,
            values.get(patient.id, {}),
        )  # fmt: skip
        out.append(StoredPrescription(encounter, patient, meds, document))
    return out


def items_hash(document: Mapping[str, Any], requests: Iterable[m.MedicationRequest]) -> str:
    payload = json.dumps(
        {"doc": document, "ids": [r.id for r in requests]}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# -- reviewing and outcomes --------------------------------------------------------------------


def finding_key(finding: Mapping[str, Any], items: Sequence[Mapping[str, Any]] = ()) -> str:
    """A finding's identity across reviews: its rule and the drugs as written (not positions,
    which shift when an item is stopped, nor display names, which follow the language)."""
    if "key" in finding:
        return str(finding["key"])
    names = []
    for i in finding.get("items") or []:
        if isinstance(i, int) and 0 <= i < len(items):
            names.append(str(items[i].get("drug", i)))
        else:
            names.append(str(i))
    return f"{finding['rule_id']}|{','.join(sorted(names))}"[:192]


def _event(
    session: Session,
    review_row: RxReview,
    action: str,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    rule_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        RxReviewEvent(
            review_id=review_row.id,
            action=action,
            actor=actor.username,
            role=actor.role,
            at=now,
            rule_id=rule_id,
            reason=reason,
            detail=dict(detail or {}),
        )
    )
    chain.append(
        session,
        who=actor.username,
        role=actor.role,
        action=f"rx.{action}",
        resource=f"RxReview/{review_row.id}",
        detail={
            "encounter_id": review_row.encounter_id,
            "status": review_row.status,
            "rule_id": rule_id,
            "reason": reason,
            **dict(detail or {}),
        },
        now=now,
    )


def _apply(
    session: Session,
    row: RxReview,
    prescription: StoredPrescription,
    knowledge: RxKnowledge,
    key: str,
    *,
    lang: str,
    threshold: float | None,
    now: datetime,
    changed_by_prescriber: bool,
) -> None:
    """Review ``prescription`` into ``row`` and reconcile the finding outcomes."""
    try:
        result = review(
            prescription.document,
            knowledge,
            lang=lang,
            source=f"Encounter/{row.encounter_id}",
            review_threshold=threshold,
        )
    except InputError as exc:  # unreadable: findings stay as they were decided
        row.verdict, row.findings = None, []
        row.error = f"{exc.field}: {exc.problem}" if exc.field else exc.problem
        row.items_hash = items_hash(prescription.document, prescription.requests)
        row.knowledge_key = key
        row.updated_at = now
        session.flush()
        return
    else:
        items = prescription.document.get("items") or []
        findings = [f.to_dict() for f in result.findings]
        for f in findings:
            f["key"] = finding_key(f, items)
        row.verdict, row.findings, row.error = result.verdict, findings, None
    row.items_hash = items_hash(prescription.document, prescription.requests)
    row.knowledge_key = key
    row.updated_at = now
    existing = {
        o.finding_key: o
        for o in session.scalars(
            select(RxFindingOutcome).where(RxFindingOutcome.review_id == row.id)
        )
    }
    current = set()
    for f in findings:
        fkey = finding_key(f)
        current.add(fkey)
        outcome = existing.get(fkey)
        if outcome is None:
            session.add(
                RxFindingOutcome(
                    review_id=row.id,
                    finding_key=fkey,
                    rule_id=str(f["rule_id"])[:128],
                    category=str(f.get("category", ""))[:32],
                    severity=str(f["severity"]),
                    message=str(f.get("message", "")),
                    status="open",
                    created_at=now,
                )
            )
        else:
            outcome.severity = str(f["severity"])
            outcome.message = str(f.get("message", ""))
            if outcome.status in ("accepted", "resolved"):  # raised again
                outcome.status, outcome.decided_by, outcome.decided_at = "open", None, None
                outcome.decided_role, outcome.reason = None, None
    for fkey, outcome in existing.items():
        if fkey not in current and outcome.status == "open":
            outcome.status = "accepted" if changed_by_prescriber else "resolved"
            outcome.decided_at = now
    session.flush()


def sync_queue(
    session: Session,
    knowledge: RxKnowledge,
    key: str,
    now: datetime,
    *,
    lang: str = "zh",
    threshold: float | None = None,
    limit: int = SYNC_LIMIT,
    system: Actor = Actor("system", "admin"),
) -> int:
    """Create or refresh the reviews of the ``limit`` latest encounters with medications.

    A new prescription, a changed one (items) or a changed configuration (``key``) is reviewed
    again; an approved prescription whose items changed goes back to the queue. Returns the
    number of prescriptions (re)reviewed.
    """
    encounters = list(
        session.scalars(
            select(m.Encounter)
            .where(m.Encounter.id.in_(select(m.MedicationRequest.encounter_id)))
            .order_by(m.Encounter.admit_time.desc(), m.Encounter.id.desc())
            .limit(limit)
        )
    )
    prescriptions = stored_prescriptions(session, encounters)
    reviews = {
        r.encounter_id: r
        for r in session.scalars(
            select(RxReview).where(
                RxReview.encounter_id.in_([p.encounter.id for p in prescriptions])
            )
        )
    }
    done = 0
    for p in prescriptions:
        row = reviews.get(p.encounter.id)
        digest = items_hash(p.document, p.requests)
        if row is None:
            row = RxReview(
                encounter_id=p.encounter.id,
                patient_id=p.patient.id,
                department=p.encounter.department,
                prescriber=next((r.prescriber for r in p.requests if r.prescriber), None),
                status="pending",
                findings=[],
                items_hash=digest,
                knowledge_key=key,
                created_at=now,
                updated_at=now,
            )
            try:
                with session.begin_nested():  # another pharmacist's refresh may have won
                    session.add(row)
                    session.flush()
            except IntegrityError:
                continue
        elif row.items_hash == digest and row.knowledge_key == key:
            continue
        elif row.items_hash != digest and row.status in ("approved", "returned"):
            row.status = "pending" if row.status == "approved" else "resubmitted"
            _event(session, row, "changed", system, now)
        _apply(
            session, row, p, knowledge, key, lang=lang, threshold=threshold, now=now,
            changed_by_prescriber=False,
        )  # fmt: skip
        done += 1
    return done


# -- reading -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ReviewView:
    review: RxReview
    encounter: m.Encounter
    patient: m.Patient
    requests: list[m.MedicationRequest] = field(default_factory=list)
    outcomes: list[RxFindingOutcome] = field(default_factory=list)
    events: list[RxReviewEvent] = field(default_factory=list)

    @property
    def open_outcomes(self) -> dict[str, RxFindingOutcome]:
        return {o.finding_key: o for o in self.outcomes}


def _views(session: Session, rows: Sequence[RxReview], detail: bool = False) -> list[ReviewView]:
    if not rows:
        return []
    encounters = {
        e.id: e
        for e in session.scalars(
            select(m.Encounter).where(m.Encounter.id.in_([r.encounter_id for r in rows]))
        )
    }
    patients = {
        p.id: p
        for p in session.scalars(
            select(m.Patient).where(m.Patient.id.in_([r.patient_id for r in rows]))
        )
    }
    requests = active_requests(session, [r.encounter_id for r in rows])
    outcomes: dict[int, list[RxFindingOutcome]] = defaultdict(list)
    for o in session.scalars(
        select(RxFindingOutcome)
        .where(RxFindingOutcome.review_id.in_([r.id for r in rows]))
        .order_by(RxFindingOutcome.id)
    ):
        outcomes[o.review_id].append(o)
    events: dict[int, list[RxReviewEvent]] = defaultdict(list)
    if detail:
        for ev in session.scalars(
            select(RxReviewEvent)
            .where(RxReviewEvent.review_id.in_([r.id for r in rows]))
            .order_by(RxReviewEvent.id)
        ):
            events[ev.review_id].append(ev)
    return [
        ReviewView(
            review=r,
            encounter=encounters[r.encounter_id],
            patient=patients[r.patient_id],
            requests=requests.get(r.encounter_id, []),
            outcomes=outcomes.get(r.id, []),
            events=events.get(r.id, []),
        )
        for r in rows
    ]


def _severity_order(view: ReviewView) -> tuple[int, int, int, int]:
    r = view.review
    top = max((SEVERITY_RANK.get(str(f.get("severity")), 0) for f in r.findings), default=-1)
    return (
        -(3 if r.error else VERDICT_RANK.get(r.verdict or "", 0)),
        -top,
        -len(r.findings),
        r.id,
    )


def queue(session: Session, *, limit: int = 50, include_pass: bool = False) -> list[ReviewView]:
    """Prescriptions awaiting the pharmacist, most severe first (passing ones only if asked)."""
    query = select(RxReview).where(RxReview.status.in_(QUEUE_STATUSES))
    if not include_pass:
        query = query.where((RxReview.verdict != "pass") | RxReview.verdict.is_(None))
    views = _views(session, list(session.scalars(query)))
    views.sort(key=_severity_order)
    return views[:limit]


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(RxReview.status, func.count()).group_by(RxReview.status))
    return {str(status): int(n) for status, n in rows}


def is_prescriber_of(row: RxReview, display_name: str, department: str | None) -> bool:
    """The user wrote the prescription (name match) or works in its department."""
    name = display_name.split()[0] if display_name.split() else display_name
    by_name = bool(row.prescriber) and (
        str(row.prescriber) in display_name or (bool(name) and name in str(row.prescriber))
    )
    return by_name or (department is not None and row.department == department)


def prescriber_inbox(
    session: Session, *, display_name: str, department: str | None, everyone: bool
) -> list[ReviewView]:
    """Prescriptions returned to this prescriber (by name, else by department; all for admin)."""
    rows = list(
        session.scalars(
            select(RxReview).where(RxReview.status == "returned").order_by(RxReview.updated_at)
        )
    )
    if not everyone:
        rows = [r for r in rows if is_prescriber_of(r, display_name, department)]
    return _views(session, rows)


def get_review(session: Session, review_id: int) -> ReviewView:
    row = session.get(RxReview, review_id)
    if row is None:
        raise NotFoundError(f"RxReview/{review_id}")
    return _views(session, [row], detail=True)[0]


def _lock(session: Session, review_id: int) -> RxReview:
    row = session.get(RxReview, review_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"RxReview/{review_id}")
    return row


def _reason(reason: str, field_name: str, lang: str) -> str:
    text = reason.strip()
    if not text:
        raise InputError("form", field_name, t("rx.wb.reason_required", lang))
    if len(text) > REASON_MAX:
        raise InputError("form", field_name, t("rx.wb.reason_too_long", lang, n=REASON_MAX))
    return text


def _require_status(row: RxReview, allowed: Sequence[str], lang: str) -> None:
    if row.status not in allowed:
        raise ConflictError(
            f"RxReview/{row.id}", "status", t("rx.wb.wrong_state", lang, status=row.status)
        )


def _open(session: Session, review_id: int) -> list[RxFindingOutcome]:
    return list(
        session.scalars(
            select(RxFindingOutcome).where(
                RxFindingOutcome.review_id == review_id, RxFindingOutcome.status == "open"
            )
        )
    )


def _decide(
    outcome: RxFindingOutcome, status: str, actor: Actor, reason: str, now: datetime
) -> None:
    outcome.status = status
    outcome.decided_by, outcome.decided_role = actor.username, actor.role
    outcome.decided_at, outcome.reason = now, reason


# -- actions -----------------------------------------------------------------------------------


def approve(
    session: Session,
    review_id: int,
    actor: Actor,
    now: datetime,
    *,
    note: str = "",
    lang: str = "zh",
) -> RxReview:
    """Approve a queued prescription; open findings are recorded as overridden by the approval.

    A prescription with an open critical finding cannot be approved: the pharmacist overrides
    that finding with a reason first, or returns the prescription.
    """
    row = _lock(session, review_id)
    _require_status(row, QUEUE_STATUSES, lang)
    if row.error:
        raise ConflictError(f"RxReview/{row.id}", "status", t("rx.wb.cannot_approve_error", lang))
    still_open = _open(session, row.id)
    critical = [o.rule_id for o in still_open if o.severity == "critical"]
    if critical:
        raise ConflictError(
            f"RxReview/{row.id}",
            "findings",
            t("rx.wb.critical_open", lang, rules=", ".join(sorted(set(critical)))),
        )
    text = note.strip()[:REASON_MAX]
    reason = text or t("rx.wb.approved_as_is", lang)
    for outcome in still_open:
        _decide(outcome, "overridden", actor, reason, now)
    row.status, row.decided_by, row.decided_at, row.updated_at = (
        "approved",
        actor.username,
        now,
        now,
    )
    _event(
        session, row, "approve", actor, now, reason=text or None,
        detail={"overridden": [o.rule_id for o in still_open], "verdict": row.verdict},
    )  # fmt: skip
    return row


def return_to_prescriber(
    session: Session, review_id: int, actor: Actor, reason: str, now: datetime, *, lang: str = "zh"
) -> RxReview:
    """Send a queued prescription back to its prescriber with a reason (required)."""
    text = _reason(reason, "reason", lang)
    row = _lock(session, review_id)
    _require_status(row, QUEUE_STATUSES, lang)
    row.status, row.return_reason, row.updated_at = "returned", text, now
    row.decided_by, row.decided_at = actor.username, now
    _event(
        session, row, "return", actor, now, reason=text,
        detail={"open": [o.rule_id for o in _open(session, row.id)]},
    )  # fmt: skip
    return row


def override_finding(
    session: Session,
    review_id: int,
    outcome_id: int,
    actor: Actor,
    reason: str,
    now: datetime,
    *,
    lang: str = "zh",
) -> RxFindingOutcome:
    """A pharmacist keeps the order despite one finding, with a reason (required)."""
    text = _reason(reason, "reason", lang)
    row = _lock(session, review_id)
    _require_status(row, QUEUE_STATUSES, lang)
    outcome = session.get(RxFindingOutcome, outcome_id)
    if outcome is None or outcome.review_id != row.id:
        raise NotFoundError(f"RxFindingOutcome/{outcome_id}")
    if outcome.status != "open":
        raise ConflictError(
            f"RxFindingOutcome/{outcome_id}",
            "status",
            t("rx.wb.finding_decided", lang, status=outcome.status),
        )
    _decide(outcome, "overridden", actor, text, now)
    row.updated_at = now
    _event(session, row, "override", actor, now, reason=text, rule_id=outcome.rule_id)
    return outcome


def justify(
    session: Session, review_id: int, actor: Actor, reason: str, now: datetime, *, lang: str = "zh"
) -> RxReview:
    """The prescriber keeps a returned prescription as written: every open finding is
    overridden with the prescriber's reason and the prescription goes back to the pharmacist."""
    text = _reason(reason, "reason", lang)
    row = _lock(session, review_id)
    _require_status(row, ("returned",), lang)
    still_open = _open(session, row.id)
    for outcome in still_open:
        _decide(outcome, "overridden", actor, text, now)
    row.status, row.prescriber_note, row.updated_at = "resubmitted", text, now
    _event(
        session, row, "justify", actor, now, reason=text,
        detail={"overridden": [o.rule_id for o in still_open]},
    )  # fmt: skip
    return row


@dataclass(frozen=True, slots=True)
class ItemChange:
    """A prescriber's change to one medication request (``cancel`` stops it)."""

    request_id: int
    dose: float | None = None
    unit: str | None = None
    frequency: str | None = None
    days: int | None = None
    cancel: bool = False


def modify(
    session: Session,
    review_id: int,
    actor: Actor,
    changes: Sequence[ItemChange],
    knowledge: RxKnowledge,
    key: str,
    now: datetime,
    *,
    note: str = "",
    lang: str = "zh",
    threshold: float | None = None,
) -> RxReview:
    """The prescriber changes a returned prescription; it is reviewed again at once.

    Findings that no longer fire count as accepted; the prescription goes back to the
    pharmacist's queue (``resubmitted``).
    """
    row = _lock(session, review_id)
    _require_status(row, ("returned",), lang)
    requests = {
        r.id: r for r in active_requests(session, [row.encounter_id]).get(row.encounter_id, [])
    }
    diff: list[dict[str, Any]] = []
    for change in changes:
        med = requests.get(change.request_id)
        if med is None:
            raise InputError("form", f"items[{change.request_id}]", t("rx.wb.unknown_item", lang))
        before = {
            "dose": med.dose_value, "unit": med.dose_unit, "frequency": med.frequency,
            "days": med.days, "status": med.status,
        }  # fmt: skip
        if change.cancel:
            med.status = "cancelled"
        else:
            if change.dose is not None:
                if change.dose <= 0:
                    raise InputError("form", f"dose_{med.id}", t("rx.wb.bad_dose", lang))
                med.dose_value = change.dose
            if change.unit:
                med.dose_unit = change.unit[:32]
            if change.frequency:
                med.frequency = change.frequency[:32]
            if change.days is not None:
                if not 0 < change.days <= 3650:
                    raise InputError("form", f"days_{med.id}", t("rx.wb.bad_days", lang))
                med.days = change.days
        after = {
            "dose": med.dose_value, "unit": med.dose_unit, "frequency": med.frequency,
            "days": med.days, "status": med.status,
        }  # fmt: skip
        if after != before:
            diff.append({"request_id": med.id, "drug": med.drug, "before": before, "after": after})
    if not diff:
        raise InputError("form", "items", t("rx.wb.no_change", lang))
    session.flush()
    encounter = session.get(m.Encounter, row.encounter_id)
    assert encounter is not None
    prescriptions = stored_prescriptions(session, [encounter])
    row.status, row.updated_at = "resubmitted", now
    row.prescriber_note = note.strip()[:REASON_MAX] or None
    if prescriptions:
        try:  # the prescriber's change must still be a readable prescription
            review(prescriptions[0].document, knowledge, lang=lang, source="form")
        except InputError as exc:
            raise InputError("form", exc.field, exc.problem) from None
        _apply(
            session, row, prescriptions[0], knowledge, key, lang=lang, threshold=threshold,
            now=now, changed_by_prescriber=True,
        )  # fmt: skip
    else:  # every item cancelled: nothing left to dispense
        for outcome in _open(session, row.id):
            outcome.status, outcome.decided_at = "accepted", now
        row.findings, row.verdict = [], "pass"
    _event(session, row, "modify", actor, now, reason=row.prescriber_note, detail={"changes": diff})
    return row


# -- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleStat:
    rule_id: str
    category: str
    fired: int
    open: int
    accepted: int
    overridden: int
    resolved: int

    @property
    def override_rate(self) -> float | None:
        decided = self.accepted + self.overridden
        return self.overridden / decided if decided else None


def rule_stats(session: Session) -> list[RuleStat]:
    """Per rule: how often it fired and what became of it, most fired first."""
    rows = session.execute(
        select(
            RxFindingOutcome.rule_id,
            func.min(RxFindingOutcome.category),
            RxFindingOutcome.status,
            func.count(),
        ).group_by(RxFindingOutcome.rule_id, RxFindingOutcome.status)
    )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    categories: dict[str, str] = {}
    for rule_id, category, status, n in rows:
        counts[rule_id][status] += int(n)
        categories[rule_id] = category
    stats = [
        RuleStat(
            rule_id=rule_id,
            category=categories.get(rule_id, ""),
            fired=sum(c.values()),
            open=c.get("open", 0),
            accepted=c.get("accepted", 0),
            overridden=c.get("overridden", 0),
            resolved=c.get("resolved", 0),
        )
        for rule_id, c in counts.items()
    ]
    stats.sort(key=lambda s: (-s.fired, s.rule_id))
    return stats
