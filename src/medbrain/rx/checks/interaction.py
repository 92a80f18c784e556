"""Drug–drug interactions (``interactions.yaml``), hidden ingredients included.

References
----------
Phansalkar S et al. JAMIA 2012;19:735–743 (ONC high-priority DDIs); ANSM Thésaurus des
interactions médicamenteuses; FDA labels §7.
"""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import EPS, Context, make_finding
from medbrain.rx.knowledge import Interaction


def _monitored(ctx: Context, inter: Interaction) -> bool:
    """True when the row's ``info_when`` conditions are all known and met (e.g. K < 5.0 and
    CrCl ≥ 30 for an MRA with a RAAS blocker): the finding stays, as monitoring advice (info).
    """
    if not inter.info_when_labs_below and inter.info_when_crcl_at_least is None:
        return False
    labs = ctx.rx.patient.labs
    for lab, bound in inter.info_when_labs_below.items():
        value = labs.get(lab)
        if value is None or value >= bound:
            return False
    if inter.info_when_crcl_at_least is not None:
        return ctx.crcl_ml_min is not None and ctx.crcl_ml_min >= inter.info_when_crcl_at_least
    return True


def check_interaction(ctx: Context) -> list[Finding]:
    """Drug–drug interactions between every pair of items, hidden ingredients included.

    Rows may be narrowed to a dose (``when``: e.g. simvastatin > 20 mg with amlodipine) or a
    route (chelation only when both are oral).

    References
    ----------
    Phansalkar S et al., High-priority DDIs for use in EHRs, JAMIA 2012;19:735–743;
    ANSM Thésaurus des interactions médicamenteuses; FDA labels §7.
    """
    kb = ctx.kb
    items = ctx.known
    out = []
    for x in range(len(items)):
        a = items[x]
        assert a.drug is not None
        candidates: set[int] = set()
        for tag in a.drug.tags:
            candidates.update(kb.interaction_index.get(tag, ()))
        for y in range(x + 1, len(items)):
            b = items[y]
            assert b.drug is not None
            if a.drug.id == b.drug.id:
                continue
            for n in sorted(candidates):
                inter = kb.interactions[n]
                forward = bool(inter.a & a.drug.tags and inter.b & b.drug.tags)
                backward = bool(inter.a & b.drug.tags and inter.b & a.drug.tags)
                if not (forward or backward):
                    continue
                if inter.unless and any(
                    o.drug is not None and o is not a and o is not b and inter.unless & o.drug.tags
                    for o in items
                ):
                    continue
                if inter.route and not (a.route == inter.route and b.route == inter.route):
                    continue
                if inter.when_drug and inter.when_daily_gt is not None:
                    holder = a if inter.when_drug in (a.drug.id, *a.drug.components) else b
                    amount = holder.daily_amount
                    if amount is not None and amount <= inter.when_daily_gt + EPS:
                        continue
                lang = "en" if ctx.lang == "en" else "zh"
                out.append(
                    make_finding(
                        ctx,
                        f"rx.interaction.{inter.id}",
                        "interaction",
                        Severity.INFO if _monitored(ctx, inter) else inter.severity,
                        [a, b],
                        inter.source,
                        "interaction",
                        effect=inter.effect[lang],
                        management=inter.management[lang],
                    )
                )
    return out
