"""Door-to-step intervals for the time-critical pathways, against their targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medbrain.core.errors import InputError
from medbrain.triage import default_knowledge, pathway_timeline

DOOR = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_door_to_ecg_within_10_minutes_is_met() -> None:
    steps = pathway_timeline(
        "chest_pain", DOOR, {"ecg": DOOR + timedelta(minutes=7)}, default_knowledge(), lang="en"
    )
    ecg = steps[0]
    assert (ecg.step, ecg.minutes_from_door, ecg.target_minutes, ecg.met) == ("ecg", 7.0, 10, True)
    assert ecg.label == "first 12-lead ECG"


def test_door_to_needle_over_60_minutes_is_not_met() -> None:
    steps = pathway_timeline(
        "stroke", DOOR, {"needle": DOOR + timedelta(minutes=75)}, default_knowledge()
    )
    needle = next(s for s in steps if s.step == "needle")
    assert (needle.minutes_from_door, needle.met) == (75.0, False)


def test_step_not_done_is_overdue_once_the_target_passed() -> None:
    now = DOOR + timedelta(minutes=12)
    steps = pathway_timeline("chest_pain", DOOR, {}, default_knowledge(), now=now)
    assert steps[0].met is False and steps[0].at is None
    early = pathway_timeline("chest_pain", DOOR, {}, default_knowledge(), now=DOOR)
    assert early[0].met is None


def test_steps_without_target_report_the_interval_only() -> None:
    steps = pathway_timeline(
        "stroke", DOOR, {"groin": DOOR + timedelta(minutes=18)}, default_knowledge()
    )
    groin = next(s for s in steps if s.step == "groin")
    assert (groin.minutes_from_door, groin.target_minutes, groin.met) == (18.0, None, None)
    assert groin.to_dict()["at"] == "2026-11-23T08:18:00+00:00"


def test_stroke_door_to_ct_target_is_25_minutes() -> None:
    late = DOOR + timedelta(minutes=26)
    steps = pathway_timeline("stroke", DOOR, {"ct": late}, default_knowledge())
    ct = next(s for s in steps if s.step == "ct")
    assert (ct.minutes_from_door, ct.target_minutes, ct.met) == (26.0, 25, False)


@pytest.mark.parametrize(
    ("pathway", "door", "events", "field"),
    [
        ("cardiac", DOOR, {}, "pathway"),
        ("chest_pain", DOOR, {"needle": DOOR}, "events.needle"),
        ("chest_pain", DOOR, {"ecg": DOOR - timedelta(minutes=1)}, "events.ecg"),
        ("chest_pain", DOOR.replace(tzinfo=None), {}, "door"),
    ],
)
def test_bad_timeline_input_names_the_field(
    pathway: str, door: datetime, events: dict[str, datetime], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        pathway_timeline(pathway, door, events, default_knowledge())
    assert caught.value.field == field
