"""Pre-consultation / where-to-go: department mapping, red flags that always win, the HPI
draft, bad answers, and the patient assistant's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.triage import assess_document, default_knowledge
from medbrain.triage.assistant import answer
from medbrain.triage.preconsult import (
    build_preconsult_knowledge,
    default_preconsult_knowledge,
    parse_answers,
    preconsult,
)

VIGNETTES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "guidance_vignettes.yaml").read_text(encoding="utf-8")
)
PC = default_preconsult_knowledge()
TRIAGE = default_knowledge()


def guide(answers: dict[str, Any], lang: str = "zh", **patient: Any) -> Any:
    return preconsult(parse_answers(answers, PC, **patient), TRIAGE, PC, lang=lang)


def test_guidance_vignettes_are_many_unique_and_half_red_flags() -> None:
    ids = [v["id"] for v in VIGNETTES]
    assert len(ids) >= 30 and len(ids) == len(set(ids))
    assert sum(1 for v in VIGNETTES if v["expect"]["go_to_ed"]) >= 15


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_guidance_vignette(vignette: dict[str, Any]) -> None:
    result = guide(vignette["answers"], **vignette["patient"])
    got = {"go_to_ed": result.go_to_ed, "department": result.department["code"]}
    expect = vignette["expect"]
    assert {k: got[k] for k in expect} == expect, result.reasons


@pytest.mark.parametrize("flag", [f.id for f in PC.red_flags])
@pytest.mark.parametrize("complaint", ["牙疼", "皮肤痒", "想开点维生素"])
def test_every_red_flag_sends_any_complaint_to_the_ed_now(flag: str, complaint: str) -> None:
    result = guide({"complaint": complaint, "red_flags": [flag]}, age_years=40, sex="female")
    assert result.go_to_ed is True
    assert result.care == "emergency"
    assert result.department["code"] == "20"
    assert result.level <= 2
    assert result.reasons[0].startswith(PC.flag(flag).label["zh"])


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("flag", PC.red_flags, ids=[f.id for f in PC.red_flags])
def test_each_red_flag_matches_the_engine_rule_it_stands_for(flag: Any, lang: str) -> None:
    """The checkbox and the triage engine cannot drift apart: the flag's own words in the
    patient's language fire the complaint rule it names, at an emergency level."""
    visit: dict[str, Any] = {"complaint": flag.probe[lang]}
    if flag.probe_age_years is not None:
        visit["age_years"] = flag.probe_age_years
    result = assess_document(visit, TRIAGE, lang=lang)
    assert flag.rule in [c.rule_id for c in result.criteria]
    assert result.level <= 2 and result.care == "emergency"


def test_specialty_is_kept_for_after_the_emergency() -> None:
    result = guide({"complaint": "牙疼", "red_flags": ["rf.chest_pain"]}, age_years=58, sex="male")
    assert result.specialty is not None and result.specialty["code"] == "12"


def test_hpi_draft_is_structured_and_cites_the_patient() -> None:
    result = guide(
        {
            "complaint": "腹痛一天",
            "onset": "lt24h",
            "severity": 5,
            "red_flags": ["rf.bleeding"],
            "history": {"character": "绞痛", "medicines": "阿司匹林", "allergies": "青霉素"},
        },
        age_years=50,
        sex="male",
    )
    sections = {line["section"]: line for line in result.hpi}
    assert list(sections)[:2] == ["主诉", "现病史"]
    assert sections["主诉"]["text"] == "腹痛一天(6-24小时)"
    hpi = sections["现病史"]["text"]
    assert "严重程度自评 5/10" in hpi and "绞痛" in hpi
    assert "自述危险信号:大量出血止不住" in hpi and "否认:" in hpi
    assert sections["用药史"]["text"] == "阿司匹林" and sections["过敏史"]["text"] == "青霉素"
    assert all("患者预问诊自述" in line["source"] for line in result.hpi)


def test_infant_question_is_asked_only_for_babies_but_never_ignored() -> None:
    assert "rf.infant_fever" not in [f.id for f in PC.asked(30)]
    assert "rf.infant_fever" in [f.id for f in PC.asked(0.2)]
    assert "rf.infant_fever" in [f.id for f in PC.asked(None)]
    adult = guide({"complaint": "流鼻涕"}, age_years=30)
    assert "婴儿" not in adult.hpi[1]["text"]
    ticked = guide({"complaint": "流鼻涕", "red_flags": ["rf.infant_fever"]}, age_years=30)
    assert ticked.go_to_ed is True


def test_hpi_in_english() -> None:
    result = guide({"complaint": "sore throat", "onset": "d1_7"}, "en", age_years=30)
    assert result.hpi[0]["section"] == "Chief complaint"
    assert "began 1-7 days ago" in result.hpi[0]["text"]
    assert result.hpi[1]["text"].startswith("Onset: 1-7 days ago")


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"complaint": "  "}, "complaint"),
        ({}, "complaint"),
        ({"complaint": "x" * 501}, "complaint"),
        ({"complaint": "头痛", "onset": "yesterday"}, "onset"),
        ({"complaint": "头痛", "severity": 11}, "severity"),
        ({"complaint": "头痛", "severity": "bad"}, "severity"),
        ({"complaint": "头痛", "red_flags": ["rf.unknown"]}, "red_flags"),
        ({"complaint": "头痛", "red_flags": "rf.stroke"}, "red_flags"),
        ({"complaint": "头痛", "history": {"hobbies": "x"}}, "history.hobbies"),
        ({"complaint": "头痛", "pregnant": True}, "pregnant"),
    ],
)
def test_bad_answers_name_the_field(answers: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_answers(answers, PC, sex="male")
    assert info.value.field == field


def test_a_red_flag_row_without_a_source_is_refused() -> None:
    data = yaml.safe_load(
        Path("src/medbrain/knowledge/triage/preconsult.yaml").read_text(encoding="utf-8")
    )
    data["red_flags"][0]["source"] = ""
    with pytest.raises(KnowledgeError, match=r"rf\.chest_pain needs source"):
        build_preconsult_knowledge(data)


# --------------------------------------------------------------------------- assistant

ROW = {
    "status": "waiting",
    "zone_name": "黄区",
    "level_name": "Ⅲ级",
    "department": {"code": "20", "name_zh": "急诊医学科", "name_en": "Emergency medicine"},
    "waiting_rank": 3,
    "waited_minutes": 12.0,
    "max_wait_minutes": 30,
    "overdue": False,
    "steps": [
        {"step": "door", "label": "到院", "at": "2026-11-23T08:00:00+00:00"},
        {"step": "doctor", "label": "医生接诊", "at": None, "target_minutes": None},
        {"step": "ecg", "label": "心电图", "at": None, "target_minutes": 10},
    ],
}


def test_assistant_reports_queue_position_from_the_board_rank() -> None:
    facts = answer("我还要等多久?", TRIAGE, ed_row=ROW)
    assert facts.intents == ("next",) and facts.emergency is False
    assert (facts.ahead, facts.limit_minutes, facts.waited_minutes) == (2, 30, 12.0)
    assert [s["step"] for s in facts.next_steps] == ["doctor", "ecg"]


def test_assistant_where_from_preconsultation_without_ed_visit() -> None:
    pre = {"go_to_ed": False, "department": {"code": "12", "name_zh": "口腔科"}}
    facts = answer("我应该去哪个科室", TRIAGE, preconsult=pre)
    assert facts.intents == ("where",) and facts.in_ed is False
    assert facts.preconsult_department == pre["department"]


@pytest.mark.parametrize("question", ["我现在胸痛出冷汗", "突然说话不清,嘴歪了", "想自杀"])
def test_an_emergency_symptom_in_the_question_overrides_everything(question: str) -> None:
    facts = answer(question, TRIAGE, ed_row=ROW)
    assert facts.intents == ("emergency",) and facts.emergency is True and facts.in_ed is True
    assert facts.emergency_reasons


def test_assistant_refuses_an_overlong_question() -> None:
    with pytest.raises(InputError, match="longer than 300"):
        answer("等" * 301, TRIAGE)
