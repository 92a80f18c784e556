"""Load and validate the alert knowledge files, with hospital overrides merged in by id.

The shipped files live in ``medbrain/knowledge/alerts/``: ``analytes.yaml`` (LOINC codes,
units, plausibility limits), ``critical_values.yaml`` (危急值 table) and ``rules.yaml`` (scores,
patterns, drug-lab checks, trends). A hospital changes any of them with one overrides file of
the same shape, keyed by file stem::

    critical_values:
      rows:
        - {id: cv.potassium, ge: 6.0, source: "本院检验科危急值表 2026 版"}
    rules:
      settings: {suppression_window_hours: 12}

Lists of mappings that carry ``id`` are merged row by row (matching ids deep-merged, new ids
appended, ``enabled: false`` drops a row); other mappings are deep-merged; scalars and other
lists are replaced.

References
----------
STYLE.md habit 3 (knowledge is data with provenance; overrides are configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medbrain.alerts.escalation import escalation_policy
from medbrain.alerts.tracking import tracking_policy
from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge

FILES = ("analytes", "critical_values", "rules")
LOINC_SYSTEM = "http://loinc.org"
LANGS = ("zh", "en")


@dataclass(frozen=True, slots=True)
class UnitRule:
    """How one accepted unit converts to the analyte's canonical unit."""

    factor: float
    offset: float = 0.0

    def to_canonical(self, value: float) -> float:
        return (value + self.offset) * self.factor


@dataclass(frozen=True, slots=True)
class Analyte:
    """One measurable quantity the engine understands (a lab test or a vital sign)."""

    id: str
    label: str
    zh: str
    en: str
    loinc: tuple[str, ...]
    local_codes: tuple[tuple[str, str], ...]  # (system, code) of a hospital's own lab codes
    unit: str
    units: Mapping[str, UnitRule]
    plausible: tuple[float, float] | None
    unit_required: bool
    kind: str  # "quantity" | "coded"
    source: str

    def name(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True, slots=True)
class AlertKnowledge:
    """Everything the alert engine needs, validated; rows are plain mappings from YAML."""

    analytes: Mapping[str, Analyte]
    by_code: Mapping[str, Analyte]  # "system|code" → analyte (LOINC and local lab codes)
    critical: Mapping[str, Any]
    rules: Mapping[str, Any]
    versions: Mapping[str, str]

    @property
    def settings(self) -> Mapping[str, Any]:
        settings: Mapping[str, Any] = self.rules["settings"]
        return settings


def _read_shipped(stem: str) -> Any:
    name = f"{stem}.yaml"
    try:
        text = (
            resources.files("medbrain.knowledge")
            .joinpath("alerts")
            .joinpath(name)
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise KnowledgeError(f"knowledge file alerts/{name} is missing") from None
    try:
        return yamlio.parse(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"knowledge file alerts/{name} is not valid YAML: {exc}") from None


def _check_texts(where: str, value: Any) -> None:
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) for k in LANGS):
        raise KnowledgeError(f"{where}: needs both zh and en strings")


def _walk_texts(where: str, node: Any) -> None:
    """Every mapping that has a zh or en key must have both (messages are bilingual)."""
    if isinstance(node, dict):
        if "zh" in node or "en" in node:
            _check_texts(where, node)
            if ("reason_zh" in node) != ("reason_en" in node):
                raise KnowledgeError(f"{where}: needs both reason_zh and reason_en")
        for key, value in node.items():
            _walk_texts(f"{where}.{key}", value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk_texts(f"{where}[{index}]", value)


def _unit_rule(where: str, raw: Any) -> UnitRule:
    if isinstance(raw, int | float):
        return UnitRule(float(raw))
    if isinstance(raw, dict) and isinstance(raw.get("factor"), int | float):
        return UnitRule(float(raw["factor"]), float(raw.get("offset", 0.0)))
    raise KnowledgeError(f"{where}: unit conversion must be a number or {{factor, offset}}")


def _analytes(data: Any) -> dict[str, Analyte]:
    rows = data.get("analytes") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise KnowledgeError("alerts/analytes.yaml: 'analytes' must be a list")
    out: dict[str, Analyte] = {}
    for index, row in enumerate(rows):
        where = f"alerts/analytes.yaml: analytes[{index}]"
        try:
            kind = str(row.get("kind", "quantity"))
            units = {
                str(u): _unit_rule(f"{where}.units.{u}", f)
                for u, f in (row.get("units") or {}).items()
            }
            plausible = row.get("plausible")
            analyte = Analyte(
                id=str(row["id"]),
                label=str(row["label"]),
                zh=str(row["zh"]),
                en=str(row["en"]),
                loinc=tuple(str(code) for code in row["loinc"]),
                local_codes=tuple(
                    (str(c["system"]), str(c["code"])) for c in row.get("local_codes") or []
                ),
                unit=str(row.get("unit", "")),
                units=units,
                plausible=(float(plausible[0]), float(plausible[1])) if plausible else None,
                unit_required=bool(row.get("unit_required", True)),
                kind=kind,
                source=str(row["source"]),
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise KnowledgeError(f"{where}: missing or malformed field ({exc})") from None
        if kind == "quantity" and analyte.unit not in units:
            raise KnowledgeError(f"{where}: canonical unit {analyte.unit!r} is not in units")
        out[analyte.id] = analyte
    return out


def _check_critical(data: Any, analytes: Mapping[str, Analyte]) -> None:
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise KnowledgeError("alerts/critical_values.yaml: 'rows' must be a list")
    defaults = data.get("defaults") or {}
    for key in ("message", "suggestion"):
        _check_texts(f"alerts/critical_values.yaml: defaults.{key}", defaults.get(key))
    for index, row in enumerate(rows):
        where = f"alerts/critical_values.yaml: rows[{index}]"
        for key in ("id", "analyte", "source", "version"):
            if not row.get(key):
                raise KnowledgeError(f"{where}: needs {key}")
        if row["analyte"] not in analytes:
            raise KnowledgeError(f"{where}: unknown analyte {row['analyte']!r}")
        limits = [k for k in ("lt", "le", "gt", "ge") if k in row]
        if not limits and not row.get("positive"):
            raise KnowledgeError(f"{where}: needs at least one of lt, le, gt, ge or positive")
        for key in limits:
            if not isinstance(row[key], int | float):
                raise KnowledgeError(f"{where}: {key} must be a number")
    _walk_texts("alerts/critical_values.yaml", data)
    escalation_policy(data)
    tracking_policy(data)


def _check_rules(data: Any, analytes: Mapping[str, Analyte]) -> None:
    if not isinstance(data, dict):
        raise KnowledgeError("alerts/rules.yaml: top level must be a mapping")
    for section in ("settings", "news2", "qsofa", "sirs", "sepsis", "aki", "electrolytes"):
        if section not in data:
            raise KnowledgeError(f"alerts/rules.yaml: section {section!r} is missing")
    for section in ("news2", "qsofa", "sirs", "aki", "egfr", "free_water"):
        if not data.get(section, {}).get("source"):
            raise KnowledgeError(f"alerts/rules.yaml: {section}.source is missing")
    for section in ("sepsis", "electrolytes", "drug_lab", "trends", "patterns"):
        for index, row in enumerate((data.get(section) or {}).get("rows") or []):
            where = f"alerts/rules.yaml: {section}.rows[{index}]"
            if not row.get("id") or not row.get("source") or not row.get("version"):
                raise KnowledgeError(f"{where}: needs id, version and source")
            analyte = row.get("analyte")
            if analyte is not None and analyte not in analytes:
                raise KnowledgeError(f"{where}: unknown analyte {analyte!r}")
            for key in ("message", "suggestion"):
                _check_texts(f"{where}.{key}", row.get(key))
    _walk_texts("alerts/rules.yaml", data)


def load_alert_knowledge(overrides_path: Path | None = None) -> AlertKnowledge:
    """Load the shipped alert knowledge and merge a hospital overrides file into it.

    Parameters
    ----------
    overrides_path
        Optional YAML file ``{analytes: ..., critical_values: ..., rules: ...}`` (any subset).

    Raises
    ------
    KnowledgeError
        A shipped file or the overrides file is missing, malformed or fails validation; the
        message names the file and the key.
    """
    data = {stem: _read_shipped(stem) for stem in FILES}
    if overrides_path is not None:
        try:
            override = yamlio.parse(Path(overrides_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise KnowledgeError(f"{overrides_path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise KnowledgeError(f"{overrides_path}: not valid YAML: {exc}") from None
        if override is not None and not isinstance(override, dict):
            raise KnowledgeError(f"{overrides_path}: top level must be a mapping")
        for stem, value in (override or {}).items():
            if stem not in FILES:
                raise KnowledgeError(
                    f"{overrides_path}: unknown section {stem!r} (expected one of {FILES})"
                )
            try:
                data[stem] = deep_merge(data[stem], value)
            except KnowledgeError as exc:
                raise KnowledgeError(f"{overrides_path}: {stem}: {exc}") from None
    analytes = _analytes(data["analytes"])
    _check_critical(data["critical_values"], analytes)
    _check_rules(data["rules"], analytes)
    by_code: dict[str, Analyte] = {}
    for analyte in analytes.values():
        keys = [f"{LOINC_SYSTEM}|{code}" for code in analyte.loinc]
        keys += [f"{system}|{code}" for system, code in analyte.local_codes]
        for key in keys:
            if key in by_code:
                raise KnowledgeError(
                    f"alerts/analytes.yaml: code {key} belongs to both "
                    f"{by_code[key].id} and {analyte.id}"
                )
            by_code[key] = analyte
    return AlertKnowledge(
        analytes=analytes,
        by_code=by_code,
        critical=data["critical_values"],
        rules=data["rules"],
        versions={stem: str((data[stem] or {}).get("version", "")) for stem in FILES},
    )
