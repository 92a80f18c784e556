"""Indication and antimicrobial stewardship checks.

References
----------
《医疗机构处方审核规范》(2018) 第十五条(一); 《抗菌药物临床应用管理办法》(2012) 第六条,
第二十四条, 第二十八条; 《抗菌药物临床应用指导原则(2015年版)》.
"""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import Context, make_finding
from medbrain.rx.knowledge import normalize_text


def check_indication(ctx: Context) -> list[Finding]:
    """A drug with a curated indication list that matches none of the diagnoses.

    Only runs when the prescription names diagnoses; confidence 0.8 (text matching).

    References
    ----------
    《医疗机构处方审核规范》(2018) 第十五条(一) 处方用药与诊断是否相符.
    """
    if not ctx.diagnoses:
        return []
    out = []
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        if drug.indications and not ctx.has_diagnosis(drug.indications):
            out.append(
                make_finding(
                    ctx,
                    "rx.indication.no-matching-diagnosis",
                    "indication",
                    Severity.WARNING,
                    [item],
                    "《医疗机构处方审核规范》(2018) 第十五条(一) 处方用药与诊断是否相符; "
                    + drug.source,
                    "indication",
                    confidence=0.8,
                )
            )
    return out


def _indications(ctx: Context) -> tuple[str, ...]:
    """Diagnoses plus the prescription's remark (``note: 术后预防用药`` states prophylaxis)."""
    note = ctx.rx.note
    return (*ctx.diagnoses, normalize_text(note)) if note else ctx.diagnoses


def _infection(ctx: Context, exclude: tuple[str, ...] = ()) -> bool:
    """A diagnosis naming an infection (not a look-alike such as 类风湿关节炎)."""
    am = ctx.kb.antimicrobial
    for diagnosis in _indications(ctx):
        if any(t in diagnosis for t in am.non_infection_terms):
            continue
        if any(t in diagnosis for t in am.infection_terms if t not in exclude):
            return True
    return False


def check_antimicrobial(ctx: Context) -> list[Finding]:
    """Stewardship: infection diagnosis, grade vs prescriber title, special-grade rules.

    References
    ----------
    《抗菌药物临床应用管理办法》(卫生部令第84号, 2012) 第六条, 第二十四条, 第二十八条;
    《抗菌药物临床应用指导原则(2015年版)》.
    """
    am = ctx.kb.antimicrobial
    rx = ctx.rx
    out = []
    infection = _infection(ctx)
    prophylaxis_only = any(
        t in text for t in am.prophylaxis_terms for text in _indications(ctx)
    ) and not _infection(ctx, exclude=am.prophylaxis_terms)
    level_grade = (
        am.prescriber_levels.get(normalize_text(rx.prescriber_level))
        if rx.prescriber_level
        else None
    )
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        grade = am.grade(drug.id, item.route)
        if "antibacterial" not in drug.classes and grade is None:
            continue
        if not infection:
            out.append(
                make_finding(
                    ctx,
                    "rx.antimicrobial.no-infection-diagnosis",
                    "antimicrobial",
                    Severity.WARNING,
                    [item],
                    am.source,
                    "antimicrobial_no_infection",
                )
            )
        if (
            prophylaxis_only
            and "antibacterial" in drug.classes
            and item.days is not None
            and item.days > am.prophylaxis_max_days
        ):
            out.append(
                make_finding(
                    ctx,
                    "rx.antimicrobial.prophylaxis-duration",
                    "antimicrobial",
                    Severity.WARNING,
                    [item],
                    am.prophylaxis_source,
                    "antimicrobial_prophylaxis_days",
                    days=item.days,
                    limit=float(am.prophylaxis_max_days),
                )
            )
        if grade is None:
            continue
        if level_grade is not None and am.grade_rank[grade] > am.grade_rank[level_grade]:
            out.append(
                make_finding(
                    ctx,
                    "rx.antimicrobial.prescriber-level",
                    "antimicrobial",
                    Severity.CRITICAL,
                    [item],
                    am.source,
                    "antimicrobial_level",
                    grade=grade,
                    level=rx.prescriber_level or "",
                    allowed=level_grade,
                )
            )
        if grade == "特殊":
            if rx.setting in ("outpatient", "emergency"):
                out.append(
                    make_finding(
                        ctx,
                        "rx.antimicrobial.special-outpatient",
                        "antimicrobial",
                        Severity.CRITICAL,
                        [item],
                        am.source,
                        "antimicrobial_special_outpatient",
                    )
                )
            elif not rx.consultation:
                out.append(
                    make_finding(
                        ctx,
                        "rx.antimicrobial.special-consultation",
                        "antimicrobial",
                        Severity.WARNING,
                        [item],
                        am.source,
                        "antimicrobial_special_consult",
                    )
                )
    return out
