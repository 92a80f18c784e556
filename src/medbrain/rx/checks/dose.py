"""Dose checks: single/daily/weekly/weight-based limits, paediatric mg/kg, ingredient totals.

References
----------
Package inserts 【用法用量】 and FDA labels §2 as cited per drug row; BNF for Children.
"""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import (
    EPS,
    Context,
    display_name,
    dose_rule_of,
    make_finding,
    over_limit,
    unit_label,
)
from medbrain.rx.model import Item

#: Systemic routes on which a child's dose depends on weight (《医疗机构处方审核规范》2018
#: 第十五条: 儿童按体重审核剂量): a child's line by these routes without a weight cannot be
#: checked, even for a drug without paediatric mg/kg data. Eye, ear, nose, skin and inhaled
#: products are dosed by count, not by weight.
WEIGHT_DOSED_ROUTES = frozenset({"oral", "iv", "im", "sc", "rectal"})


def check_dose(ctx: Context) -> list[Finding]:
    """Single, daily, weekly and weight-based limits by route; paediatric mg/kg limits.

    A child dosed by weight without a weight gives "dose cannot be checked: weight missing";
    an unconvertible dose is reported, never passed. Ingredient totals across items (e.g.
    paracetamol from 泰诺 + 对乙酰氨基酚) are checked against the ingredient's own limit.

    References
    ----------
    Package inserts 【用法用量】/ FDA labels §2 as cited per drug row; BNF for Children.
    """
    p = ctx.rx.patient
    out: list[Finding] = []
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        rule = dose_rule_of(item)
        unit = unit_label(drug, ctx.lang)
        if item.dose_note is not None:
            if item.dose_note == "weight_missing":
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.weight-missing",
                        "dose",
                        Severity.WARNING,
                        [item],
                        drug.source,
                        "dose_weight_missing",
                    )
                )
            elif item.dose_note == "unit_incompatible":
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.unit-mismatch",
                        "dose",
                        Severity.WARNING,
                        [item],
                        drug.source,
                        "dose_unit_mismatch",
                        unit=item.dose_unit or "",
                        drug_unit=unit,
                    )
                )
            else:
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.not-convertible",
                        "dose",
                        Severity.INFO,
                        [item],
                        drug.source,
                        "dose_not_convertible",
                        unit=item.dose_unit or "",
                        confidence=0.5,
                    )
                )
            continue
        if rule is None or item.dose_amount is None:
            continue
        dose, daily = item.dose_amount, item.daily_amount
        if ctx.pediatric and drug.dose:
            has_peds = rule.weight_based_peds or rule.peds_daily_max is not None
            if p.weight_kg is None and (
                rule.weight_based_peds
                or (drug.unit != "piece" and item.route in WEIGHT_DOSED_ROUTES)
            ):
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.weight-missing",
                        "dose",
                        Severity.WARNING,
                        [item],
                        drug.source,
                        "dose_weight_missing",
                    )
                )
                continue
            if not has_peds:
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.no-pediatric-data",
                        "dose",
                        Severity.INFO,
                        [item],
                        drug.source,
                        "dose_no_pediatric",
                        confidence=0.6,
                    )
                )
                continue
            if (
                p.weight_kg is not None
                and rule.peds_mg_kg_day is not None
                and daily is not None
                and item.per_day
            ):
                per_kg = daily / p.weight_kg
                low, high = rule.peds_mg_kg_day
                if per_kg > high * (1 + EPS):
                    out.append(
                        make_finding(
                            ctx,
                            "rx.dose.pediatric-daily-max",
                            "dose",
                            Severity.CRITICAL,
                            [item],
                            drug.source,
                            "dose_peds_over",
                            per_kg=per_kg,
                            high=high,
                            unit=unit,
                            suggested=high * p.weight_kg,
                        )
                    )
                    continue
                if per_kg < low * (1 - EPS) and item.per_day >= 1:
                    out.append(
                        make_finding(
                            ctx,
                            "rx.dose.pediatric-daily-min",
                            "dose",
                            Severity.INFO,
                            [item],
                            drug.source,
                            "dose_peds_under",
                            per_kg=per_kg,
                            low=low,
                            unit=unit,
                        )
                    )
                    continue
            if p.weight_kg is not None and rule.peds_mg_kg_dose_max is not None:
                per_kg_dose = dose / p.weight_kg
                if per_kg_dose > rule.peds_mg_kg_dose_max * (1 + EPS):
                    out.append(
                        make_finding(
                            ctx,
                            "rx.dose.pediatric-single-max",
                            "dose",
                            Severity.WARNING,
                            [item],
                            drug.source,
                            "dose_peds_single_over",
                            per_kg=per_kg_dose,
                            high=rule.peds_mg_kg_dose_max,
                            unit=unit,
                            suggested=rule.peds_mg_kg_dose_max * p.weight_kg,
                        )
                    )
                    continue
            if over_limit(daily, rule.peds_daily_max) and item.per_day:
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.pediatric-absolute-max",
                        "dose",
                        Severity.CRITICAL,
                        [item],
                        drug.source,
                        "dose_daily_over",
                        daily=daily,
                        limit=rule.peds_daily_max,
                        unit=unit,
                    )
                )
            continue
        # Adults (and children dosed as adults).
        if (
            rule.weekly_max is not None
            and daily is not None
            and item.per_day
            and over_limit(daily * 7, rule.weekly_max)
        ):
            out.append(
                make_finding(
                    ctx,
                    "rx.dose.weekly-max",
                    "dose",
                    Severity.CRITICAL,
                    [item],
                    drug.source,
                    "dose_weekly_over",
                    weekly=daily * 7,
                    limit=rule.weekly_max,
                    unit=unit,
                )
            )
            continue
        if item.per_day and over_limit(daily, rule.daily_max):
            out.append(
                make_finding(
                    ctx,
                    "rx.dose.daily-max",
                    "dose",
                    Severity.CRITICAL,
                    [item],
                    drug.source,
                    "dose_daily_over",
                    daily=daily,
                    limit=rule.daily_max,
                    unit=unit,
                )
            )
            continue
        if over_limit(dose, rule.single_max):
            out.append(
                make_finding(
                    ctx,
                    "rx.dose.single-max",
                    "dose",
                    Severity.WARNING,
                    [item],
                    drug.source,
                    "dose_single_over",
                    dose=dose,
                    limit=rule.single_max,
                    unit=unit,
                )
            )
            continue
        if rule.mg_kg_dose_max is not None or rule.mg_kg_daily_max is not None:
            if p.weight_kg is None:
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.weight-missing",
                        "dose",
                        Severity.INFO,
                        [item],
                        drug.source,
                        "dose_weight_missing",
                    )
                )
                continue
            rounding = 1 + ctx.kb.policy.weight_rounding
            if over_limit(dose / p.weight_kg / rounding, rule.mg_kg_dose_max):
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.weight-single-max",
                        "dose",
                        Severity.WARNING,
                        [item],
                        drug.source,
                        "dose_kg_over",
                        per_kg=dose / p.weight_kg,
                        high=rule.mg_kg_dose_max,
                        unit=unit,
                        suggested=(rule.mg_kg_dose_max or 0) * p.weight_kg,
                    )
                )
                continue
            if (
                daily is not None
                and item.per_day
                and over_limit(daily / p.weight_kg / rounding, rule.mg_kg_daily_max)
            ):
                out.append(
                    make_finding(
                        ctx,
                        "rx.dose.weight-daily-max",
                        "dose",
                        Severity.CRITICAL,
                        [item],
                        drug.source,
                        "dose_kg_daily_over",
                        per_kg=daily / p.weight_kg,
                        high=rule.mg_kg_daily_max,
                        unit=unit,
                        suggested=(rule.mg_kg_daily_max or 0) * p.weight_kg,
                    )
                )
    out.extend(_ingredient_totals(ctx))
    return out


def _ingredient_totals(ctx: Context) -> list[Finding]:
    """Hidden-ingredient totals across items (e.g. paracetamol in 感冒灵 + 对乙酰氨基酚)."""
    kb = ctx.kb
    p = ctx.rx.patient
    totals: dict[str, list[tuple[Item, float]]] = {}
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        if item.dose_amount is None or item.per_day is None:
            continue
        if drug.components:
            for comp, per_piece in drug.components.items():
                totals.setdefault(comp, []).append(
                    (item, item.dose_amount * item.per_day * per_piece)
                )
        else:
            totals.setdefault(drug.id, []).append((item, item.dose_amount * item.per_day))
    out = []
    for comp, parts in totals.items():
        if len(parts) < 2 and not any(i.drug is not None and i.drug.components for i, _ in parts):
            continue
        ingredient = kb.drugs[comp]
        rule = ingredient.dose.get("oral")
        if rule is None:
            continue
        total = sum(amount for _, amount in parts)
        items = [i for i, _ in parts]
        unit = unit_label(ingredient, ctx.lang)
        if ctx.pediatric:
            if (
                p.weight_kg is not None
                and rule.peds_mg_kg_day is not None
                and total / p.weight_kg > rule.peds_mg_kg_day[1] * (1 + EPS)
            ):
                out.append(
                    make_finding(
                        ctx,
                        f"rx.dose.ingredient-total-{comp}",
                        "dose",
                        Severity.CRITICAL,
                        items,
                        ingredient.source,
                        "dose_ingredient_peds",
                        ingredient=display_name(ctx, ingredient),
                        per_kg=total / p.weight_kg,
                        high=rule.peds_mg_kg_day[1],
                        unit=unit,
                    )
                )
            continue
        if over_limit(total, rule.daily_max):
            out.append(
                make_finding(
                    ctx,
                    f"rx.dose.ingredient-total-{comp}",
                    "dose",
                    Severity.CRITICAL,
                    items,
                    ingredient.source,
                    "dose_ingredient_total",
                    ingredient=display_name(ctx, ingredient),
                    total=total,
                    limit=rule.daily_max,
                    unit=unit,
                )
            )
    return out
