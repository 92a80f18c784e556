"""Therapeutic duplication: same drug, same (hidden) ingredient, same class.

References
----------
《医疗机构处方审核规范》(2018) 第十五条(四) 是否有重复给药.
"""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import Context, display_name, make_finding
from medbrain.rx.knowledge import Drug
from medbrain.rx.model import Item


def _ingredients(drug: Drug) -> set[str]:
    return set(drug.components) if drug.components else {drug.id}


def check_duplication(ctx: Context) -> list[Finding]:
    """Same drug twice, same ingredient twice (hidden in combinations), or same class.

    References
    ----------
    《医疗机构处方审核规范》(2018) 第十五条(四); 《处方管理办法》(2007) 第三十五条(四).
    """
    kb = ctx.kb
    items = [i for i in ctx.known if i.drug is not None and "iv_vehicle" not in i.drug.classes]
    out = []
    for x in range(len(items)):
        for y in range(x + 1, len(items)):
            a, b = items[x], items[y]
            assert a.drug is not None and b.drug is not None
            if a.drug.id == b.drug.id:
                if _split_daily_dose(a, b, ctx):
                    continue  # e.g. insulin 8 U 早餐前 + 6 U 晚餐前: one regimen, totals still checked
                out.append(
                    make_finding(
                        ctx,
                        "rx.duplication.same-drug",
                        "duplication",
                        Severity.WARNING,
                        [a, b],
                        kb.duplication[0].source if kb.duplication else kb.policy.source,
                        "duplication_same",
                    )
                )
                continue
            shared = _ingredients(a.drug) & _ingredients(b.drug)
            if shared:
                names = "、".join(display_name(ctx, kb.drugs[s]) for s in sorted(shared))
                out.append(
                    make_finding(
                        ctx,
                        "rx.duplication.same-ingredient",
                        "duplication",
                        Severity.WARNING,
                        [a, b],
                        "; ".join(
                            [
                                "《医疗机构处方审核规范》(2018) 第十五条(四) 重复给药",
                                *(d.source for d in (a.drug, b.drug) if d.components),
                            ]
                        ),
                        "duplication_ingredient",
                        ingredient=names,
                    )
                )
                continue
            shared_tags = a.drug.tags & b.drug.tags
            if not shared_tags:
                continue
            for rule in kb.duplication:
                common = rule.targets & shared_tags
                if common:
                    cls = sorted(common)[0][6:]
                    out.append(
                        make_finding(
                            ctx,
                            f"rx.duplication.{rule.id}",
                            "duplication",
                            rule.severity,
                            [a, b],
                            rule.source,
                            "duplication_class",
                            cls=kb.class_name(cls, ctx.lang),
                        )
                    )
                    break
    return out


def _split_daily_dose(a: Item, b: Item, ctx: Context) -> bool:
    """Two lines of one drug at different named times of day (早餐前 / 晚餐前, qam / qn)."""
    times = ctx.kb.vocab.times_of_day
    return (
        a.frequency is not None
        and b.frequency is not None
        and a.frequency in times
        and b.frequency in times
        and a.frequency != b.frequency
        and a.route == b.route
    )
