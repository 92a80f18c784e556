"""Emergency pre-triage engine (pure): level Ⅰ–Ⅳ, zone, wait, care, department, pathway.

Use::

    from medbrain.triage import assess_document, load_triage_knowledge
    result = assess_document({"complaint": "胸痛2小时,伴大汗"}, load_triage_knowledge())

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604.
Royal College of Physicians. National Early Warning Score (NEWS) 2, 2017.
"""

from __future__ import annotations

from typing import Any

from medbrain.triage.decision import apply_decision
from medbrain.triage.engine import assess
from medbrain.triage.knowledge import TriageKnowledge, default_knowledge, load_triage_knowledge
from medbrain.triage.model import Department, TriageResult, Visit, Vitals, parse_visit
from medbrain.triage.news2 import News2, score_news2
from medbrain.triage.timeline import StepTime, pathway_timeline

__all__ = [
    "Department",
    "News2",
    "StepTime",
    "TriageKnowledge",
    "TriageResult",
    "Visit",
    "Vitals",
    "apply_decision",
    "assess",
    "assess_document",
    "default_knowledge",
    "load_triage_knowledge",
    "parse_visit",
    "pathway_timeline",
    "score_news2",
]


def assess_document(
    document: Any,
    knowledge: TriageKnowledge,
    lang: str = "zh",
    source: str = "visit",
    review_threshold: float | None = None,
) -> TriageResult:
    """Validate a DESIGN.md §3 visit document and triage it (raises ``InputError``)."""
    visit = parse_visit(document, knowledge.plausible, source=source)
    return assess(visit, knowledge, lang=lang, review_threshold=review_threshold)
