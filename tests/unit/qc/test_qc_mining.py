"""Mined rules (pure): confirmed manual findings grouped into patterns, each drafted as a QC
condition, scored on the history by support and confidence, and dropped when an existing
rule already covers it (issue 7 §6)."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from medbrain.core.errors import InputError
from medbrain.qc import load_qc_knowledge
from medbrain.qc.facts import compile_condition
from medbrain.qc.mining import ManualFinding, draft_condition, mine, validate_finding
from medbrain.qc.model import Record
from medbrain.qc.parse import record_from_mapping

KB = load_qc_knowledge()

ADMISSION = """入院记录
姓名:张伟  性别:男  年龄:56岁
入院时间:2024-03-05 08:00
主诉:咳嗽、咳痰3天。
现病史:患者3天前受凉后出现咳嗽、咳痰。
既往史:否认高血压病史。否认药物过敏史。
{personal}婚育史:已婚。
家族史:否认家族遗传病史。
体格检查:{exam}
专科情况:右下肺呼吸音低。
辅助检查:胸片示右下肺斑片影。
初步诊断:社区获得性肺炎
医师签名:李明
"""
WITH_HR = "T 38.1℃ P 90次/分 BP 125/80mmHg,神志清,心率90次/分,律齐。"
NO_HR = "T 38.1℃ P 90次/分 BP 125/80mmHg,神志清,右下肺湿啰音。"
PERSONAL = "个人史:无吸烟饮酒史。\n"


def _record(exam: str, personal: str = PERSONAL) -> Record:
    text = ADMISSION.format(exam=exam, personal=personal)
    return record_from_mapping({"documents": {"admission": text}}, "t")


def _history() -> dict[Hashable, Record]:
    # stays 1–4 lack the heart rate in the examination, 5–8 record it
    return {i: _record(NO_HR if i <= 4 else WITH_HR) for i in range(1, 9)}


def _hr(stay: int) -> ManualFinding:
    return ManualFinding(stay, "admission", "体格检查", "missing_phrase", "心率")


def test_a_recurring_pattern_becomes_a_candidate_with_support_and_confidence() -> None:
    findings = [_hr(1), _hr(2), _hr(3), _hr(3)]  # stay 3 twice: support counts stays
    [candidate] = mine(findings, _history(), KB, min_support=2, min_confidence=0.5)
    assert candidate.support == 3
    assert candidate.fires == 4 and candidate.hits == 3 and candidate.records == 8
    assert candidate.confidence == 0.75 and candidate.coverage == 1.0
    assert candidate.condition == (
        'has("admission") and not contains(section("admission", "体格检查"), "心率")'
    )
    compile_condition(candidate.condition)  # the rule editor accepts it
    assert [e["stay"] for e in candidate.examples] == [1, 2, 3]
    assert all(e["fires"] and "神志清" in e["quote"] for e in candidate.examples)


def test_thresholds_support_and_confidence() -> None:
    history = _history()
    assert mine([_hr(1)], history, KB, min_support=2) == []  # one stay is no pattern
    # 2 confirmed of 4 stays where it holds: confidence 0.5 is below 0.6
    assert mine([_hr(1), _hr(2)], history, KB, min_support=2, min_confidence=0.6) == []
    [c] = mine([_hr(1), _hr(2)], history, KB, min_support=2, min_confidence=0.5)
    assert c.confidence == 0.5
    with pytest.raises(InputError):
        mine([_hr(1)], history, KB, min_support=0)


def test_a_pattern_an_existing_rule_already_flags_is_not_proposed() -> None:
    history = {i: _record(WITH_HR, personal="" if i <= 3 else PERSONAL) for i in range(1, 7)}
    findings = [ManualFinding(i, "admission", "", "missing_section", "个人史") for i in (1, 2, 3)]
    assert mine(findings, history, KB, min_support=2) == []
    # with the shipped required-section rule switched off, the same pattern is new
    local = load_qc_knowledge(
        {"rules": [{"rule_id": "qc.section.admission-personal-history", "enabled": False}]}
    )
    [c] = mine(findings, history, local, min_support=2)
    assert c.condition == 'has("admission") and section("admission", "个人史") == ""'
    assert (c.support, c.fires, c.hits, c.confidence) == (3, 3, 3, 1.0)


def test_an_unwanted_phrase_pattern() -> None:
    history = {i: _record(WITH_HR + ("同上。" if i <= 2 else ""), PERSONAL) for i in range(1, 6)}
    findings = [ManualFinding(i, "admission", "体格检查", "bad_phrase", "同上") for i in (1, 2)]
    [c] = mine(findings, history, KB, min_support=2)
    assert c.condition == 'contains(section("admission", "体格检查"), "同上")'
    assert (c.fires, c.hits, c.confidence) == (2, 2, 1.0)


@pytest.mark.parametrize(
    ("finding", "field"),
    [
        (ManualFinding(1, "ward_round", "体格检查", "missing_phrase", "心率"), "note_kind"),
        (ManualFinding(1, "admission", "体格检查", "typo", "心率"), "pattern"),
        (ManualFinding(1, "admission", "体格检查", "missing_phrase", 'x") or has("a'), "element"),
        (ManualFinding(1, "admission", "", "missing_phrase", "心率"), "section"),
        (ManualFinding(1, "admission", "体格检查", "missing_phrase", ""), "element"),
        (ManualFinding(1, "admission", "体格检查", "missing_phrase", "心" * 41), "element"),
        (ManualFinding(1, "admission", "体格检查", "missing_phrase", "心率", "style"), "category"),
    ],
)
def test_bad_manual_findings_are_refused_by_field(finding: ManualFinding, field: str) -> None:
    with pytest.raises(InputError) as caught:
        validate_finding(finding)
    assert caught.value.field == field


def test_full_width_text_is_folded_and_every_draft_parses() -> None:
    finding = validate_finding(ManualFinding(1, "admission", "体格检查", "missing_phrase", "ＢＰ"))
    assert finding.element == "BP"
    for pattern in ("missing_section", "missing_phrase", "bad_phrase"):
        compile_condition(draft_condition("first_course", "诊疗计划", pattern, "复查"))
    with pytest.raises(InputError):
        draft_condition("admission", "主诉", "other", "x")
