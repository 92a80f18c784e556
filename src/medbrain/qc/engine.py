"""Run the rule library over one record and score it (DESIGN.md §3 ``medbrain qc check``).

``check_record`` is pure: record, knowledge, stage, language and review threshold in; a
:class:`QCReport` out. Findings whose confidence is below the threshold go to
``needs_review`` (a human queue) and are not deducted; the others are defects, each with
``document``, ``section`` and ``deduction``. The score is ``base`` minus the deductions (each
rule capped by its ``max_deduction``), never below 0; the grade follows the scoring table,
and any veto defect (单项否决) forces the veto grade.

References
----------
国家卫生健康委办公厅《病案管理质量控制指标(2021年版)》(国卫办医函〔2021〕28号): 甲级病历率;
省级《住院病历质量评价标准》(百分制, 甲 ≥ 90 / 乙 ≥ 75 / 丙, 单项否决) — the thresholds are
data in ``knowledge/qc/rules.yaml`` (``scoring``) and a hospital overrides them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from medbrain.core.errors import InputError
from medbrain.core.findings import Finding
from medbrain.qc.kinds import CheckContext, read_events
from medbrain.qc.model import Record
from medbrain.qc.registry import STAGES, QCKnowledge, RuleRegistry


@dataclass(frozen=True, slots=True)
class QCReport:
    """The result of one check: score, grade, veto, defects, the review queue."""

    score: float
    grade: str
    veto: bool
    defects: tuple[Finding, ...]
    needs_review: tuple[Finding, ...]
    seconds: float
    stage: str
    rules_version: str
    rules_applied: int
    skipped: tuple[dict[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    scoring_profile: str = ""  # the selected scoring profile's id ("" for rules.yaml's table)

    def to_dict(self) -> dict[str, Any]:
        categories: dict[str, int] = {}
        for defect in self.defects:
            categories[defect.category] = categories.get(defect.category, 0) + 1
        return {
            "score": self.score,
            "grade": self.grade,
            "veto": self.veto,
            "defects": [d.to_dict() for d in self.defects],
            "needs_review": [d.to_dict() for d in self.needs_review],
            "seconds": round(self.seconds, 4),
            "stage": self.stage,
            "rules_version": self.rules_version,
            "rules_applied": self.rules_applied,
            "categories": dict(sorted(categories.items())),
            "skipped": list(self.skipped),
            **({"scoring_profile": self.scoring_profile} if self.scoring_profile else {}),
        }


def _sort_key(finding: Finding) -> tuple[Any, ...]:
    span = finding.extra.get("span") or [-1, -1]
    return (
        -finding.severity.rank,
        finding.rule_id,
        str(finding.extra.get("document", "")),
        span[0],
        str(finding.extra.get("section", "")),
        finding.message,
    )


def check_record(
    record: Record,
    knowledge: QCKnowledge | RuleRegistry,
    *,
    stage: str = "final",
    lang: str = "zh",
    review_threshold: float = 0.7,
    now: datetime | None = None,
) -> QCReport:
    """Check one inpatient record at ``stage`` (``realtime`` while the patient is in
    hospital, ``final`` for a discharged record).

    ``now`` is the moment of a real-time check (default: the latest time in the record);
    deadlines that have not yet passed are not defects.
    """
    started = time.perf_counter()
    if stage not in STAGES:
        raise InputError("--stage", "stage", f"must be realtime or final, got {stage!r}")
    if not 0.0 <= review_threshold <= 1.0:
        raise InputError("settings", "review_threshold", "must lie in [0, 1]")
    registry = knowledge if isinstance(knowledge, RuleRegistry) else RuleRegistry.of(knowledge)
    kb = registry.knowledge
    ctx = CheckContext(kb, stage, "en" if lang == "en" else "zh", read_events(record, kb, now))
    rules = registry.for_stage(stage)
    findings: list[Finding] = []
    for rule in rules:
        findings.extend(rule.check(record, ctx))
    findings.sort(key=_sort_key)
    defects: list[Finding] = []
    review: list[Finding] = []
    spent: dict[str, float] = {}
    caps = registry.caps
    scoring = kb.scoring
    section_spent: dict[str, float] = {}
    forced: list[str] = []
    for finding in findings:
        if finding.confidence < review_threshold:
            extra = dict(finding.extra, deduction=0.0)
            review.append(replace(finding, needs_review=True, extra=extra))
            continue
        wanted = float(finding.extra.get("deduction", 0.0))
        item = scoring.items.get(finding.rule_id) if scoring.profile else None
        extra = dict(finding.extra)
        if item is not None:
            if item.deduction is not None:
                wanted = item.deduction
            if item.veto_grade is not None:
                extra["veto"] = True
                extra["veto_grade"] = item.veto_grade
            extra["scoring_source"] = item.source
        cap = caps.get(finding.rule_id)
        used = spent.get(finding.rule_id, 0.0)
        taken = wanted if cap is None else max(0.0, min(wanted, cap - used))
        section = scoring.section_of(finding.rule_id) if scoring.sections else None
        if section is not None and not (item is not None and item.veto_grade):
            # 扣完为止: ordinary deductions within a section stop at its points
            left = section.points - section_spent.get(section.section_id, 0.0)
            taken = max(0.0, min(taken, left))
            section_spent[section.section_id] = section_spent.get(section.section_id, 0.0) + taken
            extra["scoring_section"] = section.section_id
        if scoring.profile and extra.get("veto"):
            forced.append(str(extra.get("veto_grade") or scoring.veto_grade))
        spent[finding.rule_id] = used + taken
        extra["deduction"] = taken
        defects.append(replace(finding, extra=extra))
    total = sum(spent.values())
    score = round(max(0.0, scoring.base - total), 1)
    veto = any(bool(d.extra.get("veto")) for d in defects)
    if scoring.profile:
        grade = scoring.worst([scoring.band(score), *forced])
    else:
        grade = scoring.grade_for(score, veto)
    return QCReport(
        score=score,
        grade=grade,
        veto=veto,
        defects=tuple(defects),
        needs_review=tuple(review),
        seconds=time.perf_counter() - started,
        stage=stage,
        rules_version=kb.version,
        rules_applied=len(rules),
        skipped=tuple(s.to_dict() for s in record.skipped),
        scoring_profile=scoring.profile,
    )
