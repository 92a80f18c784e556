"""Post-processing of a ``ct detect`` result: selected guideline, Chinese rule set, Brock.

Adds only (DESIGN.md §3 stays as it is): ``guideline`` (the selected rule set), ``china``
(with ``--guideline china2021``) and ``brock`` (when age, sex, family history and emphysema
are known), and redrafts the report impression so the selected guideline comes first.

References
----------
See :mod:`medbrain.imaging.risk` (Lung-RADS v2022, Fleischner 2017, Chinese 2021/2018) and
:mod:`medbrain.imaging.brock` (McWilliams 2013).
"""

from __future__ import annotations

import math
from typing import Any

from medbrain.core.errors import InputError
from medbrain.imaging.brock import BrockPatient, brock_for_nodules
from medbrain.imaging.report import redraft_impression
from medbrain.imaging.report import text as report_text
from medbrain.imaging.risk import GUIDELINES, NoduleForRisk, china_2021


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
) -> dict[str, Any]:
    """Return ``result`` with ``guideline`` / ``china`` / ``brock`` added and the impression
    redrafted (selected guideline first, Brock line before the review notice)."""
    check_guideline(guideline)
    out = dict(result)
    out["guideline"] = guideline
    china = None
    if guideline == "china2021":
        china = china_2021(_for_risk(out["nodules"]), risk, lang)
        out["china"] = china
    brock_lines: list[str] = []
    if patient is not None:
        block = brock_for_nodules(out["nodules"], patient)
        out["brock"] = block
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
        if items:
            sep = "；" if lang != "en" else "; "
            brock_lines.append(report_text("impression.brock", lang, items=sep.join(items)))
    out["report"] = redraft_impression(
        out["report"], guideline, lang, china=china, brock_lines=brock_lines
    )
    return out
