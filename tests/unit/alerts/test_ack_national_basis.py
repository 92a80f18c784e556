"""The critical-value time limits say what is national and what is a hospital's choice, and the
recorded choices match the limits actually configured (and stay configurable)."""

from __future__ import annotations

from pathlib import Path

from medbrain.alerts.knowledge import load_alert_knowledge
from medbrain.alerts.tracking import tracking_policy


def test_every_minute_limit_is_listed_as_a_hospital_choice_with_its_value() -> None:
    ack = load_alert_knowledge().critical["acknowledgement"]
    choices = {c["key"]: c for c in ack["hospital_choices"]}
    configured = {
        "acknowledge_within_minutes": ack["acknowledge_within_minutes"],
        "handle_within_minutes": ack["handle_within_minutes"],
        **{
            f"escalation[{n}].after_minutes": step["after_minutes"]
            for n, step in enumerate(ack["escalation"])
        },
    }
    assert set(choices) == set(configured)
    for key, value in configured.items():
        assert choices[key]["value"] == value and choices[key]["basis"], key


def test_national_texts_are_cited_and_marked_unverified_where_not_read() -> None:
    basis = load_alert_knowledge().critical["acknowledgement"]["national_basis"]
    documents = " ".join(b["document"] for b in basis)
    assert "医疗质量安全核心制度要点" in documents and "患者安全目标" in documents
    for entry in basis:
        assert isinstance(entry["verified"], bool) and entry["says"] and entry["verification"]
    core = next(b for b in basis if "核心制度要点" in b["document"])
    assert core["verified"] is False and "No number of minutes" in core["says"]


def test_a_hospital_changes_the_limits_by_configuration(tmp_path: Path) -> None:
    override = tmp_path / "alerts.yaml"
    override.write_text(
        "critical_values:\n  acknowledgement:\n    acknowledge_within_minutes: 15\n"
        "    escalation:\n      - {after_minutes: 15, notify: senior_doctor, source: 本院制度}\n",
        encoding="utf-8",
    )
    policy = tracking_policy(load_alert_knowledge(override).critical)
    assert policy.acknowledge_minutes == 15.0
    assert [s.after_minutes for s in policy.steps] == [15.0]
