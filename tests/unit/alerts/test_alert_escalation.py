"""Critical-value acknowledgement and escalation (pure; hospital-set policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medbrain.alerts import EscalationStep, escalation_state, load_alert_knowledge
from medbrain.alerts.escalation import escalation_policy
from medbrain.core.errors import KnowledgeError

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
STEPS = (
    EscalationStep(10, "attending", "本院制度"),
    EscalationStep(30, "department_head", "本院制度"),
)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("now", "ack", "acknowledged", "overdue", "level", "next_at"),
    [
        (5, None, False, False, 0, 10),
        (10, None, False, True, 1, 30),
        (12, None, False, True, 1, 30),
        (45, None, False, True, 2, None),
        (45, 8, True, False, 0, None),
        (45, 15, True, False, 1, None),
        (5, 8, False, False, 0, 10),  # acknowledgement recorded in the future is not yet valid
    ],
)
def test_escalation_state(
    now: float,
    ack: float | None,
    acknowledged: bool,
    overdue: bool,
    level: int,
    next_at: float | None,
) -> None:
    state = escalation_state(T0, _at(now), STEPS, None if ack is None else _at(ack))
    assert (state.acknowledged, state.overdue, state.level) == (acknowledged, overdue, level)
    assert state.next_at == (None if next_at is None else _at(next_at))
    assert state.notify == tuple(s.notify for s in STEPS[:level])


def test_default_policy_escalates_to_senior_doctor_then_department_head() -> None:
    steps = escalation_policy(load_alert_knowledge().critical)
    assert [s.notify for s in steps] == ["senior_doctor", "department_head"]
    assert all(s.source for s in steps)
    assert not escalation_state(T0, _at(9), steps).overdue
    state = escalation_state(T0, _at(600), steps)
    assert state.overdue and state.next_at is None
    assert state.to_dict()["level"] == 2


def test_hospital_policy_comes_from_overrides(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(
        "critical_values:\n"
        "  acknowledgement:\n"
        "    escalation:\n"
        "      - {after_minutes: 30, notify: department_head, source: 本院}\n"
        "      - {after_minutes: 10, notify: attending, source: 本院}\n",
        encoding="utf-8",
    )
    steps = escalation_policy(load_alert_knowledge(path).critical)
    assert [s.notify for s in steps] == ["attending", "department_head"]


@pytest.mark.parametrize(
    "row",
    [
        "{after_minutes: 0, notify: a, source: s}",
        "{after_minutes: ten, notify: a, source: s}",
        "{after_minutes: 10, source: s}",
        "just text",
    ],
)
def test_malformed_policy_is_refused(tmp_path: Path, row: str) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(
        f"critical_values:\n  acknowledgement:\n    escalation:\n      - {row}\n", encoding="utf-8"
    )
    with pytest.raises(KnowledgeError, match="escalation"):
        load_alert_knowledge(path)
