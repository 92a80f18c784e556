"""``POST /api/v1/rx/review``: review one prescription (doctor, pharmacist, admin).

The router holds no clinical logic: it uses the prescription knowledge loaded once, calls the
pure engine (:func:`medbrain.rx.review`) and audits the verdict. Invalid prescriptions raise
``InputError``, which the app turns into a 422 naming the field (``items[2].dose``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from medbrain.api.deps import AuditDep, LangDep, Principal, SettingsDep, require_role
from medbrain.rx import RxKnowledge, review
from medbrain.store import rx_review as rx_store

router = APIRouter(prefix="/api/v1/rx", tags=["rx"])

Reviewer = Annotated[Principal, Depends(require_role("doctor", "pharmacist", "admin"))]


def knowledge_for(request: Request) -> RxKnowledge:
    """The app's drug knowledge: ``app.state.rx_knowledge`` if set, else the shipped knowledge
    merged with the hospital's stored rule configuration (:mod:`medbrain.store.rx_review`)."""
    return knowledge_and_key(request)[1]


def knowledge_and_key(request: Request) -> tuple[str, RxKnowledge]:
    """``(key, knowledge)``; the key changes whenever the stored configuration does."""
    configured = getattr(request.app.state, "rx_knowledge", None)
    if isinstance(configured, RxKnowledge):
        return "app", configured
    factory = (
        getattr(request.app.state, "read_session_factory", None)
        or request.app.state.session_factory
    )
    with factory() as session, session.begin():
        return rx_store.current_knowledge(session)


@router.post(
    "/review",
    responses={422: {"description": "Invalid prescription; `field` names the offending value"}},
)
def review_prescription(
    request: Request,
    prescription: Annotated[
        dict[str, Any],
        Body(description="MedBrain prescription JSON (DESIGN.md §3) or FHIR R4 Bundle"),
    ],
    _user: Reviewer,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Verdict (pass/warn/block) and findings with drugs, message, fix and source."""
    started = time.perf_counter()
    result = review(
        prescription,
        knowledge_for(request),
        lang=lang,
        source="body",
        review_threshold=settings.review_threshold,
    )
    seconds = time.perf_counter() - started
    auditor.record(
        "rx.review",
        "Prescription/adhoc",
        {"verdict": result.verdict, "findings": len(result.findings)},
    )
    return result.to_dict(seconds)
