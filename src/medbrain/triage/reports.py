"""Plain-language explanation of a patient's own lab results (pure; patient assistant).

For each abnormal result: what the test is, what a high or low value is often related to, how
far it is from the reference range ("高于上限 20%"), and when to see a doctor. A value in the
critical-value range of ``knowledge/alerts/critical_values.yaml`` (or flagged HH/LL/critical by
the laboratory) always says "contact your doctor or the emergency department now". Texts come
from ``knowledge/triage/reports.yaml``; nothing here diagnoses.

References
----------
WS/T 405-2012 血细胞分析参考区间; WS/T 404.1/.3/.5/.6 临床常用生化检验项目参考区间;
《检验危急值在急危重病临床应用的专家共识(成人)》2013.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from medbrain.alerts.knowledge import AlertKnowledge
from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge

LANGS = ("zh", "en")
EPS = 1e-9
CRITICAL_FLAGS = frozenset({"HH", "LL", "AA", "C"})


@dataclass(frozen=True, slots=True)
class LabValue:
    """One stored lab result (an adapter builds it from an Observation row)."""

    ref: str  # e.g. "Observation/12"
    code: str
    display: str
    value: float | None
    unit: str | None
    ref_low: float | None = None
    ref_high: float | None = None
    flag: str | None = None  # N, L, H, LL, HH, A
    when: str | None = None


@dataclass(frozen=True, slots=True)
class ReportKnowledge:
    analytes: Mapping[str, Mapping[str, Any]]
    by_loinc: Mapping[str, str]
    sources: Mapping[str, str]
    advice: Mapping[str, Mapping[str, str]]
    soon_percent: float
    version: str


@dataclass(frozen=True, slots=True)
class Explanation:
    ref: str
    name: str
    value_text: str
    range_text: str | None
    side: str  # "high" | "low" | "abnormal"
    percent: float | None  # how far beyond the limit, in % of the limit
    what: str
    meaning: str
    advice: str
    level: str  # "routine" | "soon" | "emergency"
    source: str
    when: str | None = None

    @property
    def emergency(self) -> bool:
        return self.level == "emergency"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "value": self.value_text,
            "range": self.range_text,
            "side": self.side,
            "percent": self.percent,
            "what": self.what,
            "meaning": self.meaning,
            "advice": self.advice,
            "level": self.level,
            "source": self.source,
            "when": self.when,
        }


def _texts(where: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or any(not str(value.get(k) or "").strip() for k in LANGS):
        raise KnowledgeError(f"triage/reports.yaml: {where} needs zh and en texts")
    return {k: str(value[k]) for k in LANGS}


def _check_range(where: str, raw: Any) -> None:
    if not isinstance(raw, dict) or not {"low", "high"} <= raw.keys():
        raise KnowledgeError(f"triage/reports.yaml: {where} needs low and high")
    if float(raw["low"]) >= float(raw["high"]):
        raise KnowledgeError(f"triage/reports.yaml: {where}: low must be below high")


def build_report_knowledge(data: Mapping[str, Any]) -> ReportKnowledge:
    """Validate the YAML mapping (every analyte has texts, a range and a known source)."""
    sources = data.get("sources")
    rows = data.get("analytes")
    if not isinstance(sources, dict) or not isinstance(rows, list) or not rows:
        raise KnowledgeError("triage/reports.yaml: needs sources and analytes")
    analytes: dict[str, Mapping[str, Any]] = {}
    by_loinc: dict[str, str] = {}
    for row in rows:
        aid = str(row.get("id") or "")
        if not aid:
            raise KnowledgeError("triage/reports.yaml: an analyte has no id")
        for key in ("what", "high", "low"):
            _texts(f"{aid}.{key}", row.get(key))
        _texts(f"{aid} name", row)
        ref = row.get("reference")
        if not isinstance(ref, dict) or ref.get("source") not in sources:
            raise KnowledgeError(f"triage/reports.yaml: {aid}.reference needs a known source")
        if "male" in ref:
            _check_range(f"{aid}.reference.male", ref["male"])
            _check_range(f"{aid}.reference.female", ref.get("female"))
        else:
            _check_range(f"{aid}.reference", ref)
        analytes[aid] = row
        for code in row.get("loinc") or []:
            by_loinc[str(code)] = aid
    advice = data.get("advice") or {}
    for key in ("routine", "soon", "emergency"):
        _texts(f"advice.{key}", advice.get(key))
    grading = data.get("grading") or {}
    return ReportKnowledge(
        analytes=analytes,
        by_loinc=by_loinc,
        sources={str(k): str(v) for k, v in sources.items()},
        advice={k: _texts(k, advice[k]) for k in ("routine", "soon", "emergency")},
        soon_percent=float(grading.get("soon_percent", 20)),
        version=str(data.get("version", "")),
    )


def _shipped() -> Any:
    text = (
        resources.files("medbrain.knowledge")
        .joinpath("triage")
        .joinpath("reports.yaml")
        .read_text(encoding="utf-8")
    )
    data = yamlio.parse(text)
    if not isinstance(data, dict):
        raise KnowledgeError("triage/reports.yaml: top level must be a mapping")
    return data


@lru_cache(maxsize=1)
def default_report_knowledge() -> ReportKnowledge:
    return build_report_knowledge(_shipped())


def report_knowledge_with(override: Mapping[str, Any] | None) -> ReportKnowledge:
    """The shipped knowledge with a hospital's override mapping merged in (rows by id)."""
    if not override:
        return default_report_knowledge()
    return build_report_knowledge(deep_merge(_shipped(), dict(override)))


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def _fallback_range(row: Mapping[str, Any], sex: str | None) -> tuple[float, float] | None:
    ref = row["reference"]
    if "male" in ref:
        if sex not in ("male", "female"):
            return None  # sex-specific interval, sex unknown: do not guess
        ref = ref[sex]
    return float(ref["low"]), float(ref["high"])


def _critical(value: LabValue, alerts: AlertKnowledge | None) -> tuple[bool, str | None]:
    """(is critical, source) from the alert critical-value table, in the canonical unit."""
    if alerts is None or value.value is None:
        return False, None
    analyte = alerts.by_code.get(f"http://loinc.org|{value.code}")
    if analyte is None:
        return False, None
    rule = analyte.units.get(value.unit or "") if value.unit else None
    if rule is None and (value.unit or "") != analyte.unit:
        if analyte.unit_required:
            return False, None  # unit unknown: cannot compare safely; the lab flag still counts
        canonical = value.value
    else:
        canonical = rule.to_canonical(value.value) if rule is not None else value.value
    for row in alerts.critical.get("rows", []):
        if row.get("analyte") != analyte.id:
            continue
        checks = (
            ("lt", canonical < float(row.get("lt", 0)) - EPS),
            ("le", canonical <= float(row.get("le", 0)) + EPS),
            ("gt", canonical > float(row.get("gt", 0)) + EPS),
            ("ge", canonical >= float(row.get("ge", 0)) - EPS),
        )
        if any(key in row and hit for key, hit in checks):
            return True, str(row.get("source") or row.get("id"))
    return False, None


def explain(
    values: Sequence[LabValue],
    knowledge: ReportKnowledge,
    *,
    alerts: AlertKnowledge | None = None,
    sex: str | None = None,
    lang: str = "zh",
) -> list[Explanation]:
    """Explanations of the abnormal results, emergencies first, then by distance from range.

    A result is abnormal when it lies outside its reference range (the lab's own, else the
    fallback from the standards) or the laboratory flagged it (H/L/A/HH/LL). Results of
    analytes without plain-language content are explained only when critical or flagged.
    """
    lang = "en" if lang == "en" else "zh"
    zh = lang == "zh"
    out: list[Explanation] = []
    for value in values:
        aid = knowledge.by_loinc.get(value.code)
        row = knowledge.analytes.get(aid) if aid else None
        low, high = value.ref_low, value.ref_high
        range_source = "lab"
        if low is None and high is None and row is not None and value.unit == row.get("unit"):
            fallback = _fallback_range(row, sex)
            if fallback is not None:
                low, high = fallback
                range_source = str(row["reference"]["source"])
        side: str | None = None
        percent: float | None = None
        if value.value is not None:
            if high is not None and value.value > high + EPS:
                side = "high"
                percent = (value.value - high) / abs(high) * 100 if high else None
            elif low is not None and value.value < low - EPS:
                side = "low"
                percent = (low - value.value) / abs(low) * 100 if low else None
        flag = (value.flag or "").upper()
        if side is None and flag in ("H", "HH"):
            side = "high"
        elif side is None and flag in ("L", "LL"):
            side = "low"
        elif side is None and flag in ("A", "AA"):
            side = "abnormal"
        critical, critical_source = _critical(value, alerts)
        critical = critical or flag in CRITICAL_FLAGS
        if side is None and not critical:
            continue
        side = side or "abnormal"
        if critical:
            level = "emergency"
        elif percent is not None and percent > knowledge.soon_percent:
            level = "soon"
        else:
            level = "routine"
        name = str(row[lang]) if row is not None else value.display
        unit = f" {value.unit}" if value.unit else ""
        value_text = (_num(value.value) + unit) if value.value is not None else "—"
        range_text = None
        if low is not None and high is not None:
            range_text = f"{_num(low)}–{_num(high)}{unit}"
        elif high is not None:
            range_text = f"≤{_num(high)}{unit}"
        elif low is not None:
            range_text = f"≥{_num(low)}{unit}"
        if row is not None and side in ("high", "low"):
            meaning = str(row[side][lang])
            what = str(row["what"][lang])
        else:
            meaning = (
                "结果异常,具体意义请医生结合病情解释。"
                if zh
                else "The result is abnormal; ask your doctor what it means for you."
            )
            what = ""
        sources = [
            f"reference: {range_source if range_source == 'lab' else knowledge.sources[range_source]}"
        ]
        if critical_source:
            sources.append(f"critical value: {critical_source}")
        out.append(
            Explanation(
                ref=value.ref,
                name=name,
                value_text=value_text,
                range_text=range_text,
                side=side,
                percent=round(percent, 0) if percent is not None else None,
                what=what,
                meaning=meaning,
                advice=knowledge.advice[level][lang],
                level=level,
                source="; ".join(sources),
                when=value.when,
            )
        )
    order = {"emergency": 0, "soon": 1, "routine": 2}
    out.sort(key=lambda e: (order[e.level], -(e.percent or 0)))
    return out


def distance_text(item: Explanation, lang: str) -> str:
    """ "高于上限 20%" / "20% above the upper limit" (or the plain side when no range)."""
    zh = lang != "en"
    if item.percent is None:
        return {
            "high": "偏高" if zh else "high",
            "low": "偏低" if zh else "low",
            "abnormal": "异常" if zh else "abnormal",
        }[item.side]
    pct = f"{item.percent:.0f}%"
    if item.side == "high":
        return f"高于上限 {pct}" if zh else f"{pct} above the upper limit"
    return f"低于下限 {pct}" if zh else f"{pct} below the lower limit"
