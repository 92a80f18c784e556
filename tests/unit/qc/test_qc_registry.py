"""Rule library as data: validation, hospital overrides (deep merge by rule_id), scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.qc import CATEGORIES, RuleRegistry, check_record, load_qc_knowledge
from medbrain.qc.kinds import KINDS
from medbrain.qc.parse import record_from_mapping
from tests.unit.qc.helpers import load_fixture, mutate


def test_every_shipped_row_is_valid_bilingual_and_sourced() -> None:
    kb = load_qc_knowledge()
    assert len(kb.rows) >= 50
    # "expression" is the kind of hospital-written rules (the rule editor); none ship
    assert {row.kind for row in kb.rows} == set(KINDS) - {"expression"}
    assert {row.category for row in kb.rows} == set(CATEGORIES)
    for row in kb.rows:
        assert row.source.strip() and row.message["zh"] and row.message["en"]
        assert row.suggestion["zh"] and row.suggestion["en"]
    assert len({row.rule_id for row in kb.rows}) == len(kb.rows)


def test_timeliness_limits_follow_the_standard() -> None:
    params = {row.rule_id: row.params for row in load_qc_knowledge().rows}
    assert params["qc.time.admission-24h"]["hours"] == 24
    assert params["qc.time.first-course-8h"]["hours"] == 8
    assert params["qc.time.senior-round-48h"]["hours"] == 48
    assert params["qc.time.rescue-6h"]["hours"] == 6
    assert params["qc.time.surgery-24h"]["hours"] == 24
    assert params["qc.time.consult-48h"]["hours"] == 48
    assert params["qc.time.consult-urgent-10min"]["minutes"] == 10
    assert params["qc.time.discharge-24h"]["hours"] == 24
    assert params["qc.time.death-24h"]["hours"] == 24
    assert params["qc.time.death-discussion-1w"]["hours"] == 168
    assert params["qc.time.progress-interval"]["interval_days"] == {
        "critical": 1,
        "serious": 2,
        "stable": 3,
    }


def test_hospital_can_disable_reweight_and_add_rules(tmp_path: Path) -> None:
    overrides = tmp_path / "qc.yaml"
    overrides.write_text(
        """
scoring:
  grades: [{grade: 甲, min_score: 98}, {grade: 乙, min_score: 80}, {grade: 丙, min_score: 0}]
rules:
  - {rule_id: qc.time.admission-24h, deduction: 8}
  - {rule_id: qc.content.chief-complaint-length, enabled: false}
  - rule_id: qc.local.nursing-signed
    kind: signature
    category: signature
    stages: [final]
    document_types: [nursing]
    severity: info
    deduction: 1
    params: {note_kinds: [nursing]}
    message: {zh: "护理记录未签名", en: "Nursing note unsigned"}
    suggestion: {zh: "签名", en: "Sign it"}
    source: "本院护理文书规范 2026"
""",
        encoding="utf-8",
    )
    kb = load_qc_knowledge(overrides)
    ids = {row.rule_id for row in kb.rows}
    assert "qc.content.chief-complaint-length" not in ids and "qc.local.nursing-signed" in ids
    body = mutate(
        load_fixture("01_cap_clean"),
        "admission",
        "记录时间:2024年3月5日15时10分",
        "记录时间:2024年3月6日11时00分",
    )
    body["documents"]["nursing"] = "护理记录\n2024-03-05 12:00 患者入院,生命体征平稳。\n"
    report = check_record(record_from_mapping(body, vocab=kb.vocabulary), RuleRegistry(kb))
    assert {d.rule_id: d.extra["deduction"] for d in report.defects} == {
        "qc.time.admission-24h": 8.0,
        "qc.local.nursing-signed": 1.0,
    }
    assert report.score == 91.0 and report.grade == "乙"


NEW_ROW: dict[str, object] = {
    "rule_id": "qc.local.new",
    "kind": "deadline",
    "category": "timeliness",
    "severity": "warning",
    "deduction": 1,
    "params": {"start": {"event": "admit"}, "target": "admission", "hours": 12},
    "message": {"zh": "超时", "en": "late"},
    "suggestion": {"zh": "及时", "en": "on time"},
    "source": "本院规定",
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "nope"}, "unknown kind"),
        ({"category": "style"}, "category"),
        ({"source": ""}, "source"),
        ({"message": {"zh": "只有中文"}}, "zh and en"),
        ({"severity": "fatal"}, "severity"),
        ({"params": {"target": "admission", "hours": 1}}, "params need"),
        ({"params": {"start": {"event": "admit"}, "target": "admission"}}, "hours or minutes"),
        ({"confidence": 2}, "confidence"),
    ],
)
def test_malformed_rows_fail_naming_the_rule(change: dict[str, object], problem: str) -> None:
    with pytest.raises(KnowledgeError, match=problem) as info:
        load_qc_knowledge({"rules": [{**NEW_ROW, **change}]})
    assert "qc.local.new" in str(info.value)


def test_a_valid_new_row_loads() -> None:
    assert "qc.local.new" in {r.rule_id for r in load_qc_knowledge({"rules": [NEW_ROW]}).rows}


def test_caps_limit_repeated_deductions_and_veto_forces_the_grade() -> None:
    body = load_fixture("01_cap_clean")
    course = body["documents"]["course"].replace("医师签名:李明", "医师签名:")
    report = check_record(
        record_from_mapping(mutate(body, "course", body["documents"]["course"], course)),
        RuleRegistry(load_qc_knowledge()),
    )
    signs = [d for d in report.defects if d.rule_id == "qc.sign.progress-notes"]
    assert len(signs) == 5
    assert sum(d.extra["deduction"] for d in signs) == 5.0  # 1 each, capped at 5
    kb = load_qc_knowledge({"rules": [{"rule_id": "qc.sign.progress-notes", "veto": True}]})
    vetoed = check_record(
        record_from_mapping(mutate(body, "course", body["documents"]["course"], course)),
        RuleRegistry(kb),
    )
    assert vetoed.score == 95.0 and vetoed.veto and vetoed.grade == "丙"


def test_review_threshold_moves_findings_to_the_queue_without_deduction() -> None:
    body = mutate(
        load_fixture("01_cap_clean"), "labs", None, "2024-03-08 07:30 血钾 2.6 mmol/L ↓\n"
    )
    strict = check_record(
        record_from_mapping(body), RuleRegistry(load_qc_knowledge()), review_threshold=0.95
    )
    assert [f.rule_id for f in strict.needs_review] == ["qc.lab.abnormal-not-addressed"]
    assert strict.needs_review[0].extra["deduction"] == 0.0 and strict.score == 100.0
