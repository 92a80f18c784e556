"""Load and validate the triage knowledge files, with hospital overrides merged by rule id.

The shipped files live in ``medbrain/knowledge/triage/``: ``levels.yaml`` (levels, zones,
maximum waits, citation sources, settings), ``vitals.yaml`` (objective criteria, paediatric
age bands, plausibility limits, NEWS2), ``complaints.yaml`` (complaint patterns in Chinese and
English), ``departments.yaml`` (《医疗机构诊疗科目名录》 codes and routing) and
``pathways.yaml`` (chest pain, stroke, trauma, sepsis). A hospital changes any of them with
one overrides file of the same shape keyed by file stem, e.g.::

    levels:
      levels:
        - {id: level.4, max_wait_minutes: 120, source: "本院急诊分诊制度 2026"}
    vitals:
      objective:
        - {id: obj.hr.l3, any: [{between: [50, 55]}, {between: [110, 150]}]}

Lists of mappings carrying ``id`` merge row by row (matching ids deep-merged, new ids
appended, ``enabled: false`` drops a row); other mappings deep-merge; scalars and other lists
are replaced. Every row is validated after merging, and a bad row fails naming file and id.

References
----------
STYLE.md habit 3 (knowledge is data with provenance; overrides are configuration).
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge
from medbrain.triage.news2 import band_points

FILES = ("levels", "vitals", "complaints", "departments", "pathways")
LANGS = ("zh", "en")
PATHWAYS = ("chest_pain", "stroke", "trauma", "sepsis")
CARES = ("emergency", "non_emergency", "self_care")
APPLIES = ("adult", "child", "all")
CONDITION_KEYS = ("lt", "le", "gt", "ge", "between")
WHEN_KEYS = ("age_ge", "age_lt", "age_months_lt", "sex", "pregnant")

Pattern = re.Pattern[str]


@dataclass(frozen=True, slots=True)
class LevelDef:
    level: int
    name: str
    title: Mapping[str, str]
    zone: str
    zone_name: Mapping[str, str]
    max_wait_minutes: int
    rule_id: str
    source: str


@dataclass(frozen=True, slots=True)
class DepartmentDef:
    code: str
    name_zh: str
    name_en: str
    female_only: bool


@dataclass(frozen=True, slots=True)
class ComplaintRule:
    """One complaint row, with its patterns compiled (Chinese and English together)."""

    id: str
    level: int
    patterns: Pattern
    also_any: Pattern | None
    unless: Pattern | None
    when: Mapping[str, Any]
    pathway: str | None
    red_flag: bool
    department: str | None
    care: str | None
    source: str
    section: str
    text: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TriageKnowledge:
    """Everything the triage engine needs, validated; other rows are plain mappings."""

    version: str
    sources: Mapping[str, Mapping[str, str]]
    levels: Mapping[int, LevelDef]
    settings: Mapping[str, Any]
    texts: Mapping[str, Mapping[str, str]]
    plausible: Mapping[str, tuple[float, float]]
    objective: tuple[Mapping[str, Any], ...]
    paediatric: Mapping[str, Any]
    news2: Mapping[str, Any]
    complaints: tuple[ComplaintRule, ...]
    departments: Mapping[str, DepartmentDef]
    routing: Mapping[str, Any]
    pathways: Mapping[str, Mapping[str, Any]]
    pathway_priority: tuple[str, ...]
    stroke_components: Mapping[str, Pattern]
    infection: Pattern
    negation_zh: Pattern
    negation_en: Pattern
    history_after: Pattern

    def cite(self, source: str, section: str, lang: str) -> str:
        """Short citation of a rule's source in ``lang`` (a sources key or literal text)."""
        entry = self.sources.get(source)
        text = (entry.get(lang) or entry["zh"]) if entry else source
        return f"{text}, {section}" if section else text


# --------------------------------------------------------------------------- merging


# --------------------------------------------------------------------------- reading


@lru_cache(maxsize=len(FILES))
def _shipped_text(stem: str) -> str:
    name = f"{stem}.yaml"
    try:
        return (
            resources.files("medbrain.knowledge")
            .joinpath("triage")
            .joinpath(name)
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise KnowledgeError(f"knowledge file triage/{name} is missing") from None


def _parse(stem: str, text: str) -> Any:
    try:
        data = yamlio.parse(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(
            f"knowledge file triage/{stem}.yaml is not valid YAML: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"triage/{stem}.yaml: top level must be a mapping")
    return data


def _read_overrides(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"triage overrides {path}: cannot read ({exc.strerror})") from None
    try:
        data = yamlio.parse(text) or {}
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"triage overrides {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"triage overrides {path}: top level must be a mapping")
    return data


# --------------------------------------------------------------------------- validation


def _texts(where: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) for k in LANGS):
        raise KnowledgeError(f"{where}: needs both zh and en strings")
    return {k: value[k] for k in LANGS}


def _require(where: str, row: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if row.get(key) in (None, ""):
            raise KnowledgeError(f"{where}: missing {key!r}")


def _level(where: str, value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2, 3, 4):
        raise KnowledgeError(f"{where}: level must be 1, 2, 3 or 4, got {value!r}")
    return int(value)


def _compile(where: str, patterns: Any, *, required: bool) -> Pattern | None:
    if patterns is None:
        if required:
            raise KnowledgeError(f"{where}: needs patterns with zh and/or en lists")
        return None
    if not isinstance(patterns, dict):
        raise KnowledgeError(f"{where}: patterns must map zh/en to lists of regexes")
    items: list[str] = []
    for lang in LANGS:
        values = patterns.get(lang) or []
        if not isinstance(values, list) or any(not isinstance(p, str) for p in values):
            raise KnowledgeError(f"{where}.{lang}: must be a list of regex strings")
        items.extend(values)
    if not items:
        if required:
            raise KnowledgeError(f"{where}: has no patterns")
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in items), re.IGNORECASE)
    except re.error as exc:
        raise KnowledgeError(f"{where}: invalid regex ({exc})") from None


def _complaint(where: str, row: Mapping[str, Any], departments: Mapping[str, Any]) -> ComplaintRule:
    _require(where, row, "id", "version", "source", "level")
    pathway = row.get("pathway")
    if pathway is not None and pathway not in PATHWAYS:
        raise KnowledgeError(f"{where}: unknown pathway {pathway!r}")
    care = row.get("care")
    if care is not None and care not in CARES:
        raise KnowledgeError(f"{where}: care must be one of {CARES}, got {care!r}")
    department = row.get("department")
    if department is not None and str(department) not in departments:
        raise KnowledgeError(f"{where}: unknown department code {department!r}")
    when = row.get("when") or {}
    if not isinstance(when, dict) or any(k not in WHEN_KEYS for k in when):
        raise KnowledgeError(f"{where}: when may only use {WHEN_KEYS}")
    patterns = _compile(f"{where}.patterns", row.get("patterns"), required=True)
    assert patterns is not None
    return ComplaintRule(
        id=str(row["id"]),
        level=_level(where, row["level"]),
        patterns=patterns,
        also_any=_compile(f"{where}.also_any", row.get("also_any"), required=False),
        unless=_compile(f"{where}.unless", row.get("unless"), required=False),
        when=dict(when),
        pathway=pathway,
        red_flag=bool(row.get("red_flag", False)),
        department=str(department) if department is not None else None,
        care=care,
        source=str(row["source"]),
        section=str(row.get("section", "")),
        text=_texts(f"{where}.text", row.get("text")),
    )


def _objective(where: str, row: Mapping[str, Any]) -> Mapping[str, Any]:
    _require(where, row, "id", "version", "source", "parameter", "level")
    _level(where, row["level"])
    _texts(f"{where}.text", row.get("text"))
    if row.get("applies", "all") not in APPLIES:
        raise KnowledgeError(f"{where}: applies must be one of {APPLIES}")
    if row["parameter"] == "bp":
        _require(where, row, "sbp_ge", "dbp_ge")
        return row
    if row["parameter"] == "consciousness":
        if not isinstance(row.get("equals"), list):
            raise KnowledgeError(f"{where}: consciousness rows need an equals list")
        return row
    conditions = row.get("any")
    if not isinstance(conditions, list) or not conditions:
        raise KnowledgeError(f"{where}: needs a non-empty 'any' list of conditions")
    for index, condition in enumerate(conditions):
        if not isinstance(condition, dict) or len(condition) != 1:
            raise KnowledgeError(f"{where}.any[{index}]: one of {CONDITION_KEYS} per condition")
        ((op, value),) = condition.items()
        if op not in CONDITION_KEYS:
            raise KnowledgeError(f"{where}.any[{index}]: unknown condition {op!r}")
        if op == "between" and (
            not isinstance(value, list) or len(value) != 2 or value[0] > value[1]
        ):
            raise KnowledgeError(f"{where}.any[{index}]: between needs [lo, hi] with lo ≤ hi")
        if op != "between" and not isinstance(value, int | float):
            raise KnowledgeError(f"{where}.any[{index}]: {op} needs a number")
    return row


def _words(where: str, node: Any) -> Pattern:
    compiled = _compile(where, node, required=True)
    assert compiled is not None
    return compiled


_NEWS2_SWEEP = {
    "rr": [float(v) for v in range(0, 121)],
    "spo2_scale1": [float(v) for v in range(0, 101)],
    "spo2_scale2": [float(v) for v in range(0, 101)],
    "sbp": [float(v) for v in range(0, 351)],
    "hr": [float(v) for v in range(0, 351)],
    "temp_c": [v / 10 for v in range(100, 461)],
}


def _check_news2(table: Mapping[str, Any]) -> None:
    """Every chart row must be well formed and cover every plausible value."""
    for key, values in _NEWS2_SWEEP.items():
        bands = table.get(key)
        where = f"triage/vitals.yaml: news2.{key}"
        if not isinstance(bands, list) or not bands:
            raise KnowledgeError(f"{where}: must be a list of [lo, hi, points] bands")
        for band in bands:
            if not isinstance(band, list) or len(band) not in (3, 4):
                raise KnowledgeError(f"{where}: band {band!r} must be [lo, hi, points(, air|o2)]")
        for oxygen in (False, True):
            for value in values:
                band_points(value, bands, oxygen)


def _check_bands(paediatric: Mapping[str, Any]) -> None:
    """Paediatric age bands must cover every month below ``max_age_years`` once."""
    bands = paediatric.get("bands") or []
    for index, band in enumerate(bands):
        where = f"triage/vitals.yaml: paediatric.bands[{index}] ({band.get('id')})"
        _require(where, band, "id", "source", "months", "hr", "rr", "sbp_low")
    limit = int(float(paediatric.get("max_age_years", 14)) * 12)
    for month in range(limit):
        hits = [b["id"] for b in bands if b["months"][0] <= month < b["months"][1]]
        if len(hits) != 1:
            raise KnowledgeError(
                f"triage/vitals.yaml: paediatric bands must cover month {month} once, got {hits}"
            )


def build_knowledge(data: Mapping[str, Any]) -> TriageKnowledge:
    """Validate merged file contents (``{stem: mapping}``) into :class:`TriageKnowledge`."""
    levels_file, vitals, complaints, departments_file, pathways_file = (
        data[stem] for stem in FILES
    )
    sources = {
        str(k): _texts(f"triage/levels.yaml: sources.{k}", v)
        for k, v in (levels_file.get("sources") or {}).items()
    }
    levels: dict[int, LevelDef] = {}
    for index, row in enumerate(levels_file.get("levels") or []):
        where = f"triage/levels.yaml: levels[{index}] ({row.get('id')})"
        _require(where, row, "id", "version", "source", "level", "name", "zone")
        level = _level(where, row["level"])
        wait = row.get("max_wait_minutes")
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
            raise KnowledgeError(f"{where}: max_wait_minutes must be a whole number ≥ 0")
        levels[level] = LevelDef(
            level=level,
            name=str(row["name"]),
            title=_texts(f"{where}.title", row.get("title")),
            zone=str(row["zone"]),
            zone_name=_texts(f"{where}.zone_name", row.get("zone_name")),
            max_wait_minutes=wait,
            rule_id=str(row["id"]),
            source=str(row["source"]),
        )
    if sorted(levels) != [1, 2, 3, 4]:
        raise KnowledgeError("triage/levels.yaml: levels 1, 2, 3 and 4 must each be defined once")
    texts = {
        str(k): _texts(f"triage/levels.yaml: texts.{k}", v)
        for k, v in (levels_file.get("texts") or {}).items()
    }

    plausible: dict[str, tuple[float, float]] = {}
    for key, pair in (vitals.get("plausible") or {}).items():
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] > pair[1]:
            raise KnowledgeError(f"triage/vitals.yaml: plausible.{key} must be [lo, hi]")
        plausible[str(key)] = (float(pair[0]), float(pair[1]))
    objective = tuple(
        _objective(f"triage/vitals.yaml: objective[{i}] ({row.get('id')})", row)
        for i, row in enumerate(vitals.get("objective") or [])
    )
    paediatric = vitals.get("paediatric") or {}
    news2 = vitals.get("news2") or {}
    _require("triage/vitals.yaml: news2", news2, "source", "rr", "spo2_scale1", "spo2_scale2")
    _check_news2(news2)
    _check_bands(paediatric)

    departments = {
        str(row["code"]): DepartmentDef(
            code=str(row["code"]),
            name_zh=str(row["name_zh"]),
            name_en=str(row["name_en"]),
            female_only=bool(row.get("female_only", False)),
        )
        for row in departments_file.get("departments") or []
    }
    routing = departments_file.get("routing") or {}
    for key in ("emergency", "default", "paediatric_medical", "paediatric_surgical", "pregnancy"):
        if str(routing.get(key)) not in departments:
            raise KnowledgeError(f"triage/departments.yaml: routing.{key} is not a known code")

    rules = tuple(
        _complaint(f"triage/complaints.yaml: rows[{i}] ({row.get('id')})", row, departments)
        for i, row in enumerate(complaints.get("rows") or [])
    )
    ids = [r.id for r in rules]
    if len(ids) != len(set(ids)):
        raise KnowledgeError("triage/complaints.yaml: duplicate row ids")

    pathways = {
        str(row["pathway"]): row for row in pathways_file.get("pathways") or [] if "pathway" in row
    }
    for name in PATHWAYS:
        if name not in pathways:
            raise KnowledgeError(f"triage/pathways.yaml: pathway {name!r} is missing")
        _texts(f"triage/pathways.yaml: {name}.action", pathways[name].get("action"))
    stroke = pathways["stroke"]
    components = {
        str(name): _words(f"triage/pathways.yaml: stroke.components.{name}", node)
        for name, node in (stroke.get("components") or {}).items()
    }
    negation = pathways_file.get("negation") or {}
    neg_zh = "|".join(re.escape(w) for w in negation.get("zh") or ["无"])
    neg_en = "|".join(re.escape(w) for w in negation.get("en") or ["no"])
    return TriageKnowledge(
        version=str(levels_file.get("version", "")),
        sources=sources,
        levels=levels,
        settings=dict(levels_file.get("settings") or {}),
        texts=texts,
        plausible=plausible,
        objective=objective,
        paediatric=paediatric,
        news2=news2,
        complaints=rules,
        departments=departments,
        routing=routing,
        pathways=pathways,
        pathway_priority=tuple(pathways_file.get("priority") or PATHWAYS),
        stroke_components=components,
        infection=_words(
            "triage/pathways.yaml: sepsis.infection", pathways["sepsis"].get("infection")
        ),
        negation_zh=re.compile(f"(?:{neg_zh})(?:明显|任何)?$"),
        negation_en=re.compile(rf"\b(?:{neg_en})\b(?:\s+[\w'-]+){{0,1}}\s*$", re.IGNORECASE),
        history_after=re.compile(
            "\\s*(?:"
            + "|".join(re.escape(w) for w in (negation.get("history_after") or {}).get("zh", []))
            + "|"
            + "|".join(
                rf"\b{re.escape(w)}\b" for w in (negation.get("history_after") or {}).get("en", [])
            )
            + ")",
            re.IGNORECASE,
        ),
    )


def load_triage_knowledge(
    overrides_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TriageKnowledge:
    """Shipped triage knowledge with a hospital's overrides (file and/or mapping) merged in.

    Raises
    ------
    KnowledgeError
        A file is missing or malformed, or a merged row is invalid (named by file and id).
    """
    data: dict[str, Any] = {stem: _parse(stem, _shipped_text(stem)) for stem in FILES}
    layers: list[Mapping[str, Any]] = []
    if overrides_path is not None:
        layers.append(_read_overrides(overrides_path))
    if overrides is not None:
        layers.append(overrides)
    for layer in layers:
        for stem, value in layer.items():
            if stem not in FILES:
                raise KnowledgeError(
                    f"triage overrides: unknown section {stem!r} (expected one of {FILES})"
                )
            data[stem] = deep_merge(data[stem], value)
    return build_knowledge(data)


@lru_cache(maxsize=1)
def default_knowledge() -> TriageKnowledge:
    """The shipped knowledge without overrides, built once per process."""
    return load_triage_knowledge(None)
