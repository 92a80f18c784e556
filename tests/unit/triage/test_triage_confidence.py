"""Complaint-only triage states lower confidence; unmatched complaints go to review."""

from __future__ import annotations

from medbrain.triage import assess_document, default_knowledge

FULL = {"hr": 80, "sbp": 120, "rr": 16, "spo2": 98, "temp_c": 36.7, "gcs": 15}


def test_missing_vitals_lower_confidence_and_say_so() -> None:
    complaint_only = assess_document({"complaint": "咳嗽三天"}, default_knowledge(), lang="en")
    with_vitals = assess_document({"complaint": "咳嗽三天", "vitals": FULL}, default_knowledge())
    assert complaint_only.confidence < with_vitals.confidence
    assert complaint_only.needs_review is True
    assert with_vitals.needs_review is False
    assert any(
        r.startswith("No vital signs given: complaint-only triage") for r in complaint_only.reasons
    )


def test_partial_vitals_name_what_is_missing() -> None:
    result = assess_document(
        {"complaint": "咳嗽", "vitals": {"hr": 80, "spo2": 98}}, default_knowledge()
    )
    full = assess_document({"complaint": "咳嗽", "vitals": FULL}, default_knowledge())
    assert result.confidence < full.confidence
    assert any("sbp, rr, temp_c, consciousness" in r for r in result.reasons)


def test_unmatched_complaint_defaults_to_level_4_and_needs_review() -> None:
    result = assess_document({"complaint": "想咨询一下", "vitals": FULL}, default_knowledge())
    assert result.level == 4
    assert result.needs_review is True
    assert any("未匹配" in r for r in result.reasons)


def test_review_threshold_is_a_parameter() -> None:
    visit = {"complaint": "咳嗽三天"}
    assert assess_document(visit, default_knowledge(), review_threshold=0.1).needs_review is False


def test_findings_follow_the_result_model() -> None:
    result = assess_document(
        {"complaint": "胸痛伴大汗", "age_years": 60, "vitals": FULL}, default_knowledge()
    ).to_dict()
    finding = result["findings"][0]
    assert finding["rule_id"] == "c.chest_pain_cardiac"
    assert finding["category"] == "triage"
    assert finding["severity"] == "critical"
    assert finding["evidence"][0]["source"].startswith("Chinese expert consensus")
    assert finding["evidence"][1] == {"document": "complaint", "quote": "胸痛伴大汗"}
