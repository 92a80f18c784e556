"""chief_complaint: ≤ 20 characters, a duration, and its symptom in 现病史 (第十九条)."""

from __future__ import annotations

import pytest

from tests.unit.qc.helpers import load_fixture, mutate, rule_ids, run

CAP = "01_cap_clean"
OLD = "主诉:咳嗽、咳痰伴发热4天。"


@pytest.mark.parametrize(
    ("complaint", "rule"),
    [
        (
            "主诉:咳嗽、咳痰伴发热4天,伴畏寒、乏力、纳差、胸闷及活动后气促。",
            "qc.content.chief-complaint-length",
        ),
        ("主诉:咳嗽、咳痰伴发热。", "qc.content.chief-complaint-duration"),
        ("主诉:咳嗽咳痰。", "qc.content.chief-complaint-duration"),
        ("主诉:腰痛3天。", "qc.content.hpi-matches-complaint"),
    ],
)
def test_complaint_defects(complaint: str, rule: str) -> None:
    report = run(mutate(load_fixture(CAP), "admission", OLD, complaint))
    hits = [f for f in (*report.defects, *report.needs_review) if f.rule_id == rule]
    assert hits
    assert hits[0].evidence[-1].quote == complaint.removeprefix("主诉:").rstrip("。")


@pytest.mark.parametrize(
    "complaint",
    [
        "主诉:咳嗽、咳痰伴发热4天。",
        "主诉:反复咳嗽、咳痰3年,加重伴发热4天。",  # 20 characters exactly
        "主诉:咳嗽、咳痰伴发热半月。",
        "主诉:咳嗽、咳痰伴发热三天。",
        "主诉:咳嗽、咳痰伴发热10余天。",
        "主诉:发热、咳嗽4天。",  # symptom in a different order, still in 现病史
    ],
)
def test_complaint_near_misses(complaint: str) -> None:
    found = rule_ids(run(mutate(load_fixture(CAP), "admission", OLD, complaint)))
    assert not {r for r in found if r.startswith("qc.content.")}


def test_hpi_mismatch_is_low_confidence_and_goes_to_review() -> None:
    report = run(mutate(load_fixture(CAP), "admission", OLD, "主诉:腰痛3天。"))
    assert [f.rule_id for f in report.needs_review] == ["qc.content.hpi-matches-complaint"]
    assert report.needs_review[0].needs_review
    assert report.score == 100.0
