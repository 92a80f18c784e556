"""Frequency and route checks.

References
----------
《医疗机构处方审核规范》(2018) 第十五条(五) 剂量、用法和疗程是否正确.
"""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import Context, dose_rule_of, make_finding
from medbrain.rx.knowledge import normalize_text


def check_frequency(ctx: Context) -> list[Finding]:
    """Administrations per day outside the label range, or a code not allowed (MTX weekly).

    References
    ----------
    Package inserts 【用法用量】; ISMP high-alert medications (oral methotrexate weekly).
    """
    out = []
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        rule = dose_rule_of(item)
        if rule is None or item.frequency is None:
            continue
        if rule.frequencies and item.frequency not in rule.frequencies:
            out.append(
                make_finding(
                    ctx,
                    "rx.frequency.not-allowed",
                    "frequency",
                    Severity.CRITICAL,
                    [item],
                    drug.source,
                    "frequency_not_allowed",
                    frequency=item.frequency,
                    allowed="/".join(rule.frequencies),
                )
            )
            continue
        if rule.per_day is None or item.per_day is None:
            continue
        low, high = rule.per_day
        if item.per_day > high + 1e-3:
            out.append(
                make_finding(
                    ctx,
                    "rx.frequency.too-often",
                    "frequency",
                    Severity.WARNING,
                    [item],
                    drug.source,
                    "frequency_too_often",
                    frequency=item.frequency,
                    high=high,
                )
            )
        elif item.per_day < low - 1e-3:
            out.append(
                make_finding(
                    ctx,
                    "rx.frequency.too-rare",
                    "frequency",
                    Severity.WARNING,
                    [item],
                    drug.source,
                    "frequency_too_rare",
                    frequency=item.frequency,
                    low=low,
                )
            )
    return out


def check_route(ctx: Context) -> list[Finding]:
    """A route the drug is not labelled for, or one its dosage form cannot take.

    References
    ----------
    《医疗机构处方审核规范》(2018) 第十五条(五) 剂量、用法和疗程是否正确.
    """
    out = []
    form_routes = ctx.kb.vocab.form_routes
    for item in ctx.known:
        drug = item.drug
        assert drug is not None
        if item.route is None:
            continue
        push = ctx.kb.vocab.push_routes
        if drug.no_iv_push and item.route == "iv" and normalize_text(item.route_text or "") in push:
            out.append(
                make_finding(
                    ctx,
                    "rx.route.no-iv-push",
                    "route",
                    Severity.CRITICAL,
                    [item],
                    drug.source,
                    "route_no_iv_push",
                    route=item.route_text or item.route,
                )
            )
        elif item.route not in drug.routes:
            out.append(
                make_finding(
                    ctx,
                    "rx.route.not-labelled",
                    "route",
                    Severity.CRITICAL,
                    [item],
                    drug.source,
                    "route_not_labelled",
                    route=item.route_text or item.route,
                    allowed="/".join(drug.routes),
                )
            )
        elif item.form and item.form in form_routes and item.route not in form_routes[item.form]:
            out.append(
                make_finding(
                    ctx,
                    "rx.route.form-mismatch",
                    "route",
                    Severity.CRITICAL,
                    [item],
                    ctx.kb.vocab.source,
                    "route_form_mismatch",
                    route=item.route_text or item.route,
                    form=item.form,
                )
            )
    return out
