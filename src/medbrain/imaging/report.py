"""Deterministic structured draft report (zh or en) for ``ct detect``.

References
----------
ACR Lung-RADS v2022 (report: size as mean diameter to one decimal, type, location, category,
management); MacMahon H et al. Fleischner Society 2017, Radiology 2017;284(1):228-243.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.loaders import load_yaml


@lru_cache(maxsize=1)
def templates() -> dict[str, dict[str, str]]:
    data = load_yaml("imaging/report_text.yaml")
    rows = data.get("templates") if isinstance(data, dict) else None
    if not isinstance(rows, dict):
        raise KnowledgeError("imaging/report_text.yaml: needs a 'templates' mapping")
    for key, value in rows.items():
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str) for k in ("zh", "en")
        ):
            raise KnowledgeError(f"imaging/report_text.yaml: {key!r} needs zh and en")
    return rows


def text(key: str, lang: str, **params: object) -> str:
    row = templates().get(key)
    if row is None:
        raise KnowledgeError(f"imaging/report_text.yaml: unknown key {key!r}")
    return row["en" if lang == "en" else "zh"].format(**params)


def _num(value: float) -> str:
    return f"{value:.1f}"


def draft_report(
    nodules: list[dict[str, Any]],
    lung_rads: dict[str, Any],
    fleischner: dict[str, Any],
    slices: int,
    lang: str = "zh",
) -> dict[str, str]:
    """Findings and impression from the contract's nodule dicts (DESIGN.md §3)."""
    lines: list[str] = []
    if not nodules:
        lines.append(text("findings.none", lang))
    else:
        lines.append(text("findings.count", lang, count=len(nodules)))
        for n in nodules:
            place = (
                text(f"lobe.{n['lobe']}", lang)
                if n.get("lobe")
                else text(f"side.{n['side']}", lang)
            )
            solid = (
                text("findings.solid", lang, solid=_num(n["solid_component_mm"]))
                if n.get("solid_component_mm") is not None
                else ""
            )
            lines.append(
                text(
                    "findings.nodule",
                    lang,
                    id=n["id"],
                    place=place,
                    slice=n["center_voxel"][2] + 1,
                    slices=slices,
                    type=text(f"type.{n['type']}", lang),
                    long=_num(n["long_axis_mm"]),
                    short=_num(n["short_axis_mm"]),
                    mean=_num(n["mean_diameter_mm"]),
                    volume=round(n["volume_mm3"]),
                    solid=solid,
                    location=text(f"location.{n['location']}", lang),
                )
            )
    driver = (
        text("impression.driver", lang, id=lung_rads["driver_nodule"])
        if lung_rads.get("driver_nodule") is not None
        else ""
    )
    impression = [
        text(
            "impression.lungrads",
            lang,
            category=lung_rads["category"],
            driver=driver,
            management=lung_rads["management"].rstrip("。."),
        ),
        text(
            "impression.fleischner",
            lang,
            risk=text(f"risk.{fleischner['risk']}", lang),
            recommendation=fleischner["recommendation"].rstrip("。."),
        ),
        text("impression.review", lang),
    ]
    sep = "\n"
    return {"findings": sep.join(lines), "impression": sep.join(impression), "language": lang}


# --- guideline selection, Chinese rule set, Brock (helper ct-lobes) ---


def redraft_impression(
    report: dict[str, str],
    guideline: str,
    lang: str,
    *,
    china: dict[str, Any] | None = None,
    brock_lines: list[str] | None = None,
) -> dict[str, str]:
    """Put the selected guideline's lines first in the impression; add Chinese / Brock lines.

    ``report`` is a :func:`draft_report` result (possibly with follow-up lines); the last
    impression line (radiologist review notice) stays last.
    """
    lines = report["impression"].split("\n")
    review = text("impression.review", lang)
    body = [ln for ln in lines if ln != review]
    head: list[str] = []
    if china is not None:
        s, inc = china["screening"], china["incidental"]
        head.append(
            text(
                "impression.china_followup"
                if china.get("compared_with_prior")
                else "impression.china_screening",
                lang,
                driver=text("impression.driver", lang, id=s["driver_nodule"])
                if s.get("driver_nodule") is not None
                else "",
                management=str(s["management"]).rstrip("。."),
            )
        )
        head.append(
            text(
                "impression.china_incidental",
                lang,
                risk=text(f"risk.{inc['risk']}", lang),
                driver=text("impression.driver", lang, id=inc["driver_nodule"])
                if inc.get("driver_nodule") is not None
                else "",
                recommendation=str(inc["recommendation"]).rstrip("。."),
            )
        )
    if guideline == "fleischner":
        fl_prefix = text("impression.fleischner", lang, risk="\x00", recommendation="\x00")
        fl_prefix = fl_prefix.split("\x00")[0]
        first = [ln for ln in body if ln.startswith(fl_prefix)]
        body = first + [ln for ln in body if not ln.startswith(fl_prefix)]
    out = head + body + list(brock_lines or []) + ([review] if review in lines else [])
    return {**report, "impression": "\n".join(out)}
