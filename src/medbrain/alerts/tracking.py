"""Closed-loop tracking of critical values (危急值闭环): policy, deadlines and on-time rates.

Pure: the adapter (``store/alert_tracking.py``) records when an alert was raised,
acknowledged and handled; this module says which alerts are tracked, when each is due, and
computes the indicators from those times. No clock, no state, no database.

The policy is the ``acknowledgement`` section of ``knowledge/alerts/critical_values.yaml``::

    acknowledgement:
      tracked: {categories: [critical_value], severities: [critical]}
      recipients: [nurse, doctor]
      acknowledge_within_minutes: 10
      handle_within_minutes: 30
      escalation: [{after_minutes: 10, notify: senior_doctor, source: ...}, ...]

Indicators (:func:`tracking_stats`):

- *acknowledged on time*: acknowledged no later than ``acknowledge_within_minutes`` after it
  was raised;
- *handled on time* (危急值处置及时率): an action recorded no later than
  ``handle_within_minutes`` after it was raised. The denominator counts every alert whose
  deadline has passed plus those handled early, so an alert still inside its window counts
  neither for nor against the rate.

References
----------
《检验危急值在急危重病临床应用的专家共识(成人)》, 2013, §5.2.1 (reporting chain and time set
locally); hospital critical-value procedures cited as S7/S8 in ``critical_values.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from medbrain.alerts.escalation import EscalationStep, escalation_policy
from medbrain.core.errors import KnowledgeError
from medbrain.core.findings import Finding

WHERE = "alerts/critical_values.yaml: acknowledgement"


@dataclass(frozen=True, slots=True)
class TrackingPolicy:
    """Which alerts are tracked, who receives them, and the time limits (minutes)."""

    categories: frozenset[str]
    severities: frozenset[str]
    recipients: tuple[str, ...]
    acknowledge_minutes: float
    handle_minutes: float
    steps: tuple[EscalationStep, ...]
    acknowledge_source: str
    handle_source: str

    def is_tracked(self, finding: Finding) -> bool:
        """A finding is tracked when its category or its severity is listed."""
        return finding.category in self.categories or finding.severity.value in self.severities

    def acknowledge_due(self, raised_at: datetime) -> datetime:
        return raised_at + timedelta(minutes=self.acknowledge_minutes)

    def handle_due(self, raised_at: datetime) -> datetime:
        return raised_at + timedelta(minutes=self.handle_minutes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": sorted(self.categories),
            "severities": sorted(self.severities),
            "recipients": list(self.recipients),
            "acknowledge_within_minutes": self.acknowledge_minutes,
            "handle_within_minutes": self.handle_minutes,
            "acknowledge_source": self.acknowledge_source,
            "handle_source": self.handle_source,
            "escalation": [
                {"after_minutes": s.after_minutes, "notify": s.notify, "source": s.source}
                for s in self.steps
            ],
        }


def _minutes(section: Mapping[str, Any], key: str) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise KnowledgeError(f"{WHERE}.{key}: must be a positive number of minutes")
    return float(value)


def _names(section: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = section.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise KnowledgeError(f"{WHERE}.{key}: must be a list of names")
    return tuple(value)


def tracking_policy(critical_table: Mapping[str, Any]) -> TrackingPolicy:
    """Read and validate the tracking policy; a malformed field is a KnowledgeError."""
    section = critical_table.get("acknowledgement") or {}
    if not isinstance(section, dict):
        raise KnowledgeError(f"{WHERE}: must be a mapping")
    tracked = section.get("tracked") or {}
    if not isinstance(tracked, dict):
        raise KnowledgeError(f"{WHERE}.tracked: must be a mapping")
    recipients = _names(section, "recipients")
    if not recipients:
        raise KnowledgeError(f"{WHERE}.recipients: name at least one role")
    for key in ("acknowledge_source", "handle_source"):
        if not section.get(key):
            raise KnowledgeError(f"{WHERE}.{key}: every time limit needs its source")
    return TrackingPolicy(
        categories=frozenset(_names(tracked, "categories")),
        severities=frozenset(_names(tracked, "severities")),
        recipients=recipients,
        acknowledge_minutes=_minutes(section, "acknowledge_within_minutes"),
        handle_minutes=_minutes(section, "handle_within_minutes"),
        steps=escalation_policy(critical_table),
        acknowledge_source=str(section["acknowledge_source"]),
        handle_source=str(section["handle_source"]),
    )


@dataclass(frozen=True, slots=True)
class TrackedTimes:
    """The times of one tracked alert, as the indicators need them."""

    category: str
    raised_at: datetime
    acknowledged_at: datetime | None
    handled_at: datetime | None
    level: int = 0


def _rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def tracking_stats(
    alerts: Iterable[TrackedTimes], policy: TrackingPolicy, now: datetime
) -> dict[str, Any]:
    """Counts, on-time rates and median response times over ``alerts`` as of ``now``.

    Rates are ``None`` when nothing is due yet (never a made-up 100 %). Critical values
    (category ``critical_value``) are reported separately: their handling rate is the
    cockpit's 危急值处置及时率.
    """
    rows = list(alerts)

    def block(items: list[TrackedTimes]) -> dict[str, Any]:
        ack_due = [
            a for a in items if a.acknowledged_at or now >= policy.acknowledge_due(a.raised_at)
        ]
        ack_on_time = [
            a
            for a in ack_due
            if a.acknowledged_at is not None
            and a.acknowledged_at <= policy.acknowledge_due(a.raised_at)
        ]
        handle_due = [a for a in items if a.handled_at or now >= policy.handle_due(a.raised_at)]
        handled_on_time = [
            a
            for a in handle_due
            if a.handled_at is not None and a.handled_at <= policy.handle_due(a.raised_at)
        ]
        ack_minutes = [
            (a.acknowledged_at - a.raised_at).total_seconds() / 60
            for a in items
            if a.acknowledged_at is not None
        ]
        handle_minutes = [
            (a.handled_at - a.raised_at).total_seconds() / 60
            for a in items
            if a.handled_at is not None
        ]
        return {
            "total": len(items),
            "unacknowledged": sum(1 for a in items if a.acknowledged_at is None),
            "unhandled": sum(1 for a in items if a.handled_at is None),
            "escalated": sum(1 for a in items if a.level > 0),
            "acknowledge_due": len(ack_due),
            "acknowledged_on_time": len(ack_on_time),
            "acknowledged_on_time_rate": _rate(len(ack_on_time), len(ack_due)),
            "handle_due": len(handle_due),
            "handled_on_time": len(handled_on_time),
            "handled_on_time_rate": _rate(len(handled_on_time), len(handle_due)),
            "median_acknowledge_minutes": round(median(ack_minutes), 1) if ack_minutes else None,
            "median_handle_minutes": round(median(handle_minutes), 1) if handle_minutes else None,
        }

    return {
        "now": now.isoformat(),
        "policy": {
            "acknowledge_within_minutes": policy.acknowledge_minutes,
            "handle_within_minutes": policy.handle_minutes,
            "acknowledge_source": policy.acknowledge_source,
            "handle_source": policy.handle_source,
        },
        "all": block(rows),
        "critical_value": block([a for a in rows if a.category == "critical_value"]),
    }
