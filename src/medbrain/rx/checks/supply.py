"""Duration and quantity checks (supply limits).

References
----------
《处方管理办法》(2007) 第十九条; 《长期处方管理规范(试行)》(国卫办医发〔2021〕17号).
"""

from __future__ import annotations

import math

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import EPS, Context, make_finding


def check_duration(ctx: Context) -> list[Finding]:
    """Per-drug maximum courses and the outpatient/emergency supply limits.

    Chronic drugs use the long-prescription limit; diagnoses with standard longer courses
    (H. pylori 14 d, peptic ulcer, TB) raise the limit; a written ``supply_reason`` satisfies
    the article's "注明理由".

    References
    ----------
    《处方管理办法》(2007) 第十九条; 《长期处方管理规范(试行)》(2021).
    """
    policy = ctx.kb.policy
    out = []
    limit = policy.supply_days.get(ctx.rx.setting)
    chronic_limit = policy.supply_days.get("chronic")
    if limit is not None:
        for exception in policy.supply_exceptions:
            if ctx.has_diagnosis(exception.params["terms"]):
                limit = max(limit, int(exception.params["days"]))
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        if item.days is None:
            continue
        if drug.max_days is not None and item.days > drug.max_days + EPS:
            out.append(
                make_finding(
                    ctx,
                    "rx.duration.drug-max",
                    "duration",
                    Severity.WARNING,
                    [item],
                    drug.source,
                    "duration_drug_max",
                    days=item.days,
                    limit=float(drug.max_days),
                )
            )
            continue
        cap = chronic_limit if drug.chronic else limit
        if ctx.rx.supply_reason:
            continue
        if cap is not None and limit is not None and item.days > cap + EPS:
            out.append(
                make_finding(
                    ctx,
                    f"rx.duration.supply-{ctx.rx.setting}",
                    "duration",
                    Severity.WARNING,
                    [item],
                    policy.source,
                    "duration_supply",
                    days=item.days,
                    limit=float(cap),
                )
            )
    return out


def check_quantity(ctx: Context) -> list[Finding]:
    """Dispensed quantity against dose × frequency × days, or against the supply limit.

    References
    ----------
    《处方管理办法》(2007) 第十九条; 《医疗机构处方审核规范》(2018) 第十五条.
    """
    policy = ctx.kb.policy
    count_units = ctx.kb.vocab.count_units
    out = []
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        if (
            item.quantity is None
            or item.dose_amount is None
            or not item.per_day
            or not item.piece_strength
        ):
            continue
        if item.quantity_unit is not None and item.quantity_unit not in count_units:
            continue
        pieces_per_admin = math.ceil(item.dose_amount / item.piece_strength - 1e-9)
        if item.days is not None:
            needed = math.ceil(pieces_per_admin * item.per_day * item.days - 1e-9)
            if (
                needed > 0
                and item.quantity > needed * policy.quantity_oversupply_factor
                and item.quantity - needed >= 2
            ):
                out.append(
                    make_finding(
                        ctx,
                        "rx.quantity.oversupply",
                        "quantity",
                        Severity.WARNING,
                        [item],
                        policy.source,
                        "quantity_over",
                        quantity=item.quantity,
                        needed=float(needed),
                        days=item.days,
                    )
                )
            elif item.quantity + EPS < needed * 0.5:
                out.append(
                    make_finding(
                        ctx,
                        "rx.quantity.undersupply",
                        "quantity",
                        Severity.INFO,
                        [item],
                        policy.source,
                        "quantity_under",
                        quantity=item.quantity,
                        needed=float(needed),
                        days=item.days,
                    )
                )
            continue
        limit = policy.supply_days.get("chronic" if drug.chronic else ctx.rx.setting)
        if limit is None or policy.supply_days.get(ctx.rx.setting) is None:
            continue
        implied_days = item.quantity / (pieces_per_admin * item.per_day)
        if implied_days > limit + 1:
            out.append(
                make_finding(
                    ctx,
                    "rx.quantity.exceeds-supply-limit",
                    "quantity",
                    Severity.WARNING,
                    [item],
                    policy.source,
                    "quantity_days",
                    quantity=item.quantity,
                    days=implied_days,
                    limit=float(limit),
                )
            )
    return out
