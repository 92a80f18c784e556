"""Repeat alerts are suppressed inside the window unless the value worsens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medbrain.alerts import RaisedAlert, evaluate_bundle, load_alert_knowledge, suppress_repeats
from medbrain.core.findings import Severity
from tests.unit.alerts.bundles import build_bundle

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)


def _alert(value: float | None, hours: float = 0.0, **kw: object) -> RaisedAlert:
    fields: dict[str, object] = {
        "rule_id": "cv.potassium",
        "subject": "Patient/p1",
        "value": value,
        "time": T0 + timedelta(hours=hours),
        "severity": Severity.CRITICAL,
        "direction": "higher",
    }
    fields.update(kw)
    return RaisedAlert(**fields)  # type: ignore[arg-type]


CASES = [
    ("same_value_within_window_is_suppressed", _alert(6.8, 4), [_alert(6.8)], False),
    ("lower_value_within_window_is_suppressed", _alert(6.6, 4), [_alert(6.8)], False),
    ("higher_value_within_window_is_kept", _alert(7.1, 4), [_alert(6.8)], True),
    ("outside_window_is_kept", _alert(6.8, 30), [_alert(6.8)], True),
    ("other_patient_is_kept", _alert(6.8, 4, subject="Patient/p2"), [_alert(6.8)], True),
    ("other_rule_is_kept", _alert(6.8, 4, rule_id="cv.sodium"), [_alert(6.8)], True),
    ("no_history_is_kept", _alert(6.8, 4), [], True),
    (
        "severity_rise_is_kept",
        _alert(6.1, 4, severity=Severity.CRITICAL),
        [_alert(6.1, severity=Severity.WARNING)],
        True,
    ),
    (
        "lower_is_worse_falling_egfr_is_kept",
        _alert(22, 4, direction="lower"),
        [_alert(28, direction="lower")],
        True,
    ),
    (
        "lower_is_worse_rising_egfr_is_suppressed",
        _alert(29, 4, direction="lower"),
        [_alert(28, direction="lower")],
        False,
    ),
    (
        "directionless_repeat_is_suppressed",
        _alert(1, 4, direction="none"),
        [_alert(1, direction="none")],
        False,
    ),
    (
        "compares_with_the_most_recent_previous",
        _alert(7.0, 10),
        [_alert(6.5), _alert(7.2, 6)],
        False,
    ),
    ("previous_after_current_is_ignored", _alert(6.8, 4), [_alert(6.8, 8)], True),
]


@pytest.mark.parametrize(("name", "current", "previous", "kept"), CASES, ids=[c[0] for c in CASES])
def test_suppression(
    name: str, current: RaisedAlert, previous: list[RaisedAlert], kept: bool
) -> None:
    kept_list, suppressed = suppress_repeats([current], previous, WINDOW)
    assert (kept_list == [current]) is kept
    assert (suppressed == [current]) is not kept


def test_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError):
        _alert(1.0, direction="sideways")


def test_engine_suppresses_repeat_until_potassium_worsens() -> None:
    knowledge = load_alert_knowledge()
    first = evaluate_bundle(build_bundle({"obs": [["K", 6.8, "mmol/L"]]}), knowledge)
    assert {a.rule_id for a in first.alerts} == {"cv.potassium", "electrolyte.hyperkalaemia"}
    later = {"now": "2024-05-01T18:00:00+08:00", "obs": [["K", 6.7, "mmol/L"]]}
    again = evaluate_bundle(build_bundle(later), knowledge, previous=first.raised)
    assert again.alerts == ()
    assert {f.rule_id for f in again.suppressed} == {"cv.potassium", "electrolyte.hyperkalaemia"}
    assert len(again.to_dict()["suppressed"]) == 2
    worse = {"now": "2024-05-01T18:00:00+08:00", "obs": [["K", 7.2, "mmol/L"]]}
    escalated = evaluate_bundle(build_bundle(worse), knowledge, previous=first.raised)
    assert {a.rule_id for a in escalated.alerts} == {"cv.potassium", "electrolyte.hyperkalaemia"}


def test_suppression_window_comes_from_knowledge() -> None:
    settings = load_alert_knowledge().settings
    assert settings["suppression_window_hours"] == 24
