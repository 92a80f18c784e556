"""Review one prescription: parse, run every check, apply the policy, give a verdict.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第十五条 (适宜性审核) and 第十八条
(不适宜处方退回开方医师); DESIGN.md §2 (Finding) and §3 (``medbrain rx review``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from medbrain.core.findings import Finding, Severity, sort_findings
from medbrain.rx.checks import CHECKS, make_context
from medbrain.rx.knowledge import RxKnowledge
from medbrain.rx.model import Prescription
from medbrain.rx.parse import parse_prescription

VERDICTS = ("pass", "warn", "block")


@dataclass(frozen=True, slots=True)
class ReviewResult:
    verdict: str
    findings: tuple[Finding, ...]

    def to_dict(self, seconds: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
        }
        if seconds is not None:
            out["seconds"] = round(seconds, 4)
        return out


def _disabled(rule_id: str, disabled: tuple[str, ...]) -> bool:
    return any(
        rule_id == d or (rule_id.startswith(d.rstrip("*")) and d.endswith("*")) for d in disabled
    )


def verdict_of(findings: list[Finding], kb: RxKnowledge) -> str:
    """``block`` if any finding reaches ``block_at``; ``warn`` if any reaches ``warn_at``."""
    policy = kb.policy
    top = max((f.severity.rank for f in findings), default=-1)
    if top >= policy.block_at.rank:
        return "block"
    if top >= policy.warn_at.rank:
        return "warn"
    return "pass"


def review_prescription(
    rx: Prescription, kb: RxKnowledge, lang: str = "zh", review_threshold: float | None = None
) -> ReviewResult:
    """Run every check on a parsed prescription and apply the hospital's policy.

    ``review_threshold`` (default: the policy's) marks findings below that confidence for
    human review.
    """
    ctx = make_context(rx, kb, lang)
    policy = kb.policy
    threshold = policy.review_threshold if review_threshold is None else review_threshold
    findings: list[Finding] = []
    for _name, check in CHECKS:
        findings.extend(check(ctx))
    # An item already refused for the patient's age needs no "no paediatric dose" note.
    age_refused = {i for f in findings if f.category == "age" for i in f.extra.get("items", [])}
    findings = [
        f
        for f in findings
        if not (
            f.rule_id == "rx.dose.no-pediatric-data" and set(f.extra.get("items", [])) & age_refused
        )
    ]
    out: list[Finding] = []
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for f in findings:
        if _disabled(f.rule_id, policy.disabled_rules):
            continue
        key = (f.rule_id, tuple(f.extra.get("items", [])))
        if key in seen:
            continue
        seen.add(key)
        severity: Severity = policy.severity_overrides.get(f.rule_id, f.severity)
        out.append(replace(f, severity=severity, needs_review=f.confidence < threshold))
    ordered = sort_findings(out)
    return ReviewResult(verdict=verdict_of(ordered, kb), findings=tuple(ordered))


def review(
    data: Any,
    kb: RxKnowledge,
    lang: str = "zh",
    source: str = "prescription",
    review_threshold: float | None = None,
) -> ReviewResult:
    """Validate a prescription document (dict) and review it.

    Raises
    ------
    InputError
        The document has an impossible or unreadable value (the field is named).
    """
    return review_prescription(parse_prescription(data, kb, source), kb, lang, review_threshold)
