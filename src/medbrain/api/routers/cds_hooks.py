"""CDS Hooks 2.0 services under ``/cds-services`` (DESIGN.md §4).

=========================================  ==================================================
``GET  /cds-services``                     discovery (§"Discovery")
``POST /cds-services/medbrain-order-sign``   ``order-sign``: rx review of ``context.draftOrders``
``POST /cds-services/medbrain-order-select`` ``order-select``: the same, cards for the selections
``POST /cds-services/medbrain-patient-view`` ``patient-view``: the alerts engine on the patient
``POST /cds-services/{id}/feedback``         ``accepted`` / ``overridden`` (§"Feedback")
=========================================  ==================================================

The patient's data comes from the request's ``prefetch`` (§"Providing FHIR Resources to a CDS
Service"); a key the client left out or sent as ``null`` is filled from MedBrain's own store when
``context.patientId`` is a patient MedBrain knows (:func:`~medbrain.interop.fhir.exporter.find_patient`).
MedBrain never calls the client's ``fhirServer``: patient data does not leave the machine and
no outside service is called (DESIGN.md §4).

Authentication: CDS clients use MedBrain's bearer token (``POST /api/v1/auth/token``) with
role doctor, pharmacist or admin. The JWT the spec has CDS clients sign (§"Trusting CDS
Clients") is not verified yet: that is future work.

Every call is audited (``cds.<hook>`` with the cards' uuids and rule ids; ``cds.feedback.<outcome>``
with ``CDSCard/<uuid>``). Invalid requests answer problem+json 422 naming the field
(``context.draftOrders``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.orm import Session

from medbrain.alerts import evaluate_record, read_bundle
from medbrain.alerts.record import parse_time
from medbrain.api.deps import AuditDep, LangDep, Principal, SessionDep, SettingsDep, require_role
from medbrain.api.routers.alerts import knowledge_for as alert_knowledge_for
from medbrain.api.routers.rx import knowledge_for as rx_knowledge_for
from medbrain.core.errors import InputError, NotFoundError
from medbrain.core.findings import Finding
from medbrain.interop import cds_hooks as cds
from medbrain.interop.fhir.exporter import find_patient, patient_everything
from medbrain.rare import default_rare_knowledge, load_index, parse_case
from medbrain.rare.screen import screen_case
from medbrain.rx import review

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])

CdsUser = Annotated[Principal, Depends(require_role("doctor", "pharmacist", "admin"))]
HookBody = Annotated[
    dict[str, Any], Body(description="CDS Hooks 2.0 request (§'Calling a CDS Service')")
]

#: Prefetch key → resource type, for filling a missing key from the store.
_KEY_TYPES = {key: next(iter(types)) for key, types in cds.PREFETCH_TYPES.items()}


def _store_patient_id(session: Session, patient_id: str) -> int | None:
    row = find_patient(session, patient_id)
    return row.id if row is not None else None


def _context_resources(
    session: Session, request: cds.HookRequest, service: cds.ServiceDef, store_id: int | None
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Prefetched resources, with missing keys filled from the store; and the keys filled."""
    out = dict(request.prefetch)
    missing = [key for key in service.prefetch if key not in out]
    if missing and store_id is not None:
        everything = patient_everything(session, store_id)
        resources = [e["resource"] for e in everything["entry"]]
        for key in missing:
            wanted = _KEY_TYPES[key]
            found = [r for r in resources if r.get("resourceType") == wanted]
            if key == "medications":
                found = [r for r in found if r.get("status") in ("active", "on-hold", None)]
            out[key] = found
        return out, missing
    if "patient" not in out:
        raise InputError(
            cds.SOURCE,
            "prefetch.patient",
            f"is required: Patient/{request.patient_id} is not in MedBrain's store",
        )
    return out, []


def _link(request: Request, store_id: int | None) -> tuple[str, str]:
    base = str(request.base_url).rstrip("/")
    if store_id is not None:
        return f"{base}/patients/{store_id}", "cds.link.patient"
    return f"{base}/inbox", "cds.link.inbox"


def _audit_cards(
    auditor: Any,
    service: cds.ServiceDef,
    hook: cds.HookRequest,
    cards: list[dict[str, Any]],
    **extra: Any,
) -> None:
    auditor.record(
        f"cds.{service.hook}",
        f"Patient/{hook.patient_id}",
        {
            "service": service.id,
            "hookInstance": hook.hook_instance,
            "cards": [
                {
                    "uuid": c["uuid"],
                    "rule_id": c["extension"][cds.EXTENSION_KEY]["rule_id"],
                    "indicator": c["indicator"],
                }
                for c in cards
            ],
            **extra,
        },
    )


@router.get("", summary="CDS Hooks discovery")
def discover(_user: CdsUser, lang: LangDep) -> dict[str, Any]:
    """The services MedBrain offers (CDS Hooks 2.0 §"Discovery").

    Every ``/cds-services`` route takes MedBrain's bearer token (role doctor, pharmacist or
    admin); the spec's signed-JWT client authentication (§"Trusting CDS Clients") is future
    work.
    """
    return cds.discovery(lang)


def _order_hook(
    service: cds.ServiceDef,
    request: Request,
    body: dict[str, Any],
    session: Session,
    auditor: AuditDep,
    lang: str,
    review_threshold: float,
) -> dict[str, Any]:
    hook = cds.parse_request(body, service)
    store_id = _store_patient_id(session, hook.patient_id)
    cards: list[dict[str, Any]] = []
    filled: list[str] = []
    verdict = "pass"
    if hook.draft_orders:
        resources, filled = _context_resources(session, hook, service, store_id)
        built = cds.order_review_bundle(hook, resources, today=datetime.now(UTC).date())
        try:
            result = review(
                built.bundle,
                rx_knowledge_for(request),
                lang=lang,
                source=cds.SOURCE,
                review_threshold=review_threshold,
            )
        except InputError as exc:
            raise built.remap(exc) from None
        verdict = result.verdict
        if verdict != "pass":
            link_url, link_key = _link(request, store_id)
            options = cds.CardOptions(
                lang=lang,
                link_url=link_url,
                link_label_key=link_key,
                draft_orders=dict(enumerate(hook.draft_orders)),
                selections=hook.selections,
            )
            findings: list[Finding] = list(result.findings)
            if service.hook == "order-select":
                findings = [f for f in findings if cds.involves_selection(f, options)]
            cards = [cds.finding_to_card(f, options) for f in findings]
    _audit_cards(auditor, service, hook, cards, verdict=verdict, store_filled=filled)
    return {"cards": cards}


@router.post(
    "/medbrain-order-sign",
    summary="order-sign: review draft medication orders",
    responses={422: {"description": "Invalid request; `field` names it (context.draftOrders)"}},
)
def order_sign(
    request: Request,
    body: HookBody,
    _user: CdsUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Cards for the rx findings on ``context.draftOrders`` (none when the review passes)."""
    service = cds.SERVICES_BY_ID["medbrain-order-sign"]
    return _order_hook(service, request, body, session, auditor, lang, settings.review_threshold)


@router.post(
    "/medbrain-order-select",
    summary="order-select: review the selected medication orders",
    responses={422: {"description": "Invalid request; `field` names it (context.selections)"}},
)
def order_select(
    request: Request,
    body: HookBody,
    _user: CdsUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Cards for the rx findings that involve ``context.selections``."""
    service = cds.SERVICES_BY_ID["medbrain-order-select"]
    return _order_hook(service, request, body, session, auditor, lang, settings.review_threshold)


@router.post(
    "/medbrain-patient-view",
    summary="patient-view: clinical alerts",
    responses={422: {"description": "Invalid request; `field` names it (context.patientId)"}},
)
def patient_view(
    request: Request,
    body: HookBody,
    _user: CdsUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
    now: Annotated[
        str | None, Query(description="Evaluation time, ISO 8601; default the current time")
    ] = None,
) -> dict[str, Any]:
    """Cards for the alerts engine's findings on the patient's data, then for the rare
    diseases its lab results and diagnoses point to (:mod:`medbrain.rare.screen`)."""
    service = cds.SERVICES_BY_ID["medbrain-patient-view"]
    hook = cds.parse_request(body, service)
    when = parse_time("query", "now", now) if now is not None else datetime.now(UTC)
    store_id = _store_patient_id(session, hook.patient_id)
    resources, filled = _context_resources(session, hook, service, store_id)
    built = cds.patient_view_bundle(resources)
    knowledge = alert_knowledge_for(request)
    try:
        record = read_bundle(built.bundle, knowledge, cds.SOURCE)
    except InputError as exc:
        raise built.remap(exc) from None
    report = evaluate_record(
        record, knowledge, now=when, lang=lang, review_threshold=settings.review_threshold
    )
    link_url, link_key = _link(request, store_id)
    options = cds.CardOptions(lang=lang, link_url=link_url, link_label_key=link_key)
    findings = list(report.alerts) + _rare_findings(resources, when, lang)
    cards = [cds.finding_to_card(f, options) for f in findings]
    _audit_cards(auditor, service, hook, cards, store_filled=filled)
    return {"cards": cards}


def _rare_findings(
    resources: dict[str, list[dict[str, Any]]], when: datetime, lang: str
) -> list[Finding]:
    """The rare-disease screen of the same record; nothing when it shows no abnormality."""
    index = load_index()
    knowledge = default_rare_knowledge()
    fields = cds.rare_case_fields(resources, when.date())
    try:
        case = parse_case(fields, index, knowledge, source=cds.SOURCE, lang=lang)
    except InputError as exc:
        if exc.field == "hpo":  # no abnormal finding to screen
            return []
        lab = re.match(r"labs\[(\d+)\]", exc.field)
        if lab:  # name the Observation, not the internal case document
            raise InputError(
                cds.SOURCE, fields["labs"][int(lab.group(1))]["resource"], exc.problem
            ) from None
        raise
    return screen_case(case, index, knowledge, lang=lang)


@router.post(
    "/{service_id}/feedback",
    summary="Feedback on cards: accepted or overridden",
    responses={
        404: {"description": "No such service"},
        422: {"description": "Invalid feedback; `field` names it (feedback[0].outcome)"},
    },
)
def feedback(
    service_id: str,
    body: Annotated[dict[str, Any], Body(description="CDS Hooks 2.0 feedback (§'Feedback')")],
    _user: CdsUser,
    auditor: AuditDep,
) -> dict[str, Any]:
    """Record each outcome in the audit chain as ``cds.feedback.<outcome>`` on ``CDSCard/<uuid>``."""
    if service_id not in cds.SERVICES_BY_ID:
        raise NotFoundError(f"CDS service {service_id}")
    items = cds.parse_feedback(body)
    for item in items:
        auditor.record(
            f"cds.feedback.{item.outcome}",
            f"CDSCard/{item.card}",
            {"service": service_id, **item.to_detail()},
        )
    return {"recorded": len(items)}
