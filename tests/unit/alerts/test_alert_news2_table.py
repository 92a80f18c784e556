"""NEWS2 points against the RCP 2017 chart, parameter by parameter (Chart 1)."""

from __future__ import annotations

import pytest

from medbrain.alerts import load_alert_knowledge
from medbrain.alerts.scores import band_points

RULES = load_alert_knowledge().rules["news2"]

# (parameter, value, on oxygen, expected points) read off RCP NEWS2 Chart 1.
CHART = [
    ("resp_rate", 8, None, 3),
    ("resp_rate", 9, None, 1),
    ("resp_rate", 11, None, 1),
    ("resp_rate", 12, None, 0),
    ("resp_rate", 20, None, 0),
    ("resp_rate", 21, None, 2),
    ("resp_rate", 24, None, 2),
    ("resp_rate", 25, None, 3),
    ("spo2_scale1", 91, None, 3),
    ("spo2_scale1", 92, None, 2),
    ("spo2_scale1", 93, None, 2),
    ("spo2_scale1", 94, None, 1),
    ("spo2_scale1", 95, None, 1),
    ("spo2_scale1", 96, None, 0),
    ("spo2_scale2", 83, False, 3),
    ("spo2_scale2", 84, False, 2),
    ("spo2_scale2", 85, False, 2),
    ("spo2_scale2", 86, False, 1),
    ("spo2_scale2", 87, False, 1),
    ("spo2_scale2", 88, False, 0),
    ("spo2_scale2", 92, False, 0),
    ("spo2_scale2", 93, False, 0),
    ("spo2_scale2", 99, False, 0),
    ("spo2_scale2", 88, True, 0),
    ("spo2_scale2", 93, True, 1),
    ("spo2_scale2", 94, True, 1),
    ("spo2_scale2", 95, True, 2),
    ("spo2_scale2", 96, True, 2),
    ("spo2_scale2", 97, True, 3),
    ("spo2_scale2", 100, True, 3),
    ("sbp", 90, None, 3),
    ("sbp", 91, None, 2),
    ("sbp", 100, None, 2),
    ("sbp", 101, None, 1),
    ("sbp", 110, None, 1),
    ("sbp", 111, None, 0),
    ("sbp", 219, None, 0),
    ("sbp", 220, None, 3),
    ("heart_rate", 40, None, 3),
    ("heart_rate", 41, None, 1),
    ("heart_rate", 50, None, 1),
    ("heart_rate", 51, None, 0),
    ("heart_rate", 90, None, 0),
    ("heart_rate", 91, None, 1),
    ("heart_rate", 110, None, 1),
    ("heart_rate", 111, None, 2),
    ("heart_rate", 130, None, 2),
    ("heart_rate", 131, None, 3),
    ("temperature", 35.0, None, 3),
    ("temperature", 35.1, None, 1),
    ("temperature", 36.0, None, 1),
    ("temperature", 36.1, None, 0),
    ("temperature", 38.0, None, 0),
    ("temperature", 38.1, None, 1),
    ("temperature", 39.0, None, 1),
    ("temperature", 39.1, None, 2),
]


@pytest.mark.parametrize(("parameter", "value", "oxygen", "points"), CHART)
def test_news2_band_matches_rcp_chart(
    parameter: str, value: float, oxygen: bool | None, points: int
) -> None:
    assert band_points(value, RULES[parameter], oxygen) == points


def test_news2_response_thresholds_follow_rcp_chart_2() -> None:
    assert RULES["high_threshold"] == 7
    assert RULES["medium_threshold"] == 5
    assert RULES["single_parameter_red"] == 3
    assert RULES["on_oxygen_score"] == 2
    assert RULES["consciousness_not_alert_score"] == 3
