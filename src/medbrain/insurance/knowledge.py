"""Load the CHS-DRG 1.1 grouping tables and the compliance rules (data files, never code).

The grouping tables live in ``knowledge/insurance/chs_drg_1_1/`` (see the README there for
their provenance and how they were converted); the compliance risk points in
``knowledge/insurance/rules.yaml``. Both are validated at load time: a malformed row is a
:class:`~medbrain.core.errors.KnowledgeError` naming the file and the row.

References
----------
国家医疗保障局《国家医疗保障疾病诊断相关分组(CHS-DRG)分组方案(1.1版)》(2021).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge

TABLES_DIR = "chs_drg_1_1"

#: ADRG entry-condition vocabulary (``when`` in groups.yaml); anything else is a load error.
ADRG_CLAUSES = frozenset(
    {
        "pdx_in",
        "main_proc_in",
        "main_proc_valid",
        "any_proc_in",
        "any_proc_in_b",
        "any_dx_in",
        "no_valid_proc",
    }
)
ADRG_PARAM_CLAUSES = frozenset({"age_days_max", "weight_g_below", "weight_g_from", "proc_sets"})
MDC_CLAUSES = frozenset(
    {
        "pdx_in",
        "sex=male",
        "sex=female",
        "age_years_max=0",
        "main_proc_valid",
        "trauma_regions_min=2",
    }
)
DRG_SPLITS = frozenset({"always", "mcc", "cc"})


@dataclass(frozen=True, slots=True)
class DrgSplit:
    drg: str
    when: str  # always | mcc (MCC) | cc (MCC or CC)


@dataclass(frozen=True, slots=True)
class Adrg:
    code: str
    name_zh: str
    mdc: str
    clauses: tuple[str, ...]
    params: Mapping[str, Any]
    splits: tuple[DrgSplit, ...]
    pdx: frozenset[str]
    procs: frozenset[str]
    procs_b: frozenset[str]
    proc_labels: Mapping[str, str]

    @property
    def surgical(self) -> bool:
        """ADRGs whose second letter is A–J are the surgical part (外科手术部分) of an MDC."""
        return "A" <= self.code[1] <= "J"


@dataclass(frozen=True, slots=True)
class Mdc:
    code: str
    name_zh: str
    name_en: str
    clauses: tuple[str, ...]
    ambiguous_after: int | None
    ambiguous_enabled: bool
    adrgs: tuple[Adrg, ...]


@dataclass(frozen=True, slots=True)
class DrgTables:
    """Everything the grouper needs, read once per process."""

    version: str
    source: str
    mdcs: tuple[Mdc, ...]
    mdc_pdx: Mapping[str, frozenset[str]]  # MDC -> principal diagnoses
    trauma_regions: Mapping[str, str]  # MDC Z: diagnosis -> body region (多发严重创伤部位)
    drg_names: Mapping[str, str]
    drg_weights: Mapping[str, float]
    mcc: Mapping[str, str]  # code -> exclusion table
    cc: Mapping[str, str]
    exclusion: Mapping[str, str]  # principal code -> exclusion table
    valid_procedures: frozenset[str]
    dx_names: Mapping[str, str]
    proc_names: Mapping[str, str]
    dx_alias: Mapping[str, str]
    proc_alias: Mapping[str, str]
    adrg_by_code: Mapping[str, Adrg] = field(default_factory=dict)

    def adrg_name(self, code: str) -> str:
        adrg = self.adrg_by_code.get(code)
        return adrg.name_zh if adrg is not None else ""


def _pkg_dir() -> Traversable:
    return resources.files("medbrain.knowledge").joinpath("insurance")


def _rows(file: Traversable) -> Iterator[dict[str, str]]:
    with file.open("r", encoding="utf-8") as handle:
        yield from csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def _clauses(raw: Any, where: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    if not isinstance(raw, list):
        raise KnowledgeError(f"{where}: 'when' must be a list")
    flags: list[str] = []
    params: dict[str, Any] = {}
    for item in raw:
        text = str(item)
        name, sep, value = text.partition("=")
        if sep and name in ADRG_PARAM_CLAUSES:
            if name == "proc_sets":
                params[name] = tuple(frozenset(part.split("+")) for part in value.split("|"))
            else:
                params[name] = int(value)
            flags.append(name)
        elif text in ADRG_CLAUSES:
            flags.append(text)
        else:
            raise KnowledgeError(f"{where}: unknown condition {text!r}")
    return tuple(flags), params


@lru_cache(maxsize=2)
def load_drg_tables(directory: str | None = None) -> DrgTables:
    """The CHS-DRG 1.1 tables shipped with MedBrain (or another directory of the same layout)."""
    base: Traversable = Path(directory) if directory else _pkg_dir().joinpath(TABLES_DIR)
    try:
        doc = yamlio.parse(base.joinpath("groups.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeError(f"{base}: groups.yaml missing") from exc
    codes: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for row in _rows(base.joinpath("adrg_codes.tsv")):
        codes.setdefault(row["adrg"], {}).setdefault(row["role"], []).append(
            (row["code"], row["set"] or "")
        )
    mdc_pdx: dict[str, set[str]] = {}
    regions: dict[str, str] = {}
    for row in _rows(base.joinpath("mdc_principal_dx.tsv")):
        mdc_pdx.setdefault(row["mdc"], set()).add(row["code"])
        if row["region"]:
            regions[row["code"]] = row["region"]
    mdcs: list[Mdc] = []
    by_code: dict[str, Adrg] = {}
    for m in doc.get("mdcs", []):
        code = str(m["mdc"])
        for clause in m.get("when", []):
            if clause not in MDC_CLAUSES:
                raise KnowledgeError(f"groups.yaml: MDC {code}: unknown condition {clause!r}")
        adrgs: list[Adrg] = []
        for a in m.get("adrgs", []):
            acode = str(a["adrg"])
            flags, params = _clauses(a.get("when", []), f"groups.yaml: ADRG {acode}")
            splits = []
            for spec in a.get("drgs", []):
                drg, _, when = str(spec).partition(":")
                if when not in DRG_SPLITS:
                    raise KnowledgeError(f"groups.yaml: ADRG {acode}: bad split {spec!r}")
                splits.append(DrgSplit(drg, when))
            table = codes.get(acode, {})
            labels: dict[str, str] = {}
            for c, label in table.get("proc", []):
                if label:
                    labels.setdefault(c, label)
            adrg = Adrg(
                code=acode,
                name_zh=str(a.get("name_zh", "")),
                mdc=code,
                clauses=flags,
                params=params,
                splits=tuple(splits),
                pdx=frozenset(c for c, _ in table.get("pdx", [])),
                procs=frozenset(c for c, _ in table.get("proc", [])),
                procs_b=frozenset(c for c, _ in table.get("proc_b", [])),
                proc_labels=labels,
            )
            adrgs.append(adrg)
            by_code[acode] = adrg
        mdcs.append(
            Mdc(
                code=code,
                name_zh=str(m["name_zh"]),
                name_en=str(m["name_en"]),
                clauses=tuple(m.get("when", [])),
                ambiguous_after=m.get("ambiguous_after"),
                ambiguous_enabled=bool(m.get("ambiguous_enabled", False)),
                adrgs=tuple(adrgs),
            )
        )
    names: dict[str, str] = {}
    weights: dict[str, float] = {}
    for row in _rows(base.joinpath("drgs.tsv")):
        names[row["drg"]] = row["name_zh"]
        weights[row["drg"]] = float(row["weight"])
    mcc: dict[str, str] = {}
    cc: dict[str, str] = {}
    for row in _rows(base.joinpath("cc_mcc.tsv")):
        (mcc if row["level"] == "MCC" else cc)[row["code"]] = row["exclusion_table"]
    exclusion = {
        r["principal_code"]: r["exclusion_table"] for r in _rows(base.joinpath("cc_exclusion.tsv"))
    }
    valid = frozenset(r["code"] for r in _rows(base.joinpath("valid_procedures.tsv")))
    dx_names = {r["code"]: r["name_zh"] for r in _rows(base.joinpath("icd10_diagnoses.tsv"))}
    proc_names = {r["code"]: r["name_zh"] for r in _rows(base.joinpath("icd9cm3_procedures.tsv"))}
    dx_alias: dict[str, str] = {}
    proc_alias: dict[str, str] = {}
    for row in _rows(base.joinpath("code_aliases.tsv")):
        (dx_alias if row["kind"] == "dx" else proc_alias)[row["code"]] = row["grouper_code"]
    return DrgTables(
        version=str(doc.get("version", "")),
        source=str(doc.get("source", "")),
        mdcs=tuple(mdcs),
        mdc_pdx={k: frozenset(v) for k, v in mdc_pdx.items()},
        trauma_regions=regions,
        drg_names=names,
        drg_weights=weights,
        mcc=mcc,
        cc=cc,
        exclusion=exclusion,
        valid_procedures=valid,
        dx_names=dx_names,
        proc_names=proc_names,
        dx_alias=dx_alias,
        proc_alias=proc_alias,
        adrg_by_code=by_code,
    )


def with_weights(tables: DrgTables, weights: Mapping[str, float]) -> DrgTables:
    """The same tables with a hospital's (统筹地区's) own relative weights merged in."""
    from dataclasses import replace

    merged = dict(tables.drg_weights)
    for drg, weight in weights.items():
        if drg not in tables.drg_names:
            raise KnowledgeError(f"weights override: unknown DRG {drg!r}")
        merged[drg] = float(weight)
    return replace(tables, drg_weights=merged)


# -- compliance rules -----------------------------------------------------------------------

RULE_FIELDS = ("id", "family", "category", "severity", "zh", "en", "source")
SEVERITIES = ("info", "warning", "critical")


def _load_rules_doc() -> dict[str, Any]:
    text = _pkg_dir().joinpath("rules.yaml").read_text(encoding="utf-8")
    doc = yamlio.parse(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise KnowledgeError("insurance/rules.yaml: top level must have a 'rules' list")
    return doc


@lru_cache(maxsize=1)
def _shipped_rules() -> dict[str, Any]:
    return _load_rules_doc()


def load_rules(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The shipped compliance rules, with a hospital's overrides deep-merged (rows by ``id``).

    An override row ``{id: ..., enabled: false}`` disables a rule; ``{id: ..., params: {...}}``
    changes its thresholds; top-level ``settings`` (e.g. ``readmission_days``) merge too.
    """
    doc = _shipped_rules()
    if overrides:
        doc = deep_merge(doc, dict(overrides))
    seen: set[str] = set()
    for index, row in enumerate(doc["rules"]):
        where = f"insurance/rules.yaml: rules[{index}]"
        if not isinstance(row, dict):
            raise KnowledgeError(f"{where}: must be a mapping")
        for key in RULE_FIELDS:
            if not row.get(key):
                raise KnowledgeError(f"{where} ({row.get('id', '?')}): missing {key!r}")
        if row["severity"] not in SEVERITIES:
            raise KnowledgeError(f"{where} ({row['id']}): bad severity {row['severity']!r}")
        if row["id"] in seen:
            raise KnowledgeError(f"{where}: duplicate id {row['id']!r}")
        seen.add(row["id"])
    return doc
