"""ED board engine: wait against the level's response time (fixed clock), re-triage prompts,
pathway-step breaches, ordering and load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.triage import default_knowledge
from medbrain.triage.ed import (
    EdVisitState,
    board,
    board_row,
    default_ed_knowledge,
    load_ed_knowledge,
    wait_status,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TRIAGE = default_knowledge()
ED = default_ed_knowledge()


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def state(visit_id: int = 1, **kw: Any) -> EdVisitState:
    base: dict[str, Any] = {
        "visit_id": visit_id,
        "label": f"p{visit_id}",
        "door_at": at(240),
        "level": 3,
        "pathway": None,
        "department_code": "20",
    }
    base.update(kw)
    return EdVisitState(**base)


def test_level_response_times_are_immediate_10_30_and_60_minutes() -> None:
    limits = {lvl: TRIAGE.levels[lvl].max_wait_minutes for lvl in (1, 2, 3, 4)}
    assert limits == {1: 0, 2: 10, 3: 30, 4: 60}


@pytest.mark.parametrize(
    ("level", "waited", "overdue"),
    [
        (1, 0.0, False),
        (1, 0.5, True),
        (2, 10.0, False),
        (2, 10.1, True),
        (3, 30.0, False),
        (3, 30.1, True),
        (4, 60.0, False),
        (4, 60.1, True),
    ],
)
def test_overdue_only_once_the_wait_is_strictly_beyond_the_levels_limit(
    level: int, waited: float, overdue: bool
) -> None:
    row = board_row(
        state(level=level, door_at=at(waited + 3), events={"triage": at(waited)}), NOW, ED, TRIAGE
    )
    assert row.wait.waited_minutes == pytest.approx(waited)
    assert row.wait.overdue is overdue
    assert row.wait.remaining_minutes == pytest.approx(
        TRIAGE.levels[level].max_wait_minutes - waited
    )


def test_wait_clock_starts_at_the_end_of_triage_not_the_door() -> None:
    wait = wait_status(30, door_at=at(45), triage_at=at(20), doctor_at=None, now=NOW)
    assert (wait.waited_minutes, wait.overdue) == (20.0, False)
    no_triage = wait_status(30, door_at=at(45), triage_at=None, doctor_at=None, now=NOW)
    assert (no_triage.waited_minutes, no_triage.overdue) == (45.0, True)


def test_doctor_seen_stops_the_clock_and_a_late_doctor_stays_a_breach() -> None:
    on_time = wait_status(10, door_at=at(60), triage_at=at(59), doctor_at=at(52), now=NOW)
    assert (on_time.waited_minutes, on_time.overdue, on_time.seen) == (7.0, False, True)
    late = wait_status(10, door_at=at(60), triage_at=at(59), doctor_at=at(40), now=NOW)
    assert (late.waited_minutes, late.overdue) == (19.0, True)


def test_tenths_are_truncated_so_a_breach_is_never_rounded_away() -> None:
    wait = wait_status(10, at(11), at(10) - timedelta(seconds=4), None, NOW)
    assert wait.waited_minutes == 10.0 and wait.overdue is False
    wait = wait_status(10, at(11), at(10) - timedelta(seconds=7), None, NOW)
    assert wait.waited_minutes == 10.1 and wait.overdue is True


def test_naive_times_are_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        wait_status(10, datetime(2026, 11, 23, 9, 0), None, None, NOW)


def test_waiting_beyond_the_limit_prompts_retriage_but_a_seen_patient_does_not() -> None:
    waiting = board_row(state(level=3, events={"triage": at(31)}), NOW, ED, TRIAGE, lang="en")
    assert len(waiting.retriage) == 1 and "re-triage" in waiting.retriage[0]
    assert "Ⅲ级" in waiting.retriage[0] and "30 min" in waiting.retriage[0]
    seen = board_row(
        state(level=3, status="seen", events={"triage": at(40), "doctor": at(1)}), NOW, ED, TRIAGE
    )
    assert seen.wait.overdue is True and seen.retriage == ()


def test_worse_vitals_or_rising_news2_prompt_retriage_within_the_limit() -> None:
    worse = board_row(
        state(level=4, events={"triage": at(5)}, reassessed_level=2), NOW, ED, TRIAGE, "en"
    )
    assert any("Ⅱ级" in p and "Ⅳ级" in p for p in worse.retriage)
    same = board_row(state(level=3, events={"triage": at(5)}, reassessed_level=3), NOW, ED, TRIAGE)
    assert same.retriage == ()
    news = board_row(
        state(level=3, events={"triage": at(5)}, news2=1, reassessed_news2=3), NOW, ED, TRIAGE, "en"
    )
    assert any("NEWS2 rose from 1 to 3" in p for p in news.retriage)
    small = board_row(
        state(level=3, events={"triage": at(5)}, news2=1, reassessed_news2=2), NOW, ED, TRIAGE
    )
    assert small.retriage == ()


@pytest.mark.parametrize(
    ("pathway", "step", "minutes", "met"),
    [
        ("chest_pain", "ecg", 10, True),
        ("chest_pain", "ecg", 11, False),
        ("stroke", "ct", 25, True),
        ("stroke", "ct", 26, False),
        ("stroke", "needle", 61, False),
        ("sepsis", "antimicrobial", 60, True),
        ("sepsis", "antimicrobial", 61, False),
    ],
)
def test_pathway_step_targets_are_flagged_when_missed(
    pathway: str, step: str, minutes: float, met: bool
) -> None:
    door = at(120)
    row = board_row(
        state(pathway=pathway, door_at=door, events={step: door + timedelta(minutes=minutes)}),
        NOW,
        ED,
        TRIAGE,
        lang="en",
    )
    timed = next(s for s in row.steps if s["step"] == step)
    assert (timed["minutes_from_door"], timed["met"]) == (float(minutes), met)
    assert any(b.step == step for b in row.breaches) is (not met)


def test_a_step_not_done_after_its_target_is_a_breach_while_waiting() -> None:
    row = board_row(state(pathway="chest_pain", door_at=at(12)), NOW, ED, TRIAGE, lang="en")
    ecg = [b for b in row.breaches if b.step == "ecg"]
    assert len(ecg) == 1 and ecg[0].minutes is None and "not done after 12 min" in ecg[0].text
    early = board_row(state(pathway="chest_pain", door_at=at(9)), NOW, ED, TRIAGE)
    assert early.breaches == ()


def test_trauma_has_steps_but_no_invented_targets() -> None:
    row = board_row(state(pathway="trauma", door_at=at(300)), NOW, ED, TRIAGE)
    steps = {s["step"]: s for s in row.steps}
    assert "team" in steps and steps["team"]["target_minutes"] is None
    assert row.breaches == ()


def test_departed_patient_is_judged_at_its_last_step_not_now() -> None:
    door = at(200)
    events = {
        "triage": door + timedelta(minutes=1),
        "doctor": door + timedelta(minutes=5),
        "ecg": door + timedelta(minutes=8),
        "disposition": door + timedelta(minutes=60),
    }
    row = board_row(
        state(pathway="chest_pain", door_at=door, status="departed", events=events),
        NOW,
        ED,
        TRIAGE,
    )
    assert row.breaches == () and row.retriage == () and row.wait.overdue is False


def test_board_orders_by_level_then_overdue_then_wait_and_ranks_waiting_patients() -> None:
    states = [
        state(1, level=4, events={"triage": at(70)}),
        state(2, level=3, events={"triage": at(5)}),
        state(3, level=3, events={"triage": at(35)}),
        state(4, level=2, status="seen", events={"triage": at(9), "doctor": at(8)}),
        state(5, level=4, events={"triage": at(3)}),
        state(6, level=2, status="departed", events={"triage": at(9), "disposition": at(1)}),
    ]
    rows, load = board(states, NOW, ED, TRIAGE)
    assert [r.state.visit_id for r in rows] == [4, 3, 2, 1, 5, 6]
    assert [r.waiting_rank for r in rows] == [None, 1, 2, 3, 4, None]
    assert (load.active, load.waiting, load.overdue) == (5, 4, 2)
    assert load.by_zone == {"red": 1, "yellow": 2, "green": 2}
    assert load.longest_wait_minutes == 70.0


def test_empty_board_has_zero_load() -> None:
    rows, load = board([], NOW, ED, TRIAGE)
    assert rows == () and load.active == 0 and load.longest_wait_minutes == 0.0


def test_every_pathway_step_is_on_the_board_before_disposition() -> None:
    ids = ED.step_ids("stroke", TRIAGE)
    assert ids[0] == "door" and ids[-1] == "disposition"
    assert {"ct", "needle", "groin", "ecg", "lab", "doctor"} <= set(ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retriage": {"news2_rise": 0}}, "news2_rise"),
        ({"steps": [{"id": "doctor", "enabled": False}]}, "must include 'doctor'"),
        ({"retriage": {"source": ""}}, "retriage needs a source"),
    ],
)
def test_bad_ed_knowledge_overrides_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(KnowledgeError, match=message):
        load_ed_knowledge(overrides)


def test_hospital_can_override_the_news2_rise() -> None:
    ed = load_ed_knowledge({"retriage": {"news2_rise": 1}})
    row = board_row(state(events={"triage": at(5)}, news2=1, reassessed_news2=2), NOW, ed, TRIAGE)
    assert len(row.retriage) == 1
