"""Special populations: renal, hepatic, age (incl. Beers), pregnancy, lactation.

References
----------
Cockcroft & Gault, Nephron 1976; Pugh et al., Br J Surg 1973 (Child–Pugh); AGS Beers
Criteria 2023; FDA labels §8.
"""

from __future__ import annotations

from collections.abc import Sequence

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import EPS, Context, make_finding, over_limit, unit_label
from medbrain.rx.knowledge import Rule


def check_renal(ctx: Context) -> list[Finding]:
    """Renal dose limits by creatinine clearance bands.

    References
    ----------
    Cockcroft & Gault, Nephron 1976; rows in ``renal.yaml`` (labels §2/§8, KDIGO, Beers 2023
    Table 6).
    """
    p = ctx.rx.patient
    out = []
    relevant = ctx.kb.relevant_rules("renal", (i.drug.id for i in ctx.known if i.drug))
    for rule in ctx.kb.renal:
        if rule.id not in relevant:
            continue
        for item in ctx.known:
            drug = item.drug
            assert drug is not None
            if not rule.matches(drug.tags):
                continue
            route = rule.params.get("route")
            if route and item.route not in (route, None):
                continue
            if ctx.crcl_ml_min is None:
                if "creatinine_umol_l" in p.labs:
                    out.append(
                        make_finding(
                            ctx,
                            "rx.renal.crcl-unknown",
                            "renal",
                            Severity.INFO,
                            [item],
                            rule.source,
                            "renal_unknown",
                            confidence=0.6,
                        )
                    )
                continue
            crcl = ctx.crcl_ml_min
            bands = [b for b in rule.params["bands"] if crcl < b["below"]]
            if not bands:
                continue
            band = bands[0]
            action = band["action"]
            rid = f"rx.renal.{rule.id}"
            if action == "contraindicated":
                out.append(
                    make_finding(
                        ctx,
                        rid,
                        "renal",
                        Severity.CRITICAL,
                        [item],
                        rule.source,
                        "renal_contraindicated",
                        crcl=crcl,
                        below=band["below"],
                    )
                )
            elif action == "avoid":
                out.append(
                    make_finding(
                        ctx,
                        rid,
                        "renal",
                        Severity.WARNING,
                        [item],
                        rule.source,
                        "renal_avoid",
                        crcl=crcl,
                        below=band["below"],
                    )
                )
            elif action == "caution":
                out.append(
                    make_finding(
                        ctx,
                        rid,
                        "renal",
                        Severity.INFO,
                        [item],
                        rule.source,
                        "renal_caution",
                        crcl=crcl,
                        below=band["below"],
                    )
                )
            else:
                daily = item.daily_amount if item.per_day else None
                limit = band["daily_max"]
                if (
                    limit is None
                    and band["mg_kg_daily_max"] is not None
                    and p.weight_kg is not None
                ):
                    limit = band["mg_kg_daily_max"] * p.weight_kg
                if daily is not None and over_limit(daily, limit):
                    out.append(
                        make_finding(
                            ctx,
                            rid,
                            "renal",
                            Severity.WARNING,
                            [item],
                            rule.source,
                            "renal_max",
                            crcl=crcl,
                            daily=daily,
                            limit=limit,
                            unit=unit_label(drug, ctx.lang),
                        )
                    )
    return out


def check_hepatic(ctx: Context) -> list[Finding]:
    """Hepatic impairment by Child–Pugh class or ALT multiple of the upper limit of normal.

    References
    ----------
    Pugh RNH et al., Br J Surg 1973;60:646–649 (Child–Pugh); rows in ``hepatic.yaml``.
    """
    p = ctx.rx.patient
    alt = p.labs.get("alt_u_l")
    ratio = alt / ctx.kb.policy.alt_uln_u_l if alt is not None else None
    out = []
    relevant = ctx.kb.relevant_rules("hepatic", (i.drug.id for i in ctx.known if i.drug))
    cp = ctx.child_pugh
    for rule in ctx.kb.hepatic:
        if rule.id not in relevant:
            continue
        mult = rule.params["alt_uln_multiple"]
        by_alt = ratio is not None and mult is not None and ratio >= mult
        by_cp = cp is not None and cp in rule.params["child_pugh"]
        if not (by_alt or by_cp):
            continue
        condition = ctx.child_pugh_text if by_cp else f"ALT {alt:g} U/L (>{mult:g}×ULN)"
        if rule.params.get("action") == "max_dose":
            if by_cp and cp is not None:
                out.extend(_hepatic_max_dose(ctx, rule, cp, condition or ""))
            continue
        for item in ctx.known:
            assert item.drug is not None
            if rule.matches(item.drug.tags):
                out.append(
                    make_finding(
                        ctx,
                        f"rx.hepatic.{rule.id}",
                        "hepatic",
                        rule.severity,
                        [item],
                        rule.source,
                        "hepatic",
                        condition=condition,
                    )
                )
    return out


def _hepatic_max_dose(ctx: Context, rule: Rule, cp: str, condition: str) -> list[Finding]:
    """Daily dose above the label's maximum for the patient's Child–Pugh class."""
    out = []
    limit = rule.params["daily_max"][cp]
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        route = rule.params.get("route")
        if not rule.matches(drug.tags) or (route and item.route not in (route, None)):
            continue
        daily = item.daily_amount
        if daily is None or daily <= limit + EPS:
            continue
        out.append(
            make_finding(
                ctx,
                f"rx.hepatic.{rule.id}",
                "hepatic",
                rule.severity,
                [item],
                rule.source,
                "hepatic_max_dose",
                condition=condition,
                daily=daily,
                limit=limit,
                unit=unit_label(drug, ctx.lang),
            )
        )
    return out


def _population(ctx: Context, rules: Sequence[Rule], category: str, active: bool) -> list[Finding]:
    """Pregnancy or lactation rows, when the patient is pregnant or breastfeeding."""
    if not active:
        return []
    out = []
    relevant = ctx.kb.relevant_rules(category, (i.drug.id for i in ctx.known if i.drug))
    for rule in rules:
        if rule.id not in relevant:
            continue
        for item in ctx.known:
            assert item.drug is not None
            if rule.matches(item.drug.tags):
                out.append(
                    make_finding(
                        ctx,
                        f"rx.{category}.{rule.id}",
                        category,
                        rule.severity,
                        [item],
                        rule.source,
                        f"{category}_{rule.params['level']}",
                    )
                )
    return out


def check_pregnancy(ctx: Context) -> list[Finding]:
    """Drugs contraindicated or to be avoided in pregnancy.

    References
    ----------
    FDA labels §8.1 (PLLR); NMPA 说明书【孕妇及哺乳期妇女用药】.
    """
    return _population(ctx, ctx.kb.pregnancy, "pregnancy", ctx.pregnant)


def check_lactation(ctx: Context) -> list[Finding]:
    """Drugs contraindicated or to be avoided during breastfeeding.

    References
    ----------
    FDA labels §8.2; FDA Drug Safety Communication 2017-04-20 (codeine, tramadol).
    """
    return _population(ctx, ctx.kb.lactation, "lactation", ctx.lactating)


def check_age(ctx: Context) -> list[Finding]:
    """Age limits (codeine < 12 y, tetracyclines < 8 y, fluoroquinolones < 18 y) and Beers.

    References
    ----------
    NMPA 2018 公告第5号 (可待因); AGS Beers Criteria 2023 (J Am Geriatr Soc 2023;71:2052).
    """
    age = ctx.rx.patient.age_years
    if age is None:
        return []
    out = []
    relevant = ctx.kb.relevant_rules("age", (i.drug.id for i in ctx.known if i.drug))
    for rule in ctx.kb.age:
        if rule.id not in relevant:
            continue
        below, from_ = rule.params["below_years"], rule.params["from_years"]
        if below is not None and not age < below:
            continue
        if from_ is not None and not age >= from_:
            continue
        if rule.params["unless"] and ctx.has_diagnosis(rule.params["unless"]):
            continue
        for item in ctx.known:
            assert item.drug is not None
            if not rule.matches(item.drug.tags):
                continue
            if rule.params["daily_gt"] is not None:
                daily = item.daily_amount
                if daily is None or daily <= rule.params["daily_gt"] + EPS:
                    continue
            if rule.params["min_days"] is not None and (
                item.days is None or item.days < rule.params["min_days"]
            ):
                continue
            key = "age_below" if below is not None else "age_elderly"
            out.append(
                make_finding(
                    ctx,
                    f"rx.age.{rule.id}",
                    "age",
                    rule.severity,
                    [item],
                    rule.source,
                    key,
                    age=float(age),
                    limit=float(below if below is not None else from_),
                )
            )
    return out
