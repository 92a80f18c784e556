"""Load ``knowledge/ops/indicators.yaml`` (with a hospital's overrides) into typed objects.

The loader validates at load time and names the key that is wrong (STYLE.md habit 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge

FILE = "indicators.yaml"
DIRECTIONS = ("higher", "lower", "band", "none")
#: Columns of the department-day table an indicator may sum.
FIELDS = (
    "beds",
    "outpatient_visits",
    "emergency_visits",
    "admissions",
    "discharges",
    "occupied_beds",
    "discharged_patient_days",
    "surgeries",
    "surgeries_level4",
    "drg_weight_sum",
    "total_cost",
    "drug_cost",
    "consumable_cost",
    "antibiotic_ddd",
    "critical_values",
    "critical_values_on_time",
    "records_graded",
    "records_grade_a",
)


@dataclass(frozen=True, slots=True)
class Ratio:
    """``scale × Σ numerator / Σ denominator`` (a ``-field`` is subtracted)."""

    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    scale: float
    decimals: int


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    id: str
    name_zh: str
    name_en: str
    unit_zh: str
    unit_en: str
    ratio: Ratio
    direction: str
    target_low: float | None
    target_high: float | None
    definition_zh: str
    definition_en: str
    source: str
    note: str
    secondary: tuple[str, str, str, Ratio] | None  # (id, name_zh, name_en, ratio)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def unit(self, lang: str) -> str:
        return self.unit_en if lang == "en" else self.unit_zh

    def definition(self, lang: str) -> str:
        return self.definition_en if lang == "en" else self.definition_zh

    def status(self, value: float | None) -> str:
        """``ok``, ``warning`` (outside target) or ``none`` (no target / no value)."""
        if value is None or self.direction == "none":
            return "none"
        if self.target_low is not None and value < self.target_low:
            return "warning"
        if self.target_high is not None and value > self.target_high:
            return "warning"
        return "ok"


@dataclass(frozen=True, slots=True)
class BedThresholds:
    over_pct: float
    under_pct: float
    window_days: int
    source: str


@dataclass(frozen=True, slots=True)
class ConsumableSettings:
    horizons_days: tuple[int, ...]
    service_level: float
    review_period_days: int
    history_days: int
    source: str


@dataclass(frozen=True, slots=True)
class OpsKnowledge:
    version: str
    indicators: tuple[IndicatorDef, ...]
    beds: BedThresholds
    consumables: ConsumableSettings

    def indicator(self, key: str) -> IndicatorDef | None:
        return next((i for i in self.indicators if i.id == key), None)


def _pair(raw: Any, where: str) -> tuple[str, str]:
    if isinstance(raw, str):
        return raw, raw
    if not isinstance(raw, dict) or not isinstance(raw.get("zh"), str):
        raise KnowledgeError(f"{FILE}: {where} must be a string or {{zh, en}}")
    return str(raw["zh"]), str(raw.get("en", raw["zh"]))


def _ratio(raw: Mapping[str, Any], where: str) -> Ratio:
    num = raw.get("numerator", [])
    den = raw.get("denominator", [])
    for name in (*num, *den):
        if not isinstance(name, str) or name.lstrip("-") not in FIELDS:
            raise KnowledgeError(f"{FILE}: {where}: unknown field {name!r}; one of {FIELDS}")
    try:
        scale = float(raw.get("scale", 1))
        decimals = int(raw.get("decimals", 0))
    except (TypeError, ValueError):
        raise KnowledgeError(f"{FILE}: {where}: scale/decimals must be numbers") from None
    return Ratio(tuple(num), tuple(den), scale, decimals)


def _number(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise KnowledgeError(f"{FILE}: {where} must be a number, got {raw!r}")
    return float(raw)


def parse_ops_knowledge(doc: Mapping[str, Any]) -> OpsKnowledge:
    rows = doc.get("indicators")
    if not isinstance(rows, list) or not rows:
        raise KnowledgeError(f"{FILE}: indicators must be a non-empty list")
    indicators = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"indicators[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise KnowledgeError(f"{FILE}: {where}.id is missing")
        key = row["id"]
        if key in seen:
            raise KnowledgeError(f"{FILE}: {where}: id {key!r} is defined twice")
        seen.add(key)
        if not row.get("source"):
            raise KnowledgeError(f"{FILE}: {key}: every indicator needs a source")
        direction = row.get("direction", "none")
        if direction not in DIRECTIONS:
            raise KnowledgeError(f"{FILE}: {key}.direction must be one of {DIRECTIONS}")
        name = _pair(row.get("name"), f"{key}.name")
        unit = _pair(row.get("unit", ""), f"{key}.unit")
        definition = _pair(row.get("definition", ""), f"{key}.definition")
        secondary = None
        if isinstance(row.get("secondary"), dict):
            sec = row["secondary"]
            sname = _pair(sec.get("name"), f"{key}.secondary.name")
            secondary = (str(sec.get("id")), sname[0], sname[1], _ratio(sec, f"{key}.secondary"))
        indicators.append(
            IndicatorDef(
                id=key,
                name_zh=name[0],
                name_en=name[1],
                unit_zh=unit[0],
                unit_en=unit[1],
                ratio=_ratio(row, key),
                direction=direction,
                target_low=_number(row.get("target_low"), f"{key}.target_low"),
                target_high=_number(row.get("target_high"), f"{key}.target_high"),
                definition_zh=definition[0],
                definition_en=definition[1],
                source=str(row["source"]),
                note=str(row.get("note", "")),
                secondary=secondary,
            )
        )
    beds = doc.get("bed_capacity") or {}
    cons = doc.get("consumables") or {}
    horizons = cons.get("expiry_horizons_days", [90, 30, 7])
    if not isinstance(horizons, list) or not all(
        isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in horizons
    ):
        raise KnowledgeError(f"{FILE}: consumables.expiry_horizons_days must be positive integers")
    service = _number(cons.get("service_level", 0.95), "consumables.service_level")
    if service is None or not 0.5 <= service < 1:
        raise KnowledgeError(f"{FILE}: consumables.service_level must be in [0.5, 1)")
    over = _number(beds.get("over_occupancy_pct", 100), "bed_capacity.over_occupancy_pct")
    under = _number(beds.get("under_occupancy_pct", 75), "bed_capacity.under_occupancy_pct")
    if over is None or under is None or under >= over:
        raise KnowledgeError(
            f"{FILE}: bed_capacity: under_occupancy_pct must be < over_occupancy_pct"
        )
    return OpsKnowledge(
        version=str(doc.get("version", "")),
        indicators=tuple(indicators),
        beds=BedThresholds(
            over_pct=over,
            under_pct=under,
            window_days=int(beds.get("window_days", 30)),
            source=str(beds.get("source", "")),
        ),
        consumables=ConsumableSettings(
            horizons_days=tuple(sorted(set(horizons), reverse=True)),
            service_level=service,
            review_period_days=int(cons.get("review_period_days", 7)),
            history_days=int(cons.get("history_days", 90)),
            source=str(cons.get("source", "")),
        ),
    )


def default_document() -> dict[str, Any]:
    text = resources.files("medbrain.knowledge").joinpath("ops", FILE).read_text(encoding="utf-8")
    doc = yamlio.parse(text)
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{FILE}: top level must be a mapping")
    return doc


def load_ops_knowledge(overrides: Mapping[str, Any] | None = None) -> OpsKnowledge:
    """The shipped knowledge, with a hospital's overrides merged in (rows by ``id``)."""
    doc = default_document()
    if overrides:
        doc = deep_merge(doc, dict(overrides))
    return parse_ops_knowledge(doc)
