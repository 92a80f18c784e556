"""Clinical early warnings: critical values, NEWS2/qSOFA/SIRS, sepsis, AKI, electrolytes,
drug–lab checks, trends and combined patterns, from one patient's FHIR R4 Bundle.

A pure engine (DESIGN.md §1): data in, :class:`~medbrain.core.findings.Finding` s out; no web,
database, environment or clock. Thresholds live in ``medbrain/knowledge/alerts/*.yaml`` with a
``source`` per row, and a hospital overrides them by file (:func:`load_alert_knowledge`).
"""

from medbrain.alerts.engine import CATEGORIES, AlertReport, evaluate_bundle, evaluate_record
from medbrain.alerts.escalation import EscalationState, EscalationStep, escalation_state
from medbrain.alerts.knowledge import AlertKnowledge, load_alert_knowledge
from medbrain.alerts.record import PatientRecord, read_bundle
from medbrain.alerts.suppress import RaisedAlert, is_worse, suppress_repeats

__all__ = [
    "CATEGORIES",
    "AlertKnowledge",
    "AlertReport",
    "EscalationState",
    "EscalationStep",
    "PatientRecord",
    "RaisedAlert",
    "escalation_state",
    "evaluate_bundle",
    "evaluate_record",
    "is_worse",
    "load_alert_knowledge",
    "read_bundle",
    "suppress_repeats",
]
