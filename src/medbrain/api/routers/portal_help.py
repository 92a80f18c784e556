"""Patient assistant helpers: plain-language lab reports and hospital navigation (issue 9 item 7).

===========================  =====================================================
``GET /portal/reports``      the logged-in patient's own abnormal lab results
                             explained (what it means, how far from the range,
                             when to see a doctor); critical → contact the
                             doctor / ED now
===========================  =====================================================

The assistant page (``/portal/assistant``) also shows these explanations and answers
navigation questions from ``knowledge/triage/navigation.yaml`` (``app.state.
navigation_knowledge`` or ``app.state.report_knowledge`` override the shipped files).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.api.deps import LangDep, Principal, ReadSessionDep
from medbrain.api.routers import alerts as alerts_api
from medbrain.api.routers.ui import audit_read, page_router, render, ui_role
from medbrain.core.i18n import t
from medbrain.knowledge.overrides import read_hospital_file
from medbrain.store import models as m
from medbrain.store import triage_ed as triage_store
from medbrain.store.radiology_review_models import RadiologyReport
from medbrain.triage.imaging_reports import (
    ImagingReportKnowledge,
    default_imaging_knowledge,
    explain_chest_ct,
    imaging_knowledge_with,
)
from medbrain.triage.navigation import (
    NavigationKnowledge,
    default_navigation,
    find_places,
    navigation_with,
)
from medbrain.triage.reports import (
    LabValue,
    ReportKnowledge,
    default_report_knowledge,
    distance_text,
    explain,
    report_knowledge_with,
)

router = page_router()
MAX_RESULTS = 500
PatientUser = Annotated[Principal, Depends(ui_role("patient"))]


def _own_patient(session: Session, user: Principal, lang: str) -> m.Patient:
    row = session.get(m.Patient, user.patient_id) if user.patient_id is not None else None
    if row is None:
        raise HTTPException(404, t("portal.not_linked", lang))
    return row


def navigation_for(request: Request) -> NavigationKnowledge:
    """``app.state.navigation_knowledge``, else the shipped file merged with the hospital's
    ``MEDBRAIN_HOME/triage/navigation.yaml``."""
    configured = getattr(request.app.state, "navigation_knowledge", None)
    if isinstance(configured, NavigationKnowledge):
        return configured
    override = read_hospital_file(request.app.state.settings.home / "triage" / "navigation.yaml")
    return default_navigation() if override is None else navigation_with(override)


def report_knowledge_for(request: Request) -> ReportKnowledge:
    """``app.state.report_knowledge``, else the shipped file merged with the hospital's
    ``MEDBRAIN_HOME/triage/reports.yaml``."""
    configured = getattr(request.app.state, "report_knowledge", None)
    if isinstance(configured, ReportKnowledge):
        return configured
    override = read_hospital_file(request.app.state.settings.home / "triage" / "reports.yaml")
    return default_report_knowledge() if override is None else report_knowledge_with(override)


def navigation_lines(request: Request, question: str, lang: str) -> list[str]:
    """One line per place the question names (building, floor, hours); [] when none."""
    if not question.strip():
        return []
    return [
        t(
            "portal.nav.place",
            lang,
            name=p.text("name", lang),
            building=p.text("building", lang),
            floor=p.text("floor", lang),
            hours=p.text("hours", lang),
        )
        for p in find_places(question, navigation_for(request))[:3]
    ]


def preconsult_facts(session: Session, patient_id: int) -> list[dict[str, str]]:
    """The latest pre-consultation's HPI lines as insertable note facts citing
    ``Preconsultation/{id}`` (the note editor's "预问诊" group)."""
    latest = triage_store.latest_preconsults(session, patient_id, 1)
    if not latest:
        return []
    row = latest[0]
    when = row.created_at.isoformat()[:16] if row.created_at else ""
    return [
        {
            "group": "preconsult",
            "ref": f"Preconsultation/{row.id}",
            "flag": "",
            "text": f"{line.get('section', '')}:{line.get('text', '')} ({when})",
        }
        for line in row.result.get("hpi", [])
        if str(line.get("text") or "").strip()
    ]


def _latest_lab_values(session: Session, patient_id: int) -> list[LabValue]:
    """The newest laboratory result per code for the patient (numbers or lab flags)."""
    rows = session.scalars(
        select(m.Observation)
        .where(m.Observation.patient_id == patient_id, m.Observation.category == "laboratory")
        .order_by(m.Observation.effective_at.desc(), m.Observation.id.desc())
        .limit(MAX_RESULTS)
    ).all()
    seen: set[str] = set()
    out: list[LabValue] = []
    for row in rows:
        if row.code in seen or row.status in ("entered-in-error", "cancelled"):
            continue
        seen.add(row.code)
        out.append(
            LabValue(
                ref=f"Observation/{row.id}",
                code=row.code,
                display=row.display,
                value=row.value_num,
                unit=row.unit,
                ref_low=row.ref_low,
                ref_high=row.ref_high,
                flag=row.abnormal_flag,
                when=row.effective_at.date().isoformat() if row.effective_at else None,
            )
        )
    return out


def report_items(
    request: Request, session: Session, patient: m.Patient, lang: str
) -> list[dict[str, Any]]:
    """The patient's abnormal results explained, emergencies first (dicts for the template)."""
    items = explain(
        _latest_lab_values(session, patient.id),
        report_knowledge_for(request),
        alerts=alerts_api.knowledge_for(request),
        sex=patient.sex,
        lang=lang,
    )
    return [{**e.to_dict(), "distance": distance_text(e, lang)} for e in items]


def imaging_knowledge_for(request: Request) -> ImagingReportKnowledge:
    """The shipped texts merged with the hospital's ``MEDBRAIN_HOME/triage/imaging_reports.yaml``."""
    override = read_hospital_file(
        request.app.state.settings.home / "triage" / "imaging_reports.yaml"
    )
    return default_imaging_knowledge() if override is None else imaging_knowledge_with(override)


def imaging_items(
    request: Request, session: Session, patient: m.Patient, lang: str
) -> list[dict[str, Any]]:
    """The patient's signed chest CT reports, newest first, each explained in plain language."""
    rows = session.execute(
        select(RadiologyReport, m.ImagingStudy)
        .join(m.ImagingStudy, m.ImagingStudy.id == RadiologyReport.study_id)
        .where(m.ImagingStudy.patient_id == patient.id, RadiologyReport.status == "signed")
        .order_by(RadiologyReport.signed_at.desc(), RadiologyReport.version.desc())
    )
    knowledge = imaging_knowledge_for(request)
    latest: dict[int, dict[str, Any]] = {}
    for report, study in rows:
        if study.id in latest:
            continue  # the newest signed version of each study only
        when = study.started_at.date().isoformat() if study.started_at else ""
        explanation = explain_chest_ct(
            report.lung_rads, report.nodules, knowledge, study_date=when, lang=lang
        )
        latest[study.id] = {**explanation.to_dict(), "study_uid": study.study_uid}
    return list(latest.values())


@router.get("/portal/reports")
def reports_page(
    request: Request, user: PatientUser, session: ReadSessionDep, lang: LangDep
) -> Response:
    """The patient's own lab results in plain language (never a diagnosis)."""
    patient = _own_patient(session, user, lang)
    items = report_items(request, session, patient, lang)
    imaging = imaging_items(request, session, patient, lang)
    emergency = any(i["level"] == "emergency" for i in items)
    audit_read(
        request,
        user,
        "assistant.reports",
        f"Patient/{patient.id}",
        {"explained": len(items), "emergency": emergency, "imaging": len(imaging)},
    )
    return render(
        request,
        "portal/reports.html",
        {
            "patient": patient,
            "reports": items,
            "report_emergency": emergency,
            "imaging": imaging,
        },
        lang=lang,
        user=user,
    )
