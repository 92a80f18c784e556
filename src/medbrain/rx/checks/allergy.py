"""Allergy checks: same drug, same class, β-lactam cross-reactivity by R1 side chain.

References
----------
Khan DA et al. Drug allergy: a 2022 practice parameter update. J Allergy Clin Immunol
2022;150:1333–1393.
"""

from __future__ import annotations

from medbrain.core.findings import Finding, Severity
from medbrain.rx.checks.context import Context, make_finding
from medbrain.rx.knowledge import CrossReactivity, Drug, RxKnowledge, normalize_text
from medbrain.rx.names import resolve_name


def _r1_groups_of_classes(kb: RxKnowledge, classes: frozenset[str]) -> set[str]:
    return {
        kb.r1_group[d.id] for d in kb.drugs.values() if d.classes & classes and d.id in kb.r1_group
    }


def check_allergy(ctx: Context) -> list[Finding]:
    """Same drug, same class, and β-lactam cross-reactivity by R1 side chain.

    An allergy entry is a class (``青霉素``, ``头孢类``) or a single drug resolved through the
    name dictionary. Same drug or class → critical; penicillin ↔ cephalosporin (and
    cephalosporin ↔ cephalosporin) depends on whether the R1 side chain is shared, and a
    severe reaction history (anaphylaxis, SJS) raises the dissimilar-side-chain severity.

    References
    ----------
    Khan DA et al., Drug allergy: a 2022 practice parameter update, JACI 2022;150:1333–1393.
    """
    kb = ctx.kb
    out: list[Finding] = []
    for text in ctx.rx.patient.allergies:
        norm = normalize_text(text)
        if norm in kb.allergy_none_terms:
            continue
        severe = any(t in norm for t in kb.allergy_severe_terms)
        base = norm.split("(")[0] or norm  # "青霉素(过敏性休克)": NFKC made the bracket ASCII
        class_allergen = next((a for a in kb.allergens if base in a.terms), None)
        drug_allergen: Drug | None = None
        if class_allergen is None:
            res = resolve_name(base, kb)
            drug_allergen = kb.drugs[res.drug_id] if res else None
        if class_allergen is None and drug_allergen is None:
            class_allergen = next(
                (a for a in kb.allergens if any(t in base for t in a.terms)), None
            )
        if class_allergen is None and drug_allergen is None:
            out.append(
                make_finding(
                    ctx,
                    "rx.allergy.unrecognised",
                    "allergy",
                    Severity.INFO,
                    [],
                    kb.allergy_source,
                    "allergy_unrecognised",
                    confidence=0.5,
                    allergen=text,
                )
            )
            continue
        allergen_source = class_allergen.source if class_allergen is not None else kb.allergy_source
        if drug_allergen is not None:
            allergen_tags = drug_allergen.tags
            same_classes = {f"class:{c}" for c in drug_allergen.classes & kb.drug_allergy_classes}
            r1_sources = (
                {kb.r1_group[drug_allergen.id]} if drug_allergen.id in kb.r1_group else set()
            )
        else:
            assert class_allergen is not None
            allergen_tags = frozenset(f"class:{c}" for c in class_allergen.classes)
            same_classes = set(allergen_tags)
            r1_sources = _r1_groups_of_classes(kb, class_allergen.classes)
        for item in ctx.known:
            drug = item.drug
            assert drug is not None
            if drug_allergen is not None and drug_allergen.id in (drug.id, *drug.components):
                out.append(
                    make_finding(
                        ctx,
                        "rx.allergy.same-drug",
                        "allergy",
                        Severity.CRITICAL,
                        [item],
                        allergen_source,
                        "allergy_same",
                        allergen=text,
                    )
                )
                continue
            if same_classes & drug.tags:
                cls = sorted(same_classes & drug.tags)[0][6:]
                out.append(
                    make_finding(
                        ctx,
                        f"rx.allergy.class-{cls}",
                        "allergy",
                        Severity.CRITICAL,
                        [item],
                        allergen_source,
                        "allergy_class",
                        allergen=text,
                        cls=kb.class_name(cls, ctx.lang),
                    )
                )
                continue
            cross = _cross(kb, allergen_tags, drug)
            if cross is None:
                continue
            same = drug.id in kb.r1_group and kb.r1_group[drug.id] in r1_sources
            severity = (
                cross.same_r1
                if same
                else (cross.different_r1_severe if severe else cross.different_r1)
            )
            advice = (cross.advice_same if same else cross.advice_different)[
                "en" if ctx.lang == "en" else "zh"
            ]
            out.append(
                make_finding(
                    ctx,
                    f"rx.allergy.{cross.id}",
                    "allergy",
                    severity,
                    [item],
                    cross.source,
                    "allergy_cross",
                    allergen=text,
                    what=cross.message["en" if ctx.lang == "en" else "zh"],
                    advice=advice,
                )
            )
    return out


def _cross(kb: RxKnowledge, allergen_tags: frozenset[str], drug: Drug) -> CrossReactivity | None:
    for row in kb.cross_reactivity:
        if row.from_ & allergen_tags and row.to & drug.tags:
            return row
    return None
