"""Laboratory results → HPO phenotypes (low platelets → HP:0001873 Thrombocytopenia, ...).

The table ``knowledge/rare/lab_hpo.yaml`` gives, per analyte, its LOINC codes, accepted
units, the adult reference interval (sex-specific where the cited WS/T standard is) and the
HPO terms for a low and a high result, each row with its source. A result outside the
interval becomes an *observed* phenotype; a measured result inside it makes the same terms
*excluded* (looked for and absent), unless the row says ``normal_excludes: false``.

Pure: results come in as :class:`LabValue` s (the adapter reads them from the store or a
case document); nothing is read from a database, a clock or the environment.

References
----------
- WS/T 405-2012 血细胞分析参考区间; WS/T 404.1–404.7 临床常用生化检验项目参考区间.
- Köhler S, et al. The Human Phenotype Ontology in 2021. Nucleic Acids Res 2021;49:D1207-17
  (laboratory abnormality terms under HP:0001939 Abnormality of metabolism/homeostasis and
  HP:0001871 Abnormality of blood and blood-forming tissues).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.knowledge.overrides import deep_merge

LAB_HPO = "rare/lab_hpo.yaml"
LOINC_SYSTEM = "http://loinc.org"
HPO_PATTERN = re.compile(r"^HP:\d{7}$")
SEX_KEYS = ("male", "female")


@dataclass(frozen=True, slots=True)
class Interval:
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class LabRule:
    """One analyte: codes, units, reference interval(s), the HPO terms for low/high."""

    id: str
    zh: str
    en: str
    loinc: tuple[str, ...]
    unit: str
    units: Mapping[str, float]
    intervals: Mapping[str, Interval]  # "any" or "male"/"female"
    low_hpo: str | None
    high_hpo: str | None
    normal_excludes: bool
    source: str

    def interval(self, sex: str | None) -> Interval:
        """The interval for ``sex``; unknown sex → the widest (never invents an abnormality)."""
        if "any" in self.intervals:
            return self.intervals["any"]
        if sex is not None and sex in self.intervals:
            return self.intervals[sex]
        lows = [i.low for i in self.intervals.values()]
        highs = [i.high for i in self.intervals.values()]
        return Interval(
            None if any(v is None for v in lows) else min(v for v in lows if v is not None),
            None if any(v is None for v in highs) else max(v for v in highs if v is not None),
        )

    def name(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True, slots=True, eq=False)
class LabHpoTable:
    version: str
    rules: tuple[LabRule, ...]
    by_loinc: Mapping[str, LabRule]


@dataclass(frozen=True, slots=True)
class LabValue:
    """One result: LOINC code, numeric value and UCUM unit, and where it came from."""

    loinc: str
    value: float
    unit: str | None
    resource: str | None = None


@dataclass(frozen=True, slots=True)
class LabPhenotype:
    """An HPO term derived from one result, observed (abnormal) or excluded (normal)."""

    hpo: str
    excluded: bool
    rule_id: str
    value: float
    unit: str
    low: float | None
    high: float | None
    resource: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "hpo": self.hpo,
            "excluded": self.excluded,
            "rule_id": self.rule_id,
            "value": self.value,
            "unit": self.unit,
            "reference_low": self.low,
            "reference_high": self.high,
            "resource": self.resource,
            "source": self.source,
        }


def _number(where: str, raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise KnowledgeError(f"{where}: must be a number")
    return float(raw)


def _interval(where: str, raw: Any) -> Interval:
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{where}: must be a mapping with low and/or high")
    low, high = _number(f"{where}.low", raw.get("low")), _number(f"{where}.high", raw.get("high"))
    if low is None and high is None:
        raise KnowledgeError(f"{where}: needs low and/or high")
    if low is not None and high is not None and low >= high:
        raise KnowledgeError(f"{where}: low must be below high")
    return Interval(low, high)


def parse_lab_hpo(data: Any, name: str = LAB_HPO) -> LabHpoTable:
    """Validate the table; every error names the file and the row."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise KnowledgeError(f"{name}: top level needs a 'rows' list")
    rules: list[LabRule] = []
    by_loinc: dict[str, LabRule] = {}
    for index, row in enumerate(data["rows"]):
        where = f"{name}: rows[{index}]"
        if not isinstance(row, dict):
            raise KnowledgeError(f"{where}: must be a mapping")
        for key in ("id", "zh", "en", "loinc", "unit", "units", "reference", "source"):
            if not row.get(key):
                raise KnowledgeError(f"{where}: needs {key}")
        reference = row["reference"]
        if not isinstance(reference, dict):
            raise KnowledgeError(f"{where}.reference: must be a mapping")
        if any(k in reference for k in SEX_KEYS):
            if set(reference) != set(SEX_KEYS):
                raise KnowledgeError(f"{where}.reference: give both male and female")
            intervals = {k: _interval(f"{where}.reference.{k}", reference[k]) for k in SEX_KEYS}
        else:
            intervals = {"any": _interval(f"{where}.reference", reference)}
        hpo = {k: row.get(k) for k in ("low_hpo", "high_hpo")}
        if not any(hpo.values()):
            raise KnowledgeError(f"{where}: needs low_hpo and/or high_hpo")
        for key, value in hpo.items():
            if value is not None and (not isinstance(value, str) or not HPO_PATTERN.match(value)):
                raise KnowledgeError(f"{where}.{key}: must be an HPO id like HP:0001873")
        units = row["units"]
        if not isinstance(units, dict) or row["unit"] not in units:
            raise KnowledgeError(f"{where}: units must include the canonical unit {row['unit']!r}")
        rule = LabRule(
            id=str(row["id"]),
            zh=str(row["zh"]),
            en=str(row["en"]),
            loinc=tuple(str(c) for c in row["loinc"]),
            unit=str(row["unit"]),
            units={
                str(u): float(_number(f"{where}.units.{u}", f) or 0.0) for u, f in units.items()
            },
            intervals=intervals,
            low_hpo=hpo["low_hpo"],
            high_hpo=hpo["high_hpo"],
            normal_excludes=bool(row.get("normal_excludes", True)),
            source=str(row["source"]),
        )
        for code in rule.loinc:
            if code in by_loinc:
                raise KnowledgeError(
                    f"{where}: LOINC {code} belongs to both {by_loinc[code].id} and {rule.id}"
                )
            by_loinc[code] = rule
        rules.append(rule)
    return LabHpoTable(str(data.get("version", "")), tuple(rules), by_loinc)


def load_lab_hpo(overrides: Path | None = None) -> LabHpoTable:
    """The shipped table, with a hospital's overrides (``{rows: [{id: ..., ...}]}``) merged."""
    text = resources.files("medbrain.knowledge").joinpath(LAB_HPO).read_text(encoding="utf-8")
    data = yamlio.parse(text)
    if overrides is not None:
        try:
            extra = yamlio.parse(Path(overrides).read_text(encoding="utf-8"))
        except OSError as exc:
            raise KnowledgeError(f"{overrides}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise KnowledgeError(f"{overrides}: not valid YAML: {exc}") from None
        data = deep_merge(data, extra or {})
    return parse_lab_hpo(data)


@lru_cache(maxsize=1)
def default_lab_hpo() -> LabHpoTable:
    return load_lab_hpo()


def _canonical(rule: LabRule, lab: LabValue, source: str, field: str) -> float:
    if lab.unit is None or not lab.unit.strip():
        raise InputError(
            source,
            field,
            f"{rule.en} ({lab.loinc}) has no unit; give one of {', '.join(rule.units)}",
        )
    factor = rule.units.get(lab.unit.strip())
    if factor is None:
        raise InputError(
            source,
            field,
            f"unit {lab.unit!r} is not known for {rule.en} ({lab.loinc}); "
            f"expected one of {', '.join(rule.units)}",
        )
    return lab.value * factor


def _phenotype(
    rule: LabRule, interval: Interval, hpo: str, excluded: bool, value: float, lab: LabValue
) -> LabPhenotype:
    return LabPhenotype(
        hpo=hpo,
        excluded=excluded,
        rule_id=rule.id,
        value=round(value, 4),
        unit=rule.unit,
        low=interval.low,
        high=interval.high,
        resource=lab.resource,
        source=rule.source,
    )


def phenotypes_from_labs(
    labs: Sequence[LabValue],
    table: LabHpoTable,
    *,
    sex: str | None = None,
    source: str = "labs",
) -> list[LabPhenotype]:
    """HPO terms for ``labs``: abnormal → observed, measured normal → excluded.

    When one analyte has several results, any abnormal one is observed (a low platelet count
    last week is still a phenotype) and the normal-excludes rule applies only if *every*
    result of that analyte is normal. Codes not in the table are ignored (the caller lists
    them); a result with no unit or an unknown unit is an ``InputError`` naming ``labs[i]``.
    """
    by_rule: dict[str, list[tuple[LabRule, float, LabValue]]] = {}
    for i, lab in enumerate(labs):
        rule = table.by_loinc.get(lab.loinc)
        if rule is None:
            continue
        value = _canonical(rule, lab, source, f"labs[{i}].unit")
        by_rule.setdefault(rule.id, []).append((rule, value, lab))
    out: list[LabPhenotype] = []
    for results in by_rule.values():
        abnormal: dict[str, tuple[float, LabValue]] = {}
        rule = results[0][0]
        interval = rule.interval(sex)
        for _, value, lab in results:
            if interval.low is not None and value < interval.low and rule.low_hpo:
                abnormal.setdefault(rule.low_hpo, (value, lab))
            elif interval.high is not None and value > interval.high and rule.high_hpo:
                abnormal.setdefault(rule.high_hpo, (value, lab))

        if abnormal:
            out.extend(
                _phenotype(rule, interval, h, False, v, lab) for h, (v, lab) in abnormal.items()
            )
            continue
        all_normal = all(
            (interval.low is None or v >= interval.low)
            and (interval.high is None or v <= interval.high)
            for _, v, _ in results
        )
        if rule.normal_excludes and all_normal:
            _, value, lab = results[-1]
            out.extend(
                _phenotype(rule, interval, h, True, value, lab)
                for h in (rule.low_hpo, rule.high_hpo)
                if h
            )
    return out


def read_lab_values(raw: Any, source: str, field: str = "labs") -> list[LabValue]:
    """Parse ``[{"loinc": "777-3", "value": 45, "unit": "10*9/L"}, ...]`` from a case."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(source, field, "must be a list of {loinc, value, unit}")
    values: list[LabValue] = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InputError(source, where, "must be an object {loinc, value, unit}")
        code = item.get("loinc")
        if not isinstance(code, str) or not code.strip():
            raise InputError(source, f"{where}.loinc", "missing LOINC code")
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InputError(source, f"{where}.value", "must be a non-negative number")
        unit = item.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise InputError(source, f"{where}.unit", "must be text")
        values.append(LabValue(code.strip(), float(value), unit, item.get("resource")))
    return values


def unmapped_codes(labs: Iterable[LabValue], table: LabHpoTable) -> list[str]:
    """Codes with no row in the table (reported, never silently dropped)."""
    return sorted({lab.loinc for lab in labs if lab.loinc not in table.by_loinc})
