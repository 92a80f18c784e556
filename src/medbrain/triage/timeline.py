"""Pathway step times from the door: door-to-ECG, door-to-needle, door-to-antimicrobial.

The adapter records when each step of a pathway happened (arrival, first ECG, CT, needle…)
and passes them in; :func:`pathway_timeline` reports each step's minutes from the door, its
target where the knowledge file gives one, and whether the target was met (or is already
overdue at ``now`` for a step not yet done). Pure: the clock is an argument.

References
----------
Gulati M et al. AHA/ACC chest pain guideline. Circulation 2021;144:e368, §2.1 (ECG ≤10 min).
Powers WJ et al. AHA/ASA acute ischaemic stroke guideline. Stroke 2019;50:e344
(door-to-needle ≤60 min).
Evans L et al. Surviving Sepsis Campaign 2021 (antimicrobials within 1 hour).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medbrain.core.errors import InputError
from medbrain.triage.knowledge import TriageKnowledge


@dataclass(frozen=True, slots=True)
class StepTime:
    """One pathway step: when it happened, minutes from the door, target and whether met."""

    step: str
    label: str
    at: datetime | None
    minutes_from_door: float | None
    target_minutes: int | None
    met: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "label": self.label,
            "at": self.at.isoformat() if self.at else None,
            "minutes_from_door": self.minutes_from_door,
            "target_minutes": self.target_minutes,
            "met": self.met,
        }


def _aware(source: str, field: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(source, field, "needs a time zone (e.g. 2026-11-23T08:00:00+08:00)")
    return value


def pathway_timeline(
    pathway: str,
    door: datetime,
    events: Mapping[str, datetime],
    knowledge: TriageKnowledge,
    lang: str = "zh",
    now: datetime | None = None,
    source: str = "timeline",
) -> tuple[StepTime, ...]:
    """Minutes from the door for each step of ``pathway``, against its targets.

    Raises
    ------
    InputError
        Unknown pathway or step, a time without a zone, or a step before the door time.
    """
    lang = "en" if lang == "en" else "zh"
    spec = knowledge.pathways.get(pathway)
    if spec is None:
        raise InputError(source, "pathway", f"unknown pathway {pathway!r}")
    door = _aware(source, "door", door)
    if now is not None:
        now = _aware(source, "now", now)
    steps = {str(row["id"]): row for row in spec.get("steps") or []}
    for name in events:
        if name not in steps:
            raise InputError(
                source, f"events.{name}", f"unknown step for {pathway}: use {', '.join(steps)}"
            )
    out: list[StepTime] = []
    for step_id, row in steps.items():
        target = row.get("target_minutes")
        target_minutes = int(target) if target is not None else None
        at = events.get(step_id)
        minutes: float | None = None
        met: bool | None = None
        if at is not None:
            at = _aware(source, f"events.{step_id}", at)
            minutes = round((at - door).total_seconds() / 60.0, 1)
            if minutes < 0:
                raise InputError(source, f"events.{step_id}", "is before the door time")
            met = None if target_minutes is None else minutes <= target_minutes
        elif now is not None and target_minutes is not None:
            waited = (now - door).total_seconds() / 60.0
            met = False if waited > target_minutes else None
        out.append(
            StepTime(
                step=step_id,
                label=str(row["label"][lang]),
                at=at,
                minutes_from_door=minutes,
                target_minutes=target_minutes,
                met=met,
            )
        )
    return tuple(out)
