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
CHINA_LEVELS = ("negative", "positive", "positive-high")
CHINA_CHANGES = ("new", "grown", "solid_grown")


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
    growth = data.get("growth")
    rows = data.get("followup")
    if not isinstance(growth, dict) or not isinstance(rows, list) or not rows:
        raise KnowledgeError(f"{name}: needs a 'growth' mapping and a non-empty 'followup' list")
    for key in ("min_increase_mm", "solid_min_increase_mm", "source"):
        if key not in growth:
            raise KnowledgeError(f"{name}: growth lacks {key!r}")
    for i, row in enumerate(rows):
        for key in ("rule_id", "when", "level", "management", "source"):
            if key not in row:
                raise KnowledgeError(f"{name}: followup[{i}] lacks {key!r}")
        if row["level"] not in CHINA_LEVELS or row["when"].get("change") not in CHINA_CHANGES:
            raise KnowledgeError(f"{name}: followup[{i}] level or when.change invalid")
        if not all(isinstance(row["management"].get(lang), str) for lang in ("zh", "en")):
            raise KnowledgeError(f"{name}: followup[{i}].management needs zh and en")
    for i, row in enumerate(data["screening"]):
        if row.get("level") not in CHINA_LEVELS:
            raise KnowledgeError(f"{name}: screening[{i}].level must be one of {CHINA_LEVELS}")
    return data


@dataclass(frozen=True, slots=True)
class NoduleChange:
    """A current nodule compared with the prior study (``medbrain.imaging.followup``):
    ``status`` new | grown | stable | shrunk; size changes in mm (``None`` for a new one)."""

    status: str
    diameter_change_mm: float | None
    solid_change_mm: float | None
    prior_type: str | None


def china_change(change: NoduleChange, kind: str, growth: dict[str, Any]) -> str | None:
    """The Chinese rule set's reading of one change: ``new``, ``grown``, ``solid_grown``
    (a part-solid nodule whose solid component is new or grew) or ``None`` (stable etc.)."""
    if change.status == "new":
        return "new"
    if kind == "part-solid" and (
        change.prior_type == "ground-glass"
        or (change.solid_change_mm or 0.0) >= float(growth["solid_min_increase_mm"])
    ):
        return "solid_grown"
    if (change.diameter_change_mm or 0.0) >= float(growth["min_increase_mm"]):
        return "grown"
    return None


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
    nodules: list[NoduleForRisk],
    risk: str = "high",
    lang: str = "zh",
    changes: dict[int, NoduleChange] | None = None,
) -> dict[str, Any]:
    """Chinese management: screening (2021 guideline) and incidental (2018 consensus).

    Screening: each nodule takes its first matching size row and, with a prior study
    (``changes`` by current nodule id), its first matching ``followup`` row (new, grown, new or
    growing solid component; growth as the file's ``growth`` block defines it) when that one
    is at least as suspicious; the exam takes its most suspicious nodule (level, then follow-up
    rows, then file order), the negative row when none matches. Incidental: over non-calcified
    nodules, the row with the lowest ``rank`` (ties: the larger nodule); ``risk`` picks the
    low/high-risk text.
    """
    table = china_table()
    key = "en" if lang == "en" else "zh"
    rows: list[dict[str, Any]] = table["screening"]
    follow_rows: list[dict[str, Any]] = table["followup"]
    growth: dict[str, Any] = table["growth"]
    best: tuple[tuple[int, int, int], dict[str, Any], int | None, str | None] | None = None
    for n in nodules:
        picked: tuple[tuple[int, int, int], dict[str, Any], str | None] | None = None
        for idx, row in enumerate(rows):
            if _china_matches(row["when"], n.type, n.mean_diameter_mm):
                picked = ((CHINA_LEVELS.index(row["level"]), 0, -idx), row, None)
                break
        change = (changes or {}).get(n.id)
        reading = china_change(change, n.type, growth) if change is not None else None
        if reading is not None:
            for idx, row in enumerate(follow_rows):
                when = row["when"]
                if when["change"] == reading and _china_matches(when, n.type, n.mean_diameter_mm):
                    order = (CHINA_LEVELS.index(row["level"]), 1, -idx)
                    if picked is None or order[0] >= picked[0][0]:
                        picked = (order, row, reading)
                    break
        if picked is not None and (best is None or picked[0] > best[0]):
            best = (picked[0], picked[1], n.id, picked[2])
    if best is None:
        srow = next(r for r in rows if "none" in r["when"]["types"])
        best = ((0, 0, 0), srow, None, None)
    _, srow, driver, reading = best
    screening = {
        "rule_id": srow["rule_id"],
        "level": srow.get("level"),
        "driver_nodule": driver,
        "change": reading,
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
        "compared_with_prior": changes is not None,
        "growth": {
            "min_increase_mm": float(growth["min_increase_mm"]),
            "solid_min_increase_mm": float(growth["solid_min_increase_mm"]),
            "source": str(growth["source"]).strip(),
            "needs_review": bool(growth.get("needs_review", True)),
        },
        "needs_review": bool(table.get("needs_review", True)),
        "note": str(table.get("size_note", "")).strip(),
    }
