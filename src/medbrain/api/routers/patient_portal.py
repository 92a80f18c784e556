"""Patient pages: pre-consultation (预问诊) with where-to-go (智能导诊), and the assistant.

Patients log in (no kiosk mode, no anonymous access) and see only their own record:

===========================================  ==============================================
``GET/POST /portal/preconsult``              complaint in their words, onset, severity, red
                                             flags, history → where to go + HPI draft
``GET /portal/assistant``                    "where do I go / what is next" (``?q=``)
``GET /patients/{id}/preconsult-panel``      the doctor's view of the latest pre-consultation
                                             (doctor, nurse, admin), an HTMX fragment
===========================================  ==============================================

A red flag — ticked, or found by the triage engine in the patient's words — always answers
"go to the emergency department now / call 120". Answers are templates (``core/messages/
triage_ed.yaml``); no LLM is needed. Submissions and reads are audited.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604; 《医疗机构诊疗科目名录》(1994).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadSessionDep,
    RowId,
    SessionDep,
    ensure_patient_visible,
)
from medbrain.api.routers import ed as ed_router
from medbrain.api.routers import ed_where, portal_help
from medbrain.api.routers import triage as triage_api
from medbrain.api.routers.ui import audit_read, page_router, render, ui_role
from medbrain.core.errors import InputError
from medbrain.core.i18n import Lang, t
from medbrain.store import models as m
from medbrain.store import triage_ed as store
from medbrain.store.patients import age_on
from medbrain.triage.assistant import AssistantAnswer, answer
from medbrain.triage.ed import board
from medbrain.triage.preconsult import (
    PreconsultKnowledge,
    default_preconsult_knowledge,
    parse_answers,
    preconsult,
)

router = page_router()


PatientUser = Annotated[Principal, Depends(ui_role("patient"))]
ClinicalUser = Annotated[Principal, Depends(ui_role("doctor", "nurse", "admin"))]


def preconsult_knowledge_for(request: Request) -> PreconsultKnowledge:
    configured = getattr(request.app.state, "preconsult_knowledge", None)
    return (
        configured
        if isinstance(configured, PreconsultKnowledge)
        else default_preconsult_knowledge()
    )


def _own_patient(session: Session, user: Principal, lang: str) -> m.Patient:
    """The logged-in patient's own record (404 when the account is not linked to one)."""
    row = session.get(m.Patient, user.patient_id) if user.patient_id is not None else None
    if row is None:
        raise HTTPException(404, t("portal.not_linked", lang))
    return row


def _form_page(
    request: Request,
    user: Principal,
    lang: Lang,
    patient: m.Patient,
    *,
    form: dict[str, Any],
    result: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
    where: list[dict[str, Any]] | None = None,
) -> Response:
    knowledge = preconsult_knowledge_for(request)
    return render(
        request,
        "portal/preconsult.html",
        {
            "patient": patient,
            "form": form,
            "result": result,
            "error": error,
            "onset_choices": {k: v[1][lang] for k, v in knowledge.onset.items()},
            "red_flags": [
                (f.id, f.label[lang])
                for f in knowledge.asked(age_on(patient.birth_date, datetime.now(UTC).date()))
            ],
            "history_questions": {k: v[lang] for k, v in knowledge.history.items()},
            "where": where,
        },
        lang=lang,
        user=user,
        status_code=status_code,
    )


@router.get("/portal/preconsult")
def preconsult_form(
    request: Request, user: PatientUser, session: ReadSessionDep, lang: LangDep
) -> Response:
    """The pre-consultation form (mobile-friendly), for the logged-in patient."""
    patient = _own_patient(session, user, lang)
    return _form_page(request, user, lang, patient, form={"red_flags": [], "history": {}})


@router.post("/portal/preconsult")
async def preconsult_submit(
    request: Request,
    user: PatientUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
) -> Response:
    """Where to go and the HPI draft; a red flag always sends the patient to the ED now."""
    patient = _own_patient(session, user, lang)
    raw = await request.form()
    knowledge = preconsult_knowledge_for(request)
    form: dict[str, Any] = {
        "complaint": str(raw.get("complaint") or "")[:1000],
        "onset": str(raw.get("onset") or "") or None,
        "severity": str(raw.get("severity") or "") or None,
        "red_flags": [str(v) for v in raw.getlist("red_flags")],
        "history": {
            k: str(raw.get(f"history.{k}") or "")[:1000]
            for k in knowledge.history
            if raw.get(f"history.{k}")
        },
        "pregnant": raw.get("pregnant") in ("on", "true", "1"),
        "lat": str(raw.get("lat") or "")[:32],
        "lon": str(raw.get("lon") or "")[:32],
    }
    now = datetime.now(UTC)
    try:
        answers = parse_answers(
            form,
            knowledge,
            age_years=age_on(patient.birth_date, now.date()),
            sex=patient.sex,
            source="form",
        )
        guidance = preconsult(
            answers, triage_api.knowledge_for(request), knowledge, lang=lang, answered_at=now
        )
        lat, lon = ed_where.parse_location(request, form["lat"], form["lon"])
        where = ed_where.recommendations(
            request,
            session,
            lat=lat,
            lon=lon,
            department=str(guidance.department["code"]),
            emergency=guidance.go_to_ed,
            lang=lang,
        )
    except InputError as exc:
        message = f"{exc.field}: {exc.problem}" if exc.field else exc.problem
        return _form_page(request, user, lang, patient, form=form, error=message, status_code=422)
    result = guidance.to_dict()
    row = store.save_preconsult(
        session,
        patient_id=patient.id,
        answers=answers.to_dict(),
        result={**result, "lang": lang},
        by=user.username,
        at=now,
    )
    auditor.record(
        "preconsult.submit",
        f"Patient/{patient.id}",
        {
            "preconsult_id": row.id,
            "go_to_ed": guidance.go_to_ed,
            "department": guidance.department["code"],
            "red_flags": list(answers.red_flags),
        },
    )
    return _form_page(request, user, lang, patient, form=form, result=result, where=where)


def _assistant_lines(facts: AssistantAnswer, lang: Lang) -> list[str]:
    """Word the assistant's facts with the message templates (no LLM needed)."""
    out: list[str] = []
    if facts.emergency:
        key = "portal.assist.emergency_in_ed" if facts.in_ed else "portal.assist.emergency"
        return [t(key, lang, reasons=";".join(facts.emergency_reasons))]
    name = "name_zh" if lang == "zh" else "name_en"
    if "where" in facts.intents:
        if facts.in_ed and facts.status != "departed":
            dept = (facts.department or {}).get(name, "")
            out.append(t("portal.assist.where_ed", lang, zone=facts.zone_name, department=dept))
        elif facts.preconsult_go_to_ed:
            out.append(t("portal.assist.where_go_ed", lang))
        elif facts.preconsult_department:
            dept = facts.preconsult_department.get(name, "")
            out.append(t("portal.assist.where_department", lang, department=dept))
        else:
            out.append(t("portal.assist.where_unknown", lang))
    if "next" in facts.intents:
        if facts.in_ed and facts.status == "waiting":
            out.append(
                t(
                    "portal.assist.queue",
                    lang,
                    ahead=facts.ahead if facts.ahead is not None else 0,
                    level=facts.level_name,
                    limit=facts.limit_minutes,
                    waited=round(facts.waited_minutes or 0),
                )
            )
            if facts.overdue:
                out.append(t("portal.assist.overdue", lang))
        elif facts.in_ed and facts.status == "seen":
            steps = "、".join(s["label"] for s in facts.next_steps) if facts.next_steps else ""
            out.append(
                t("portal.assist.next_steps", lang, steps=steps)
                if steps
                else t("portal.assist.next_doctor", lang)
            )
        elif facts.in_ed and facts.status == "departed":
            out.append(t("portal.assist.departed", lang))
        elif facts.preconsult_department is not None or facts.preconsult_go_to_ed:
            out.append(t("portal.assist.next_register", lang))
        else:
            out.append(t("portal.assist.next_preconsult", lang))
    out.append(t("portal.assist.safety", lang))
    return out


@router.get("/portal/assistant")
def assistant(
    request: Request,
    user: PatientUser,
    session: ReadSessionDep,
    lang: LangDep,
    q: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """Answers from the patient's own pathway: queue position, next step, where to go."""
    patient = _own_patient(session, user, lang)
    now = datetime.now(UTC)
    visit = store.active_visit_for_patient(session, patient.id)
    own_row: dict[str, Any] | None = None
    if visit is not None:
        rows, _load = board(
            store.board_states(session, now),
            now,
            ed_router.ed_knowledge_for(request),
            triage_api.knowledge_for(request),
            lang,
        )
        own = next((r for r in rows if r.state.visit_id == visit.id), None)
        own_row = own.to_dict() if own is not None else None
    latest = store.latest_preconsults(session, patient.id, 1)
    pre = latest[0].result if latest else None
    error: str | None = None
    lines: list[str] = []
    try:
        facts = answer(
            q, triage_api.knowledge_for(request), ed_row=own_row, preconsult=pre, lang=lang
        )
        lines = _assistant_lines(facts, lang)
        emergency = facts.emergency
        if not emergency:  # navigation answers before the closing safety line
            lines[-1:-1] = portal_help.navigation_lines(request, q, lang)
    except InputError as exc:
        error = exc.problem
        emergency = False
    audit_read(
        request,
        user,
        "assistant.ask",
        f"Patient/{patient.id}",
        {"in_ed": own_row is not None, "emergency": emergency},
    )
    reports = portal_help.report_items(request, session, patient, lang)
    return render(
        request,
        "portal/assistant.html",
        {
            "q": q,
            "lines": lines,
            "emergency": emergency,
            "error": error,
            "patient": patient,
            "reports": reports,
            "report_emergency": any(r["level"] == "emergency" for r in reports),
        },
        lang=lang,
        user=user,
    )


@router.get("/patients/{patient_id}/preconsult-panel")
def preconsult_panel(
    request: Request,
    patient_id: RowId,
    user: ClinicalUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    """The latest pre-consultation as a cited HPI draft for the doctor (HTMX fragment)."""
    ensure_patient_visible(user, patient_id, lang)
    latest = store.latest_preconsults(session, patient_id, 1)
    audit_read(
        request,
        user,
        "preconsult.read",
        f"Patient/{patient_id}",
        {"via": "ui", "found": bool(latest)},
    )
    item = latest[0] if latest else None
    return render(
        request,
        "portal/preconsult_panel.html",
        {
            "patient_id": patient_id,
            "item": item,
            "result": item.result if item is not None else None,
        },
        lang=lang,
        user=user,
    )
