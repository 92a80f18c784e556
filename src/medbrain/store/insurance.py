"""Repository of the insurance review workflow: store checked cases, queue, decide, report.

The pure engine (:mod:`medbrain.insurance`) groups and checks; this module keeps its results
and the insurance office's decisions. Decisions are audited by the caller (router / CLI)
in the same transaction, through :mod:`medbrain.audit.chain`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.insurance import fraud
from medbrain.insurance.frontpage import parse_frontpage
from medbrain.insurance.pipeline import InsuranceKnowledge, analyse
from medbrain.store.insurance_models import InsuranceCase, InsuranceFlag
from medbrain.store.xlsx import Sheet, safe_cell, workbook_bytes

DECISIONS = ("confirmed", "dismissed")
MAX_REASON = 1000


def store_batch(
    session: Session,
    documents: Sequence[Any],
    knowledge: InsuranceKnowledge,
    *,
    lang: str = "zh",
    source: str = "batch",
    demo: bool = False,
) -> list[InsuranceCase]:
    """Parse, group, check and rank ``documents``; store (or replace) one case per ``case_id``.

    Parsing happens before anything is written: one bad document refuses the whole batch.
    """
    pages = [parse_frontpage(doc, f"{source}[{i}]") for i, doc in enumerate(documents)]
    seen: set[str] = set()
    for i, page in enumerate(pages):
        if page.case_id in seen:
            raise InputError(source, f"[{i}].case_id", f"duplicate case_id {page.case_id!r}")
        seen.add(page.case_id)
    analyses = analyse(pages, knowledge, lang=lang)
    rule_risk = np.asarray([a.rule_risk for a in analyses])
    base_rate = float(knowledge.rules.settings.get("base_rate_yuan", 5000))
    anomaly = (
        fraud.anomaly_scores(fraud.claim_features(analyses, base_rate))
        if len(analyses) >= 20
        else np.zeros(len(analyses))
    )
    combined = fraud.combined_scores(rule_risk, anomaly)
    existing = {
        row.case_id: row
        for row in session.scalars(
            select(InsuranceCase)
            .where(InsuranceCase.case_id.in_(seen))
            .options(selectinload(InsuranceCase.flags))
        )
    }
    for case_id, row in existing.items():
        if any(flag.status != "open" for flag in row.flags):
            # replacing it would drop the office's decisions (the audit chain keeps them)
            raise ConflictError(source, "case_id", f"case {case_id!r} has reviewed flags")
    out: list[InsuranceCase] = []
    for doc, result, score, unusual in zip(documents, analyses, combined, anomaly, strict=True):
        fp, drg = result.frontpage, result.drg
        # Only warning/critical flags put a case in the review queue; info-only cases
        # (cost outliers, shares) stay visible in statistics and the export.
        actionable = any(f.severity.value != "info" for f in result.findings)
        previous = existing.get(fp.case_id)
        if previous is not None:
            session.delete(previous)
            session.flush()
        row = InsuranceCase(
            case_id=fp.case_id,
            patient_ref=fp.patient_id,
            department=fp.department,
            doctor=fp.doctor,
            admit_date=fp.admit_date,
            discharge_date=fp.discharge_date,
            drg=drg.drg,
            drg_name=drg.drg_name[:128],
            mdc=drg.mdc,
            status=drg.status,
            weight=drg.weight,
            total_cost=fp.total_cost,
            rule_risk=result.rule_risk,
            anomaly=float(unusual),
            risk=float(score) if actionable else float(score) * 0.5,
            review_status="open" if actionable else "info" if result.findings else "clean",
            frontpage=dict(doc),
            drg_result=drg.to_dict(lang),
            demo=1 if demo else 0,
        )
        for finding in result.findings:
            row.flags.append(
                InsuranceFlag(
                    rule_id=finding.rule_id,
                    category=finding.category,
                    severity=finding.severity.value,
                    message=finding.message,
                    evidence=[e.to_dict() for e in finding.evidence],
                    amount_yuan=float(finding.extra.get("amount_yuan", 0.0)),
                    confidence=finding.confidence,
                )
            )
        session.add(row)
        out.append(row)
    session.flush()
    return out


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    case_id: str
    department: str | None
    doctor: str | None
    drg: str
    drg_name: str
    total_cost: float
    risk: float
    anomaly: float
    open_flags: int
    top_severity: str
    top_message: str


SEVERITY_ORDER = {"critical": 2, "warning": 1, "info": 0}


def review_queue(
    session: Session, *, limit: int = 50, department: str | None = None
) -> list[QueueRow]:
    """Cases with open flags, highest combined risk first."""
    statement = (
        select(InsuranceCase)
        .where(InsuranceCase.review_status == "open")
        .options(selectinload(InsuranceCase.flags))
        .order_by(InsuranceCase.risk.desc(), InsuranceCase.id)
        .limit(limit)
    )
    if department:
        statement = statement.where(InsuranceCase.department == department)
    rows: list[QueueRow] = []
    for case in session.scalars(statement):
        open_flags = [f for f in case.flags if f.status == "open"]
        top = max(
            open_flags or case.flags, key=lambda f: SEVERITY_ORDER.get(f.severity, 0), default=None
        )
        rows.append(
            QueueRow(
                id=case.id,
                case_id=case.case_id,
                department=case.department,
                doctor=case.doctor,
                drg=case.drg,
                drg_name=case.drg_name,
                total_cost=case.total_cost,
                risk=case.risk,
                anomaly=case.anomaly,
                open_flags=len(open_flags),
                top_severity=top.severity if top else "info",
                top_message=top.message if top else "",
            )
        )
    return rows


def get_case(session: Session, case_pk: int) -> InsuranceCase:
    case = session.scalar(
        select(InsuranceCase)
        .where(InsuranceCase.id == case_pk)
        .options(selectinload(InsuranceCase.flags))
    )
    if case is None:
        raise NotFoundError(f"InsuranceCase/{case_pk}")
    return case


def decide_flag(
    session: Session,
    flag_id: int,
    decision: str,
    reason: str,
    *,
    who: str,
    role: str,
    now: datetime | None = None,
) -> InsuranceFlag:
    """Confirm or dismiss one flag; a reason is required; a decided flag cannot be decided again."""
    if decision not in DECISIONS:
        raise InputError("decision", "decision", f"must be one of {', '.join(DECISIONS)}")
    text = (reason or "").strip()
    if not text:
        raise InputError("decision", "reason", "a reason is required")
    if len(text) > MAX_REASON:
        raise InputError("decision", "reason", f"longer than {MAX_REASON} characters")
    flag = session.get(InsuranceFlag, flag_id, with_for_update=True)
    if flag is None:
        raise NotFoundError(f"InsuranceFlag/{flag_id}")
    if flag.status != "open":
        raise ConflictError(f"InsuranceFlag/{flag_id}", "status", f"already {flag.status}")
    flag.status = decision
    flag.decision_reason = text
    flag.decided_by = who
    flag.decided_role = role
    flag.decided_at = now or datetime.now(UTC)
    session.flush()
    case = flag.case
    if all(f.status != "open" for f in case.flags):
        case.review_status = "reviewed"
    return flag


@dataclass(frozen=True, slots=True)
class StatRow:
    key: str
    cases: int
    flagged: int
    flags: int
    confirmed: int
    dismissed: int
    amount_yuan: float
    cmi: float


def statistics(session: Session, by: str = "department") -> list[StatRow]:
    """Per department or doctor: cases, flagged cases, decisions, amount at risk, CMI."""
    column = InsuranceCase.department if by == "department" else InsuranceCase.doctor
    base = session.execute(
        select(
            column,
            func.count(InsuranceCase.id),
            func.sum(func.coalesce(InsuranceCase.weight, 0.0)),
            func.sum(func.cast(InsuranceCase.review_status != "clean", _int_type())),
        ).group_by(column)
    ).all()
    flags = session.execute(
        select(
            column,
            func.count(InsuranceFlag.id),
            func.sum(func.cast(InsuranceFlag.status == "confirmed", _int_type())),
            func.sum(func.cast(InsuranceFlag.status == "dismissed", _int_type())),
            func.sum(InsuranceFlag.amount_yuan),
        )
        .join(InsuranceCase, InsuranceFlag.case_pk == InsuranceCase.id)
        .group_by(column)
    ).all()
    by_key = {row[0]: row for row in flags}
    out = []
    for key, cases, weights, flagged in base:
        f = by_key.get(key)
        out.append(
            StatRow(
                key=key or "-",
                cases=int(cases),
                flagged=int(flagged or 0),
                flags=int(f[1]) if f else 0,
                confirmed=int(f[2] or 0) if f else 0,
                dismissed=int(f[3] or 0) if f else 0,
                amount_yuan=round(float(f[4] or 0.0), 2) if f else 0.0,
                cmi=round(float(weights or 0.0) / int(cases), 3) if cases else 0.0,
            )
        )
    out.sort(key=lambda r: (-r.flagged, r.key))
    return out


def _int_type() -> Any:
    from sqlalchemy import Integer

    return Integer


EXPORT_COLUMNS = (
    "case_id",
    "department",
    "doctor",
    "admit_date",
    "discharge_date",
    "drg",
    "drg_name",
    "weight",
    "total_cost",
    "risk",
    "rule_id",
    "category",
    "severity",
    "message",
    "amount_yuan",
    "status",
    "decided_by",
    "decided_at",
    "decision_reason",
)


def _flag_rows(session: Session) -> Any:
    statement = (
        select(InsuranceFlag, InsuranceCase)
        .join(InsuranceCase, InsuranceFlag.case_pk == InsuranceCase.id)
        .order_by(InsuranceCase.risk.desc(), InsuranceFlag.id)
    )
    return session.execute(statement)


def export_csv(session: Session) -> str:
    """All flags with their case, one row per flag (UTF-8 with BOM so Excel reads Chinese)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for flag, case in _flag_rows(session):
        writer.writerow(
            [
                safe_cell(case.case_id),
                safe_cell(case.department or ""),
                safe_cell(case.doctor or ""),
                case.admit_date or "",
                case.discharge_date or "",
                case.drg,
                safe_cell(case.drg_name),
                case.weight,
                f"{case.total_cost:.2f}",
                f"{case.risk:.4f}",
                flag.rule_id,
                flag.category,
                flag.severity,
                safe_cell(flag.message),
                f"{flag.amount_yuan:.2f}",
                flag.status,
                safe_cell(flag.decided_by or ""),
                flag.decided_at.isoformat() if flag.decided_at else "",
                safe_cell(flag.decision_reason or ""),
            ]
        )
    return buffer.getvalue()


STAT_COLUMNS = ("cases", "flagged", "flags", "confirmed", "dismissed", "amount_yuan", "cmi")


def _evidence_text(evidence: Sequence[dict[str, Any]] | None) -> str:
    """One line per evidence item: ``quote`` (document / resource) and the rule's source."""
    keys = ("quote", "document", "resource", "source")
    lines = [" | ".join(f"{k}: {item[k]}" for k in keys if item.get(k)) for item in evidence or ()]
    return "\n".join(line for line in lines if line)


def export_xlsx(session: Session) -> bytes:
    """XLSX with three sheets: ``flags`` (one row per flag, with its evidence), ``by_department``
    and ``by_doctor`` (the same numbers as :func:`statistics`). Text cells are formula-safe."""

    def flag_rows() -> Any:
        for flag, case in _flag_rows(session):
            yield [
                case.case_id,
                case.department or "",
                case.doctor or "",
                case.admit_date.isoformat() if case.admit_date else "",
                case.discharge_date.isoformat() if case.discharge_date else "",
                case.drg,
                case.drg_name,
                case.weight,
                round(case.total_cost, 2),
                round(case.risk, 4),
                flag.rule_id,
                flag.category,
                flag.severity,
                flag.message,
                round(flag.amount_yuan, 2),
                flag.status,
                flag.decided_by or "",
                flag.decided_at.isoformat() if flag.decided_at else "",
                flag.decision_reason or "",
                _evidence_text(flag.evidence),
            ]

    def stat_rows(by: str) -> list[list[Any]]:
        return [[r.key, *(getattr(r, c) for c in STAT_COLUMNS)] for r in statistics(session, by)]

    return workbook_bytes(
        [
            Sheet("flags", [*EXPORT_COLUMNS, "evidence"], flag_rows()),
            Sheet("by_department", ["department", *STAT_COLUMNS], stat_rows("department")),
            Sheet("by_doctor", ["doctor", *STAT_COLUMNS], stat_rows("doctor")),
        ]
    )


DEMO_CASES = 300
DEMO_SEED = 11
DEMO_PREVALENCE = 0.08  # higher than real life (~1-5 %) so the demo queue has enough to review


def seed_insurance_demo(
    session: Session,
    knowledge: InsuranceKnowledge,
    *,
    count: int = DEMO_CASES,
    seed: int = DEMO_SEED,
) -> int:
    """Synthetic discharges with injected patterns, grouped, checked and ranked; once."""
    from medbrain.insurance.claims_generator import generate_claims

    if session.scalar(
        select(func.count()).select_from(InsuranceCase).where(InsuranceCase.demo == 1)
    ):
        return 0
    cases = generate_claims(count, seed, prevalence=DEMO_PREVALENCE)
    documents = []
    for generated in cases:
        doc = dict(generated.document)
        doc["case_id"] = f"DEMO-{doc['case_id']}"
        documents.append(doc)
    return len(store_batch(session, documents, knowledge, source="demo", demo=True))
