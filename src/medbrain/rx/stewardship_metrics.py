"""Antimicrobial use metrics over a period: use rate, DDDs per 100 patient-days, graded use.

Pure: prescriptions (already parsed) and patient-days in, numbers out.

* **抗菌药物使用强度** (antimicrobial use density, AUD) = DDDs consumed by inpatients × 100 /
  patient-days of the same inpatients in the period. One item's DDDs = daily amount × days /
  the WHO DDD for the drug and route (oral "O" or parenteral "P").
* **住院患者抗菌药物使用率** = inpatient encounters with ≥ 1 antimicrobial / inpatient encounters.
* **门诊/急诊抗菌药物处方比例** = outpatient (emergency) prescriptions with ≥ 1 antimicrobial /
  all outpatient (emergency) prescriptions.
* Graded prescribing: antimicrobial items by grade (非限制 / 限制 / 特殊) and prescriber level;
  a *violation* is an item above the prescriber's privilege (第二十四条) or a special-grade
  item in an outpatient prescription (第二十八条).

References
----------
WHO Collaborating Centre for Drug Statistics Methodology, *Guidelines for ATC classification and
DDD assignment* and ATC/DDD Index 2024; 《抗菌药物临床应用管理办法》(卫生部令第84号, 2012)
第二条, 第六条, 第二十四条, 第二十八条; 《2012年全国抗菌药物临床应用专项整治活动方案》
(卫办医政发〔2012〕32号) (targets: AUD ≤ 40, inpatient use ≤ 60 %, outpatient ≤ 20 %).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.rx.knowledge import Drug, RxKnowledge, normalize_text
from medbrain.rx.model import Item, Prescription

ROUTE_GROUP = {"oral": "O", "sublingual": "O", "iv": "P", "im": "P", "sc": "P"}
UNIT_FACTORS = {  # DDD unit → drug unit → factor
    ("g", "mg"): 1000.0,
    ("mg", "mg"): 1.0,
    ("g", "ug"): 1_000_000.0,
    ("mg", "ug"): 1000.0,
    ("MU", "IU"): 1_000_000.0,
}
UNKNOWN_LEVEL = "?"


@dataclass(frozen=True, slots=True)
class DddEntry:
    drug_id: str
    atc: str
    ddd: Mapping[str, tuple[float, str]]  # "O"/"P" → (value, unit)
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DddTable:
    entries: Mapping[str, DddEntry]
    prefixes: tuple[str, ...]
    targets: Mapping[str, float]
    source: str
    targets_source: str
    antimicrobial_source: str
    version: str

    def is_antimicrobial(self, drug: Drug) -> bool:
        if drug.id in self.entries:
            return True
        return bool(drug.atc) and any(str(drug.atc).startswith(p) for p in self.prefixes)

    def ddd_in_drug_unit(self, drug: Drug, route: str | None) -> float | None:
        """The drug's DDD by this route, in the drug's own unit (None when not defined)."""
        entry = self.entries.get(drug.id)
        group = ROUTE_GROUP.get(route or "")
        if entry is None or group is None or group not in entry.ddd:
            return None
        value, unit = entry.ddd[group]
        factor = UNIT_FACTORS.get((unit, drug.unit))
        return value * factor if factor is not None else None


def _read_ddd_yaml() -> dict[str, Any]:
    text = (
        resources.files("medbrain.knowledge")
        .joinpath("rx")
        .joinpath("ddd.yaml")
        .read_text(encoding="utf-8")
    )
    data = yamlio.parse(text)
    if not isinstance(data, dict):
        raise KnowledgeError("rx/ddd.yaml: top level must be a mapping")
    return data


def build_ddd_table(raw: Mapping[str, Any], kb: RxKnowledge) -> DddTable:
    """Validate a DDD document (the shape of ``knowledge/rx/ddd.yaml``) against the drugs.

    Raises
    ------
    KnowledgeError
        Unknown drug id, route other than O/P, unit other than g/mg/MU, non-positive value.
    """
    entries: dict[str, DddEntry] = {}
    rows = raw.get("ddd")
    if not isinstance(rows, Mapping):
        raise KnowledgeError("rx/ddd.yaml: ddd: must map drug ids to DDDs")
    for drug_id, row in rows.items():
        where = f"rx/ddd.yaml: ddd.{drug_id}"
        if drug_id not in kb.drugs:
            raise KnowledgeError(f"{where}: unknown drug id")
        if not isinstance(row, Mapping) or not isinstance(row.get("atc"), str):
            raise KnowledgeError(f"{where}: needs an atc code")
        by_route: dict[str, tuple[float, str]] = {}
        for group in ("O", "P"):
            value = row.get(group)
            if value is None:
                continue
            if (
                not isinstance(value, list)
                or len(value) != 2
                or isinstance(value[0], bool)
                or not isinstance(value[0], int | float)
                or value[0] <= 0
                or value[1] not in ("g", "mg", "MU")
            ):
                raise KnowledgeError(f"{where}.{group}: must be [positive value, g|mg|MU]")
            by_route[group] = (float(value[0]), str(value[1]))
        if not by_route:
            raise KnowledgeError(f"{where}: give an O or P DDD")
        entries[str(drug_id)] = DddEntry(
            drug_id=str(drug_id), atc=row["atc"], ddd=by_route, note=row.get("note")
        )
    targets_raw = raw.get("targets") or {}
    targets = {
        str(k): float(v)
        for k, v in targets_raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    for name in ("source",):
        if not isinstance(raw.get(name), str):
            raise KnowledgeError(f"rx/ddd.yaml: {name}: required text is missing")
    return DddTable(
        entries=entries,
        prefixes=tuple(str(p) for p in raw.get("antimicrobial_atc_prefixes") or ()),
        targets=targets,
        source=str(raw["source"]),
        targets_source=str(targets_raw.get("source", "")),
        antimicrobial_source=str(raw.get("antimicrobial_source", "")),
        version=str(raw.get("version", "?")),
    )


def load_ddd_table(kb: RxKnowledge, overrides: Mapping[str, Any] | None = None) -> DddTable:
    """The shipped DDD table, with a hospital's ``ddd`` entries merged over it."""
    raw = _read_ddd_yaml()
    if overrides:
        raw = {**raw, "ddd": {**raw.get("ddd", {}), **dict(overrides)}}
    return build_ddd_table(raw, kb)


# -- one prescription ----------------------------------------------------------------------------


def item_ddds(item: Item, table: DddTable) -> float | None:
    """DDDs of one item: daily amount × days ÷ DDD (None when the amount or DDD is unknown)."""
    if item.drug is None or item.daily_amount is None:
        return None
    ddd = table.ddd_in_drug_unit(item.drug, item.route)
    if ddd is None:
        return None
    days = item.days if item.days is not None and item.days > 0 else 1.0
    return item.daily_amount * days / ddd


@dataclass(frozen=True, slots=True)
class UseItem:
    drug_id: str
    name: str
    atc: str | None
    route: str | None
    ddds: float | None
    grade: str | None


@dataclass(frozen=True, slots=True)
class Use:
    """The antimicrobial items of one prescription (one encounter) and its context."""

    key: str
    setting: str
    department: str
    patient_days: float
    prescriber: str | None
    prescriber_level: str | None
    items: tuple[UseItem, ...] = field(default_factory=tuple)


def use_of(
    prescription: Prescription,
    table: DddTable,
    kb: RxKnowledge,
    *,
    key: str,
    patient_days: float = 0.0,
    prescriber: str | None = None,
    lang: str = "zh",
) -> Use:
    items = []
    for item in prescription.items:
        drug = item.drug
        if drug is None or not table.is_antimicrobial(drug):
            continue
        items.append(
            UseItem(
                drug_id=drug.id,
                name=drug.name(lang),
                atc=drug.atc,
                route=item.route,
                ddds=item_ddds(item, table),
                grade=kb.antimicrobial.grade(drug.id, item.route),
            )
        )
    return Use(
        key=key,
        setting=prescription.setting,
        department=prescription.department or "—",
        patient_days=patient_days,
        prescriber=prescriber,
        prescriber_level=prescription.prescriber_level,
        items=tuple(items),
    )


# -- a period ------------------------------------------------------------------------------------


def aud(ddds: float, patient_days: float) -> float | None:
    """DDDs per 100 patient-days (None without patient-days)."""
    return ddds * 100.0 / patient_days if patient_days > 0 else None


def _pct(part: int, whole: int) -> float | None:
    return part * 100.0 / whole if whole else None


def _violation(use: Use, item: UseItem, kb: RxKnowledge) -> bool:
    am = kb.antimicrobial
    if item.grade is None:
        return False
    if item.grade == "特殊" and use.setting == "outpatient":
        return True
    if not use.prescriber_level:
        return False
    allowed = am.prescriber_levels.get(normalize_text(use.prescriber_level))
    if allowed is None:
        return False
    return am.grade_rank.get(item.grade, 0) > am.grade_rank.get(allowed, 0)


def summarize(uses: Iterable[Use], table: DddTable, kb: RxKnowledge) -> dict[str, Any]:
    """The period's stewardship numbers (JSON-ready; percentages and AUD rounded to 0.01)."""
    settings: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "with": 0})
    dept: dict[str, dict[str, float]] = defaultdict(
        lambda: {"encounters": 0, "with": 0, "patient_days": 0.0, "ddds": 0.0}
    )
    drugs: dict[str, dict[str, Any]] = {}
    graded: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"items": 0, "violations": 0}
    )
    prescribers: dict[str, dict[str, Any]] = {}
    unconverted: set[str] = set()
    in_days = in_ddds = 0.0
    for use in uses:
        has = bool(use.items)
        s = settings[use.setting]
        s["n"] += 1
        s["with"] += int(has)
        inpatient = use.setting == "inpatient"
        if inpatient:
            d = dept[use.department]
            d["encounters"] += 1
            d["with"] += int(has)
            d["patient_days"] += use.patient_days
            in_days += use.patient_days
        for item in use.items:
            if item.ddds is None:
                unconverted.add(item.name)
            elif inpatient:
                dept[use.department]["ddds"] += item.ddds
                in_ddds += item.ddds
                row = drugs.setdefault(
                    item.drug_id,
                    {"drug_id": item.drug_id, "name": item.name, "atc": item.atc, "ddds": 0.0},
                )
                row["ddds"] += item.ddds
            if item.grade is not None:
                level = use.prescriber_level or UNKNOWN_LEVEL
                bad = _violation(use, item, kb)
                g = graded[(item.grade, level)]
                g["items"] += 1
                g["violations"] += int(bad)
                if item.grade != "非限制" or bad:
                    who = use.prescriber or UNKNOWN_LEVEL
                    p = prescribers.setdefault(
                        who,
                        {"prescriber": who, "level": level, "限制": 0, "特殊": 0, "violations": 0},
                    )
                    if item.grade in ("限制", "特殊"):
                        p[item.grade] += 1
                    p["violations"] += int(bad)

    def r(x: float | None) -> float | None:
        return round(x, 2) if x is not None else None

    def rate(setting: str) -> dict[str, Any]:
        s = settings.get(setting, {"n": 0, "with": 0})
        return {
            "prescriptions": s["n"],
            "with_antimicrobial": s["with"],
            "rate_pct": r(_pct(s["with"], s["n"])),
        }

    inpatient_rate = rate("inpatient")
    by_department: list[dict[str, Any]] = sorted(
        (
            {
                "department": name,
                "encounters": int(v["encounters"]),
                "with_antimicrobial": int(v["with"]),
                "use_rate_pct": r(_pct(int(v["with"]), int(v["encounters"]))),
                "patient_days": r(v["patient_days"]),
                "ddds": r(v["ddds"]),
                "aud": r(aud(v["ddds"], v["patient_days"])),
            }
            for name, v in dept.items()
        ),
        key=lambda row: (-float(row["aud"] or 0.0), str(row["department"])),
    )
    by_drug = sorted(
        (
            {
                **row,
                "ddds": r(row["ddds"]),
                "aud": r(aud(row["ddds"], in_days)),
                "share_pct": r(row["ddds"] * 100.0 / in_ddds if in_ddds else None),
            }
            for row in drugs.values()
        ),
        key=lambda row: (-float(row["ddds"] or 0.0), str(row["drug_id"])),
    )
    grade_order = {g: n for n, g in enumerate(("非限制", "限制", "特殊"))}
    return {
        "inpatient": {
            "encounters": inpatient_rate["prescriptions"],
            "with_antimicrobial": inpatient_rate["with_antimicrobial"],
            "use_rate_pct": inpatient_rate["rate_pct"],
            "patient_days": r(in_days),
            "ddds": r(in_ddds),
            "aud": r(aud(in_ddds, in_days)),
        },
        "outpatient": rate("outpatient"),
        "emergency": rate("emergency"),
        "by_department": by_department,
        "by_drug": by_drug,
        "graded": sorted(
            (
                {"grade": g, "prescriber_level": lvl, **counts}
                for (g, lvl), counts in graded.items()
            ),
            key=lambda row: (grade_order.get(str(row["grade"]), 9), str(row["prescriber_level"])),
        ),
        "by_prescriber": sorted(
            prescribers.values(),
            key=lambda p: (-p["violations"], -p["特殊"], -p["限制"], p["prescriber"]),
        ),
        "unconverted": sorted(unconverted),
        "targets": dict(table.targets),
        "sources": {
            "ddd": table.source,
            "targets": table.targets_source,
            "antimicrobial": table.antimicrobial_source,
            "grades": kb.antimicrobial.source,
        },
    }


def summarize_prescriptions(
    prescriptions: Sequence[tuple[str, Prescription, float, str | None]],
    table: DddTable,
    kb: RxKnowledge,
    lang: str = "zh",
) -> dict[str, Any]:
    """``(key, prescription, patient_days, prescriber)`` tuples → :func:`summarize`."""
    return summarize(
        (
            use_of(p, table, kb, key=key, patient_days=days, prescriber=who, lang=lang)
            for key, p, days, who in prescriptions
        ),
        table,
        kb,
    )
