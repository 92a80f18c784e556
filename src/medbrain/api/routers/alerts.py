"""``POST /api/v1/alerts/evaluate``: evaluate one patient's FHIR R4 Bundle (doctor, nurse, admin).

The router holds no clinical logic: it loads the alert knowledge once, calls the pure engine
(:func:`medbrain.alerts.evaluate_bundle`) and audits the call. Invalid bundles raise
``InputError``, which the app turns into a 422 naming the field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from medbrain.alerts import AlertKnowledge, evaluate_bundle, load_alert_knowledge
from medbrain.alerts.record import parse_time
from medbrain.api.deps import AuditDep, LangDep, Principal, SettingsDep, require_role

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

ClinicalUser = Annotated[Principal, Depends(require_role("doctor", "nurse", "admin"))]


@lru_cache(maxsize=1)
def _default_knowledge() -> AlertKnowledge:
    return load_alert_knowledge(None)


def knowledge_for(request: Request) -> AlertKnowledge:
    """The app's alert knowledge (``app.state.alert_knowledge`` if set, else the shipped one)."""
    configured = getattr(request.app.state, "alert_knowledge", None)
    return configured if isinstance(configured, AlertKnowledge) else _default_knowledge()


@router.post(
    "/evaluate",
    responses={422: {"description": "Invalid bundle; `field` names the offending element"}},
)
def evaluate(
    request: Request,
    bundle: Annotated[dict[str, Any], Body(description="FHIR R4 Bundle of one patient")],
    _user: ClinicalUser,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
    now: Annotated[
        str | None, Query(description="Evaluation time, ISO 8601; default latest observation")
    ] = None,
) -> dict[str, Any]:
    """Alerts (critical values, early warning, sepsis, AKI, electrolytes, drug-lab, trends)."""
    when = parse_time("query", "now", now) if now is not None else None
    report = evaluate_bundle(
        bundle,
        knowledge_for(request),
        now=when,
        lang=lang,
        source="body",
        review_threshold=settings.review_threshold,
    )
    auditor.record("alerts.evaluate", "Bundle/adhoc", {"count": len(report.alerts)})
    return report.to_dict()
