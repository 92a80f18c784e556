"""Critical-value tracking policy and on-time indicators (pure, fixed clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medbrain.alerts import load_alert_knowledge
from medbrain.alerts.tracking import TrackedTimes, tracking_policy, tracking_stats
from medbrain.core.errors import KnowledgeError
from medbrain.core.findings import Finding, Severity

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
POLICY = tracking_policy(load_alert_knowledge().critical)


def _at(minutes: float | None) -> datetime | None:
    return None if minutes is None else T0 + timedelta(minutes=minutes)


def _finding(category: str, severity: Severity) -> Finding:
    return Finding(rule_id="x", category=category, severity=severity, message="m")


def test_shipped_policy_has_sourced_limits() -> None:
    assert POLICY.acknowledge_minutes == 10 and POLICY.handle_minutes == 30
    assert "30分钟" in POLICY.handle_source or "S7" in POLICY.handle_source
    assert POLICY.recipients == ("nurse", "doctor")
    assert POLICY.handle_due(T0) == _at(30) and POLICY.acknowledge_due(T0) == _at(10)


@pytest.mark.parametrize(
    ("category", "severity", "tracked"),
    [
        ("critical_value", Severity.CRITICAL, True),
        ("electrolyte", Severity.CRITICAL, True),
        ("electrolyte", Severity.WARNING, False),
        ("early_warning", Severity.INFO, False),
    ],
)
def test_tracks_critical_values_and_critical_alerts_only(
    category: str, severity: Severity, tracked: bool
) -> None:
    assert POLICY.is_tracked(_finding(category, severity)) is tracked


def test_on_time_rates_count_only_alerts_whose_deadline_passed_or_were_done() -> None:
    rows = [
        # acknowledged at 5, handled at 20: both on time
        TrackedTimes("critical_value", T0, _at(5), _at(20)),
        # acknowledged late (12), handled late (45)
        TrackedTimes("critical_value", T0, _at(12), _at(45), level=1),
        # nothing done and past both deadlines (now = 60)
        TrackedTimes("critical_value", T0, None, None, level=2),
        # raised 55 min in: still inside both windows -> counts for neither
        TrackedTimes("critical_value", T0 + timedelta(minutes=55), None, None),
        # not a critical value: only in "all"
        TrackedTimes("electrolyte", T0, _at(1), _at(2)),
    ]
    stats = tracking_stats(rows, POLICY, _at(60) or T0)
    cv = stats["critical_value"]
    assert (cv["total"], cv["unacknowledged"], cv["escalated"]) == (4, 2, 2)
    assert (cv["acknowledge_due"], cv["acknowledged_on_time"]) == (3, 1)
    assert cv["acknowledged_on_time_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert (cv["handle_due"], cv["handled_on_time"]) == (3, 1)
    assert cv["median_acknowledge_minutes"] == 8.5
    assert stats["all"]["total"] == 5 and stats["all"]["handled_on_time"] == 2


def test_rates_are_none_when_nothing_is_due() -> None:
    stats = tracking_stats([TrackedTimes("critical_value", T0, None, None)], POLICY, _at(1) or T0)
    assert stats["critical_value"]["handled_on_time_rate"] is None
    assert stats["critical_value"]["acknowledged_on_time_rate"] is None


@pytest.mark.parametrize(
    "override",
    [
        "acknowledge_within_minutes: 0",
        "handle_within_minutes: soon",
        "recipients: []",
        "handle_source: ''",
    ],
)
def test_malformed_hospital_policy_is_a_knowledge_error(tmp_path: Path, override: str) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(f"critical_values:\n  acknowledgement:\n    {override}\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="acknowledgement"):
        load_alert_knowledge(path)


def test_hospital_overrides_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(
        "critical_values:\n  acknowledgement:\n    handle_within_minutes: 15\n"
        "    handle_source: 本院危急值制度 2026\n",
        encoding="utf-8",
    )
    policy = tracking_policy(load_alert_knowledge(path).critical)
    assert policy.handle_minutes == 15 and policy.handle_source == "本院危急值制度 2026"
