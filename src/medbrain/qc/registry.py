"""The QC rule library: rows from ``knowledge/qc/rules.yaml`` turned into rule objects.

A hospital enables, disables or re-weights rules with an overrides file of the same shape,
deep-merged by ``rule_id``::

    scoring:
      grades: [{grade: 甲, min_score: 85}, {grade: 乙, min_score: 70}, {grade: 丙, min_score: 0}]
    rules:
      - {rule_id: qc.time.progress-interval, params: {interval_days: {stable: 2}}}
      - {rule_id: qc.content.chief-complaint-length, enabled: false}
      - {rule_id: qc.local.xyz, kind: required_section, ...}   # a new row is appended

Rows are validated when loaded: an unknown kind or category, a message without both zh and
en, a row without ``source`` fails with :class:`KnowledgeError` naming the file and rule.

References
----------
STYLE.md §4 (registry is configuration) and §6 (rules are rows); DESIGN.md §3 (categories).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.core.findings import Severity
from medbrain.knowledge.overrides import deep_merge
from medbrain.qc.parse import Vocabulary, build_vocabulary, read_knowledge_yaml

CATEGORIES = (
    "missing_document",
    "missing_section",
    "timeliness",
    "consistency",
    "copy_paste",
    "content",
    "signature",
    "diagnosis",
    "medication",
    "lab_followup",
    "consent",
)
STAGES = ("realtime", "final")


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One validated row of the rule library."""

    rule_id: str
    kind: str
    category: str
    stages: tuple[str, ...]
    document_types: tuple[str, ...]
    severity: Severity
    deduction: float
    veto: bool
    confidence: float
    message: Mapping[str, str]
    suggestion: Mapping[str, str]
    params: Mapping[str, Any]
    source: str
    max_deduction: float | None = None
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "kind": self.kind,
            "category": self.category,
            "stages": list(self.stages),
            "document_types": list(self.document_types),
            "severity": self.severity.value,
            "deduction": self.deduction,
            "max_deduction": self.max_deduction,
            "veto": self.veto,
            "confidence": self.confidence,
            "message": dict(self.message),
            "suggestion": dict(self.suggestion),
            "params": dict(self.params),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Grade:
    grade: str
    min_score: float


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One row of a scoring profile for one rule: the table's deduction, and for a 单项否决
    item the grade it forces."""

    rule_id: str
    deduction: float | None
    veto_grade: str | None
    source: str


@dataclass(frozen=True, slots=True)
class ScoreSection:
    """A section of a scoring table: its points cap the ordinary deductions of its rules."""

    section_id: str
    name: Mapping[str, str]
    points: float
    rules: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Scoring:
    """100-point scoring table: grades by minimum score, and the grade a veto forces.

    With a scoring profile (``knowledge/qc/scoring_profiles.yaml``) selected, ``items``
    replace rule deductions and name the grade each 单项否决 item forces, and ``sections``
    cap the ordinary deductions of their rules."""

    base: float
    grades: tuple[Grade, ...]
    veto_grade: str
    source: str
    profile: str = ""
    name: Mapping[str, str] = field(default_factory=dict)
    items: Mapping[str, ScoreItem] = field(default_factory=dict)
    sections: tuple[ScoreSection, ...] = ()
    needs_review: bool = False
    note: str = ""

    def band(self, score: float) -> str:
        for grade in sorted(self.grades, key=lambda g: -g.min_score):
            if score >= grade.min_score:
                return grade.grade
        return self.grades[-1].grade if self.grades else self.veto_grade

    def grade_for(self, score: float, veto: bool) -> str:
        if veto:
            return self.veto_grade
        return self.band(score)

    def worst(self, grades: list[str]) -> str:
        """The worst of ``grades`` in this table's order (lower minimum score is worse)."""
        order = {g.grade: g.min_score for g in self.grades}
        return min(grades, key=lambda g: order.get(g, float("-inf")))

    def section_of(self, rule_id: str) -> ScoreSection | None:
        for section in self.sections:
            if rule_id in section.rules:
                return section
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "name": dict(self.name),
            "base": self.base,
            "grades": [{"grade": g.grade, "min_score": g.min_score} for g in self.grades],
            "veto_grade": self.veto_grade,
            "source": self.source,
            "needs_review": self.needs_review,
            "note": self.note,
            "sections": [
                {
                    "id": s.section_id,
                    "name": dict(s.name),
                    "points": s.points,
                    "rules": list(s.rules),
                    "source": s.source,
                }
                for s in self.sections
            ],
            "items": [
                {
                    "rule_id": i.rule_id,
                    "deduction": i.deduction,
                    "veto_grade": i.veto_grade,
                    "source": i.source,
                }
                for i in self.items.values()
            ],
        }


@dataclass(frozen=True, slots=True)
class QCKnowledge:
    """Everything the QC engine needs: rule rows, scoring, display names, parser vocabulary."""

    rows: tuple[RuleRow, ...]
    scoring: Scoring
    names: Mapping[str, Mapping[str, str]]
    vocabulary: Vocabulary
    version: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def name(self, key: str, lang: str) -> str:
        """Display name of a note kind, event, status or ``section.<title>`` in ``lang``."""
        entry = self.names.get(key)
        if entry is None:
            return key.removeprefix("section.")
        return entry["en" if lang == "en" else "zh"]


def _texts(where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) for k in ("zh", "en")):
        raise KnowledgeError(f"{where}: needs both zh and en strings")
    return {"zh": value["zh"], "en": value["en"]}


def _row(where: str, raw: Any, kinds: frozenset[str], version: str) -> RuleRow:
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: each rule must be a mapping")
    rid = raw.get("rule_id")
    if not isinstance(rid, str) or not rid:
        raise KnowledgeError(f"{where}: rule_id missing")
    where = f"{where} {rid}"
    kind = raw.get("kind")
    if kind not in kinds:
        raise KnowledgeError(f"{where}: unknown kind {kind!r} (known: {', '.join(sorted(kinds))})")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise KnowledgeError(f"{where}: category {category!r} is not one of DESIGN.md §3")
    stages = tuple(raw.get("stages") or STAGES)
    if any(s not in STAGES for s in stages):
        raise KnowledgeError(f"{where}: stages must be among {STAGES}")
    try:
        severity = Severity(raw.get("severity", "warning"))
    except ValueError:
        raise KnowledgeError(f"{where}: severity must be info, warning or critical") from None
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise KnowledgeError(f"{where}: every rule needs a source")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise KnowledgeError(f"{where}: params must be a mapping")
    try:
        deduction = float(raw.get("deduction", 0))
        confidence = float(raw.get("confidence", 1.0))
        cap = raw.get("max_deduction")
        max_deduction = None if cap is None else float(cap)
    except (TypeError, ValueError):
        raise KnowledgeError(
            f"{where}: deduction, max_deduction and confidence are numbers"
        ) from None
    if deduction < 0 or not 0.0 <= confidence <= 1.0:
        raise KnowledgeError(f"{where}: deduction must be ≥ 0 and confidence in [0, 1]")
    return RuleRow(
        rule_id=rid,
        kind=str(kind),
        category=str(category),
        stages=stages,
        document_types=tuple(raw.get("document_types") or ()),
        severity=severity,
        deduction=deduction,
        veto=bool(raw.get("veto", False)),
        confidence=confidence,
        message=_texts(f"{where}: message", raw.get("message")),
        suggestion=_texts(f"{where}: suggestion", raw.get("suggestion")),
        params=params,
        source=source,
        max_deduction=max_deduction,
        version=str(raw.get("version", version)),
    )


PROFILES_FILE = "scoring_profiles.yaml"


def scoring_profiles() -> dict[str, Mapping[str, Any]]:
    """The shipped scoring profiles by id (``knowledge/qc/scoring_profiles.yaml``)."""
    data = read_knowledge_yaml(PROFILES_FILE)
    rows = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise KnowledgeError(f"qc/{PROFILES_FILE}: profiles must be a list")
    out: dict[str, Mapping[str, Any]] = {}
    for index, row in enumerate(rows):
        pid = row.get("id") if isinstance(row, dict) else None
        if not isinstance(pid, str) or not pid or pid in out:
            raise KnowledgeError(f"qc/{PROFILES_FILE} profiles[{index}]: missing or duplicate id")
        out[pid] = row
    return out


def _profile_parts(
    raw: Mapping[str, Any], known_rules: frozenset[str]
) -> tuple[dict[str, ScoreItem], tuple[ScoreSection, ...]]:
    where = f"qc/{PROFILES_FILE} {raw.get('id')}"
    items: dict[str, ScoreItem] = {}
    grades = {str(g.get("grade")) for g in raw.get("grades") or () if isinstance(g, dict)}
    for row in raw.get("items") or ():
        rid = str(row.get("rule_id", ""))
        source = row.get("source")
        if rid not in known_rules:
            raise KnowledgeError(f"{where}: item names unknown rule {rid!r}")
        if not isinstance(source, str) or not source.strip():
            raise KnowledgeError(f"{where}: item {rid} needs a source")
        veto = row.get("veto_grade")
        if veto is not None and str(veto) not in grades:
            raise KnowledgeError(f"{where}: item {rid} veto_grade {veto!r} is not a grade")
        deduction = row.get("deduction")
        items[rid] = ScoreItem(
            rid,
            None if deduction is None else float(deduction),
            None if veto is None else str(veto),
            source,
        )
    sections: list[ScoreSection] = []
    for row in raw.get("sections") or ():
        rules = tuple(str(r) for r in row.get("rules") or ())
        unknown = [r for r in rules if r not in known_rules]
        if unknown:
            raise KnowledgeError(f"{where}: section {row.get('id')} names unknown {unknown}")
        if not isinstance(row.get("source"), str) or not row["source"].strip():
            raise KnowledgeError(f"{where}: section {row.get('id')} needs a source")
        sections.append(
            ScoreSection(
                str(row["id"]),
                _texts(f"{where} section {row.get('id')} name", row.get("name")),
                float(row["points"]),
                rules,
                str(row["source"]),
            )
        )
    return items, tuple(sections)


def _scoring(raw: Any, known_rules: frozenset[str] = frozenset(), hospital: Any = None) -> Scoring:
    """The scoring table: ``raw`` is rules.yaml's ``scoring`` merged with the hospital's
    (``hospital``); with ``profile`` the profile replaces the shipped table and the
    hospital's own keys next to ``profile`` replace the profile's."""
    profile: Mapping[str, Any] = {}
    if isinstance(raw, dict) and raw.get("profile"):
        pid = str(raw["profile"])
        profiles = scoring_profiles()
        if pid not in profiles:
            raise KnowledgeError(
                f"qc scoring: unknown profile {pid!r} (known: {', '.join(sorted(profiles))})"
            )
        profile = profiles[pid]
        own = hospital if isinstance(hospital, dict) else {}
        raw = {**raw, **{k: v for k, v in profile.items() if k != "id"}, **own}
    try:
        grades = tuple(Grade(str(g["grade"]), float(g["min_score"])) for g in raw["grades"])
        scoring = Scoring(
            float(raw.get("base", 100)), grades, str(raw["veto_grade"]), str(raw["source"])
        )
    except (KeyError, TypeError, ValueError):
        raise KnowledgeError(
            "qc/rules.yaml: scoring needs base, grades [{grade, min_score}], veto_grade, source"
        ) from None
    if not profile:
        return scoring
    try:
        items, sections = _profile_parts(profile, known_rules)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KnowledgeError(
            f"qc/{PROFILES_FILE} {profile.get('id')}: malformed ({exc!r})"
        ) from None
    return replace(
        scoring,
        profile=str(profile["id"]),
        name=_texts(f"qc/{PROFILES_FILE} {profile['id']} name", profile.get("name")),
        items=items,
        sections=sections,
        needs_review=bool(profile.get("needs_review", False)),
        note=str(profile.get("note", "")),
    )


def _read_overrides(path: Path) -> Mapping[str, Any]:
    try:
        data = yamlio.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeError(f"{path}: overrides file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: top level must be a mapping")
    return data


def load_qc_knowledge(
    overrides: Path | Mapping[str, Any] | None = None,
) -> QCKnowledge:
    """Load the shipped rule library and vocabulary, with hospital overrides merged in.

    ``overrides`` is a YAML path or an already-read mapping with optional top-level keys
    ``rules``/``scoring``/``names`` (merged into ``rules.yaml``) and ``sections`` /
    ``note_titles`` / ``time_labels`` / ``signature_labels`` (merged into ``sections.yaml``).
    """
    from medbrain.qc.kinds import KINDS

    rules_data = read_knowledge_yaml("rules.yaml")
    vocab_data = read_knowledge_yaml("sections.yaml")
    if not isinstance(rules_data, dict) or not isinstance(vocab_data, dict):
        raise KnowledgeError("qc/rules.yaml and qc/sections.yaml must be mappings")
    shipped_ids = {
        str(r.get("rule_id")) for r in rules_data.get("rules") or () if isinstance(r, dict)
    }
    extra: Mapping[str, Any] = {}
    if overrides is not None:
        extra = _read_overrides(overrides) if isinstance(overrides, Path) else overrides
        vocab_keys = (
            "sections",
            "note_titles",
            "default_note_kind",
            "time_labels",
            "signature_labels",
        )
        rules_data = deep_merge(
            rules_data, {k: v for k, v in extra.items() if k not in vocab_keys}, "rule_id"
        )
        vocab_data = deep_merge(
            vocab_data, {k: v for k, v in extra.items() if k in vocab_keys}, "rule_id"
        )
    version = str(rules_data.get("version", ""))
    raw_rows = rules_data.get("rules")
    if not isinstance(raw_rows, list):
        raise KnowledgeError("qc/rules.yaml: rules must be a list")
    kinds = frozenset(KINDS)
    rows: list[RuleRow] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rows):
        if isinstance(raw, dict) and raw.get("enabled", True) is False:
            continue
        row = _row(f"qc/rules.yaml rules[{index}]", raw, kinds, version)
        if row.rule_id in seen:
            raise KnowledgeError(f"qc/rules.yaml: duplicate rule_id {row.rule_id}")
        seen.add(row.rule_id)
        KINDS[row.kind].validate(row)
        rows.append(row)
    names_raw = rules_data.get("names") or {}
    names = {str(k): _texts(f"qc/rules.yaml names.{k}", v) for k, v in names_raw.items()}
    return QCKnowledge(
        rows=tuple(rows),
        scoring=_scoring(
            rules_data.get("scoring"),
            # a profile may name a rule the hospital switched off (it then never fires)
            frozenset(
                shipped_ids | {str(r.get("rule_id")) for r in raw_rows if isinstance(r, dict)}
            ),
            extra.get("scoring"),
        ),
        names=names,
        vocabulary=build_vocabulary(vocab_data),
        version=version,
        extra=extra,
    )


_REGISTRY_CACHE = 16
_REGISTRIES_LOCK = threading.Lock()
# id(knowledge) → (knowledge, registry); the knowledge is held so its id is never reused
_REGISTRIES: OrderedDict[int, tuple[QCKnowledge, RuleRegistry]] = OrderedDict()


class RuleRegistry:
    """Instantiates one rule object per enabled row, and filters them by stage.

    References
    ----------
    STYLE.md §4: presidio's ``RecognizerRegistry`` (rules loaded from configuration, filtered
    by language/entity; here by stage and document type).
    """

    def __init__(self, knowledge: QCKnowledge) -> None:
        from medbrain.qc.kinds import KINDS

        self.knowledge = knowledge
        self.rules = tuple(KINDS[row.kind](row) for row in knowledge.rows)
        self._by_stage = {
            stage: tuple(rule for rule in self.rules if stage in rule.row.stages)
            for stage in STAGES
        }
        self.caps = {rule.row.rule_id: rule.row.max_deduction for rule in self.rules}

    def for_stage(self, stage: str) -> tuple[Any, ...]:
        return self._by_stage.get(stage, ())

    @classmethod
    def of(cls, knowledge: QCKnowledge) -> RuleRegistry:
        """The registry of ``knowledge``, built once per knowledge object (rule objects,
        compiled conditions and regexes are reused by every later check)."""
        key = id(knowledge)
        with _REGISTRIES_LOCK:
            hit = _REGISTRIES.get(key)
            if hit is not None and hit[0] is knowledge:
                _REGISTRIES.move_to_end(key)
                return hit[1]
        registry = cls(knowledge)
        with _REGISTRIES_LOCK:
            _REGISTRIES[key] = (knowledge, registry)
            while len(_REGISTRIES) > _REGISTRY_CACHE:
                _REGISTRIES.popitem(last=False)
        return registry

    def __len__(self) -> int:
        return len(self.rules)
