"""Post-processing of a ``ct detect`` result: selected guideline, Chinese rule set, Brock.

Adds only (DESIGN.md §3 stays as it is): ``guideline`` (the selected rule set), ``china``
(with ``--guideline china2021``; with a ``followup`` block, new / grown nodules feed its
screening category) and ``brock`` (when age, sex, family history and emphysema are known; from
a patient record, a ``computable: false`` block naming the missing inputs otherwise), and
redrafts the report impression so the selected guideline comes first.

:func:`brock_from_record` turns what a patient record holds (any input may be unknown) into a
:class:`BrockPatient` or the list of missing inputs; nothing is guessed.

References
----------
See :mod:`medbrain.imaging.risk` (Lung-RADS v2022, Fleischner 2017, Chinese 2021/2018) and
:mod:`medbrain.imaging.brock` (McWilliams 2013).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from medbrain.core.errors import InputError
from medbrain.imaging.brock import BrockPatient, brock_for_nodules
from medbrain.imaging.report import redraft_impression
from medbrain.imaging.report import text as report_text
from medbrain.imaging.risk import GUIDELINES, NoduleChange, NoduleForRisk, china_2021

BROCK_INPUTS = ("age", "sex", "family_history", "emphysema")
BROCK_AGE_RANGE = (18.0, 110.0)


def check_guideline(value: str, source: str = "--guideline") -> str:
    if value not in GUIDELINES:
        raise InputError(
            source, "guideline", f"must be one of {', '.join(GUIDELINES)}, got {value!r}"
        )
    return value


def brock_patient(
    age: float | None, sex: str | None, family_history: bool | None, emphysema: bool | None
) -> BrockPatient | None:
    """All four given -> the patient; none -> ``None``; some -> a clear error naming the rest."""
    given = {
        "--age": age,
        "--sex": sex,
        "--family-history": family_history,
        "--emphysema": emphysema,
    }
    missing = [k for k, v in given.items() if v is None]
    if len(missing) == len(given):
        return None
    if missing:
        raise InputError(
            missing[0],
            "brock",
            f"Brock needs all of --age, --sex, --family-history, --emphysema; missing {', '.join(missing)}",
        )
    assert age is not None and sex is not None
    if not 18 <= age <= 110:
        raise InputError("--age", "age", f"must lie in 18..110 years, got {age:g}")
    if sex not in ("male", "female"):
        raise InputError("--sex", "sex", f"must be male or female, got {sex!r}")
    return BrockPatient(float(age), sex == "female", bool(family_history), bool(emphysema))


def age_on(birth: date | None, on: date | None) -> int | None:
    """Age in whole years on ``on`` (the study date); ``None`` when either date is unknown or
    the birth date is after it."""
    if birth is None or on is None or birth > on:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def brock_from_record(
    age: float | None, sex: str | None, family_history: bool | None, emphysema: bool | None
) -> tuple[BrockPatient | None, list[str]]:
    """The Brock patient from recorded data, or ``None`` and the inputs that are missing
    (:data:`BROCK_INPUTS` names, in that order). An age outside 18..110 years or a sex other
    than male / female counts as missing: the model has no value for it."""
    missing: list[str] = []
    if age is None or not BROCK_AGE_RANGE[0] <= age <= BROCK_AGE_RANGE[1]:
        missing.append("age")
    if sex not in ("male", "female"):
        missing.append("sex")
    if family_history is None:
        missing.append("family_history")
    if emphysema is None:
        missing.append("emphysema")
    if missing:
        return None, missing
    assert age is not None
    return BrockPatient(float(age), sex == "female", bool(family_history), bool(emphysema)), []


def inputs_text(patient: dict[str, Any], lang: str) -> str:
    """``63岁,女,肺癌家族史:有,肺气肿:无`` for the known inputs (unknown ones say so)."""

    def yes_no(value: Any) -> str:
        if value is None:
            return report_text("brock.unknown", lang)
        return report_text("brock.yes" if value else "brock.no", lang)

    age = patient.get("age_years")
    parts = [
        report_text("brock.age", lang, age=f"{age:g}")
        if age is not None
        else report_text("brock.age_unknown", lang),
        report_text(f"brock.sex.{patient.get('sex') or 'unknown'}", lang),
        report_text(
            "brock.family_history", lang, value=yes_no(patient.get("family_history_lung_cancer"))
        ),
        report_text("brock.emphysema", lang, value=yes_no(patient.get("emphysema"))),
    ]
    return ("," if lang != "en" else ", ").join(parts)


def brock_lines(block: dict[str, Any], lang: str) -> list[str]:
    """The impression line of a ``brock`` block: probabilities with the inputs used, or why
    it was not computed (the missing inputs named). No line for an exam without nodules."""
    if not block.get("computable", True):
        if not block.get("nodules_count"):
            return []
        sep = "、" if lang != "en" else ", "
        missing = sep.join(report_text(f"brock.input.{k}", lang) for k in block["missing"])
        return [report_text("impression.brock_missing", lang, missing=missing)]
    items = [
        report_text("brock.item", lang, id=r["id"], pct=f"{100 * r['probability']:.1f}")
        if r["probability"] is not None
        else report_text(
            "brock.item_none",
            lang,
            id=r["id"],
            reason=report_text(f"brock.reason.{r['reason']}", lang),
        )
        for r in block["nodules"]
    ]
    if not items:
        return []
    sep = "；" if lang != "en" else "; "
    return [
        report_text(
            "impression.brock",
            lang,
            inputs=inputs_text(block["patient"], lang),
            items=sep.join(items),
        )
    ]


def _changes(nodules: list[dict[str, Any]], block: dict[str, Any]) -> dict[int, NoduleChange]:
    """Per current nodule id, its change since the prior study (``followup`` block)."""
    prior = {int(n["id"]): n for n in (block.get("prior") or {}).get("nodules") or []}
    current = {int(n["id"]): n for n in nodules}
    out: dict[int, NoduleChange] = {}
    for c in block.get("changes") or []:
        cid = c.get("current_id")
        if cid is None or int(cid) not in current:
            continue
        before = prior.get(int(c["prior_id"])) if c.get("prior_id") is not None else None
        now = current[int(cid)]
        solid = None
        if before is not None and now.get("solid_component_mm") is not None:
            solid = float(now["solid_component_mm"]) - float(before.get("solid_component_mm") or 0)
        out[int(cid)] = NoduleChange(
            status=str(c["status"]),
            diameter_change_mm=c.get("diameter_change_mm"),
            solid_change_mm=solid,
            prior_type=str(before["type"]) if before is not None else None,
        )
    return out


def _for_risk(nodules: list[dict[str, Any]]) -> list[NoduleForRisk]:
    return [
        NoduleForRisk(
            id=n["id"],
            type=n["type"],
            mean_diameter_mm=n["mean_diameter_mm"],
            solid_component_mm=n.get("solid_component_mm"),
            fleischner_mm=math.floor((n["long_axis_mm"] + n["short_axis_mm"]) / 2 + 0.5),
        )
        for n in nodules
    ]


def apply_guideline(
    result: dict[str, Any],
    *,
    guideline: str = "lungrads",
    risk: str = "high",
    lang: str = "zh",
    patient: BrockPatient | None = None,
    brock_missing: list[str] | None = None,
    brock_known: dict[str, Any] | None = None,
    followup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return ``result`` with ``guideline`` / ``china`` / ``brock`` added and the impression
    redrafted (selected guideline first, Brock line before the review notice).

    ``brock_missing`` (from :func:`brock_from_record`, with ``patient`` ``None``) adds a
    ``brock`` block with ``computable: false`` that names the missing inputs and keeps the
    known ones (``brock_known``: :meth:`BrockPatient.to_dict` keys, ``None`` where unknown).
    ``followup`` (prior ``nodules`` and ``changes`` as :func:`medbrain.imaging.interval.add_followup`
    writes them) feeds the Chinese category; default: the result's own ``followup`` block.
    """
    check_guideline(guideline)
    out = dict(result)
    out["guideline"] = guideline
    china = None
    if guideline == "china2021":
        block = followup if followup is not None else out.get("followup")
        changes = _changes(out["nodules"], block) if isinstance(block, dict) else None
        china = china_2021(_for_risk(out["nodules"]), risk, lang, changes)
        out["china"] = china
    lines: list[str] = []
    if patient is not None:
        block = {**brock_for_nodules(out["nodules"], patient), "computable": True, "missing": []}
        out["brock"] = block
        lines = brock_lines(block, lang)
    elif brock_missing:
        unknown = {
            "age_years": None,
            "sex": None,
            "family_history_lung_cancer": None,
            "emphysema": None,
        }
        block = {
            "computable": False,
            "missing": [k for k in BROCK_INPUTS if k in brock_missing],
            "patient": {**unknown, **(brock_known or {})},
            "nodules": [],
            "nodules_count": len(out["nodules"]),
            "model": "PanCan full model without spiculation (McWilliams 2013)",
        }
        out["brock"] = block
        lines = brock_lines(block, lang)
    out["report"] = redraft_impression(
        out["report"], guideline, lang, china=china, brock_lines=lines
    )
    return out
