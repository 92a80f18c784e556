"""Critical-value acknowledgement and escalation, as a pure function of times and a policy.

Each hospital sets who must acknowledge a critical value and how fast (the 2013 Chinese
consensus leaves "由谁报告、向谁报告以及接受时间长度" to the institution), so the shipped policy
in ``critical_values.yaml`` has no steps: with none configured nothing is ever overdue. A
hospital adds steps by override, e.g.::

    critical_values:
      acknowledgement:
        escalation:
          - {after_minutes: 10, notify: attending, source: "本院危急值制度 2026 第5条"}
          - {after_minutes: 30, notify: department_head, source: "本院危急值制度 2026 第5条"}

The adapter (inbox, store) records when an alert was raised and acknowledged and asks
:func:`escalation_state` what is due; this module keeps no state and reads no clock.

References
----------
《检验危急值在急危重病临床应用的专家共识(成人)》, 2013, §5.2.1 (由谁报告、向谁报告以及接受时间长度).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medbrain.core.errors import KnowledgeError


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """If still unacknowledged ``after_minutes`` after it was raised, notify ``notify``."""

    after_minutes: float
    notify: str
    source: str


@dataclass(frozen=True, slots=True)
class EscalationState:
    acknowledged: bool
    overdue: bool
    level: int  # number of escalation steps reached (0 = none)
    notify: tuple[str, ...]  # everyone who should have been notified by now
    next_at: datetime | None  # when the next step falls due (None: no further step)

    def to_dict(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "overdue": self.overdue,
            "level": self.level,
            "notify": list(self.notify),
            "next_at": None if self.next_at is None else self.next_at.isoformat(),
        }


def escalation_policy(critical_table: Mapping[str, Any]) -> tuple[EscalationStep, ...]:
    """The configured steps, sorted by time; a malformed step is a KnowledgeError."""
    raw = (critical_table.get("acknowledgement") or {}).get("escalation") or []
    steps = []
    for index, row in enumerate(raw):
        where = f"alerts/critical_values.yaml: acknowledgement.escalation[{index}]"
        if not isinstance(row, dict):
            raise KnowledgeError(f"{where}: must be a mapping")
        minutes = row.get("after_minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise KnowledgeError(f"{where}: after_minutes must be a positive number")
        if not row.get("notify") or not row.get("source"):
            raise KnowledgeError(f"{where}: needs notify and source")
        steps.append(EscalationStep(float(minutes), str(row["notify"]), str(row["source"])))
    return tuple(sorted(steps, key=lambda s: s.after_minutes))


def escalation_state(
    raised_at: datetime,
    now: datetime,
    steps: Sequence[EscalationStep],
    acknowledged_at: datetime | None = None,
) -> EscalationState:
    """Where an alert raised at ``raised_at`` stands at ``now``.

    Steps are counted up to the acknowledgement (or ``now`` if not acknowledged); an alert is
    overdue when unacknowledged past its first step.
    """
    acknowledged = acknowledged_at is not None and acknowledged_at <= now
    until = acknowledged_at if acknowledged_at is not None and acknowledged else now
    reached = [s for s in steps if raised_at + timedelta(minutes=s.after_minutes) <= until]
    pending = [s for s in steps if s not in reached]
    next_at = (
        None
        if acknowledged or not pending
        else raised_at + timedelta(minutes=pending[0].after_minutes)
    )
    return EscalationState(
        acknowledged=acknowledged,
        overdue=not acknowledged and bool(reached),
        level=len(reached),
        notify=tuple(s.notify for s in reached),
        next_at=next_at,
    )
