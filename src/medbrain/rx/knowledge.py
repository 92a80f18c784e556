"""Prescription-review knowledge: load, validate, merge hospital overrides, cache.

The knowledge lives in ``medbrain/knowledge/rx/*.yaml``, one file per check class, every row
with a ``source``. :func:`load_rx_knowledge` reads the files once (cached per override path),
deep-merges a hospital's override file by row ``id`` and validates everything at load time:
a malformed row raises :class:`~medbrain.core.errors.KnowledgeError` naming the file and key.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第十五条 (审核内容);
《处方管理办法》(卫生部令第53号, 2007); 《抗菌药物临床应用管理办法》(卫生部令第84号, 2012).
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.core.findings import Severity
from medbrain.knowledge.overrides import deep_merge

FILES = (
    "vocab",
    "classes",
    "drugs",
    "duplication",
    "interactions",
    "allergy_classes",
    "renal",
    "hepatic",
    "pregnancy",
    "lactation",
    "age",
    "contraindications",
    "antimicrobial",
    "incompatibility",
    "policy",
    "messages",
)
#: Which key of each file holds rows merged by ``id`` (others are deep-merged mappings).
ROW_LISTS: dict[str, tuple[str, ...]] = {
    "drugs": ("drugs",),
    "duplication": ("rules",),
    "interactions": ("interactions",),
    "allergy_classes": ("allergens", "cross_reactivity"),
    "renal": ("rules",),
    "hepatic": ("rules",),
    "pregnancy": ("rules",),
    "lactation": ("rules",),
    "age": ("rules",),
    "contraindications": ("rules",),
    "incompatibility": ("pairs", "vehicles", "alone"),
    "policy": ("supply_exceptions",),
}
UNITS = ("mg", "ug", "IU", "ml", "piece")
LEVEL_SEVERITY = {
    "contraindicated": Severity.CRITICAL,
    "avoid": Severity.WARNING,
    "caution": Severity.INFO,
}
GRADES = ("非限制", "限制", "特殊")


def normalize_text(text: str) -> str:
    """Full-width → half-width (NFKC), lower case, no spaces or middle dots."""
    out = unicodedata.normalize("NFKC", text).lower()
    for ch in (" ", "\t", "·", "・", "\u3000"):
        out = out.replace(ch, "")
    return out


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class DoseRule:
    """Dose limits of one drug by one route, in the drug's unit."""

    single_max: float | None = None
    daily_max: float | None = None
    weekly_max: float | None = None
    per_day: tuple[float, float] | None = None
    mg_kg_dose_max: float | None = None
    mg_kg_daily_max: float | None = None
    peds_mg_kg_day: tuple[float, float] | None = None
    peds_mg_kg_dose_max: float | None = None
    peds_daily_max: float | None = None
    frequencies: tuple[str, ...] = ()

    @property
    def weight_based_peds(self) -> bool:
        return self.peds_mg_kg_day is not None or self.peds_mg_kg_dose_max is not None


@dataclass(frozen=True, slots=True)
class Drug:
    """One dictionary drug (or combination product)."""

    id: str
    zh: str
    en: str
    source: str
    atc: str | None = None
    unit: str = "mg"
    piece: str | None = None
    names: tuple[str, ...] = ()
    classes: frozenset[str] = frozenset()
    forms: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    per_ml: Mapping[str, float] = field(default_factory=dict)
    routes: tuple[str, ...] = ()
    dose: Mapping[str, DoseRule] = field(default_factory=dict)
    max_days: int | None = None
    chronic: bool = False
    components: Mapping[str, float] = field(default_factory=dict)
    indications: tuple[str, ...] = ()
    iu_per_unit: float | None = None
    piece_g: float | None = None  # grams per piece (granules dosed in g or in 袋)
    no_iv_push: bool = False  # concentrated electrolytes: infusion only, never IV push
    tags: frozenset[str] = frozenset()

    def name(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True, slots=True)
class Rule:
    """A generic rule row: targets (drug ids / ``class:x``), severity, source, parameters."""

    id: str
    targets: frozenset[str]
    source: str
    severity: Severity = Severity.WARNING
    params: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, tags: frozenset[str]) -> bool:
        return not self.targets.isdisjoint(tags)


@dataclass(frozen=True, slots=True)
class Interaction:
    id: str
    a: frozenset[str]
    b: frozenset[str]
    severity: Severity
    effect: Mapping[str, str]
    management: Mapping[str, str]
    source: str
    when_drug: str | None = None
    when_daily_gt: float | None = None
    route: str | None = None
    no_group_severity: Severity | None = None
    unless: frozenset[str] = frozenset()  # not raised when another item matches (e.g. a PPI)
    # Reported as info (monitoring advice) when every listed lab is known and below its bound
    # and, if given, CrCl is known and at least this (e.g. guideline-directed RAAS + MRA).
    info_when_labs_below: Mapping[str, float] = field(default_factory=dict)
    info_when_crcl_at_least: float | None = None


@dataclass(frozen=True, slots=True)
class CrossReactivity:
    id: str
    from_: frozenset[str]
    to: frozenset[str]
    same_r1: Severity
    different_r1: Severity
    different_r1_severe: Severity
    message: Mapping[str, str]
    advice_same: Mapping[str, str]
    advice_different: Mapping[str, str]
    source: str


@dataclass(frozen=True, slots=True)
class Allergen:
    id: str
    terms: tuple[str, ...]
    classes: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class Policy:
    block_at: Severity
    warn_at: Severity
    review_threshold: float
    pediatric_below_years: float
    adult_weight_kg_min: float
    alt_uln_u_l: float
    supply_days: Mapping[str, int | None]
    quantity_oversupply_factor: float
    disabled_rules: tuple[str, ...]
    severity_overrides: Mapping[str, Severity]
    pregnancy_terms: tuple[str, ...]
    lactation_terms: tuple[str, ...]
    source: str
    supply_exceptions: tuple[Rule, ...] = ()
    # Weight-based adult limits (mg/kg) tolerate this fraction for rounding to whole
    # tablets, syringes or vials (policy.yaml `weight_rounding_pct`).
    weight_rounding: float = 0.0


@dataclass(frozen=True, slots=True)
class Vocab:
    mass_units: Mapping[str, float]
    iu_units: Mapping[str, float]
    volume_units: Mapping[str, float]
    per_kg_units: frozenset[str]
    count_units: Mapping[str, tuple[str, ...]]
    routes: Mapping[str, str]
    frequencies: Mapping[str, float | None]
    form_words: tuple[tuple[str, str], ...]
    form_routes: Mapping[str, tuple[str, ...]]
    source: str
    times_of_day: frozenset[str] = frozenset()
    push_routes: frozenset[str] = frozenset()  # spellings of an IV push (bolus), not a drip
    # Form words of eye/ear/nose products (vocab.yaml `local_forms`): such a name never
    # resolves to a drug that cannot be given by the form's route.
    local_form_words: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Antimicrobial:
    grades: Mapping[str, Mapping[str, str]]  # drug id → route (or "*") → grade
    grade_rank: Mapping[str, int]
    prescriber_levels: Mapping[str, str]
    infection_terms: tuple[str, ...]
    non_infection_terms: tuple[str, ...]
    source: str
    prophylaxis_terms: tuple[str, ...] = ()
    prophylaxis_max_days: float = 1.0
    prophylaxis_source: str = ""

    def grade(self, drug_id: str, route: str | None) -> str | None:
        by_route = self.grades.get(drug_id)
        if not by_route:
            return None
        if route and route in by_route:
            return by_route[route]
        if "*" in by_route:
            return by_route["*"]
        # Unlisted route: the most restrictive grade given for the drug.
        return max(by_route.values(), key=lambda g: self.grade_rank.get(g, 0))


@dataclass(frozen=True, slots=True)
class RxKnowledge:
    """Everything the review engine needs, validated and indexed."""

    version: str
    drugs: Mapping[str, Drug]
    classes: Mapping[str, Mapping[str, str]]
    names: Mapping[str, str]  # normalised name → drug id
    duplication: tuple[Rule, ...]
    interactions: tuple[Interaction, ...]
    allergens: tuple[Allergen, ...]
    allergy_severe_terms: tuple[str, ...]
    allergy_none_terms: frozenset[str]
    drug_allergy_classes: frozenset[str]
    r1_group: Mapping[str, str]
    cross_reactivity: tuple[CrossReactivity, ...]
    allergy_source: str
    renal: tuple[Rule, ...]
    hepatic: tuple[Rule, ...]
    pregnancy: tuple[Rule, ...]
    lactation: tuple[Rule, ...]
    age: tuple[Rule, ...]
    contraindications: tuple[Rule, ...]
    antimicrobial: Antimicrobial
    incompat_pairs: tuple[Interaction, ...]
    incompat_vehicles: tuple[Rule, ...]
    incompat_alone: tuple[Rule, ...]
    policy: Policy
    vocab: Vocab
    messages: Mapping[str, Mapping[str, str]]
    interaction_index: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    rule_index: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    #: Diagnoses that make Child–Pugh computable from labs (chronic liver disease).
    liver_disease_terms: tuple[str, ...] = ()

    def relevant_rules(self, family: str, drug_ids: Iterable[str]) -> set[str]:
        """Ids of ``family`` rules (renal, age, ...) that target any of these drugs."""
        index = self.rule_index.get(family, {})
        out: set[str] = set()
        for drug_id in drug_ids:
            out.update(index.get(drug_id, ()))
        return out

    def class_name(self, class_id: str, lang: str) -> str:
        entry = self.classes.get(class_id, {})
        return entry.get("en" if lang == "en" else "zh", class_id)

    def msg(self, key: str, lang: str, **params: object) -> str:
        entry = self.messages.get(key)
        if entry is None:
            raise KnowledgeError(f"rx/messages.yaml: unknown message key {key!r}")
        template = entry["en" if lang == "en" else "zh"]
        return template.format(**params) if params else template


# --------------------------------------------------------------------------- validation helpers


class _Row:
    """Typed access to one YAML mapping, raising errors that name file and key."""

    def __init__(self, file: str, key: str, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise KnowledgeError(f"rx/{file}.yaml: {key}: must be a mapping")
        self.file = file
        self.key = key
        self.data = data

    def fail(self, name: str, problem: str) -> KnowledgeError:
        return KnowledgeError(f"rx/{self.file}.yaml: {self.key}.{name}: {problem}")

    def str_(self, name: str, default: str | None = None) -> str:
        value = self.data.get(name, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "required text is missing")
        return value

    def opt_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, "must be text")
        return value

    def num(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(name, f"must be a non-negative number, got {value!r}")
        return float(value)

    def pair(self, name: str) -> tuple[float, float] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or value[0] > value[1]
        ):
            raise self.fail(name, f"must be [min, max], got {value!r}")
        return (float(value[0]), float(value[1]))

    def strs(self, name: str, required: bool = False) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "required list is missing")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            raise self.fail(name, "must be a list of text")
        return tuple(str(v) for v in value)

    def langs(self, name: str) -> dict[str, str]:
        value = self.data.get(name)
        if not isinstance(value, Mapping) or not all(
            isinstance(value.get(lang), str) for lang in ("zh", "en")
        ):
            raise self.fail(name, "must have both zh and en text")
        return {"zh": value["zh"], "en": value["en"]}

    def langs_plain(self) -> dict[str, str]:
        return {"zh": self.str_("zh"), "en": self.str_("en")}

    def severity(self, name: str = "severity", default: str | None = None) -> Severity:
        value = self.data.get(name, default)
        try:
            return Severity(value)
        except ValueError:
            raise self.fail(name, f"must be info, warning or critical, got {value!r}") from None

    def source(self) -> str:
        return self.str_("source")


def _rows(file: str, data: Mapping[str, Any], key: str) -> list[_Row]:
    raw = data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise KnowledgeError(f"rx/{file}.yaml: {key}: must be a list of rows")
    out: list[_Row] = []
    seen: set[str] = set()
    for n, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise KnowledgeError(f"rx/{file}.yaml: {key}[{n}]: each row needs a text id")
        if item["id"] in seen:
            raise KnowledgeError(f"rx/{file}.yaml: {key}[{n}]: duplicate id {item['id']!r}")
        seen.add(item["id"])
        out.append(_Row(file, f"{key}[{item['id']}]", item))
    return out


# --------------------------------------------------------------------------- raw loading + merge


def _read_packaged(name: str) -> Any:
    try:
        text = (
            resources.files("medbrain.knowledge")
            .joinpath("rx")
            .joinpath(f"{name}.yaml")
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise KnowledgeError(f"rx/{name}.yaml: knowledge file is missing") from None
    try:
        data = yamlio.parse(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"rx/{name}.yaml: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"rx/{name}.yaml: top level must be a mapping")
    return data


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = deep_merge(base, copy.deepcopy(dict(extra)))
    return merged


def _merge_rows(base: list[Any], extra: list[Any], where: str) -> list[Any]:
    """Rows merged by ``id`` with the one rule every engine uses
    (:func:`medbrain.knowledge.overrides.deep_merge`), after checking each override row."""
    for n, row in enumerate(extra):
        if not isinstance(row, Mapping) or not isinstance(row.get("id"), str):
            raise KnowledgeError(f"{where}[{n}]: each override row needs a text id")
    rows = copy.deepcopy([dict(r) for r in extra])
    if not base:
        return [r for r in rows if r.get("enabled") is not False]
    merged: list[Any] = deep_merge(base, rows)
    return merged


def merge_overrides(
    raw: dict[str, dict[str, Any]], overrides: Mapping[str, Any], where: str
) -> None:
    """Merge an override document into ``raw`` in place (rows by id, mappings deeply)."""
    for stem, patch in overrides.items():
        if stem not in raw:
            raise KnowledgeError(
                f"{where}: {stem}: unknown knowledge file (expected one of {', '.join(FILES)})"
            )
        list_keys = ROW_LISTS.get(stem, ())
        if isinstance(patch, list):
            if len(list_keys) != 1:
                raise KnowledgeError(f"{where}: {stem}: give a mapping with {list(list_keys)}")
            patch = {list_keys[0]: patch}
        if not isinstance(patch, Mapping):
            raise KnowledgeError(f"{where}: {stem}: must be a mapping or a list of rows")
        for key, value in patch.items():
            if key in list_keys:
                if not isinstance(value, list):
                    raise KnowledgeError(f"{where}: {stem}.{key}: must be a list of rows")
                raw[stem][key] = _merge_rows(
                    raw[stem].get(key) or [], value, f"{where}: {stem}.{key}"
                )
            elif isinstance(value, Mapping) and isinstance(raw[stem].get(key), dict):
                raw[stem][key] = _deep_merge(raw[stem][key], value)
            else:
                raw[stem][key] = copy.deepcopy(value)


# --------------------------------------------------------------------------- builders


def _targets(
    row: _Row, name: str, drugs: Mapping[str, Any], classes: Mapping[str, Any]
) -> frozenset[str]:
    values = row.strs(name, required=True)
    for value in values:
        if value.startswith("class:"):
            if value[6:] not in classes:
                raise row.fail(name, f"unknown class {value[6:]!r}")
        elif value not in drugs:
            raise row.fail(name, f"unknown drug id {value!r}")
    return frozenset(values)


def _dose_rule(row: _Row, route: str, data: Any) -> DoseRule:
    sub = _Row(row.file, f"{row.key}.dose.{route}", data)
    return DoseRule(
        single_max=sub.num("single_max"),
        daily_max=sub.num("daily_max"),
        weekly_max=sub.num("weekly_max"),
        per_day=sub.pair("per_day"),
        mg_kg_dose_max=sub.num("mg_kg_dose_max"),
        mg_kg_daily_max=sub.num("mg_kg_daily_max"),
        peds_mg_kg_day=sub.pair("peds_mg_kg_day"),
        peds_mg_kg_dose_max=sub.num("peds_mg_kg_dose_max"),
        peds_daily_max=sub.num("peds_daily_max"),
        frequencies=tuple(normalize_text(f) for f in sub.strs("frequencies")),
    )


def _build_drugs(
    raw: Mapping[str, Any], classes: Mapping[str, Any], routes: set[str]
) -> dict[str, Drug]:
    drugs: dict[str, Drug] = {}
    rows = _rows("drugs", raw, "drugs")
    ids = {r.data["id"] for r in rows}
    for row in rows:
        d = row.data
        unit = d.get("unit", "mg")
        if unit not in UNITS:
            raise row.fail("unit", f"must be one of {', '.join(UNITS)}")
        drug_classes = frozenset(row.strs("classes"))
        for c in drug_classes:
            if c not in classes:
                raise row.fail("classes", f"unknown class {c!r} (add it to classes.yaml)")
        forms: dict[str, tuple[float, ...]] = {}
        for form, strengths in (d.get("forms") or {}).items():
            if not isinstance(strengths, list) or not all(
                isinstance(s, int | float) and s > 0 for s in strengths
            ):
                raise row.fail(f"forms.{form}", "must be a list of positive strengths")
            forms[str(form)] = tuple(float(s) for s in strengths)
        per_ml: dict[str, float] = {}
        for form, conc in (d.get("per_ml") or {}).items():
            if not isinstance(conc, int | float) or conc <= 0:
                raise row.fail(f"per_ml.{form}", "must be a positive concentration")
            per_ml[str(form)] = float(conc)
        drug_routes = row.strs("routes", required=True)
        for r in drug_routes:
            if r not in routes:
                raise row.fail("routes", f"unknown route {r!r}")
        dose = {}
        for r, rule in (d.get("dose") or {}).items():
            if r not in drug_routes:
                raise row.fail(f"dose.{r}", "route not listed in routes")
            dose[r] = _dose_rule(row, r, rule)
        components: dict[str, float] = {}
        for comp, amount in (d.get("components") or {}).items():
            if comp not in ids:
                raise row.fail(f"components.{comp}", "unknown ingredient drug id")
            if not isinstance(amount, int | float) or amount <= 0:
                raise row.fail(f"components.{comp}", "must be a positive amount per piece")
            components[str(comp)] = float(amount)
        if unit == "piece" and not d.get("piece"):
            raise row.fail("piece", "a piece-dosed product must name its counting word")
        piece_g = row.num("piece_g")
        if piece_g is not None and (unit != "piece" or piece_g <= 0):
            raise row.fail("piece_g", "must be positive grams per piece of a piece-dosed product")
        max_days = row.num("max_days")
        drugs[d["id"]] = Drug(
            id=d["id"],
            zh=row.str_("zh"),
            en=row.str_("en"),
            source=row.source(),
            atc=row.opt_str("atc"),
            unit=unit,
            piece=row.opt_str("piece"),
            names=row.strs("names"),
            classes=drug_classes,
            forms=forms,
            per_ml=per_ml,
            routes=drug_routes,
            dose=dose,
            max_days=int(max_days) if max_days is not None else None,
            chronic=bool(d.get("chronic", False)),
            no_iv_push=bool(d.get("no_iv_push", False)),
            components=components,
            indications=tuple(normalize_text(t) for t in row.strs("indications")),
            iu_per_unit=row.num("iu_per_unit"),
            piece_g=piece_g,
        )
    # Tags: own id and classes plus those of hidden ingredients.
    out: dict[str, Drug] = {}
    for drug in drugs.values():
        tags = {drug.id, *(f"class:{c}" for c in drug.classes)}
        for comp in drug.components:
            tags.add(comp)
            tags.update(f"class:{c}" for c in drugs[comp].classes)
        out[drug.id] = replace(drug, tags=frozenset(tags))
    return out


def _name_index(drugs: Mapping[str, Drug]) -> dict[str, str]:
    index: dict[str, str] = {}
    for drug in drugs.values():
        for name in (drug.id, drug.zh, drug.en, *drug.names):
            key = normalize_text(name)
            if key in index and index[key] != drug.id:
                raise KnowledgeError(
                    f"rx/drugs.yaml: drugs[{drug.id}].names: {name!r} already names {index[key]!r}"
                )
            index[key] = drug.id
    return index


def _simple_rules(
    file: str,
    raw: Mapping[str, Any],
    drugs: Mapping[str, Drug],
    classes: Mapping[str, Any],
    kind: str,
) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for row in _rows(file, raw, "rules"):
        d = row.data
        params: dict[str, Any] = {}
        if kind == "level":
            level = d.get("level")
            if level not in LEVEL_SEVERITY:
                raise row.fail("level", "must be contraindicated, avoid or caution")
            severity = LEVEL_SEVERITY[level]
            params["level"] = level
        elif kind == "renal":
            severity = Severity.WARNING
            bands = []
            for n, band in enumerate(d.get("bands") or []):
                b = _Row(file, f"{row.key}.bands[{n}]", band)
                below = b.num("below")
                action = band.get("action")
                if below is None or action not in (
                    "contraindicated",
                    "avoid",
                    "max_dose",
                    "caution",
                ):
                    raise b.fail(
                        "action", "needs below and action contraindicated|avoid|max_dose|caution"
                    )
                if (
                    action == "max_dose"
                    and b.num("daily_max") is None
                    and b.num("mg_kg_daily_max") is None
                ):
                    raise b.fail("daily_max", "max_dose needs daily_max or mg_kg_daily_max")
                bands.append(
                    {
                        "below": below,
                        "action": action,
                        "daily_max": b.num("daily_max"),
                        "mg_kg_daily_max": b.num("mg_kg_daily_max"),
                    }
                )
            if not bands:
                raise row.fail("bands", "at least one band is required")
            params["bands"] = tuple(sorted(bands, key=lambda x: x["below"]))
            params["route"] = row.opt_str("route")
        elif kind == "hepatic":
            action = d.get("action")
            if action not in (*LEVEL_SEVERITY, "max_dose"):
                raise row.fail("action", "must be contraindicated, avoid, caution or max_dose")
            severity = LEVEL_SEVERITY.get(action, Severity.WARNING)
            params["action"] = action
            params["alt_uln_multiple"] = row.num("alt_uln_multiple")
            params["child_pugh"] = frozenset(row.strs("child_pugh"))
            if not params["child_pugh"] <= {"A", "B", "C"}:
                raise row.fail("child_pugh", "classes must be A, B or C")
            limits: dict[str, float] = {}
            if action == "max_dose":
                raw_limits = d.get("daily_max")
                if not isinstance(raw_limits, Mapping) or not raw_limits:
                    raise row.fail("daily_max", "max_dose needs daily_max per Child-Pugh class")
                sub = _Row(file, f"{row.key}.daily_max", raw_limits)
                for cls in raw_limits:
                    if cls not in ("A", "B", "C"):
                        raise sub.fail(str(cls), "must be a Child-Pugh class A, B or C")
                    value = sub.num(str(cls))
                    if value is None:
                        raise sub.fail(str(cls), "a number is required")
                    limits[str(cls)] = value
                params["child_pugh"] = frozenset(limits)
            params["daily_max"] = limits
            params["route"] = row.opt_str("route")
            if params["alt_uln_multiple"] is None and not params["child_pugh"]:
                raise row.fail("child_pugh", "needs alt_uln_multiple or child_pugh")
        elif kind == "age":
            severity = row.severity()
            params["below_years"] = row.num("below_years")
            params["from_years"] = row.num("from_years")
            if (params["below_years"] is None) == (params["from_years"] is None):
                raise row.fail("below_years", "give exactly one of below_years or from_years")
            params["daily_gt"] = row.num("daily_gt")
            params["min_days"] = row.num("min_days")
            params["unless"] = tuple(normalize_text(t) for t in row.strs("unless_diagnosis"))
        elif kind == "contra":
            severity = row.severity()
            params["diagnoses"] = tuple(normalize_text(t) for t in row.strs("diagnoses"))
            lab = d.get("lab") or {}
            if not isinstance(lab, Mapping):
                raise row.fail("lab", "must be a mapping")
            labs = []
            for name, cond in lab.items():
                c = _Row(file, f"{row.key}.lab.{name}", cond)
                labs.append((str(name), c.num("gt"), c.num("lt")))
            params["labs"] = tuple(labs)
            if not params["diagnoses"] and not labs:
                raise row.fail("diagnoses", "needs diagnoses or lab")
        else:  # pragma: no cover - programming error
            raise AssertionError(kind)
        out.append(
            Rule(
                id=d["id"],
                targets=_targets(row, "targets", drugs, classes),
                source=row.source(),
                severity=severity,
                params=params,
            )
        )
    return tuple(out)


def _interactions(
    file: str,
    raw: Mapping[str, Any],
    key: str,
    drugs: Mapping[str, Drug],
    classes: Mapping[str, Any],
) -> tuple[Interaction, ...]:
    out = []
    for row in _rows(file, raw, key):
        when = row.data.get("when") or {}
        when_drug = when.get("drug") if isinstance(when, Mapping) else None
        info_when = row.data.get("info_when") or {}
        if not isinstance(info_when, Mapping):
            raise row.fail("info_when", "must be a mapping")
        info_row = _Row(file, f"{row.key}.info_when", info_when)
        labs_below = info_when.get("labs_below") or {}
        if not isinstance(labs_below, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in labs_below.values()
        ):
            raise row.fail("info_when.labs_below", "must map lab names to numbers")
        if when_drug is not None and when_drug not in drugs:
            raise row.fail("when.drug", f"unknown drug id {when_drug!r}")
        out.append(
            Interaction(
                id=row.data["id"],
                a=_targets(row, "a", drugs, classes),
                b=_targets(row, "b", drugs, classes),
                severity=row.severity(),
                effect=row.langs("effect"),
                management=row.langs("management"),
                source=row.source(),
                when_drug=when_drug,
                when_daily_gt=_Row(file, f"{row.key}.when", when).num("daily_gt") if when else None,
                route=row.opt_str("route"),
                info_when_labs_below={str(k): float(v) for k, v in labs_below.items()},
                info_when_crcl_at_least=info_row.num("crcl_at_least") if info_when else None,
                unless=_targets(row, "unless", drugs, classes)
                if row.data.get("unless")
                else frozenset(),
                no_group_severity=(
                    row.severity("no_group_severity")
                    if row.data.get("no_group_severity") is not None
                    else None
                ),
            )
        )
    return tuple(out)


def _policy(raw: Mapping[str, Any]) -> Policy:
    row = _Row("policy", "policy", raw)
    verdict = _Row("policy", "verdict", raw.get("verdict") or {})
    overrides = {}
    for rule_id, sev in (raw.get("severity_overrides") or {}).items():
        overrides[str(rule_id)] = _Row("policy", "severity_overrides", {"s": sev}).severity("s")
    supply = raw.get("supply_days") or {}
    if not isinstance(supply, Mapping):
        raise row.fail("supply_days", "must be a mapping")
    exceptions = []
    for ex in _rows("policy", raw, "supply_exceptions"):
        days = ex.num("days")
        if days is None:
            raise ex.fail("days", "required number of days is missing")
        exceptions.append(
            Rule(
                id=ex.data["id"],
                targets=frozenset(),
                source=ex.source(),
                params={
                    "terms": tuple(normalize_text(t) for t in ex.strs("terms", required=True)),
                    "days": days,
                },
            )
        )
    threshold = row.num("review_threshold")
    if threshold is None or threshold > 1:
        raise row.fail("review_threshold", "must lie in [0, 1]")
    return Policy(
        block_at=verdict.severity("block_at"),
        warn_at=verdict.severity("warn_at"),
        review_threshold=threshold,
        pediatric_below_years=row.num("pediatric_below_years") or 12.0,
        adult_weight_kg_min=row.num("adult_weight_kg_min") or 40.0,
        alt_uln_u_l=row.num("alt_uln_u_l") or 40.0,
        supply_days={str(k): (int(v) if v is not None else None) for k, v in supply.items()},
        quantity_oversupply_factor=row.num("quantity_oversupply_factor") or 1.5,
        disabled_rules=row.strs("disabled_rules"),
        severity_overrides=overrides,
        pregnancy_terms=tuple(normalize_text(t) for t in row.strs("pregnancy_terms")),
        lactation_terms=tuple(normalize_text(t) for t in row.strs("lactation_terms")),
        source=row.source(),
        supply_exceptions=tuple(exceptions),
        weight_rounding=(row.num("weight_rounding_pct") or 0.0) / 100,
    )


def _vocab(raw: Mapping[str, Any]) -> Vocab:
    row = _Row("vocab", "vocab", raw)

    def factors(name: str) -> dict[str, float]:
        value = raw.get(name)
        if not isinstance(value, Mapping) or not all(
            isinstance(v, int | float) and v > 0 for v in value.values()
        ):
            raise row.fail(name, "must map unit spellings to positive factors")
        return {normalize_text(str(k)): float(v) for k, v in value.items()}

    routes: dict[str, str] = {}
    for canonical, aliases in (raw.get("routes") or {}).items():
        for alias in [canonical, *(aliases or [])]:
            routes[normalize_text(str(alias))] = str(canonical)
    freqs: dict[str, float | None] = {}
    for code, per_day in (raw.get("frequencies") or {}).items():
        if per_day is not None and (not isinstance(per_day, int | float) or per_day <= 0):
            raise row.fail(f"frequencies.{code}", "must be a positive number or null")
        freqs[normalize_text(str(code))] = float(per_day) if per_day is not None else None
    form_words = sorted(
        ((normalize_text(str(k)), str(v)) for k, v in (raw.get("form_words") or {}).items()),
        key=lambda kv: -len(kv[0]),
    )
    count_units = {
        normalize_text(str(k)): tuple(v) for k, v in (raw.get("count_units") or {}).items()
    }
    form_routes = {str(k): tuple(v) for k, v in (raw.get("form_routes") or {}).items()}
    return Vocab(
        mass_units=factors("mass_units"),
        iu_units=factors("iu_units"),
        volume_units=factors("volume_units"),
        per_kg_units=frozenset(normalize_text(u) for u in row.strs("per_kg_units")),
        count_units=count_units,
        routes=routes,
        frequencies=freqs,
        form_words=tuple(form_words),
        form_routes=form_routes,
        source=row.source(),
        times_of_day=frozenset(normalize_text(t) for t in row.strs("times_of_day")),
        push_routes=frozenset(normalize_text(t) for t in row.strs("push_routes")),
        local_form_words=tuple((w, f) for w, f in form_words if f in set(row.strs("local_forms"))),
    )


def _antimicrobial(raw: Mapping[str, Any], drugs: Mapping[str, Drug]) -> Antimicrobial:
    row = _Row("antimicrobial", "antimicrobial", raw)
    grades: dict[str, dict[str, str]] = {}
    for drug_id, grade in (raw.get("grades") or {}).items():
        if drug_id not in drugs:
            raise row.fail(f"grades.{drug_id}", "unknown drug id")
        by_route = grade if isinstance(grade, Mapping) else {"*": grade}
        for g in by_route.values():
            if g not in GRADES:
                raise row.fail(f"grades.{drug_id}", f"grade must be one of {', '.join(GRADES)}")
        grades[str(drug_id)] = {str(k): str(v) for k, v in by_route.items()}
    levels = {}
    for title, g in (raw.get("prescriber_levels") or {}).items():
        if g not in GRADES:
            raise row.fail(f"prescriber_levels.{title}", f"must be one of {', '.join(GRADES)}")
        levels[normalize_text(str(title))] = str(g)
    rank = {str(k): int(v) for k, v in (raw.get("grade_rank") or {}).items()}
    if set(rank) != set(GRADES):
        raise row.fail("grade_rank", f"must rank exactly {', '.join(GRADES)}")
    return Antimicrobial(
        grades=grades,
        grade_rank=rank,
        prescriber_levels=levels,
        infection_terms=tuple(
            normalize_text(t) for t in row.strs("infection_terms", required=True)
        ),
        non_infection_terms=tuple(normalize_text(t) for t in row.strs("non_infection_terms")),
        source=row.source(),
        prophylaxis_terms=tuple(normalize_text(t) for t in row.strs("prophylaxis_terms")),
        prophylaxis_max_days=row.num("prophylaxis_max_days") or 1.0,
        prophylaxis_source=row.opt_str("prophylaxis_source") or row.source(),
    )


def build_knowledge(raw: Mapping[str, Any]) -> RxKnowledge:
    """Validate merged raw YAML documents and build the indexed knowledge."""
    vocab = _vocab(raw["vocab"])
    classes_raw = raw["classes"].get("classes") or {}
    classes: dict[str, dict[str, str]] = {}
    for cid, names in classes_raw.items():
        classes[str(cid)] = _Row("classes", f"classes.{cid}", names).langs_plain()
    drugs = _build_drugs(raw["drugs"], classes, set(vocab.routes.values()))
    names = _name_index(drugs)

    duplication = []
    for row in _rows("duplication", raw["duplication"], "rules"):
        cls = row.strs("classes", required=True)
        for c in cls:
            if c not in classes:
                raise row.fail("classes", f"unknown class {c!r}")
        duplication.append(
            Rule(
                id=row.data["id"],
                targets=frozenset(f"class:{c}" for c in cls),
                source=row.source(),
                severity=row.severity(),
            )
        )
    interactions = _interactions(
        "interactions", raw["interactions"], "interactions", drugs, classes
    )
    index: dict[str, list[int]] = {}
    for n, inter in enumerate(interactions):
        for tag in inter.a | inter.b:
            index.setdefault(tag, []).append(n)

    alg = raw["allergy_classes"]
    allergens = []
    for row in _rows("allergy_classes", alg, "allergens"):
        cls = row.strs("classes")
        for c in cls:
            if c not in classes:
                raise row.fail("classes", f"unknown class {c!r}")
        allergens.append(
            Allergen(
                id=row.data["id"],
                terms=tuple(normalize_text(t) for t in row.strs("terms", required=True)),
                classes=frozenset(cls),
                source=row.source(),
            )
        )
    r1_group: dict[str, str] = {}
    for group, members in (alg.get("r1_groups") or {}).items():
        for member in members or []:
            if member not in drugs:
                raise KnowledgeError(
                    f"rx/allergy_classes.yaml: r1_groups.{group}: unknown drug {member!r}"
                )
            r1_group[member] = str(group)
    cross = []
    for row in _rows("allergy_classes", alg, "cross_reactivity"):
        cross.append(
            CrossReactivity(
                id=row.data["id"],
                from_=_targets(row, "from", drugs, classes),
                to=_targets(row, "to", drugs, classes),
                same_r1=row.severity("same_r1"),
                different_r1=row.severity("different_r1"),
                different_r1_severe=row.severity("different_r1_severe"),
                message=row.langs("message"),
                advice_same=row.langs("advice_same"),
                advice_different=row.langs("advice_different"),
                source=row.source(),
            )
        )
    alg_row = _Row("allergy_classes", "allergy_classes", alg)
    drug_allergy_classes = alg_row.strs("drug_allergy_classes")
    for c in drug_allergy_classes:
        if c not in classes:
            raise alg_row.fail("drug_allergy_classes", f"unknown class {c!r}")

    inc = raw["incompatibility"]
    vehicles = []
    for row in _rows("incompatibility", inc, "vehicles"):
        drug_id = row.str_("drug")
        if drug_id not in drugs:
            raise row.fail("drug", f"unknown drug id {drug_id!r}")
        vehicles.append(
            Rule(
                id=row.data["id"],
                targets=frozenset({drug_id}),
                source=row.source(),
                severity=row.severity(),
                params={"allowed": _targets(row, "allowed", drugs, classes)},
            )
        )
    alone = []
    for row in _rows("incompatibility", inc, "alone"):
        alone.append(
            Rule(
                id=row.data["id"],
                targets=_targets(row, "drug", drugs, classes),
                source=row.source(),
                severity=row.severity(),
            )
        )
    pairs = _interactions("incompatibility", inc, "pairs", drugs, classes)

    messages: dict[str, dict[str, str]] = {}
    for key, entry in (raw["messages"].get("messages") or {}).items():
        messages[str(key)] = _Row("messages", f"messages.{key}", entry).langs_plain()

    versions = sorted({str(raw[f].get("version", "?")) for f in FILES})
    families = {
        "renal": _simple_rules("renal", raw["renal"], drugs, classes, "renal"),
        "hepatic": _simple_rules("hepatic", raw["hepatic"], drugs, classes, "hepatic"),
        "pregnancy": _simple_rules("pregnancy", raw["pregnancy"], drugs, classes, "level"),
        "lactation": _simple_rules("lactation", raw["lactation"], drugs, classes, "level"),
        "age": _simple_rules("age", raw["age"], drugs, classes, "age"),
        "contraindications": _simple_rules(
            "contraindications", raw["contraindications"], drugs, classes, "contra"
        ),
    }
    rule_index = {
        family: {
            drug.id: frozenset(r.id for r in rules if r.matches(drug.tags))
            for drug in drugs.values()
        }
        for family, rules in families.items()
    }
    return RxKnowledge(
        version="+".join(versions),
        drugs=drugs,
        classes=classes,
        names=names,
        duplication=tuple(duplication),
        interactions=interactions,
        allergens=tuple(allergens),
        allergy_severe_terms=tuple(normalize_text(t) for t in alg_row.strs("severe_terms")),
        allergy_none_terms=frozenset(normalize_text(t) for t in alg_row.strs("none_terms")),
        drug_allergy_classes=frozenset(drug_allergy_classes),
        r1_group=r1_group,
        cross_reactivity=tuple(cross),
        allergy_source=alg_row.source(),
        renal=families["renal"],
        hepatic=families["hepatic"],
        pregnancy=families["pregnancy"],
        lactation=families["lactation"],
        age=families["age"],
        contraindications=families["contraindications"],
        antimicrobial=_antimicrobial(raw["antimicrobial"], drugs),
        incompat_pairs=pairs,
        incompat_vehicles=tuple(vehicles),
        incompat_alone=tuple(alone),
        policy=_policy(raw["policy"]),
        vocab=vocab,
        messages=messages,
        interaction_index={k: tuple(v) for k, v in index.items()},
        rule_index=rule_index,
        liver_disease_terms=tuple(
            normalize_text(t)
            for t in _Row("hepatic", "hepatic", raw["hepatic"]).strs("liver_disease_terms")
        ),
    )


def load_raw(
    overrides: Mapping[str, Any] | None = None, where: str = "overrides"
) -> dict[str, dict[str, Any]]:
    """The packaged YAML documents, with ``overrides`` merged in."""
    raw = {name: _read_packaged(name) for name in FILES}
    if overrides:
        merge_overrides(raw, overrides, where)
    return raw


def _read_override_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read override file ({exc.strerror})") from None
    try:
        data = yamlio.parse(text) or {}
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise KnowledgeError(f"{path}: top level must be a mapping of knowledge files")
    return data


@lru_cache(maxsize=8)
def _load_cached(overrides_path: str | None) -> RxKnowledge:
    overrides = _read_override_file(Path(overrides_path)) if overrides_path else None
    return build_knowledge(load_raw(overrides, overrides_path or "overrides"))


def load_rx_knowledge(overrides_path: Path | None = None) -> RxKnowledge:
    """Load (once) the prescription knowledge, merged with a hospital's override file.

    Parameters
    ----------
    overrides_path
        YAML file whose top-level keys are knowledge file stems (``drugs``, ``interactions``,
        ``policy``, ...). Rows are merged by ``id`` (``enabled: false`` removes a row);
        mappings are merged deeply.

    Raises
    ------
    KnowledgeError
        A file or row is malformed; the message names the file and key.
    """
    return _load_cached(str(overrides_path) if overrides_path is not None else None)
