"""Clinical workbench pages: triage, prescription review, EMR QC, alerts, notes, rare diseases.

Server-rendered pages (Jinja2 + HTMX, the layout of ``web/templates/base.html``) that put every
engine in front of its users with the demo data:

=============================================  =============================  ====================
route                                          engine                         roles
=============================================  =============================  ====================
``GET/POST /triage``                           :mod:`medbrain.triage`         nurse, doctor, admin
``GET /rx``, ``POST /rx/review``               :mod:`medbrain.rx`             pharmacist, doctor,
                                                                              admin
``GET /qc``, ``GET /qc/encounters/{id}``       :mod:`medbrain.qc`             qc_officer, doctor,
                                                                              admin
``GET /patients/{id}/alerts-panel``            :mod:`medbrain.alerts`         doctor, nurse, admin
``GET /patients/{id}/note-draft``              :mod:`medbrain.notes`          doctor, admin
``GET /rare``                                  :mod:`medbrain.rare`           doctor, admin
=============================================  =============================  ====================

The routes only build each engine's input from the store (or the form), call the engine and
render; no clinical logic lives here. Invalid input (``InputError``) is shown inline on the
page with the field it names; every read of patient data is written to the audit chain.

References
----------
DESIGN.md §3 (engine input/output contracts), §4 (roles, audit); STYLE.md §5 (thin routers).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.alerts import evaluate_bundle
from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadSessionDep,
    RowId,
    SettingsDep,
    ensure_patient_visible,
)
from medbrain.api.routers import alerts as alerts_api
from medbrain.api.routers import qc as qc_api
from medbrain.api.routers import rx as rx_api
from medbrain.api.routers import triage as triage_api
from medbrain.api.routers.ui import audit_read, page_router, redirect, render, ui_role
from medbrain.core.config import Settings
from medbrain.core.errors import BackendUnavailable, InputError, NotFoundError
from medbrain.core.i18n import Lang, t
from medbrain.interop.fhir.exporter import patient_everything
from medbrain.notes import NOTE_TYPES, draft_note, read_note_record
from medbrain.qc import check_record
from medbrain.qc.parse import record_from_mapping
from medbrain.rare import default_rare_knowledge, load_index, rank_document
from medbrain.rx import review
from medbrain.store import models as m
from medbrain.store import rx_review as rx_store
from medbrain.triage import assess_document

router = page_router()


TriageUser = Annotated[Principal, Depends(ui_role("nurse", "doctor", "admin"))]
RxUser = Annotated[Principal, Depends(ui_role("pharmacist", "doctor", "admin"))]
QCUser = Annotated[Principal, Depends(ui_role("qc_officer", "doctor", "admin"))]
AlertsUser = Annotated[Principal, Depends(ui_role("doctor", "nurse", "admin"))]
NotesUser = Annotated[Principal, Depends(ui_role("doctor", "admin"))]
RareUser = Annotated[Principal, Depends(ui_role("doctor", "admin"))]

SEVERITY_RANK = {"critical": 2, "warning": 1, "info": 0}
VERDICT_RANK = {"block": 2, "warn": 1, "pass": 0}
RX_LIST_CAP = 40
QC_LIST_CAP = 30


def _input_error(exc: InputError) -> str:
    return f"{exc.field}: {exc.problem}" if exc.field else exc.problem


def _local_zone(settings: Settings) -> ZoneInfo | None:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local_text(value: datetime | None, settings: Settings) -> str | None:
    """A stored UTC time as the hospital's wall-clock time (how the documents write it)."""
    if value is None:
        return None
    zone = _local_zone(settings)
    local = value.astimezone(zone) if zone is not None else value.astimezone(UTC)
    return local.strftime("%Y-%m-%d %H:%M")


# -- triage ----------------------------------------------------------------------------------

VITAL_FIELDS = ("hr", "sbp", "dbp", "rr", "spo2", "temp_c", "gcs", "glucose_mmol_l", "pain_score")

TRIAGE_EXAMPLES: dict[str, dict[str, str]] = {
    "chest_pain": {
        "complaint": "胸痛2小时,伴大汗",
        "age_years": "56",
        "sex": "male",
        "hr": "110",
        "sbp": "90",
        "dbp": "60",
        "rr": "24",
        "spo2": "93",
        "temp_c": "36.8",
        "gcs": "15",
        "pain_score": "8",
        "arrival": "walk-in",
        "onset_minutes": "120",
    },
    "stroke": {
        "complaint": "突发左侧肢体无力、口角歪斜、言语不清1小时",
        "age_years": "67",
        "sex": "female",
        "hr": "88",
        "sbp": "178",
        "dbp": "96",
        "rr": "18",
        "spo2": "97",
        "temp_c": "36.6",
        "gcs": "14",
        "glucose_mmol_l": "7.2",
        "arrival": "ambulance",
        "onset_minutes": "60",
    },
    "sore_throat": {
        "complaint": "咽痛2天,无发热",
        "age_years": "25",
        "sex": "female",
        "hr": "78",
        "sbp": "118",
        "dbp": "72",
        "rr": "16",
        "spo2": "99",
        "temp_c": "36.9",
        "gcs": "15",
        "pain_score": "3",
        "arrival": "walk-in",
        "onset_minutes": "2880",
    },
}


def _number_or_text(raw: str) -> float | int | str:
    """A form number as a number; anything else is passed on for the engine to name."""
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _visit_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The DESIGN.md §3 visit document from the form's fields (empty fields are left out)."""
    visit: dict[str, Any] = {"complaint": form.get("complaint", "")}
    for key in ("age_years", "onset_minutes"):
        if form.get(key, "").strip():
            visit[key] = _number_or_text(form[key])
    for key in ("sex", "arrival"):
        if form.get(key, "").strip():
            visit[key] = form[key].strip()
    vitals = {k: _number_or_text(form[k]) for k in VITAL_FIELDS if form.get(k, "").strip()}
    if vitals:
        visit["vitals"] = vitals
    if form.get("pregnant") in ("on", "true", "1"):
        visit["pregnant"] = True
    return visit


def _triage_page(
    request: Request,
    user: Principal,
    lang: Lang,
    form: dict[str, str],
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "workbench/triage.html",
        {
            "form": form,
            "result": result,
            "error": error,
            "examples": list(TRIAGE_EXAMPLES),
            "vital_fields": VITAL_FIELDS,
        },
        lang=lang,
        user=user,
        status_code=status_code,
    )


@router.get("/triage")
def triage_form(
    request: Request,
    user: TriageUser,
    lang: LangDep,
    example: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The pre-triage form, optionally prefilled with one of the examples."""
    return _triage_page(request, user, lang, dict(TRIAGE_EXAMPLES.get(example, {})))


@router.post("/triage")
async def triage_submit(
    request: Request,
    user: TriageUser,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Assess the visit; impossible values are shown inline with the field the engine names."""
    raw = await request.form()
    form = {k: v.strip()[:500] for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}
    visit = _visit_from_form(form)
    try:
        result = assess_document(
            visit,
            triage_api.knowledge_for(request),
            lang=lang,
            source="form",
            review_threshold=settings.review_threshold,
        )
    except InputError as exc:
        return _triage_page(request, user, lang, form, error=_input_error(exc), status_code=422)
    auditor.record(
        "triage.assess",
        "Triage/adhoc",
        {"level": result.level, "care": result.care, "pathway": result.pathway, "via": "ui"},
    )
    return _triage_page(request, user, lang, form, result=result.to_dict())


# -- prescription review -----------------------------------------------------------------------

RX_EXAMPLE: dict[str, Any] = {
    "patient": {
        "age_years": 68,
        "sex": "male",
        "weight_kg": 60,
        "allergies": ["青霉素"],
        "diagnoses": ["社区获得性肺炎", "心房颤动"],
        "labs": {"creatinine_umol_l": 180},
    },
    "department": "呼吸内科",
    "items": [
        {
            "drug": "阿莫西林胶囊",
            "dose": 0.5,
            "unit": "g",
            "route": "po",
            "frequency": "tid",
            "days": 5,
        },
        {"drug": "华法林钠片", "dose": 3, "unit": "mg", "route": "po", "frequency": "qd"},
        {"drug": "布洛芬缓释胶囊", "dose": 0.3, "unit": "g", "route": "po", "frequency": "bid"},
    ],
}


def _rx_worklist(
    request: Request, session: Session, lang: str, settings: Settings, patient_id: int | None
) -> list[dict[str, Any]]:
    """Review each encounter's medication requests (latest encounters first, capped)."""
    query = (
        select(m.Encounter)
        .where(m.Encounter.id.in_(select(m.MedicationRequest.encounter_id)))
        .order_by(m.Encounter.admit_time.desc(), m.Encounter.id.desc())
        .limit(RX_LIST_CAP)
    )
    if patient_id is not None:
        query = query.where(m.Encounter.patient_id == patient_id)
    knowledge = rx_api.knowledge_for(request)
    rows: list[dict[str, Any]] = []
    for stored in rx_store.stored_prescriptions(session, list(session.scalars(query))):
        encounter, prescription = stored.encounter, stored.document
        row: dict[str, Any] = {
            "encounter": encounter,
            "patient": stored.patient,
            "medications": stored.requests,
            "verdict": None,
            "findings": [],
            "error": None,
        }
        try:
            result = review(
                prescription,
                knowledge,
                lang=lang,
                source=f"Encounter/{encounter.id}",
                review_threshold=settings.review_threshold,
            )
        except InputError as exc:
            row["error"] = _input_error(exc)
        else:
            row["verdict"] = result.verdict
            row["findings"] = [f.to_dict() for f in result.findings]
        rows.append(row)
    rows.sort(
        key=lambda r: (
            -(3 if r["error"] else VERDICT_RANK.get(r["verdict"] or "", 0)),
            -max((SEVERITY_RANK.get(f["severity"], 0) for f in r["findings"]), default=-1),
            -len(r["findings"]),
        )
    )
    return rows


def _rx_page(
    request: Request,
    session: Session,
    user: Principal,
    lang: Lang,
    settings: Settings,
    *,
    patient_id: int | None,
    prescription_text: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = _rx_worklist(request, session, lang, settings, patient_id)
    audit_read(
        request,
        user,
        "rx.worklist",
        f"Patient/{patient_id}" if patient_id is not None else "MedicationRequest",
        {
            "encounters": [r["encounter"].id for r in rows],
            "patient_ids": sorted({r["patient"].id for r in rows}),
        },
    )
    return render(
        request,
        "workbench/rx.html",
        {
            "rows": rows,
            "patient_id": patient_id,
            "prescription_text": prescription_text,
            "result": result,
            "error": error,
            "cap": RX_LIST_CAP,
        },
        lang=lang,
        user=user,
        status_code=status_code,
    )


def _example_prescription() -> str:
    return json.dumps(RX_EXAMPLE, ensure_ascii=False, indent=2)


@router.get("/rx")
def rx_page(
    request: Request,
    user: RxUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
    patient: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """Stored prescriptions per encounter, reviewed, most severe first; plus a free-form review."""
    return _rx_page(
        request,
        session,
        user,
        lang,
        settings,
        patient_id=patient,
        prescription_text=_example_prescription(),
    )


@router.post("/rx/review")
def rx_review(
    request: Request,
    user: RxUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
    prescription: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """Review a prescription pasted as JSON (DESIGN.md §3 or a FHIR R4 Bundle)."""
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        try:
            document = json.loads(prescription)
        except json.JSONDecodeError as exc:
            problem = t("error.invalid_json", lang, problem=exc)
            raise InputError("form", "prescription", problem) from None
        started = time.perf_counter()
        reviewed = review(
            document,
            rx_api.knowledge_for(request),
            lang=lang,
            source="form",
            review_threshold=settings.review_threshold,
        )
        result = reviewed.to_dict(time.perf_counter() - started)
        # Its own short audit transaction: the page then reads the worklist (see ReadAuditor).
        audit_read(
            request,
            user,
            "rx.review",
            "Prescription/adhoc",
            {"verdict": reviewed.verdict, "findings": len(reviewed.findings), "via": "ui"},
        )
    except InputError as exc:
        error = _input_error(exc)
    return _rx_page(
        request,
        session,
        user,
        lang,
        settings,
        patient_id=None,
        prescription_text=prescription,
        result=result,
        error=error,
        status_code=422 if error else 200,
    )


# -- EMR quality control ----------------------------------------------------------------------


def _qc_check(
    request: Request, session: Session, encounter: m.Encounter, lang: str, settings: Settings
) -> dict[str, Any]:
    from medbrain.store import qc_workflow

    # Hospital rules (the /qc/rules editor) and the front page's ICD-10 codes count here too.
    knowledge = qc_api.effective_knowledge_for(request, session)
    stay = qc_workflow.stay_input(session, encounter, qc_workflow.zone_of(settings.timezone))
    document: dict[str, Any] = {"documents": stay.documents, "meta": stay.meta}
    if not document["documents"]:
        raise InputError(f"Encounter/{encounter.id}", "documents", t("qc.no_documents", lang))
    record = record_from_mapping(document, f"Encounter/{encounter.id}", knowledge.vocabulary)
    stage = "final" if encounter.discharge_time is not None else "realtime"
    report = check_record(
        record, knowledge, stage=stage, lang=lang, review_threshold=settings.review_threshold
    )
    return report.to_dict()


def _qc_notices(session: Session, encounter_id: int) -> list[dict[str, Any]]:
    """The stay's QC notices (issue 7 closed loop) with their state at this moment."""
    from medbrain.store import qc_workflow

    now = datetime.now(UTC)
    return [
        {"n": n, "state": qc_workflow.notice_state(n, now)}
        for n in qc_workflow.list_notices(session, encounter_id=encounter_id)
    ]


def _inpatient_encounters(session: Session, limit: int) -> list[tuple[m.Encounter, m.Patient]]:
    rows = session.execute(
        select(m.Encounter, m.Patient)
        .join(m.Patient, m.Patient.id == m.Encounter.patient_id)
        .where(m.Encounter.kind == "inpatient")
        .order_by(m.Encounter.admit_time.desc(), m.Encounter.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


@router.get("/qc")
def qc_list(
    request: Request,
    user: QCUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Recent inpatient stays with their QC score (computed now, at most 30 records)."""
    rows: list[dict[str, Any]] = []
    for encounter, patient in _inpatient_encounters(session, QC_LIST_CAP):
        row: dict[str, Any] = {"encounter": encounter, "patient": patient, "report": None}
        try:
            row["report"] = _qc_check(request, session, encounter, lang, settings)
        except InputError as exc:
            row["error"] = _input_error(exc)
        rows.append(row)
    audit_read(
        request,
        user,
        "qc.list",
        "Encounter",
        {
            "encounters": [r["encounter"].id for r in rows],
            "patient_ids": sorted({r["patient"].id for r in rows}),
        },
    )
    return render(
        request, "workbench/qc_list.html", {"rows": rows, "cap": QC_LIST_CAP}, lang=lang, user=user
    )


@router.get("/qc/go")
def qc_go(
    request: Request,
    user: QCUser,
    encounter: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> Response:
    """The record picker's target (works without JavaScript)."""
    return redirect(request, f"/qc/encounters/{encounter}")


@router.get("/qc/encounters/{encounter_id}")
def qc_encounter(
    request: Request,
    encounter_id: RowId,
    user: QCUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """The QC report of one inpatient stay: score, grade, defects quoting their span."""
    encounter = session.get(m.Encounter, encounter_id)
    if encounter is None:
        raise NotFoundError(f"Encounter/{encounter_id}")
    patient = session.get(m.Patient, encounter.patient_id)
    report: dict[str, Any] | None = None
    error: str | None = None
    try:
        report = _qc_check(request, session, encounter, lang, settings)
    except InputError as exc:
        error = _input_error(exc)
    audit_read(
        request,
        user,
        "qc.read",
        f"Encounter/{encounter_id}",
        {"patient": f"Patient/{encounter.patient_id}", "score": (report or {}).get("score")},
    )
    return render(
        request,
        "workbench/qc_record.html",
        {
            "encounter": encounter,
            "patient": patient,
            "report": report,
            "error": error,
            "others": _inpatient_encounters(session, QC_LIST_CAP),
            "notices": _qc_notices(session, encounter_id),
        },
        lang=lang,
        user=user,
    )


# -- patient page panels: alerts and note drafts ------------------------------------------------


def _bundle(session: Session, patient_id: int) -> dict[str, Any]:
    return patient_everything(session, patient_id)


@router.get("/patients/{patient_id}/alerts-panel")
def alerts_panel(
    request: Request,
    patient_id: RowId,
    user: AlertsUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Clinical alerts and scores on the patient's whole record (HTMX fragment or a page)."""
    ensure_patient_visible(user, patient_id, lang)
    bundle = _bundle(session, patient_id)
    report: dict[str, Any] | None = None
    error: str | None = None
    try:
        report = evaluate_bundle(
            bundle,
            alerts_api.knowledge_for(request),
            lang=lang,
            source=f"Patient/{patient_id}",
            review_threshold=settings.review_threshold,
        ).to_dict()
    except InputError as exc:
        error = _input_error(exc)
    audit_read(
        request,
        user,
        "alerts.evaluate",
        f"Patient/{patient_id}",
        {"via": "ui", "count": len(report["alerts"]) if report else 0},
    )
    return render(
        request,
        "workbench/alerts_panel.html",
        {"patient_id": patient_id, "report": report, "error": error},
        lang=lang,
        user=user,
    )


@router.get("/patients/{patient_id}/note-draft")
def note_draft(
    request: Request,
    patient_id: RowId,
    user: NotesUser,
    session: ReadSessionDep,
    lang: LangDep,
    note_type: Annotated[str, Query(alias="type", max_length=32)] = "admission",
) -> Response:
    """The template draft of a note (admission, first course, progress, discharge), cited."""
    ensure_patient_visible(user, patient_id, lang)
    draft: dict[str, Any] | None = None
    error: str | None = None
    try:
        if note_type not in NOTE_TYPES:
            raise InputError(
                "query", "type", f"must be one of {', '.join(NOTE_TYPES)}, got {note_type!r}"
            )
        record = read_note_record(_bundle(session, patient_id), source=f"Patient/{patient_id}")
        draft = draft_note(record, note_type, lang).to_dict()
    except InputError as exc:
        error = _input_error(exc)
    audit_read(
        request, user, "notes.draft", f"Patient/{patient_id}", {"type": note_type, "via": "ui"}
    )
    return render(
        request,
        "workbench/note_draft.html",
        {
            "patient_id": patient_id,
            "draft": draft,
            "error": error,
            "note_type": note_type,
            "note_types": NOTE_TYPES,
        },
        lang=lang,
        user=user,
        status_code=422 if error else 200,
    )


# -- rare diseases ----------------------------------------------------------------------------

RARE_EXAMPLE_TEXT = "左心室肥厚,腕管综合征,蛋白尿,周围神经病"
RARE_TOP = 10


def _split_ids(raw: str) -> list[str]:
    return [p for p in raw.replace(",", " ").replace(",", " ").replace(";", " ").split() if p]


def screen_after_import(
    request: Request, session: Session, user: Principal, result: Any, bundle: Any
) -> dict[str, object]:
    """The FHIR import hook: screen the patients with new lab results for rare diseases; what
    the screen raises goes to the doctor's inbox (:mod:`medbrain.rare.screen`)."""
    from medbrain.store.alert_tracking import affected_patients
    from medbrain.store.rare_labs import screen_import

    patients = affected_patients(session, result.patient_ids, bundle)
    if not patients:
        return {"patients": 0, "raised": [], "skipped": {}}
    return screen_import(
        session,
        patients,
        load_index(),
        default_rare_knowledge(),
        now=datetime.now(UTC),
        origin=f"fhir.import {result.bundle}",
        who=user.username,
        role=user.role,
        lang=request.app.state.settings.default_lang,
    )


def _rare_url(form: dict[str, Any], field: str, hpo: str) -> str:
    """The rare page's address for the same case with ``hpo`` added to ``field``."""
    query = {k: v for k, v in form.items() if v}
    query[field] = f"{query.get(field, '')} {hpo}".strip()
    return "/rare?" + urlencode(query)


@router.get("/rare")
def rare_page(
    request: Request,
    user: RareUser,
    lang: LangDep,
    session: ReadSessionDep,
    hpo: Annotated[str, Query(max_length=2000)] = "",
    excluded: Annotated[str, Query(max_length=2000)] = "",
    text: Annotated[str, Query(max_length=4000)] = "",
    example: Annotated[str, Query(max_length=8)] = "",
    patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """Rank rare diseases for HPO ids (observed and excluded) and/or free text; the ontology
    loads once per process.

    With ``patient_id`` the patient's own lab results and diagnoses join the case, as in the
    record screen (issue 10).
    Each feature suggested to look for next links to the same ranking with the feature
    added as present or as absent.
    """
    if example:
        text = RARE_EXAMPLE_TEXT
    result: dict[str, Any] | None = None
    error: str | None = None
    loaded = load_index.cache_info().currsize > 0
    names: dict[str, str] = {}
    if hpo.strip() or text.strip() or patient_id:
        case: dict[str, Any] = {}
        if hpo.strip():
            case["hpo"] = _split_ids(hpo)
        if excluded.strip():
            case["excluded_hpo"] = _split_ids(excluded)
        if text.strip():
            case["text"] = text
        if patient_id:
            from medbrain.store.rare_labs import screen_fields

            ensure_patient_visible(user, patient_id, lang)
            record = screen_fields(session, patient_id, datetime.now(UTC))
            if "text" in record and "text" in case:  # typed findings, then the diagnoses
                record["text"] = f"{case['text']}。{record['text']}"
            case.update(record)
            audit_read(request, user, "rare.patient_labs", f"Patient/{patient_id}", {"via": "ui"})
        try:
            index = load_index()
            ranked = rank_document(
                case, index, default_rare_knowledge(), top=RARE_TOP, lang=lang, source="form"
            )
            result = ranked if isinstance(ranked, dict) else None
            if result is not None:
                used = {h for c in result["candidates"] for h in c["matched_hpo"]}
                used |= set(result["hpo_used"])
                used |= set(result["excluded_hpo_used"])
                names = {h: index.names.get(int(h[3:]), h) for h in used if h[3:].isdigit()}
                form = {"hpo": hpo, "excluded": excluded, "text": text, "patient_id": patient_id}
                for suggestion in result["suggested_hpo"]:
                    suggestion["present_url"] = _rare_url(form, "hpo", suggestion["hpo"])
                    suggestion["absent_url"] = _rare_url(form, "excluded", suggestion["hpo"])
        except InputError as exc:
            error = _input_error(exc)
        except BackendUnavailable as exc:
            error = str(exc)
    return render(
        request,
        "workbench/rare.html",
        {
            "hpo": hpo,
            "excluded": excluded,
            "text": text,
            "patient_id": patient_id,
            "result": result,
            "error": error,
            "loaded": loaded,
            "names": names,
        },
        lang=lang,
        user=user,
        status_code=422 if error else 200,
    )
