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
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from medbrain.alerts import evaluate_bundle
from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadSessionDep,
    RowId,
    SettingsDep,
    ensure_patient_visible,
    require_role,
)
from medbrain.api.problems import HTML_ERRORS_STATE
from medbrain.api.routers import alerts as alerts_api
from medbrain.api.routers import qc as qc_api
from medbrain.api.routers import rx as rx_api
from medbrain.api.routers import triage as triage_api
from medbrain.api.routers.ui import UiUser, audit_read, redirect, render
from medbrain.core.config import Settings
from medbrain.core.errors import BackendUnavailable, InputError, NotFoundError
from medbrain.core.i18n import Lang, t
from medbrain.interop.fhir.exporter import patient_everything
from medbrain.notes import NOTE_TYPES, draft_note, read_note_record
from medbrain.qc import check_record
from medbrain.qc.parse import DOCUMENT_TYPES, record_from_mapping
from medbrain.rare import default_rare_knowledge, load_index, rank_document
from medbrain.rx import review
from medbrain.store import models as m
from medbrain.store.patients import age_on
from medbrain.triage import assess_document


def _mark_html(request: Request) -> None:
    """Errors raised by these routes are rendered as pages (see ``problems._respond``)."""
    setattr(request.state, HTML_ERRORS_STATE, True)


router = APIRouter(include_in_schema=False, dependencies=[Depends(_mark_html)])


def _ui_role(*roles: str) -> Callable[..., Principal]:
    """:func:`require_role` on the UI's user: no session → login page; wrong role → 403 page."""
    check = require_role(*roles)

    def dependency(user: UiUser, lang: LangDep) -> Principal:
        return check(user, lang)

    return dependency


TriageUser = Annotated[Principal, Depends(_ui_role("nurse", "doctor", "admin"))]
RxUser = Annotated[Principal, Depends(_ui_role("pharmacist", "doctor", "admin"))]
QCUser = Annotated[Principal, Depends(_ui_role("qc_officer", "doctor", "admin"))]
AlertsUser = Annotated[Principal, Depends(_ui_role("doctor", "nurse", "admin"))]
NotesUser = Annotated[Principal, Depends(_ui_role("doctor", "admin"))]
RareUser = Annotated[Principal, Depends(_ui_role("doctor", "admin"))]

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

#: LOINC codes of the labs the prescription checks read (DESIGN.md §3 ``patient.labs``).
RX_LABS = {
    "14682-9": "creatinine_umol_l",
    "1742-6": "alt_u_l",
    "1920-8": "ast_u_l",
    "2823-3": "potassium_mmol_l",
}
WEIGHT_LOINC = ("29463-7", "3141-9")
HEIGHT_LOINC = "8302-2"


def _latest_values(session: Session, patient_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Per patient, the latest numeric value of each lab or body measure the review uses."""
    codes = [*RX_LABS, *WEIGHT_LOINC, HEIGHT_LOINC, "2160-0"]
    rows = session.execute(
        select(
            m.Observation.patient_id,
            m.Observation.code,
            m.Observation.value_num,
            m.Observation.unit,
        )
        .where(m.Observation.patient_id.in_(patient_ids), m.Observation.code.in_(codes))
        .where(m.Observation.value_num.is_not(None))
        .order_by(m.Observation.effective_at)
    )
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for patient_id, code, value, unit in rows:
        if value is None:
            continue
        if code in WEIGHT_LOINC:
            out[patient_id]["weight_kg"] = value
        elif code == HEIGHT_LOINC:
            out[patient_id]["height_cm"] = value
        elif code == "2160-0":  # creatinine by mass: mg/dL → µmol/L (× 88.42)
            umol = value * 88.42 if unit and "mg" in unit.lower() else value
            out[patient_id]["creatinine_umol_l"] = round(umol, 1)
        else:
            out[patient_id][RX_LABS[code]] = value
    return out


def _prescription_for(
    encounter: m.Encounter,
    patient: m.Patient,
    requests: Sequence[m.MedicationRequest],
    allergies: Sequence[str],
    diagnoses: Sequence[str],
    values: dict[str, float],
) -> dict[str, Any]:
    """The DESIGN.md §3 prescription JSON of one encounter, from what the store holds."""
    on = (encounter.admit_time or datetime.now(UTC)).date()
    labs = {k: v for k, v in values.items() if k not in ("weight_kg", "height_cm")}
    patient_doc: dict[str, Any] = {
        "age_years": age_on(patient.birth_date, on),
        "sex": patient.sex if patient.sex in ("male", "female") else None,
        "weight_kg": values.get("weight_kg"),
        "height_cm": values.get("height_cm"),
        "allergies": list(allergies),
        "diagnoses": list(diagnoses),
        "labs": labs,
    }
    items = [
        {
            k: v
            for k, v in (
                ("drug", r.drug),
                ("dose", r.dose_value),
                ("unit", r.dose_unit),
                ("route", r.route),
                ("frequency", r.frequency),
                ("days", r.days),
                ("quantity", r.quantity),
            )
            if v is not None
        }
        for r in requests
    ]
    setting = encounter.kind if encounter.kind in ("outpatient", "emergency", "inpatient") else None
    document: dict[str, Any] = {
        "patient": {k: v for k, v in patient_doc.items() if v is not None},
        "department": encounter.department,
        "items": items,
    }
    if setting:
        document["setting"] = setting
    return document


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
    encounters = list(session.scalars(query))
    encounter_ids = [e.id for e in encounters]
    patient_ids = sorted({e.patient_id for e in encounters})
    if not encounters:
        return []
    patients = {
        p.id: p for p in session.scalars(select(m.Patient).where(m.Patient.id.in_(patient_ids)))
    }
    requests: dict[int, list[m.MedicationRequest]] = defaultdict(list)
    for med in session.scalars(
        select(m.MedicationRequest)
        .where(m.MedicationRequest.encounter_id.in_(encounter_ids))
        .order_by(m.MedicationRequest.authored_at, m.MedicationRequest.id)
    ):
        if med.encounter_id is not None and med.status not in ("cancelled", "entered-in-error"):
            requests[med.encounter_id].append(med)
    allergies: dict[int, list[str]] = defaultdict(list)
    for a in session.scalars(
        select(m.AllergyIntolerance).where(m.AllergyIntolerance.patient_id.in_(patient_ids))
    ):
        allergies[a.patient_id].append(a.substance)
    conditions: dict[int, list[m.Condition]] = defaultdict(list)
    for c in session.scalars(select(m.Condition).where(m.Condition.patient_id.in_(patient_ids))):
        if c.clinical_status in (None, "active", "recurrence", "relapse"):
            conditions[c.patient_id].append(c)
    values = _latest_values(session, patient_ids)
    knowledge = rx_api.knowledge_for(request)
    rows: list[dict[str, Any]] = []
    for encounter in encounters:
        meds = requests.get(encounter.id, [])
        if not meds:
            continue
        patient = patients[encounter.patient_id]
        prescription = _prescription_for(
            encounter,
            patient,
            meds,
            allergies.get(patient.id, []),
            [  # the patient's standing diagnoses and this encounter's
                c.text
                for c in conditions.get(patient.id, [])
                if c.encounter_id in (None, encounter.id)
            ],
            values.get(patient.id, {}),
        )
        row: dict[str, Any] = {
            "encounter": encounter,
            "patient": patient,
            "medications": meds,
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

#: Store document types written as notes inside the QC ``course`` document (首次病程记录,
#: 日常病程记录, 上级医师查房记录, 术后首次病程记录, 抢救记录), as :mod:`medbrain.qc.fhir` maps them.
COURSE_TYPES = frozenset({"first_course", "course", "senior_round", "post_op", "rescue"})


def _qc_type(doc_type: str) -> str | None:
    if doc_type in COURSE_TYPES:
        return "course"
    return doc_type if doc_type in DOCUMENT_TYPES else None


def _qc_input(session: Session, encounter: m.Encounter, settings: Settings) -> dict[str, Any]:
    """``{"documents": {type: text}, "meta": {...}}`` from the latest version of each document."""
    patient = session.get(m.Patient, encounter.patient_id)
    documents = session.scalars(
        select(m.Document)
        .where(m.Document.encounter_id == encounter.id)
        .options(selectinload(m.Document.versions))
    )
    parts: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    for doc in documents:
        qc_type = _qc_type(doc.doc_type)
        if qc_type is None or not doc.versions:
            continue
        latest = max(doc.versions, key=lambda v: v.version)
        when = latest.authored_at or doc.created_at
        parts[qc_type].append((when, doc.id, latest.text))
    texts = {
        kind: "\n\n".join(text for _, _, text in sorted(items)) for kind, items in parts.items()
    }
    meta: dict[str, Any] = {
        "admit_time": _local_text(encounter.admit_time, settings),
        "discharge_time": _local_text(encounter.discharge_time, settings),
    }
    if patient is not None:
        if patient.sex in ("male", "female"):
            meta["sex"] = patient.sex
        on = (encounter.admit_time or datetime.now(UTC)).date()
        age = age_on(patient.birth_date, on)
        if age is not None:
            meta["age_years"] = age
    return {"documents": texts, "meta": {k: v for k, v in meta.items() if v is not None}}


def _qc_check(
    request: Request, session: Session, encounter: m.Encounter, lang: str, settings: Settings
) -> dict[str, Any]:
    knowledge = qc_api.knowledge_for(request)
    document = _qc_input(session, encounter, settings)
    if not document["documents"]:
        raise InputError(f"Encounter/{encounter.id}", "documents", t("qc.no_documents", lang))
    record = record_from_mapping(document, f"Encounter/{encounter.id}", knowledge.vocabulary)
    stage = "final" if encounter.discharge_time is not None else "realtime"
    report = check_record(
        record, knowledge, stage=stage, lang=lang, review_threshold=settings.review_threshold
    )
    return report.to_dict()


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


@router.get("/rare")
def rare_page(
    request: Request,
    user: RareUser,
    lang: LangDep,
    hpo: Annotated[str, Query(max_length=2000)] = "",
    text: Annotated[str, Query(max_length=4000)] = "",
    example: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """Rank rare diseases for HPO ids and/or free text; the ontology loads once per process."""
    if example:
        text = RARE_EXAMPLE_TEXT
    result: dict[str, Any] | None = None
    error: str | None = None
    loaded = load_index.cache_info().currsize > 0
    names: dict[str, str] = {}
    if hpo.strip() or text.strip():
        case: dict[str, Any] = {}
        if hpo.strip():
            case["hpo"] = _split_ids(hpo)
        if text.strip():
            case["text"] = text
        try:
            index = load_index()
            ranked = rank_document(
                case, index, default_rare_knowledge(), top=RARE_TOP, lang=lang, source="form"
            )
            result = ranked if isinstance(ranked, dict) else None
            if result is not None:
                used = {h for c in result["candidates"] for h in c["matched_hpo"]}
                used |= set(result["hpo_used"])
                names = {h: index.names.get(int(h[3:]), h) for h in used if h[3:].isdigit()}
        except InputError as exc:
            error = _input_error(exc)
        except BackendUnavailable as exc:
            error = str(exc)
    return render(
        request,
        "workbench/rare.html",
        {
            "hpo": hpo,
            "text": text,
            "result": result,
            "error": error,
            "loaded": loaded,
            "names": names,
        },
        lang=lang,
        user=user,
        status_code=422 if error else 200,
    )
