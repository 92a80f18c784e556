"""Lung-RADS v2022 (screening) and Fleischner 2017 (incidental) grading, driven by data files.

The thresholds are rows in ``knowledge/imaging/lungrads_v2022.yaml`` and
``knowledge/imaging/fleischner_2017.yaml``; each row cites its guideline table.

References
----------
ACR Lung-RADS v2022 Assessment Categories (Nov 2022); Christensen J et al. CHEST
2024;165(3):738-753, Table 1.
MacMahon H et al. Fleischner Society 2017. Radiology 2017;284(1):228-243.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.loaders import load_yaml

CATEGORY_ORDER = ("1", "2", "3", "4A", "4B", "4X")


@dataclass(frozen=True, slots=True)
class NoduleForRisk:
    """What grading needs of one nodule; ``id`` links back to the nodule list."""

    id: int
    type: str
    mean_diameter_mm: float
    solid_component_mm: float | None
    fleischner_mm: int


@dataclass(frozen=True, slots=True)
class LungRads:
    category: str
    driver_nodule: int | None
    rule_id: str
    management: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": "v2022",
            "category": self.category,
            "driver_nodule": self.driver_nodule,
            "management": self.management,
            "rule_id": self.rule_id,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Fleischner:
    category: str
    recommendation: str
    risk: str
    rule_id: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "recommendation": self.recommendation,
            "risk": self.risk,
            "rule_id": self.rule_id,
            "source": self.source,
        }


@lru_cache(maxsize=1)
def lungrads_table() -> dict[str, Any]:
    data = load_yaml("imaging/lungrads_v2022.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise KnowledgeError("imaging/lungrads_v2022.yaml: needs a 'rules' list")
    for i, row in enumerate(data["rules"]):
        for key in ("rule_id", "category", "when", "source"):
            if key not in row:
                raise KnowledgeError(f"imaging/lungrads_v2022.yaml: rules[{i}] lacks {key!r}")
        if row["category"] not in CATEGORY_ORDER:
            raise KnowledgeError(f"imaging/lungrads_v2022.yaml: rules[{i}].category invalid")
    return data


@lru_cache(maxsize=1)
def fleischner_table() -> dict[str, Any]:
    data = load_yaml("imaging/fleischner_2017.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise KnowledgeError("imaging/fleischner_2017.yaml: needs a 'rules' list")
    for i, row in enumerate(data["rules"]):
        for key in ("rule_id", "when", "low", "high", "source"):
            if key not in row:
                raise KnowledgeError(f"imaging/fleischner_2017.yaml: rules[{i}] lacks {key!r}")
    return data


def _lungrads_row_matches(when: dict[str, Any], n: NoduleForRisk) -> bool:
    if when.get("type") != n.type:
        return False
    d = n.mean_diameter_mm
    if "min_mm" in when and d < float(when["min_mm"]):
        return False
    if "max_mm" in when and d >= float(when["max_mm"]):
        return False
    solid = n.solid_component_mm or 0.0
    if "solid_min_mm" in when and solid < float(when["solid_min_mm"]):
        return False
    return not ("solid_max_mm" in when and solid >= float(when["solid_max_mm"]))


def lung_rads(nodules: list[NoduleForRisk], lang: str = "zh") -> LungRads:
    """Baseline Lung-RADS v2022 category of the exam: the highest over its nodules."""
    table = lungrads_table()
    rows: list[dict[str, Any]] = table["rules"]
    best: tuple[int, dict[str, Any], int | None] | None = None
    for n in nodules:
        for row in rows:
            if _lungrads_row_matches(row["when"], n):
                rank = CATEGORY_ORDER.index(row["category"])
                if best is None or rank > best[0]:
                    best = (rank, row, n.id)
                break
    if best is None:
        row = next(r for r in rows if r["when"].get("type") == "none")
        best = (0, row, None)
    _, row, driver = best
    text = table["management"][row["category"]]
    return LungRads(
        category=row["category"],
        driver_nodule=driver,
        rule_id=row["rule_id"],
        management=text["en" if lang == "en" else "zh"],
        source=row["source"],
    )


def _band(kind: str, mm: int) -> str:
    if kind == "solid":
        return "lt6" if mm < 6 else "6to8" if mm <= 8 else "gt8"
    return "lt6" if mm < 6 else "ge6"


def fleischner(nodules: list[NoduleForRisk], risk: str = "high", lang: str = "zh") -> Fleischner:
    """Fleischner 2017 recommendation, guided by the most suspicious non-calcified nodule."""
    table = fleischner_table()
    candidates = [n for n in nodules if n.type != "calcified"]
    if not candidates:
        none = {
            "zh": "未见需按Fleischner指南处理的非钙化结节",
            "en": "No non-calcified nodule to manage under the Fleischner guideline",
        }
        return Fleischner("none", none["en" if lang == "en" else "zh"], risk, None, table["source"])
    multiple = len(candidates) > 1
    solids = [n for n in candidates if n.type == "solid"]
    subsolids = [n for n in candidates if n.type != "solid"]

    def pick(kind: str, group: list[NoduleForRisk]) -> tuple[dict[str, Any], NoduleForRisk] | None:
        n = max(group, key=lambda g: (g.fleischner_mm, g.id * -1))
        key_kind = kind
        if multiple and kind != "solid":
            key_kind = "subsolid"
        elif kind != "solid":
            key_kind = n.type
        band = _band("solid" if kind == "solid" else "subsolid", n.fleischner_mm)
        for row in table["rules"]:
            w = row["when"]
            if w["kind"] == key_kind and bool(w["multiple"]) == multiple and w["band"] == band:
                return row, n
        return None

    options = [
        p
        for p in (
            pick("solid", solids) if solids else None,
            pick("subsolid", subsolids) if subsolids else None,
        )
        if p is not None
    ]
    if not options:
        raise KnowledgeError("imaging/fleischner_2017.yaml: no row for this nodule pattern")
    # the most suspicious: part-solid over solid over ground-glass at equal band, then size
    order = {"part-solid": 3, "solid": 2, "ground-glass": 1}
    row, _n = max(
        options,
        key=lambda o: (o[1].fleischner_mm >= 6, order.get(o[1].type, 0), o[1].fleischner_mm),
    )
    text = row["high" if risk == "high" else "low"]
    return Fleischner(
        category=str(row["rule_id"]).removeprefix("fleischner."),
        recommendation=text["en" if lang == "en" else "zh"],
        risk=risk,
        rule_id=row["rule_id"],
        source=row["source"],
    )


# --- Chinese rule set (helper ct-lobes): 2021 screening guideline + 2018 expert consensus ---

GUIDELINES = ("lungrads", "fleischner", "china2021")
CHINA_TYPES = ("solid", "part-solid", "ground-glass", "calcified", "none")


@lru_cache(maxsize=1)
def china_table() -> dict[str, Any]:
    """``knowledge/imaging/china_2021.yaml``, validated (every row cites its source)."""
    name = "imaging/china_2021.yaml"
    data = load_yaml(name)
    if not isinstance(data, dict):
        raise KnowledgeError(f"{name}: needs a mapping")
    for part, texts in (("screening", ("management",)), ("incidental", ("low", "high"))):
        rows = data.get(part)
        if not isinstance(rows, list) or not rows:
            raise KnowledgeError(f"{name}: needs a non-empty {part!r} list")
        for i, row in enumerate(rows):
            for key in ("rule_id", "when", "source", *texts):
                if key not in row:
                    raise KnowledgeError(f"{name}: {part}[{i}] lacks {key!r}")
            for key in texts:
                if not all(isinstance(row[key].get(lang), str) for lang in ("zh", "en")):
                    raise KnowledgeError(f"{name}: {part}[{i}].{key} needs zh and en")
            bad = set(row["when"].get("types", [])) - set(CHINA_TYPES)
            if bad or not row["when"].get("types"):
                raise KnowledgeError(f"{name}: {part}[{i}].when.types invalid: {sorted(bad)}")
    return data


def _china_matches(when: dict[str, Any], kind: str, d: float) -> bool:
    if kind not in when["types"]:
        return False
    if "min_mm" in when and d < float(when["min_mm"]):
        return False
    if "max_mm" in when and d >= float(when["max_mm"]):
        return False
    if "gt_mm" in when and d <= float(when["gt_mm"]):
        return False
    return not ("le_mm" in when and d > float(when["le_mm"]))


def china_2021(
    nodules: list[NoduleForRisk], risk: str = "high", lang: str = "zh"
) -> dict[str, Any]:
    """Chinese management: screening (2021 guideline, baseline) and incidental (2018 consensus).

    Screening: the exam takes the most suspicious row (file order) over its nodules, the
    negative row when none is positive. Incidental: over non-calcified nodules, the row with
    the lowest ``rank`` (ties: the larger nodule); ``risk`` picks the low/high-risk text.
    """
    table = china_table()
    key = "en" if lang == "en" else "zh"
    rows: list[dict[str, Any]] = table["screening"]
    best: tuple[int, int | None] | None = None
    for n in nodules:
        for idx, row in enumerate(rows):
            if _china_matches(row["when"], n.type, n.mean_diameter_mm):
                if best is None or idx < best[0]:
                    best = (idx, n.id)
                break
    if best is None:
        best = (next(i for i, r in enumerate(rows) if "none" in r["when"]["types"]), None)
    srow = rows[best[0]]
    screening = {
        "rule_id": srow["rule_id"],
        "level": srow.get("level"),
        "driver_nodule": best[1],
        "management": srow["management"][key],
        "source": srow["source"],
        "needs_review": bool(srow.get("needs_review", True)),
    }
    inc_rows: list[dict[str, Any]] = table["incidental"]
    lead: tuple[int, float, dict[str, Any], int] | None = None
    for n in nodules:
        if n.type == "calcified":
            continue
        for row in inc_rows:
            if _china_matches(row["when"], n.type, n.mean_diameter_mm):
                rank = int(row.get("rank", 99))
                if lead is None or (rank, -n.mean_diameter_mm) < (lead[0], -lead[1]):
                    lead = (rank, n.mean_diameter_mm, row, n.id)
                break
    if lead is None:
        incidental: dict[str, Any] = {
            "rule_id": None,
            "driver_nodule": None,
            "recommendation": {
                "zh": "未见需按中国专家共识处理的非钙化结节",
                "en": "No non-calcified nodule to manage under the Chinese expert consensus",
            }[key],
            "risk": risk,
            "source": table["sources"]["incidental"],
            "needs_review": True,
        }
    else:
        _, _, row, nid = lead
        incidental = {
            "rule_id": row["rule_id"],
            "driver_nodule": nid,
            "recommendation": row["high" if risk == "high" else "low"][key],
            "risk": risk,
            "source": row["source"],
            "needs_review": bool(row.get("needs_review", True)),
        }
    return {
        "guideline": "china2021",
        "version": str(table.get("version", "2021")),
        "screening": screening,
        "incidental": incidental,
        "needs_review": bool(table.get("needs_review", True)),
        "note": str(table.get("size_note", "")).strip(),
    }
