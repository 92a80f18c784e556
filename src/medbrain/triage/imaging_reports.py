"""Explain a signed chest CT report to the patient in plain language (never a diagnosis).

Why only signed reports: what a patient reads must be what the radiologist signed, not the
detector's draft. The category's meaning and next step come from a data file (Lung-RADS v2022
management, in words a patient understands); the nodule count and size come from the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.loaders import load_yaml
from medbrain.knowledge.overrides import deep_merge


@dataclass(frozen=True, slots=True)
class ImagingReportKnowledge:
    source: str
    disclaimer: Mapping[str, str]
    categories: Mapping[str, Mapping[str, Mapping[str, str]]]  # category → meaning/next → lang


@dataclass(frozen=True, slots=True)
class ImagingExplanation:
    study_date: str
    category: str | None
    nodule_count: int
    largest_mm: float | None
    meaning: str
    next_step: str
    disclaimer: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_date": self.study_date,
            "category": self.category,
            "nodule_count": self.nodule_count,
            "largest_mm": self.largest_mm,
            "meaning": self.meaning,
            "next_step": self.next_step,
            "disclaimer": self.disclaimer,
        }


def build_imaging_knowledge(data: Mapping[str, Any]) -> ImagingReportKnowledge:
    categories: dict[str, Mapping[str, Mapping[str, str]]] = {}
    for row in data.get("categories") or []:
        texts = {k: row.get(k) for k in ("meaning", "next")}
        if not all(isinstance(v, Mapping) and {"zh", "en"} <= set(v) for v in texts.values()):
            raise KnowledgeError(
                f"imaging_reports.yaml: category {row.get('id')!r} needs meaning and next in zh and en"
            )
        categories[str(row["id"])] = texts
    disclaimer = data.get("disclaimer")
    if not isinstance(disclaimer, Mapping) or not {"zh", "en"} <= set(disclaimer):
        raise KnowledgeError("imaging_reports.yaml: disclaimer needs zh and en")
    return ImagingReportKnowledge(str(data.get("source", "")), disclaimer, categories)


@lru_cache(maxsize=1)
def _shipped() -> Any:
    return load_yaml("triage/imaging_reports.yaml")


def default_imaging_knowledge() -> ImagingReportKnowledge:
    return build_imaging_knowledge(_shipped())


def imaging_knowledge_with(override: Mapping[str, Any] | None) -> ImagingReportKnowledge:
    """The shipped texts with a hospital's override merged in (categories by ``id``)."""
    if not override:
        return default_imaging_knowledge()
    return build_imaging_knowledge(deep_merge(_shipped(), dict(override)))


def explain_chest_ct(
    lung_rads: Mapping[str, Any],
    nodules: Sequence[Mapping[str, Any]],
    knowledge: ImagingReportKnowledge,
    *,
    study_date: str = "",
    lang: str = "zh",
) -> ImagingExplanation:
    """What a signed report's category means and what comes next; rejected nodules ignored."""
    language = "en" if lang == "en" else "zh"
    kept = [n for n in nodules if n.get("decision") != "rejected"]
    sizes = [float(n["mean_diameter_mm"]) for n in kept if n.get("mean_diameter_mm") is not None]
    category = lung_rads.get("category")
    texts = knowledge.categories.get(str(category)) if category is not None else None
    if texts is None:
        raise KnowledgeError(f"imaging_reports.yaml: no text for Lung-RADS category {category!r}")
    return ImagingExplanation(
        study_date=study_date,
        category=str(category),
        nodule_count=len(kept),
        largest_mm=round(max(sizes), 1) if sizes else None,
        meaning=texts["meaning"][language],
        next_step=texts["next"][language],
        disclaimer=knowledge.disclaimer[language],
    )
