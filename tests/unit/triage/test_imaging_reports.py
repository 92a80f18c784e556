"""Plain-language chest CT explanations: every Lung-RADS category, rejected nodules ignored."""

from __future__ import annotations

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.triage.imaging_reports import (
    default_imaging_knowledge,
    explain_chest_ct,
    imaging_knowledge_with,
)

CATEGORIES = ("0", "1", "2", "3", "4A", "4B", "4X")


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_category_has_a_meaning_a_next_step_and_no_diagnosis(
    category: str, lang: str
) -> None:
    out = explain_chest_ct({"category": category}, [], default_imaging_knowledge(), lang=lang)
    assert out.meaning and out.next_step and out.disclaimer
    assert ("不是诊断" in out.disclaimer) if lang == "zh" else ("not a diagnosis" in out.disclaimer)
    assert "癌" not in out.meaning and "cancer" not in out.meaning.lower()


def test_follow_up_interval_follows_lung_rads_v2022() -> None:
    knowledge = default_imaging_knowledge()
    nexts = {
        c: explain_chest_ct({"category": c}, [], knowledge, lang="en").next_step for c in CATEGORIES
    }
    assert "12 months" in nexts["1"] and "12 months" in nexts["2"]
    assert "6 months" in nexts["3"] and "3 months" in nexts["4A"]
    assert "biopsy" in nexts["4B"] and nexts["4X"] == nexts["4B"]


def test_rejected_nodules_are_not_counted() -> None:
    nodules = [
        {"mean_diameter_mm": 5.0},
        {"mean_diameter_mm": 7.44, "decision": "accepted"},
        {"mean_diameter_mm": 30.0, "decision": "rejected"},
    ]
    out = explain_chest_ct({"category": "3"}, nodules, default_imaging_knowledge())
    assert (out.nodule_count, out.largest_mm) == (2, 7.4)


def test_unknown_category_and_incomplete_override_are_refused() -> None:
    with pytest.raises(KnowledgeError, match="category '5'"):
        explain_chest_ct({"category": "5"}, [], default_imaging_knowledge())
    with pytest.raises(KnowledgeError, match="needs meaning and next"):
        imaging_knowledge_with({"categories": [{"id": "9", "meaning": {"zh": "x"}}]})


def test_hospital_override_replaces_one_category_text() -> None:
    knowledge = imaging_knowledge_with(
        {"categories": [{"id": "3", "next": {"zh": "6个月后到本院肺结节门诊复查", "en": "x"}}]}
    )
    out = explain_chest_ct({"category": "3"}, [], knowledge)
    assert out.next_step == "6个月后到本院肺结节门诊复查"
    assert explain_chest_ct({"category": "2"}, [], knowledge).next_step.startswith("12个月")
