"""Evaluate one patient's FHIR R4 Bundle into alerts and scores (``medbrain alerts evaluate``).

Pure: the bundle, the knowledge, ``now`` and the previously raised alerts come in as arguments;
nothing is read from the clock, the environment, a database or the network. When ``now`` is
not given it is the time of the latest observation in the bundle, so the same bundle always
gives the same answer.

Output (DESIGN.md §3)::

    {"alerts": [Finding + {"recommended_tests": [...], "differential": [...], ...}],
     "scores": {"news2": 3, "qsofa": 1, "sirs": 2}, ...}

Alerts are sorted by severity (critical first), then rule id, then first cited resource.

References
----------
DESIGN.md §2 (Finding) and §3 (``medbrain alerts evaluate``); MedBrain issue 10.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from medbrain.alerts.knowledge import AlertKnowledge
from medbrain.alerts.record import PatientRecord, read_bundle
from medbrain.alerts.rules import (
    Alert,
    Context,
    aki,
    creatinine_egfr,
    critical_values,
    drug_lab,
    early_warning,
    electrolytes,
    patterns,
    sepsis,
    trends,
)
from medbrain.alerts.scores import Score, news2, qsofa, sirs
from medbrain.alerts.suppress import RaisedAlert, suppress_repeats
from medbrain.core.errors import InputError
from medbrain.core.findings import Finding

CATEGORIES = (
    "critical_value",
    "early_warning",
    "sepsis",
    "aki",
    "electrolyte",
    "drug_lab",
    "trend",
)


@dataclass(frozen=True, slots=True)
class AlertReport:
    """The result of one evaluation."""

    now: datetime
    alerts: tuple[Finding, ...]
    raised: tuple[RaisedAlert, ...]
    suppressed: tuple[Finding, ...]
    scores: dict[str, Score | None]
    egfr: float | None
    ignored: tuple[str, ...]
    knowledge_versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alerts": [f.to_dict() for f in self.alerts],
            "scores": {
                name: (s.total if s is not None else None) for name, s in self.scores.items()
            },
            "score_details": {
                name: (s.to_dict() if s is not None else None) for name, s in self.scores.items()
            },
            "derived": {
                "egfr_ckd_epi_2021_ml_min_1_73m2": None
                if self.egfr is None
                else round(self.egfr, 1)
            },
            "suppressed": [
                {"rule_id": f.rule_id, "severity": f.severity.value, "value": f.extra.get("value")}
                for f in self.suppressed
            ],
            "ignored": list(self.ignored),
            "now": self.now.isoformat(),
            "knowledge_version": dict(self.knowledge_versions),
        }


def _sort_key(alert: Alert) -> tuple[int, str, str]:
    f = alert.finding
    first = next((e.resource for e in f.evidence if e.resource), "") or ""
    return (-f.severity.rank, f.rule_id, first)


def evaluate_record(
    record: PatientRecord,
    knowledge: AlertKnowledge,
    *,
    now: datetime,
    lang: str = "zh",
    previous: Sequence[RaisedAlert] = (),
    review_threshold: float | None = None,
) -> AlertReport:
    """Run every rule family over ``record`` as of ``now``; see the module docstring."""
    settings = knowledge.settings
    vitals = timedelta(hours=float(settings["vitals_lookback_hours"]))
    labs = timedelta(hours=float(settings["labs_lookback_hours"]))
    rules = knowledge.rules
    scores: dict[str, Score | None] = {
        "news2": news2(record, rules["news2"], now, vitals),
        "qsofa": qsofa(record, rules["qsofa"], now, vitals),
        "sirs": sirs(record, rules["sirs"], now, vitals, labs),
    }
    creat, egfr = creatinine_egfr(record, knowledge, now, labs)
    ctx = Context(
        record=record,
        knowledge=knowledge,
        now=now,
        lang=lang,
        vitals_lookback=vitals,
        labs_lookback=labs,
        scores=scores,
        egfr=egfr,
        creatinine=creat,
    )
    alerts: list[Alert] = []
    alerts += critical_values(ctx)
    septic = sepsis(ctx)
    alerts += septic
    alerts += early_warning(
        ctx, sepsis_fired=any(a.finding.rule_id == "sepsis.qsofa" for a in septic)
    )
    alerts += aki(ctx)
    alerts += electrolytes(ctx)
    alerts += drug_lab(ctx)
    alerts += trends(ctx)
    alerts += patterns(ctx)
    alerts.sort(key=_sort_key)
    raised = [
        RaisedAlert(
            rule_id=a.finding.rule_id,
            subject=record.patient.resource,
            value=a.value,
            time=a.time,
            severity=a.finding.severity,
            direction=a.direction,
        )
        for a in alerts
    ]
    window = timedelta(hours=float(settings["suppression_window_hours"]))
    _, dropped = suppress_repeats(raised, previous, window)
    dropped_ids = {id(r) for r in dropped}
    kept_findings: list[Finding] = []
    kept_raised: list[RaisedAlert] = []
    suppressed: list[Finding] = []
    for alert, r in zip(alerts, raised, strict=True):
        if id(r) in dropped_ids:
            suppressed.append(alert.finding)
        else:
            kept_findings.append(alert.finding)
            kept_raised.append(r)
    if review_threshold is not None:
        kept_findings = [
            replace(f, needs_review=f.confidence < review_threshold) for f in kept_findings
        ]
    return AlertReport(
        now=now,
        alerts=tuple(kept_findings),
        raised=tuple(kept_raised),
        suppressed=tuple(suppressed),
        scores=scores,
        egfr=egfr,
        ignored=record.ignored,
        knowledge_versions=dict(knowledge.versions),
    )


def evaluate_bundle(
    bundle: Any,
    knowledge: AlertKnowledge,
    *,
    now: datetime | None = None,
    lang: str = "zh",
    source: str = "bundle",
    previous: Sequence[RaisedAlert] = (),
    review_threshold: float | None = None,
) -> AlertReport:
    """Read ``bundle`` (parsed FHIR JSON) and evaluate it.

    Parameters
    ----------
    now
        The evaluation time (timezone-aware). Default: the latest observation time in the
        bundle; a bundle without observations then needs an explicit ``now``.
    previous
        Alerts raised before for this patient, for repeat suppression.

    Raises
    ------
    InputError
        Invalid bundle content, naming ``entry[i]...`` (see :mod:`medbrain.alerts.record`).
    """
    record = read_bundle(bundle, knowledge, source)
    if now is None:
        now = record.latest_time
        if now is None:
            raise InputError(source, "now", "the bundle has no usable observations; give --now")
    elif now.tzinfo is None:
        raise InputError(source, "now", "must include a time-zone offset")
    return evaluate_record(
        record, knowledge, now=now, lang=lang, previous=previous, review_threshold=review_threshold
    )
