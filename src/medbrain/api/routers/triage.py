"""Emergency pre-triage of one visit (nurse, doctor, admin).

``POST /api/v1/triage/assess`` suggests a level; ``POST /api/v1/triage/decision`` records the
triage nurse's confirmation or override of it (a reason is required to change the level);
``POST /api/v1/triage/timeline`` reports door-to-step minutes of a pathway against targets.

The router holds no clinical logic: it loads the triage knowledge once, calls the pure engine
(:func:`medbrain.triage.assess_document`) and audits the assessment. Invalid visits raise
``InputError``, which the app turns into a 422 problem+json naming the field.

References
----------
DESIGN.md §3 (``medbrain triage assess`` contract); 急诊预检分诊专家共识, 中华急诊医学杂志
2018;27(6):599-604.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from medbrain.api.deps import AuditDep, LangDep, Principal, SettingsDep, require_role
from medbrain.core.errors import InputError
from medbrain.triage import (
    TriageKnowledge,
    apply_decision,
    assess_document,
    default_knowledge,
    pathway_timeline,
)

router = APIRouter(prefix="/api/v1/triage", tags=["triage"])

TriageUser = Annotated[Principal, Depends(require_role("nurse", "doctor", "admin"))]


def knowledge_for(request: Request) -> TriageKnowledge:
    """The app's triage knowledge (``app.state.triage_knowledge`` if set, else shipped)."""
    configured = getattr(request.app.state, "triage_knowledge", None)
    return configured if isinstance(configured, TriageKnowledge) else default_knowledge()


@router.post(
    "/assess",
    responses={422: {"description": "Invalid visit; `field` names the offending element"}},
)
def assess(
    request: Request,
    visit: Annotated[dict[str, Any], Body(description="Visit (DESIGN.md §3)")],
    _user: TriageUser,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Level Ⅰ–Ⅳ, zone, maximum wait, care, department, pathway, red flags and reasons."""
    started = time.perf_counter()
    result = assess_document(
        visit,
        knowledge_for(request),
        lang=lang,
        source="body",
        review_threshold=settings.review_threshold,
    )
    out = result.to_dict()
    out["seconds"] = round(time.perf_counter() - started, 4)
    auditor.record(
        "triage.assess",
        "Triage/adhoc",
        {"level": result.level, "care": result.care, "pathway": result.pathway},
    )
    return out


@router.post(
    "/decision",
    responses={422: {"description": "Invalid visit, level or missing reason; `field` names it"}},
)
def decide(
    request: Request,
    body: Annotated[
        dict[str, Any],
        Body(
            description="`visit` (DESIGN.md §3), `final_level` 1-4 and `reason` "
            "(required when the level differs from the suggestion)"
        ),
    ],
    _user: TriageUser,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """The nurse confirms or overrides the suggested level; the decision is audited."""
    visit = body.get("visit")
    if not isinstance(visit, dict):
        raise InputError("body", "visit", "must be the visit object that was triaged")
    knowledge = knowledge_for(request)
    suggested = assess_document(
        visit, knowledge, lang=lang, source="body.visit", review_threshold=settings.review_threshold
    )
    decided = apply_decision(
        suggested, knowledge, body.get("final_level"), body.get("reason"), lang=lang, source="body"
    )
    decision = dict(decided.decision or {})
    action = "triage.override" if decision.get("action") == "overridden" else "triage.confirm"
    auditor.record(
        action,
        "Triage/adhoc",
        {
            "level": suggested.level,
            "final_level": decided.level,
            "reason": decision.get("reason"),
        },
    )
    return decided.to_dict()


def _time(field: str, raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise InputError("body", field, f"must be an ISO 8601 time, got {raw!r}")
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InputError("body", field, f"is not an ISO 8601 time: {raw!r}") from None


@router.post(
    "/timeline",
    responses={422: {"description": "Unknown pathway/step or bad time; `field` names it"}},
)
def timeline(
    request: Request,
    body: Annotated[
        dict[str, Any],
        Body(
            description="`pathway`, `door` (arrival, ISO 8601 with zone), `events` "
            "{step: time} and optional `now`"
        ),
    ],
    _user: TriageUser,
    lang: LangDep,
) -> dict[str, Any]:
    """Door-to-ECG, door-to-needle, door-to-antimicrobial… for one patient's pathway."""
    events = body.get("events") or {}
    if not isinstance(events, dict):
        raise InputError("body", "events", "must map step names to ISO 8601 times")
    steps = pathway_timeline(
        str(body.get("pathway")),
        _time("door", body.get("door")),
        {str(k): _time(f"events.{k}", v) for k, v in events.items()},
        knowledge_for(request),
        lang=lang,
        now=_time("now", body["now"]) if body.get("now") is not None else None,
        source="body",
    )
    return {"pathway": body.get("pathway"), "steps": [step.to_dict() for step in steps]}
