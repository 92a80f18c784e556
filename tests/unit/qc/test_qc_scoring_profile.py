"""Scoring profiles (knowledge/qc/scoring_profiles.yaml): a hospital selects a published
scoring table by configuration; its deductions, 单项否决 grades and section caps apply, and
without a profile the shipped table is unchanged (issue 7 §4)."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.qc import check_record, load_qc_knowledge
from medbrain.qc.corpus import generate_corpus
from medbrain.qc.parse import record_from_mapping
from medbrain.qc.registry import RuleRegistry, scoring_profiles
from tests.unit.qc.helpers import load_fixture, mutate

PROFILE = "inpatient-evaluation-form-trial"
SHIPPED = load_qc_knowledge()
TABLE = load_qc_knowledge({"scoring": {"profile": PROFILE}})


def _check(body: dict[str, Any], kb: Any) -> Any:
    return check_record(record_from_mapping(body), kb, stage="final")


def test_every_profile_row_has_a_source_and_unverified_tables_say_so() -> None:
    for pid, raw in scoring_profiles().items():
        assert raw["source"].strip() and raw["name"]["zh"] and raw["name"]["en"], pid
        assert all(item["source"].strip() for item in raw["items"])
        assert all(section["source"].strip() for section in raw["sections"])
        assert all(grade["source"].strip() for grade in raw["grades"])
        if raw.get("needs_review"):
            assert len(raw["note"]) > 40
    scoring = TABLE.scoring
    assert scoring.profile == PROFILE and scoring.needs_review
    assert [(g.grade, g.min_score) for g in scoring.grades] == [("甲", 90), ("乙", 75), ("丙", 0)]
    assert SHIPPED.scoring.profile == "" and not SHIPPED.scoring.items


def test_a_veto_item_forces_its_own_grade_with_the_tables_deduction() -> None:
    clean = load_fixture("01_cap_clean")
    assert _check(clean, TABLE).grade == "甲"
    # 入院记录未在患者入院后24小时内完成: 单项否决 26 (丙)
    late = mutate(
        clean, "admission", "记录时间:2024年3月5日15时10分", "记录时间:2024年3月7日15时10分"
    )
    shipped, table = _check(late, SHIPPED), _check(late, TABLE)
    rule = next(d for d in table.defects if d.rule_id == "qc.time.admission-24h")
    assert rule.extra["deduction"] == 26 and rule.extra["veto_grade"] == "丙"
    assert "26(丙)" in rule.extra["scoring_source"]
    assert table.grade == "丙" and table.veto and table.score <= 74
    before = next(d for d in shipped.defects if d.rule_id == rule.rule_id)
    assert before.extra["deduction"] == 5 and "veto_grade" not in before.extra
    assert shipped.grade == "甲" and not shipped.veto
    assert table.to_dict()["scoring_profile"] == PROFILE
    assert "scoring_profile" not in shipped.to_dict()


def test_a_milder_veto_caps_the_grade_at_its_own_level() -> None:
    # 主诉与现病史内容不符: 单项否决 11 (乙); a review threshold under the rule's confidence
    # makes it a defect
    body = mutate(
        load_fixture("01_cap_clean"), "admission", "主诉:咳嗽、咳痰伴发热4天。", "主诉:腰痛3天。"
    )
    report = check_record(record_from_mapping(body), TABLE, stage="final", review_threshold=0.5)
    hpi = next(d for d in report.defects if d.rule_id == "qc.content.hpi-matches-complaint")
    assert hpi.extra["deduction"] == 11 and hpi.extra["veto_grade"] == "乙"
    assert report.grade == "乙" and report.score == 89.0


def test_section_points_cap_ordinary_deductions() -> None:
    kb = load_qc_knowledge(
        {
            "scoring": {"profile": PROFILE},
            "rules": [
                {"rule_id": "qc.content.chief-complaint-length", "params": {"max_chars": 3}},
                {"rule_id": "qc.content.hpi-matches-complaint", "enabled": False},
            ],
        }
    )
    clean = load_fixture("01_cap_clean")
    # a complaint both too long and without a duration: 2 + 2 deducted, capped at 主诉's 3
    body = mutate(clean, "admission", "主诉:咳嗽、咳痰伴发热4天。", "主诉:咳嗽咳痰伴发热胸闷。")
    report = _check(body, kb)
    taken = {
        d.rule_id: d.extra["deduction"]
        for d in report.defects
        if d.extra.get("scoring_section") == "chief_complaint"
    }
    assert set(taken) == {
        "qc.content.chief-complaint-length",
        "qc.content.chief-complaint-duration",
    }
    assert sum(taken.values()) == 3


def test_hospital_keys_next_to_the_profile_win_and_bad_profiles_fail_clearly() -> None:
    kb = load_qc_knowledge(
        {"scoring": {"profile": PROFILE, "grades": [{"grade": "甲", "min_score": 95}]}}
    )
    assert [g.min_score for g in kb.scoring.grades] == [95] and kb.scoring.profile == PROFILE
    with pytest.raises(KnowledgeError, match="unknown profile"):
        load_qc_knowledge({"scoring": {"profile": "no-such-table"}})


def test_without_a_profile_reports_are_unchanged_and_registries_are_reused() -> None:
    corpus = generate_corpus(30, seed=5)
    for rec in corpus:
        record = record_from_mapping(rec.to_request())
        direct = check_record(record, RuleRegistry(SHIPPED), stage="final").to_dict()
        cached = check_record(record, SHIPPED, stage="final").to_dict()
        direct.pop("seconds")
        cached.pop("seconds")
        assert direct == cached
    assert RuleRegistry.of(SHIPPED) is RuleRegistry.of(SHIPPED)
    assert RuleRegistry.of(TABLE) is not RuleRegistry.of(SHIPPED)
