"""Drug–disease and drug–laboratory contraindications (``contraindications.yaml``).

References
----------
Package inserts §4 / 【禁忌】; AGS Beers Criteria 2023, Table 3.
"""

from __future__ import annotations

from medbrain.core.findings import Finding
from medbrain.rx.checks.context import Context, make_finding


def check_contraindication(ctx: Context) -> list[Finding]:
    """Drug–disease (diagnosis text) and drug–laboratory contraindications.

    References
    ----------
    Rows in ``contraindications.yaml`` (package inserts §4, AGS Beers Criteria 2023 Table 3).
    """
    out = []
    labs = ctx.rx.patient.labs
    relevant = ctx.kb.relevant_rules("contraindications", (i.drug.id for i in ctx.known if i.drug))
    for rule in ctx.kb.contraindications:
        if rule.id not in relevant:
            continue
        targets = [i for i in ctx.known if i.drug is not None and rule.matches(i.drug.tags)]
        if not targets:
            continue
        hit_text: str | None = None
        terms: tuple[str, ...] = rule.params["diagnoses"]
        for diagnosis, norm in zip(ctx.rx.patient.diagnoses, ctx.diagnoses, strict=True):
            if any(t in norm for t in terms):
                hit_text = diagnosis
                break
        if hit_text is None:
            for name, gt, lt in rule.params["labs"]:
                value = labs.get(name)
                if value is not None and (
                    (gt is not None and value > gt) or (lt is not None and value < lt)
                ):
                    hit_text = f"{name}={value:g}"
                    break
        if hit_text is None:
            continue
        for item in targets:
            out.append(
                make_finding(
                    ctx,
                    f"rx.contraindication.{rule.id}",
                    "contraindication",
                    rule.severity,
                    [item],
                    rule.source,
                    "contraindication",
                    condition=hit_text,
                )
            )
    return out
