"""Suppress repeat alerts inside a window unless the value worsens (alert fatigue control).

A repeat is the same ``rule_id`` for the same ``subject`` raised earlier within ``window``
before the new alert's time. It is suppressed unless it is worse: a higher severity, or a
value that moved in the rule's worse direction (``higher`` or ``lower``) beyond the last
value raised. Rules whose value has no direction (``none``) repeat only on a severity rise.

References
----------
MedBrain issue 10 ("repeat alerts are suppressed within a configurable window unless the
value worsens — alert fatigue is the main failure of such systems").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medbrain.core.findings import Severity

DIRECTIONS = ("higher", "lower", "none")


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """An alert as remembered for suppression: which rule, whom, what value, when."""

    rule_id: str
    subject: str
    value: float | None
    time: datetime
    severity: Severity = Severity.WARNING
    direction: str = "higher"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "subject": self.subject,
            "value": self.value,
            "time": self.time.isoformat(),
            "severity": self.severity.value,
            "direction": self.direction,
        }


def is_worse(new: RaisedAlert, old: RaisedAlert) -> bool:
    """True when ``new`` is more severe, or its value moved the worse way from ``old``'s."""
    if new.severity.rank > old.severity.rank:
        return True
    if new.value is None or old.value is None or new.direction == "none":
        return False
    if new.direction == "higher":
        return new.value > old.value
    return new.value < old.value


def suppress_repeats(
    current: Sequence[RaisedAlert], previous: Sequence[RaisedAlert], window: timedelta
) -> tuple[list[RaisedAlert], list[RaisedAlert]]:
    """Split ``current`` into (kept, suppressed) against ``previous`` alerts.

    A current alert is compared with the most recent previous alert of the same rule and
    subject raised in ``[time - window, time]``; it is kept if there is none or if it is worse
    (:func:`is_worse`). Order within each list follows ``current``. Pure: no clock, no state.
    """
    kept: list[RaisedAlert] = []
    suppressed: list[RaisedAlert] = []
    for alert in current:
        earlier = [
            p
            for p in previous
            if p.rule_id == alert.rule_id
            and p.subject == alert.subject
            and alert.time - window <= p.time <= alert.time
        ]
        if not earlier:
            kept.append(alert)
            continue
        last = max(earlier, key=lambda p: p.time)
        (kept if is_worse(alert, last) else suppressed).append(alert)
    return kept, suppressed
