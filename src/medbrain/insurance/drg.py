"""A data-driven CHS-DRG 1.1 grouper: MDC → ADRG → DRG with CC/MCC and exclusion tables.

The decision logic is the standard's: the first MDC (in the standard's order: A, P, Y, Z,
M, N, B, …, X) whose entry conditions the case meets is tried; inside it the first ADRG
whose conditions hold (principal diagnosis, main procedure, any procedure of two lists,
neonatal age and birth weight, …); inside the ADRG the first DRG split whose severity
condition holds (``…1`` with an MCC, ``…3`` with an MCC or CC, ``…5`` without, ``…9`` not
split). A secondary diagnosis counts as CC/MCC only when it is not in the exclusion table of
the principal diagnosis (CC/MCC 排除表). A case whose MDC matches but no ADRG does goes on to
the next MDC; no MDC at all gives ``0000`` (无法入组). The tables (codes, lists, order) are data
in ``knowledge/insurance/chs_drg_1_1``; nothing clinical is written in this module.

The result keeps the path of decisions so a coder or insurance officer can see *why*.

References
----------
国家医疗保障局《国家医疗保障疾病诊断相关分组(CHS-DRG)分组方案(1.1版)》(2021) and
《CHS-DRG 细分组方案(1.0版)》技术规范 (MDC/ADRG/DRG naming: 4th character 1 = 伴严重并发症或合并症,
3 = 伴并发症或合并症, 5 = 不伴并发症或合并症, 9 = 未作区分; ``QY`` = 歧义组, ``0000`` = 无法入组).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medbrain.core.i18n import t
from medbrain.insurance.frontpage import FrontPage, Issue
from medbrain.insurance.knowledge import Adrg, DrgTables, Mdc

UNGROUPABLE = "0000"


@dataclass(frozen=True, slots=True)
class Step:
    """One decision on the way to the group: ``kind`` is mdc | adrg | drg | cc | stop."""

    kind: str
    code: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "code": self.code, "text": self.text}


@dataclass(frozen=True, slots=True)
class DrgResult:
    case_id: str
    status: str  # grouped | ambiguous | ungroupable
    drg: str
    drg_name: str = ""
    weight: float = 0.0
    mdc: str | None = None
    mdc_name: str = ""
    adrg: str | None = None
    adrg_name: str = ""
    severity: str | None = None  # MCC | CC | None (the split that decided the DRG)
    severity_code: str | None = None  # the secondary diagnosis that made it MCC/CC
    complications: tuple[tuple[str, str], ...] = ()  # (code, MCC|CC) counted
    excluded: tuple[str, ...] = ()  # CC/MCC codes excluded by the principal's table
    path: tuple[Step, ...] = ()
    reasons: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = ()
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def surgical(self) -> bool:
        return self.adrg is not None and "A" <= self.adrg[1] <= "J"

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "drg": self.drg,
            "drg_name": self.drg_name,
            "weight": self.weight,
            "mdc": self.mdc,
            "mdc_name": self.mdc_name,
            "adrg": self.adrg,
            "adrg_name": self.adrg_name,
            "severity": self.severity,
            "severity_code": self.severity_code,
            "complications": [{"code": c, "level": lvl} for c, lvl in self.complications],
            "excluded": list(self.excluded),
            "path": [s.to_dict() for s in self.path],
            "reasons": list(self.reasons),
            "issues": [i.to_dict(lang) for i in self.issues],
            "version": self.version,
        }


def _map_codes(
    fp: FrontPage, tables: DrgTables
) -> tuple[str | None, tuple[str, ...], tuple[str, ...], list[Issue]]:
    """Map codes through the alias table; unknown codes become issues (listed, never guessed)."""
    issues: list[Issue] = []
    principal = fp.principal_diagnosis
    if principal is not None:
        principal = tables.dx_alias.get(principal, principal)
        if principal not in tables.dx_names:
            issues.append(
                Issue(
                    "principal_invalid",
                    "principal_diagnosis",
                    True,
                    {"code": fp.principal_diagnosis},
                )
            )
    secondary: list[str] = []
    for index, raw in enumerate(fp.secondary_diagnoses):
        code = tables.dx_alias.get(raw, raw)
        if code in tables.dx_names:
            secondary.append(code)
        else:
            issues.append(
                Issue("diagnosis_unknown", f"secondary_diagnoses[{index}]", False, {"code": raw})
            )
    procedures: list[str] = []
    for index, raw in enumerate(fp.procedures):
        code = tables.proc_alias.get(raw, raw)
        if code in tables.proc_names:
            procedures.append(code)
        else:
            issues.append(
                Issue("procedure_unknown", f"procedures[{index}]", index == 0, {"code": raw})
            )
    return principal, tuple(secondary), tuple(procedures), issues


def _complications(
    principal: str, secondary: tuple[str, ...], tables: DrgTables
) -> tuple[list[tuple[str, str]], list[str], str | None]:
    table = tables.exclusion.get(principal)
    counted: list[tuple[str, str]] = []
    excluded: list[str] = []
    for code in secondary:
        if code == principal:
            continue
        for level, source in (("MCC", tables.mcc), ("CC", tables.cc)):
            own = source.get(code)
            if own is None:
                continue
            if table is not None and own == table:
                excluded.append(code)
            else:
                counted.append((code, level))
            break
    return counted, excluded, table


def _mdc_matches(
    mdc: Mdc,
    fp: FrontPage,
    principal: str,
    dx: tuple[str, ...],
    procs: tuple[str, ...],
    tables: DrgTables,
) -> bool:
    for clause in mdc.clauses:
        if clause == "pdx_in":
            if principal not in tables.mdc_pdx.get(mdc.code, ()):
                return False
        elif clause == "sex=male":
            if fp.sex != "male":
                return False
        elif clause == "sex=female":
            if fp.sex != "female":
                return False
        elif clause == "age_years_max=0":
            if fp.age_years != 0:
                return False
        elif clause == "main_proc_valid":
            if not (procs and procs[0] in tables.valid_procedures):
                return False
        elif clause == "trauma_regions_min=2":
            regions = {tables.trauma_regions[d] for d in dx if d in tables.trauma_regions}
            if len(regions) < 2:
                return False
    return True


def _adrg_matches(
    adrg: Adrg,
    fp: FrontPage,
    principal: str,
    dx: tuple[str, ...],
    procs: tuple[str, ...],
    tables: DrgTables,
) -> bool:
    params = adrg.params
    for clause in adrg.clauses:
        if clause == "pdx_in":
            ok = principal in adrg.pdx
        elif clause == "main_proc_in":
            ok = bool(procs) and procs[0] in adrg.procs
        elif clause == "main_proc_valid":
            ok = bool(procs) and procs[0] in tables.valid_procedures
        elif clause == "any_proc_in":
            ok = any(p in adrg.procs for p in procs)
        elif clause == "any_proc_in_b":
            ok = any(p in adrg.procs_b for p in procs)
        elif clause == "any_dx_in":
            ok = any(d in adrg.pdx for d in dx)
        elif clause == "no_valid_proc":
            ok = not any(p in tables.valid_procedures for p in procs)
        elif clause == "age_days_max":
            ok = fp.age_days is not None and fp.age_days <= params["age_days_max"]
        elif clause == "weight_g_below":
            ok = bool(fp.birth_weight_g) and fp.birth_weight_g < params["weight_g_below"]
        elif clause == "weight_g_from":
            ok = bool(fp.birth_weight_g) and fp.birth_weight_g >= params["weight_g_from"]
        elif clause == "proc_sets":
            labels = {adrg.proc_labels[p] for p in procs if p in adrg.proc_labels}
            ok = any(needed <= labels for needed in params["proc_sets"])
        else:  # pragma: no cover - the loader refuses unknown clauses
            ok = False
        if not ok:
            return False
    return True


_CLAUSE_TEXT = {
    "pdx_in": "pdx",
    "main_proc_in": "main_proc",
    "any_proc_in": "any_proc",
    "any_dx_in": "any_dx",
    "main_proc_valid": "valid_proc",
    "no_valid_proc": "no_proc",
    "age_days_max": "neonate",
    "weight_g_below": "weight",
    "weight_g_from": "weight",
    "proc_sets": "proc_sets",
}


def group(
    fp: FrontPage, tables: DrgTables, *, lang: str = "zh", ambiguous: bool | None = None
) -> DrgResult:
    """Group one front page. Never raises for clinical content: problems are in the result.

    ``ambiguous``: whether a case with a valid (OR) procedure that matches none of its MDC's
    surgical ADRGs goes to the MDC's 歧义组 ``xQY`` (as local CHS-DRG versions do) instead of
    on to the medical ADRGs. ``None`` follows the tables (off in the shipped 1.1 tables).
    """
    principal, secondary, procs, code_issues = _map_codes(fp, tables)
    issues = fp.issues + tuple(code_issues)
    blocking = [i for i in issues if i.blocking]
    if blocking or principal is None:
        reasons = tuple(i.message(lang) for i in blocking)
        return DrgResult(
            case_id=fp.case_id,
            status="ungroupable",
            drg=UNGROUPABLE,
            drg_name=t("insurance.drg.ungroupable", lang),
            path=(
                Step(
                    "stop",
                    UNGROUPABLE,
                    t("insurance.path.invalid", lang, reasons="；".join(reasons)),
                ),
            ),
            reasons=reasons,
            issues=issues,
            version=tables.version,
        )
    dx = (principal, *secondary)
    path: list[Step] = []
    counted, excluded, table = _complications(principal, secondary, tables)
    mcc_code = next((c for c, lvl in counted if lvl == "MCC"), None)
    cc_code = next((c for c, lvl in counted if lvl == "CC"), None)
    for code in excluded:
        path.append(
            Step(
                "cc",
                code,
                t(
                    "insurance.path.excluded",
                    lang,
                    code=code,
                    name=tables.dx_names.get(code, ""),
                    pdx=principal,
                    table=table or "",
                ),
            )
        )
    for mdc in tables.mdcs:
        if not _mdc_matches(mdc, fp, principal, dx, procs, tables):
            continue
        mdc_name = mdc.name_en if lang == "en" else mdc.name_zh
        if mdc.code == "A":
            text = t(
                "insurance.path.mdc_pre",
                lang,
                code=procs[0],
                name=tables.proc_names.get(procs[0], ""),
            )
        else:
            text = t(
                "insurance.path.mdc",
                lang,
                code=principal,
                name=tables.dx_names.get(principal, ""),
                mdc=mdc.code,
                mdc_name=mdc_name,
            )
        path.append(Step("mdc", f"MDC{mdc.code}", text))
        for position, adrg in enumerate(mdc.adrgs):
            if (
                (mdc.ambiguous_enabled if ambiguous is None else ambiguous)
                and mdc.ambiguous_after == position
                and any(p in tables.valid_procedures for p in procs)
            ):
                path.append(
                    Step(
                        "stop",
                        f"{mdc.code}QY",
                        t("insurance.path.ambiguous", lang, mdc=mdc.code, code=procs[0]),
                    )
                )
                return DrgResult(
                    case_id=fp.case_id,
                    status="ambiguous",
                    drg=f"{mdc.code}QY",
                    drg_name=t("insurance.drg.ambiguous", lang),
                    mdc=f"MDC{mdc.code}",
                    mdc_name=mdc_name,
                    path=tuple(path),
                    reasons=(path[-1].text,),
                    issues=issues,
                    version=tables.version,
                )
            if not _adrg_matches(adrg, fp, principal, dx, procs, tables):
                continue
            how = "、".join(
                dict.fromkeys(
                    t(f"insurance.clause.{_CLAUSE_TEXT[c]}", lang)
                    for c in adrg.clauses
                    if c in _CLAUSE_TEXT
                )
            )
            path.append(
                Step(
                    "adrg",
                    adrg.code,
                    t(
                        "insurance.path.adrg",
                        lang,
                        adrg=adrg.code,
                        name=adrg.name_zh,
                        how=how or "-",
                    ),
                )
            )
            return _split(
                fp,
                tables,
                adrg,
                mdc,
                mdc_name,
                path,
                counted,
                excluded,
                mcc_code,
                cc_code,
                issues,
                lang,
            )
        path.append(Step("mdc", f"MDC{mdc.code}", t("insurance.path.no_adrg", lang, mdc=mdc.code)))
    path.append(Step("stop", UNGROUPABLE, t("insurance.path.no_mdc", lang, code=principal)))
    return DrgResult(
        case_id=fp.case_id,
        status="ungroupable",
        drg=UNGROUPABLE,
        drg_name=t("insurance.drg.ungroupable", lang),
        path=tuple(path),
        reasons=(path[-1].text,),
        issues=issues,
        version=tables.version,
    )


def _split(
    fp: FrontPage,
    tables: DrgTables,
    adrg: Adrg,
    mdc: Mdc,
    mdc_name: str,
    path: list[Step],
    counted: list[tuple[str, str]],
    excluded: list[str],
    mcc_code: str | None,
    cc_code: str | None,
    issues: tuple[Issue, ...],
    lang: str,
) -> DrgResult:
    chosen = None
    severity: str | None = None
    severity_code: str | None = None
    for split in adrg.splits:
        if split.when == "always":
            chosen = split.drg
            text_key = (
                "insurance.path.split_none"
                if len(adrg.splits) > 1
                else "insurance.path.split_single"
            )
            path.append(Step("drg", chosen, t(text_key, lang, drg=chosen)))
            break
        if split.when == "mcc" and mcc_code is not None:
            chosen, severity, severity_code = split.drg, "MCC", mcc_code
        elif split.when == "cc" and (mcc_code is not None or cc_code is not None):
            chosen, severity = split.drg, "CC"
            severity_code = cc_code if cc_code is not None else mcc_code
        if chosen is not None:
            path.append(
                Step(
                    "drg",
                    chosen,
                    t(
                        "insurance.path.split_cc",
                        lang,
                        code=severity_code,
                        name=tables.dx_names.get(severity_code or "", ""),
                        level=severity,
                        drg=chosen,
                    ),
                )
            )
            break
    if chosen is None:  # the source's fallback: the ADRG itself (no split matched)
        chosen = adrg.code
        path.append(Step("drg", chosen, t("insurance.path.split_single", lang, drg=chosen)))
    return DrgResult(
        case_id=fp.case_id,
        status="grouped",
        drg=chosen,
        drg_name=tables.drg_names.get(chosen, adrg.name_zh),
        weight=tables.drg_weights.get(chosen, 0.0),
        mdc=f"MDC{mdc.code}",
        mdc_name=mdc_name,
        adrg=adrg.code,
        adrg_name=adrg.name_zh,
        severity=severity,
        severity_code=severity_code,
        complications=tuple(counted),
        excluded=tuple(excluded),
        path=tuple(path),
        issues=issues,
        version=tables.version,
    )
