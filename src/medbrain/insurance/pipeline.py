"""Group and check many discharges: the one entry point the API, CLI, seed and benchmark use."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medbrain.core.findings import Finding
from medbrain.insurance.compliance import (
    ComplianceKnowledge,
    Stay,
    check_case,
    compile_rules,
    risk_score,
)
from medbrain.insurance.drg import DrgResult, group
from medbrain.insurance.frontpage import FrontPage, parse_frontpage
from medbrain.insurance.knowledge import DrgTables, load_drg_tables, load_rules


@dataclass(frozen=True, slots=True)
class CaseAnalysis:
    frontpage: FrontPage
    drg: DrgResult
    findings: tuple[Finding, ...]
    rule_risk: float

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "case_id": self.frontpage.case_id,
            "drg": self.drg.to_dict(lang),
            "findings": [f.to_dict() for f in self.findings],
            "rule_risk": self.rule_risk,
        }


@dataclass(frozen=True)
class InsuranceKnowledge:
    tables: DrgTables
    rules: ComplianceKnowledge


@lru_cache(maxsize=1)
def _default_knowledge() -> InsuranceKnowledge:
    return InsuranceKnowledge(tables=load_drg_tables(), rules=compile_rules(load_rules()))


def insurance_knowledge(overrides: Mapping[str, Any] | None = None) -> InsuranceKnowledge:
    """The shipped tables and rules; ``overrides`` (a parsed YAML mapping) merged into the rules."""
    if not overrides:
        return _default_knowledge()
    return InsuranceKnowledge(tables=load_drg_tables(), rules=compile_rules(load_rules(overrides)))


def analyse(
    frontpages: Sequence[FrontPage],
    knowledge: InsuranceKnowledge,
    *,
    lang: str = "zh",
    history: Iterable[FrontPage] = (),
) -> list[CaseAnalysis]:
    """Group every front page, then check each one with its patient's other stays as history.

    ``history``: earlier stays (not re-reported) that readmission checks should also see.
    """
    tables = knowledge.tables
    grouped = [(fp, group(fp, tables, lang=lang)) for fp in frontpages]
    by_patient: dict[str, list[Stay]] = defaultdict(list)
    for fp, drg in grouped:
        if fp.patient_id:
            by_patient[fp.patient_id].append(Stay(fp, drg))
    for fp in history:
        if fp.patient_id:
            by_patient[fp.patient_id].append(Stay(fp, group(fp, tables, lang=lang)))
    out: list[CaseAnalysis] = []
    for fp, drg in grouped:
        stays = by_patient.get(fp.patient_id or "", []) if fp.patient_id else []
        findings = check_case(fp, drg, knowledge.rules, tables, history=stays, lang=lang)
        out.append(CaseAnalysis(fp, drg, tuple(findings), risk_score(findings)))
    return out


def analyse_documents(
    documents: Sequence[Any],
    knowledge: InsuranceKnowledge,
    *,
    lang: str = "zh",
    source: str = "batch",
) -> list[CaseAnalysis]:
    """Parse (``InputError`` names ``source[i].field``) then :func:`analyse`."""
    pages = [parse_frontpage(doc, f"{source}[{i}]") for i, doc in enumerate(documents)]
    return analyse(pages, knowledge, lang=lang)
