"""Mined rules: patterns in the QC officer's confirmed manual findings, proposed as rules.

A QC officer who reads a record by hand (人工质控) records what is wrong in a structured way:
the note kind (入院记录 …), the section (主诉, 既往史 …), and the pattern — a section that is
missing (``missing_section``), a phrase that should be there and is not (``missing_phrase``,
e.g. 个人史 without 吸烟), or a phrase that should not be there (``bad_phrase``, e.g. "同上"
in a progress note). :func:`mine` groups the confirmed findings by (pattern, note kind,
section, element) — frequent-pattern counting over one structured item per finding — and
for every group seen in at least ``min_support`` distinct stays:

1. drafts a condition in the QC rule language (:mod:`medbrain.qc.dsl`) that detects the
   pattern (:func:`draft_condition`);
2. evaluates it on every stay available (the history), giving ``fires`` (stays where it
   holds), ``hits`` (of those, stays the officer found the pattern in), ``confidence`` =
   hits / fires (association-rule confidence of "condition ⇒ confirmed defect") and
   ``coverage`` = hits / support;
3. drops it when an existing rule already flags the same document and section in most of
   the supporting stays (``covered_by``), or when confidence is below ``min_confidence``.

The result is a list of :class:`Candidate` with example stays; the QC officer approves one
(it becomes a versioned hospital rule, tested on sample records before it is switched on) or
rejects it. Pure: no database, no clock.

References
----------
Agrawal R., Srikant R. "Fast algorithms for mining association rules", VLDB 1994 (support and
confidence of a rule); Issue 7 §6 ("patterns in confirmed manual findings are proposed as
candidate rules for approval").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medbrain.core.errors import InputError
from medbrain.core.findings import Severity
from medbrain.qc.engine import check_record
from medbrain.qc.facts import FactContext, compile_condition
from medbrain.qc.kinds import CheckContext, ExpressionRule, _home_document, read_events
from medbrain.qc.model import Record
from medbrain.qc.parse import fold
from medbrain.qc.registry import CATEGORIES, QCKnowledge, RuleRow

PATTERNS = ("missing_section", "missing_phrase", "bad_phrase")
NOTE_KINDS = (
    "admission",
    "first_course",
    "daily",
    "senior_round",
    "post_op",
    "rescue",
    "surgery",
    "discharge",
    "consult",
    "death",
    "consent",
)
MAX_ELEMENT_CHARS = 40
_FORBIDDEN = set("\"'“”‘’\n\r\t\\")


@dataclass(frozen=True, slots=True)
class ManualFinding:
    """One confirmed manual finding: the stay it is in and what the officer saw."""

    stay: Hashable
    note_kind: str
    section: str
    pattern: str
    element: str
    category: str = "content"


def validate_finding(finding: ManualFinding, lang: str = "zh") -> ManualFinding:
    """Normalise and check a manual finding (InputError naming the field)."""
    kind = finding.note_kind.strip()
    if kind not in NOTE_KINDS:
        raise InputError("manual", "note_kind", f"must be one of {', '.join(NOTE_KINDS)}")
    if finding.pattern not in PATTERNS:
        raise InputError("manual", "pattern", f"must be one of {', '.join(PATTERNS)}")
    if finding.category not in CATEGORIES:
        raise InputError("manual", "category", f"must be one of {', '.join(CATEGORIES)}")
    section = " ".join(fold(finding.section).split())
    element = " ".join(fold(finding.element).split())
    if finding.pattern == "missing_section":
        element = element or section
        section = element
    for name, value in (("section", section), ("element", element)):
        if len(value) > MAX_ELEMENT_CHARS or any(ch in _FORBIDDEN for ch in value):
            raise InputError(
                "manual", name, f"at most {MAX_ELEMENT_CHARS} characters, without quotes"
            )
    if not element:
        raise InputError("manual", "element", "required")
    if finding.pattern != "missing_section" and not section:
        raise InputError("manual", "section", "required for a phrase pattern")
    return ManualFinding(finding.stay, kind, section, finding.pattern, element, finding.category)


def pattern_key(finding: ManualFinding) -> str:
    return "|".join((finding.pattern, finding.note_kind, finding.section, finding.element))


def draft_condition(note_kind: str, section: str, pattern: str, element: str) -> str:
    """The QC-language condition that detects the pattern (validated by the parser)."""
    if pattern == "missing_section":
        text = f'has("{note_kind}") and section("{note_kind}", "{element}") == ""'
    elif pattern == "missing_phrase":
        text = (
            f'has("{note_kind}") and not contains(section("{note_kind}", "{section}"), "{element}")'
        )
    elif pattern == "bad_phrase":
        text = f'contains(section("{note_kind}", "{section}"), "{element}")'
    else:
        raise InputError("manual", "pattern", f"must be one of {', '.join(PATTERNS)}")
    compile_condition(text)  # never propose what the rule editor would refuse
    return text


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed rule with its evidence from the history."""

    key: str
    note_kind: str
    section: str
    pattern: str
    element: str
    category: str
    condition: str
    support: int
    fires: int
    hits: int
    records: int
    confidence: float
    coverage: float
    examples: tuple[dict[str, Any], ...] = ()
    covered_by: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "note_kind": self.note_kind,
            "section": self.section,
            "pattern": self.pattern,
            "element": self.element,
            "category": self.category,
            "condition": self.condition,
            "support": self.support,
            "fires": self.fires,
            "hits": self.hits,
            "records": self.records,
            "confidence": self.confidence,
            "coverage": self.coverage,
            "examples": list(self.examples),
            "covered_by": list(self.covered_by),
        }


def _probe(condition: str, category: str) -> ExpressionRule:
    row = RuleRow(
        rule_id="qc.mined.probe",
        kind="expression",
        category=category,
        stages=("realtime", "final"),
        document_types=(),
        severity=Severity.WARNING,
        deduction=0.0,
        veto=False,
        confidence=1.0,
        message={"zh": "", "en": ""},
        suggestion={"zh": "", "en": ""},
        params={"when": condition},
        source="mined",
    )
    return ExpressionRule(row)


def _fires(rule: ExpressionRule, record: Record, ctx: CheckContext) -> tuple[bool, str]:
    """Whether the condition holds, and the first span it read (the example's quote)."""
    admit = ctx.events.admit.when if ctx.events.admit else None
    fctx = FactContext(record, admit)
    held = bool(rule.expression.evaluate(rule.facts(record, ctx), fctx))
    quote = fctx.trace.spans[0][3][:80] if fctx.trace.spans else ""
    return held, quote


def mine(
    findings: Sequence[ManualFinding],
    records: Mapping[Hashable, Record],
    knowledge: QCKnowledge,
    *,
    min_support: int = 2,
    min_confidence: float = 0.6,
    covered_share: float = 0.5,
    max_examples: int = 5,
) -> list[Candidate]:
    """Candidate rules from confirmed manual findings, most supported first.

    ``records`` holds every stay available to evaluate the drafted conditions on (it should
    include the stays of ``findings``; stays missing from it count for support only)."""
    if min_support < 1 or not 0.0 <= min_confidence <= 1.0:
        raise InputError("mine", "min_support", "min_support ≥ 1, min_confidence in [0, 1]")
    groups: dict[str, list[ManualFinding]] = defaultdict(list)
    for raw in findings:
        finding = validate_finding(raw)
        groups[pattern_key(finding)].append(finding)
    contexts = {
        stay: CheckContext(knowledge, "final", "zh", read_events(record, knowledge, None))
        for stay, record in records.items()
    }
    reports: dict[Hashable, Any] = {}
    out: list[Candidate] = []
    for key, items in groups.items():
        first = items[0]
        stays = list(dict.fromkeys(f.stay for f in items))
        if len(stays) < min_support:
            continue
        condition = draft_condition(first.note_kind, first.section, first.pattern, first.element)
        rule = _probe(condition, first.category)
        fired: dict[Hashable, str] = {}
        for stay, record in records.items():
            held, quote = _fires(rule, record, contexts[stay])
            if held:
                fired[stay] = quote
        supported = set(stays)
        hits = [s for s in fired if s in supported]
        confidence = round(len(hits) / len(fired), 4) if fired else 0.0
        coverage = round(len(hits) / len(stays), 4)
        # an existing rule that already flags this document and section in most of the
        # supporting stays covers the pattern: nothing new to propose
        flagged: dict[str, int] = defaultdict(int)
        home = _home_document(first.note_kind)
        wanted = {first.section, first.element}
        checked = [s for s in stays if s in records]
        for stay in checked:
            if stay not in reports:
                reports[stay] = check_record(records[stay], knowledge, stage="final")
            report = reports[stay]
            seen: set[str] = set()
            for defect in (*report.defects, *report.needs_review):
                same_doc = defect.extra.get("document") == home
                same_part = (
                    str(defect.extra.get("section", "")) in wanted
                    or str(defect.extra.get("missing", "")) in wanted
                )
                if same_doc and same_part and defect.rule_id not in seen:
                    seen.add(defect.rule_id)
                    flagged[defect.rule_id] += 1
        covered = tuple(
            sorted(r for r, n in flagged.items() if checked and n / len(checked) > covered_share)
        )
        if covered or confidence < min_confidence:
            continue
        examples = tuple(
            {"stay": stay, "quote": fired.get(stay, ""), "fires": stay in fired}
            for stay in stays[:max_examples]
        )
        out.append(
            Candidate(
                key=key,
                note_kind=first.note_kind,
                section=first.section,
                pattern=first.pattern,
                element=first.element,
                category=first.category,
                condition=condition,
                support=len(stays),
                fires=len(fired),
                hits=len(hits),
                records=len(records),
                confidence=confidence,
                coverage=coverage,
                examples=examples,
                covered_by=covered,
            )
        )
    out.sort(key=lambda c: (-c.support, -c.confidence, c.key))
    return out


def rule_texts(
    candidate_kind: str, section: str, pattern: str, element: str, names: Any
) -> dict[str, dict[str, str]]:
    """zh/en message and suggestion of the rule a proposal becomes; ``names(key, lang)``
    gives display names (``QCKnowledge.name``)."""
    zh_doc, en_doc = names(candidate_kind, "zh"), names(candidate_kind, "en")
    if pattern == "missing_section":
        message = {"zh": f"{zh_doc}缺少“{element}”", "en": f"The {en_doc} lacks “{element}”"}
        suggestion = {"zh": f"补充“{element}”", "en": f"Add “{element}”"}
    elif pattern == "missing_phrase":
        message = {
            "zh": f"{zh_doc}“{section}”未记录“{element}”",
            "en": f"The {section} of the {en_doc} does not record “{element}”",
        }
        suggestion = {"zh": f"在“{section}”中记录“{element}”", "en": f"Record “{element}”"}
    else:
        message = {
            "zh": f"{zh_doc}“{section}”中出现“{element}”",
            "en": f"“{element}” appears in the {section} of the {en_doc}",
        }
        suggestion = {"zh": f"删除或改写“{element}”", "en": f"Remove or rewrite “{element}”"}
    return {"message": message, "suggestion": suggestion}
