"""What every check shares: the derived context, finding construction, small helpers.

Every check reads its rules from the knowledge (``knowledge/rx/*.yaml``) and cites the row's
``source`` as evidence; none hold clinical numbers of their own.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第十三–十五条 (合法性、规范性、适宜性审核);
《处方管理办法》(卫生部令第53号, 2007) 第十九条 (用量), 第三十五条 (适宜性审核);
《抗菌药物临床应用管理办法》(卫生部令第84号, 2012) 第二十四条, 第二十八条.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.rx.hepatic import child_pugh
from medbrain.rx.knowledge import (
    DoseRule,
    Drug,
    RxKnowledge,
    normalize_text,
)
from medbrain.rx.model import Item, Prescription
from medbrain.rx.renal import cockcroft_gault, dosing_weight, schwartz_bedside

EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Context:
    """A prescription with the derived facts every check needs."""

    rx: Prescription
    kb: RxKnowledge
    lang: str
    diagnoses: tuple[str, ...]  # normalised
    crcl_ml_min: float | None
    crcl_method: str | None
    pregnant: bool
    lactating: bool
    pediatric: bool
    known: tuple[Item, ...] = ()  # items whose drug is in the dictionary
    child_pugh: str | None = None  # class given, or computed (the class the data prove)
    child_pugh_text: str | None = None  # how it was obtained, for messages

    def has_diagnosis(self, terms: Iterable[str]) -> bool:
        return any(t and t in d for t in terms for d in self.diagnoses)


def make_context(rx: Prescription, kb: RxKnowledge, lang: str) -> Context:
    """Derive CrCl, pregnancy/lactation and paediatric status once per prescription.

    CrCl: Cockcroft–Gault for adults with age, sex, weight and creatinine (adjusted weight in
    obesity); bedside Schwartz for children with height; else a given ``egfr_ml_min``.
    Pregnancy and lactation also count when a diagnosis names them (policy terms).
    """
    p = rx.patient
    policy = kb.policy
    diagnoses = tuple(normalize_text(d) for d in p.diagnoses)
    crcl: float | None = None
    method: str | None = None
    scr = p.labs.get("creatinine_umol_l")
    if scr is not None and p.age_years is not None:
        if p.age_years >= 18 and p.weight_kg is not None and p.sex is not None:
            crcl = cockcroft_gault(
                p.age_years, p.sex, dosing_weight(p.weight_kg, p.height_cm, p.sex), scr
            )
            method = "cockcroft_gault"
        elif p.age_years < 18 and p.height_cm is not None:
            crcl = schwartz_bedside(p.height_cm, scr)
            method = "schwartz_bedside"
    if crcl is None and p.labs.get("egfr_ml_min") is not None:
        crcl, method = p.labs["egfr_ml_min"], "egfr"
    pregnant = p.pregnant or any(t in d for t in policy.pregnancy_terms for d in diagnoses)
    lactating = p.lactating or any(t in d for t in policy.lactation_terms for d in diagnoses)
    pediatric = (
        p.age_years is not None
        and p.age_years < policy.pediatric_below_years
        and not (p.weight_kg is not None and p.weight_kg >= policy.adult_weight_kg_min)
    )
    known = tuple(i for i in rx.items if i.drug is not None)
    cp_class, cp_text = _child_pugh(rx, kb, diagnoses)
    return Context(
        rx, kb, lang, diagnoses, crcl, method, pregnant, lactating, pediatric, known,
        cp_class, cp_text,
    )  # fmt: skip


def _child_pugh(
    rx: Prescription, kb: RxKnowledge, diagnoses: tuple[str, ...]
) -> tuple[str | None, str | None]:
    """The given Child–Pugh class, or one computed from labs and grades.

    Computed only for a patient with chronic liver disease (a diagnosis term from
    ``hepatic.yaml`` ``liver_disease_terms``) or with ascites/encephalopathy graded, since the
    score describes cirrhosis; the class used is the one the known values prove (``at_least``).
    """
    p = rx.patient
    if p.child_pugh is not None:
        return p.child_pugh, f"Child-Pugh {p.child_pugh}"
    graded = p.ascites is not None or p.encephalopathy is not None
    liver = any(t and t in d for t in kb.liver_disease_terms for d in diagnoses)
    if not (graded or liver):
        return None, None
    assessed = child_pugh(
        bilirubin_umol_l=p.labs.get("bilirubin_umol_l"),
        albumin_g_l=p.labs.get("albumin_g_l"),
        inr=p.labs.get("inr"),
        ascites=p.ascites,
        encephalopathy=p.encephalopathy,
    )
    if assessed is None or sum(x is not None for x in assessed.points) < 2:
        return None, None
    return assessed.klass or assessed.at_least, assessed.describe()


# --------------------------------------------------------------------------- helpers


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e6 else f"{round(value, 2):g}"


def unit_label(drug: Drug, lang: str) -> str:
    if drug.unit == "piece":
        return drug.piece or "piece"
    return {"ug": "µg", "IU": "U" if lang == "en" else "单位"}.get(drug.unit, drug.unit)


def make_finding(
    ctx: Context,
    rule_id: str,
    category: str,
    severity: Severity,
    items: Sequence[Item],
    source: str,
    key: str,
    confidence: float = 1.0,
    **params: object,
) -> Finding:
    """Build a finding with its zh/en message (``key``) and fix (``key.fix``)."""
    kb, lang = ctx.kb, ctx.lang
    drugs = [i.drug_text for i in items]
    shown = [
        f"{i.drug.en} ({i.drug_text})"
        if lang == "en" and i.drug is not None and not i.drug_text.isascii()
        else i.drug_text
        for i in items
    ]
    values = {
        "drug": shown[0] if shown else "",
        "drugs": ", ".join(shown) if lang == "en" else "、".join(shown),
    }
    values.update({k: (_fmt(v) if isinstance(v, float) else str(v)) for k, v in params.items()})
    message = kb.msg(key, lang, **values)
    suggestion = kb.msg(f"{key}.fix", lang, **values) if f"{key}.fix" in kb.messages else ""
    evidence = [Evidence(source=source)]
    evidence.extend(Evidence(document=i.field, quote=i.drug_text) for i in items)
    return Finding(
        rule_id=rule_id,
        category=category,
        severity=severity,
        message=message,
        suggestion=suggestion,
        evidence=tuple(evidence),
        confidence=confidence,
        extra={
            "drugs": drugs,
            "items": [i.index for i in items],
            "drug_ids": [i.drug.id if i.drug else None for i in items],
        },
    )


def dose_rule_of(item: Item) -> DoseRule | None:
    drug = item.drug
    if drug is None:
        return None
    if item.route is not None:
        return drug.dose.get(item.route)
    return next(iter(drug.dose.values())) if len(drug.dose) == 1 else None


def display_name(ctx: Context, drug: Drug) -> str:
    return drug.name(ctx.lang)


def over_limit(amount: float | None, limit: float | None) -> bool:
    return amount is not None and limit is not None and amount > limit * (1 + EPS) + EPS
