"""Plain-language lab explanations and hospital navigation for the patient assistant (pure)."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

from medbrain.alerts.knowledge import load_alert_knowledge
from medbrain.core.errors import KnowledgeError
from medbrain.triage.navigation import default_navigation, find_places, navigation_with
from medbrain.triage.reports import (
    LabValue,
    build_report_knowledge,
    default_report_knowledge,
    distance_text,
    explain,
)

ALERTS = load_alert_knowledge(None)
K = default_report_knowledge()


def lab(
    code: str,
    value: float | None,
    unit: str,
    low: float | None = None,
    high: float | None = None,
    flag: str | None = None,
    ref: str = "Observation/1",
) -> LabValue:
    return LabValue(
        ref=ref,
        code=code,
        display=code,
        value=value,
        unit=unit,
        ref_low=low,
        ref_high=high,
        flag=flag,
    )


def test_distance_from_the_labs_own_range_and_advice_by_grade() -> None:
    items = explain(
        [lab("1742-6", 60, "U/L", 9, 50), lab("1742-6", 100, "U/L", 9, 50, ref="O/2")],
        K,
        alerts=ALERTS,
        sex="male",
    )
    by_ref = {i.ref: i for i in items}
    mild, marked = by_ref["Observation/1"], by_ref["O/2"]
    assert mild.percent == 20 and distance_text(mild, "zh") == "高于上限 20%"
    assert distance_text(mild, "en") == "20% above the upper limit"
    assert mild.level == "routine" and marked.level == "soon" and marked.percent == 100
    assert items[0] is marked  # further from the range first
    assert "ALT" in mild.name and "下次就诊" in mild.advice and "肝" in mild.meaning


def test_critical_value_says_contact_doctor_or_ed_now_even_without_lab_flag() -> None:
    k_high = explain(
        [lab("2823-3", 6.5, "mmol/L", 3.5, 5.3), lab("2951-2", 140, "mmol/L", 137, 147)],
        K,
        alerts=ALERTS,
        lang="zh",
    )
    assert len(k_high) == 1  # the normal sodium is not explained
    item = k_high[0]
    assert item.emergency and "请立即联系医生/急诊" in item.advice
    assert "critical value" in item.source and "6.2" in item.source
    # just below the critical limit: abnormal but not an emergency
    near = explain([lab("2823-3", 6.1, "mmol/L", 3.5, 5.3)], K, alerts=ALERTS)[0]
    assert near.level == "routine" and not near.emergency
    # glucose reported in mg/dL converts to mmol/L before the critical comparison (≥22.2)
    glucose = explain([lab("2345-7", 450, "mg/dL", 70, 110)], K, alerts=ALERTS, lang="en")[0]
    assert glucose.emergency and "emergency department" in glucose.advice


def test_lab_critical_flag_counts_and_unknown_analytes_are_not_interpreted() -> None:
    flagged = explain([lab("9999-9", None, "", flag="HH")], K, alerts=ALERTS)[0]
    assert flagged.emergency and flagged.side == "high" and flagged.what == ""
    unknown = explain([lab("9999-9", 2.1, "x", 1, 2)], K, alerts=ALERTS, lang="en")[0]
    assert unknown.level == "routine" and "ask your doctor" in unknown.meaning


def test_fallback_reference_interval_is_sex_specific_and_never_guessed() -> None:
    hb = lab("718-7", 120, "g/L")  # no range on the result
    male = explain([hb], K, alerts=ALERTS, sex="male")
    assert male and male[0].range_text == "130–175 g/L" and "WS/T 405" in male[0].source
    assert explain([hb], K, alerts=ALERTS, sex="female") == []  # within 115-150
    assert explain([hb], K, alerts=ALERTS, sex="unknown") == []  # no guessing
    assert explain([lab("718-7", 120, "mmol/L")], K, alerts=ALERTS, sex="male") == []


def test_texts_never_diagnose_and_knowledge_is_validated() -> None:
    text = (resources.files("medbrain.knowledge") / "triage" / "reports.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    for row in data["analytes"]:
        for side in ("high", "low"):
            assert "诊断为" not in row[side]["zh"] and "you have" not in row[side]["en"].lower()
    broken = copy.deepcopy(data)
    broken["analytes"][0]["reference"]["source"] = "NOPE"
    with pytest.raises(KnowledgeError, match="reference needs a known source"):
        build_report_knowledge(broken)
    broken = copy.deepcopy(data)
    del broken["analytes"][1]["high"]["en"]
    with pytest.raises(KnowledgeError, match="needs zh and en"):
        build_report_knowledge(broken)


@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("抽血在几楼?", "laboratory"),
        ("做CT在哪里", "imaging"),
        ("Where is the pharmacy?", "pharmacy"),
        ("儿科几点开门", "paediatrics"),
        ("how do I get to the ER", "ed"),
    ],
)
def test_navigation_finds_the_place(question: str, place: str) -> None:
    assert find_places(question, default_navigation())[0].id == place


def test_navigation_ignores_unrelated_words_and_accepts_hospital_override() -> None:
    nav = default_navigation()
    assert find_places("kernel order", nav) == []  # "er" only as a whole word
    custom = navigation_with(
        {
            "places": [
                {"id": "laboratory", "floor": {"zh": "5楼", "en": "5th floor"}},
                {
                    "id": "dental",
                    "keywords": ["口腔", "牙"],
                    "name": {"zh": "口腔科", "en": "Dental"},
                    "building": {"zh": "A楼", "en": "A"},
                    "floor": {"zh": "6楼", "en": "6"},
                    "hours": {"zh": "8-17", "en": "8-17"},
                },
            ]
        }
    )
    assert find_places("抽血", custom)[0].text("floor", "zh") == "5楼"
    assert find_places("牙疼看哪里", custom)[0].id == "dental"
    with pytest.raises(KnowledgeError, match="needs zh and en"):
        navigation_with({"places": [{"id": "x", "keywords": ["x"]}]})
