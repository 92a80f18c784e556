"""The emergency department board and its pathway time stamps (nurse, doctor, admin).

Pages (HTMX, cookie login, CSRF):

=======================================  ================================================
``GET /ed``                              the live board, with a form to register an arrival
``GET /ed/board``                        the board fragment, polled every 30 s (audited
                                         once per user per 10 min or when the visits change)
``POST /ed/visits``                      register and triage an arrival (form)
``POST /ed/visits/{id}/steps``           stamp a step now (door, triage, doctor, ECG, CT…)
``POST /ed/visits/{id}/retriage``        the nurse's new level, with a reason
=======================================  ================================================

REST (``/api/v1/ed``): ``POST /visits``, ``GET /board``, ``GET /visits/{id}``,
``POST /visits/{id}/steps``, ``POST /visits/{id}/vitals``, ``POST /visits/{id}/retriage`` and
``GET /visits/{id}/timeline`` (door-to-step minutes from the stored times, by the same
:func:`medbrain.triage.pathway_timeline` as ``POST /api/v1/triage/timeline``).

The router holds no clinical logic: the triage engine levels an arrival, the pure board engine
(:mod:`medbrain.triage.ed`) computes waits, breaches and re-triage prompts, and
:mod:`medbrain.store.triage_ed` stores the times. Every state change is audited in the same
transaction; every board read is audited (the polled fragment once per user per 10 minutes or
when the visits shown change, :mod:`medbrain.api.poll_audit`).

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (§1.3 响应时限, §1.4 候诊时间).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    RowId,
    SessionDep,
    SettingsDep,
    require_role,
)
from medbrain.api.poll_audit import audit_poll
from medbrain.api.routers import triage as triage_api
from medbrain.api.routers.ui import page_router, redirect, render, ui_role
from medbrain.core.config import Settings
from medbrain.core.errors import InputError
from medbrain.core.i18n import Lang
from medbrain.store import triage_ed as store
from medbrain.triage import apply_decision, assess_document, pathway_timeline
from medbrain.triage.ed import (
    BoardRow,
    EdKnowledge,
    board,
    board_row,
    default_ed_knowledge,
)

ED_ROLES = ("nurse", "doctor", "admin")
POLL_SECONDS = 30
FORM_VITALS = ("hr", "sbp", "dbp", "rr", "spo2", "temp_c", "gcs")
MAX_LABEL = 64

api = APIRouter(prefix="/api/v1/ed", tags=["ed"])

EdApiUser = Annotated[Principal, Depends(require_role(*ED_ROLES))]


pages = page_router()


EdPageUser = Annotated[Principal, Depends(ui_role(*ED_ROLES))]


def ed_knowledge_for(request: Request) -> EdKnowledge:
    configured = getattr(request.app.state, "ed_knowledge", None)
    return configured if isinstance(configured, EdKnowledge) else default_ed_knowledge()


def _now() -> datetime:
    return datetime.now(UTC)


def _time(field: str, raw: Any, default: datetime) -> datetime:
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise InputError("body", field, f"must be an ISO 8601 time, got {raw!r}")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError("body", field, f"is not an ISO 8601 time: {raw!r}") from None
    if value.utcoffset() is None:
        raise InputError("body", field, "needs a time zone (e.g. 2026-11-23T08:00:00+08:00)")
    return value


# --------------------------------------------------------------------------- shared actions


def _register(
    request: Request,
    session: Any,
    auditor: Any,
    user: Principal,
    lang: Lang,
    settings: Settings,
    body: dict[str, Any],
    now: datetime,
) -> BoardRow:
    visit = body.get("visit")
    if not isinstance(visit, dict):
        raise InputError("body", "visit", "must be the visit object to triage (DESIGN.md §3)")
    knowledge = triage_api.knowledge_for(request)
    suggested = assess_document(
        visit, knowledge, lang=lang, source="body.visit", review_threshold=settings.review_threshold
    )
    final_level = body.get("final_level", suggested.level)
    decided = apply_decision(
        suggested, knowledge, final_level, body.get("reason"), lang=lang, source="body"
    )
    label = body.get("label")
    if label is None:
        label = str(visit.get("complaint", ""))[:MAX_LABEL]
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
        raise InputError("body", "label", f"must be 1-{MAX_LABEL} characters")
    patient_id = body.get("patient_id")
    if patient_id is not None and (isinstance(patient_id, bool) or not isinstance(patient_id, int)):
        raise InputError("body", "patient_id", "must be a patient id (a whole number)")
    door_at = _time("door_at", body.get("door_at"), now)
    triage_at = _time("triage_at", body.get("triage_at"), now)
    if door_at > now + store.FUTURE_TOLERANCE:
        raise InputError("body", "door_at", "is in the future")
    row = store.create_visit(
        session,
        visit=visit,
        result=decided,
        suggested_level=suggested.level,
        label=label.strip(),
        door_at=door_at,
        triage_at=triage_at,
        by=user.username,
        patient_id=patient_id,
    )
    action = dict(decided.decision or {}).get("action", "confirmed")
    auditor.record(
        "ed.visit.create",
        f"EdVisit/{row.id}",
        {
            "level": decided.level,
            "suggested_level": suggested.level,
            "decision": action,
            "reason": dict(decided.decision or {}).get("reason"),
            "pathway": decided.pathway,
            "patient_id": patient_id,
        },
    )
    return board_row(store.state_of(row), now, ed_knowledge_for(request), knowledge, lang=lang)


def _record_step(
    request: Request,
    session: Any,
    auditor: Any,
    user: Principal,
    visit_id: int,
    step: str,
    at: datetime,
    disposition: str | None,
    now: datetime,
) -> None:
    store.record_step(
        session,
        visit_id,
        step,
        at,
        by=user.username,
        now=now,
        ed=ed_knowledge_for(request),
        triage=triage_api.knowledge_for(request),
        disposition=disposition,
    )
    detail: dict[str, Any] = {"step": step, "at": at.isoformat()}
    if disposition:
        detail["disposition"] = disposition
    auditor.record("ed.step.record", f"EdVisit/{visit_id}", detail)


def _retriage(
    request: Request,
    session: Any,
    auditor: Any,
    user: Principal,
    lang: Lang,
    visit_id: int,
    final_level: Any,
    reason: Any,
    now: datetime,
) -> None:
    row = store.get_visit(session, visit_id)
    knowledge = triage_api.knowledge_for(request)
    current = dict(row.visit or {})
    latest = [e for e in row.events if e.step == "vitals"]
    if latest:
        current["vitals"] = max(latest, key=lambda e: (e.at, e.seq)).detail.get("vitals", {})
    suggested = assess_document(current, knowledge, lang=lang, source="stored visit")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("body", "reason", "is required to re-triage")
    decided = apply_decision(suggested, knowledge, final_level, reason, lang=lang, source="body")
    previous = row.level
    store.retriage(
        session, visit_id, result=decided, reason=reason.strip(), at=now, by=user.username
    )
    auditor.record(
        "ed.retriage",
        f"EdVisit/{visit_id}",
        {"from": previous, "to": decided.level, "suggested": suggested.level, "reason": reason},
    )


def _board(
    request: Request, session: Any, lang: Lang, now: datetime
) -> tuple[tuple[BoardRow, ...], Any]:
    states = store.board_states(session, now)
    return board(states, now, ed_knowledge_for(request), triage_api.knowledge_for(request), lang)


# --------------------------------------------------------------------------- REST


@api.post(
    "/visits",
    status_code=201,
    responses={422: {"description": "Invalid visit, level, reason or time; `field` names it"}},
)
def create_visit(
    request: Request,
    body: Annotated[
        dict[str, Any],
        Body(
            description="`visit` (DESIGN.md §3), optional `label`, `patient_id`, `door_at`, "
            "`triage_at` (ISO 8601 with zone; default now), `final_level` and `reason` "
            "(required when the level differs from the suggestion)"
        ),
    ],
    user: EdApiUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Register an arrival on the board: triaged by the engine, level decided by the nurse."""
    row = _register(request, session, auditor, user, lang, settings, body, _now())
    return row.to_dict()


@api.get("/board")
def get_board(
    request: Request,
    user: EdApiUser,
    session: ReadSessionDep,
    reads: ReadAuditDep,
    lang: LangDep,
    now: Annotated[str | None, Query(description="ISO 8601 time to evaluate at")] = None,
) -> dict[str, Any]:
    """Patients in the department by level, with waits, breaches, prompts and the load."""
    at = _time("now", now, _now())
    rows, load = _board(request, session, lang, at)
    reads.record("ed.board.read", "EdBoard", {"visits": len(rows), "via": "api"})
    return {"now": at.isoformat(), "load": load.to_dict(), "rows": [r.to_dict() for r in rows]}


@api.get("/visits/{visit_id}")
def get_visit(
    request: Request,
    visit_id: RowId,
    user: EdApiUser,
    session: ReadSessionDep,
    reads: ReadAuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    row = store.get_visit(session, visit_id)
    reads.record("ed.visit.read", f"EdVisit/{visit_id}", {"via": "api"})
    result = board_row(
        store.state_of(row),
        _now(),
        ed_knowledge_for(request),
        triage_api.knowledge_for(request),
        lang=lang,
    ).to_dict()
    result["events"] = [
        {
            "step": e.step,
            "seq": e.seq,
            "at": e.at.isoformat(),
            "recorded_by": e.recorded_by,
            "detail": e.detail,
        }
        for e in row.events
    ]
    return result


@api.get("/visits/{visit_id}/timeline")
def visit_timeline(
    request: Request,
    visit_id: RowId,
    user: EdApiUser,
    session: ReadSessionDep,
    reads: ReadAuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Door-to-step minutes of the visit's pathway, from the stored times, against targets."""
    row = store.get_visit(session, visit_id)
    reads.record("ed.visit.read", f"EdVisit/{visit_id}", {"via": "api", "view": "timeline"})
    if row.pathway is None:
        return {"visit_id": visit_id, "pathway": None, "door": row.door_at.isoformat(), "steps": []}
    state = store.state_of(row)
    knowledge = triage_api.knowledge_for(request)
    spec = knowledge.pathways[row.pathway]
    known = {str(s["id"]) for s in spec.get("steps") or []}
    steps = pathway_timeline(
        row.pathway,
        row.door_at,
        {k: v for k, v in state.events.items() if k in known},
        knowledge,
        lang=lang,
        now=_now() if row.status != "departed" else None,
        source=f"EdVisit/{visit_id}",
    )
    return {
        "visit_id": visit_id,
        "pathway": row.pathway,
        "door": row.door_at.isoformat(),
        "steps": [s.to_dict() for s in steps],
    }


@api.post(
    "/visits/{visit_id}/steps",
    status_code=201,
    responses={409: {"description": "Step already recorded"}, 422: {"description": "Bad step"}},
)
def post_step(
    request: Request,
    visit_id: RowId,
    body: Annotated[
        dict[str, Any],
        Body(
            description="`step`, optional `at` (ISO 8601 with zone; default now), "
            "`disposition` with the disposition step"
        ),
    ],
    user: EdApiUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Stamp one step (once per visit): triage, doctor, ECG, CT, lab, needle, disposition…"""
    now = _now()
    step = body.get("step")
    if not isinstance(step, str):
        raise InputError("body", "step", "is required (the step's id)")
    disposition = body.get("disposition")
    if disposition is not None and not isinstance(disposition, str):
        raise InputError("body", "disposition", "must be a disposition id")
    at = _time("at", body.get("at"), now)
    _record_step(request, session, auditor, user, visit_id, step, at, disposition, now)
    row = store.get_visit(session, visit_id)
    return board_row(
        store.state_of(row), now, ed_knowledge_for(request), triage_api.knowledge_for(request), lang
    ).to_dict()


@api.post("/visits/{visit_id}/vitals", status_code=201)
def post_vitals(
    request: Request,
    visit_id: RowId,
    body: Annotated[dict[str, Any], Body(description="`vitals` (as in the visit), optional `at`")],
    user: EdApiUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Re-measured vital signs while waiting; a worse level or NEWS2 prompts re-triage."""
    now = _now()
    vitals = body.get("vitals")
    if not isinstance(vitals, dict) or not vitals:
        raise InputError("body", "vitals", "must be an object of vital signs")
    row = store.get_visit(session, visit_id)
    visit = {**dict(row.visit or {}), "vitals": vitals}
    result = assess_document(visit, triage_api.knowledge_for(request), lang=lang, source="body")
    at = _time("at", body.get("at"), now)
    store.record_reassessment(
        session, visit_id, vitals=vitals, result=result, at=at, by=user.username, now=now
    )
    auditor.record(
        "ed.vitals.record",
        f"EdVisit/{visit_id}",
        {"level": result.level, "news2": result.news2, "at": at.isoformat()},
    )
    session.expire_all()
    row = store.get_visit(session, visit_id)
    return board_row(
        store.state_of(row), now, ed_knowledge_for(request), triage_api.knowledge_for(request), lang
    ).to_dict()


@api.post("/visits/{visit_id}/retriage")
def post_retriage(
    request: Request,
    visit_id: RowId,
    body: Annotated[dict[str, Any], Body(description="`final_level` 1-4 and `reason`")],
    user: EdApiUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    """The nurse re-triages (reason required); level, zone and maximum wait change, audited."""
    now = _now()
    _retriage(
        request,
        session,
        auditor,
        user,
        lang,
        visit_id,
        body.get("final_level"),
        body.get("reason"),
        now,
    )
    row = store.get_visit(session, visit_id)
    return board_row(
        store.state_of(row), now, ed_knowledge_for(request), triage_api.knowledge_for(request), lang
    ).to_dict()


# --------------------------------------------------------------------------- pages


def _zone(settings: Settings) -> ZoneInfo | None:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _view(rows: tuple[BoardRow, ...], settings: Settings) -> list[dict[str, Any]]:
    zone = _zone(settings)

    def hhmm(raw: str | None) -> str:
        if raw is None:
            return ""
        value = datetime.fromisoformat(raw)
        return value.astimezone(zone or UTC).strftime("%H:%M")

    out: list[dict[str, Any]] = []
    for row in rows:
        item = row.to_dict()
        item["door_local"] = hhmm(item["door_at"])
        for step in item["steps"]:
            step["at_local"] = hhmm(step["at"])
        item["pending"] = [s["step"] for s in item["steps"] if s["at"] is None]
        out.append(item)
    return out


def _board_context(
    request: Request, session: Any, lang: Lang, settings: Settings, now: datetime
) -> dict[str, Any]:
    rows, load = _board(request, session, lang, now)
    ed = ed_knowledge_for(request)
    return {
        "rows": _view(rows, settings),
        "load": load.to_dict(),
        "poll_seconds": POLL_SECONDS,
        "dispositions": {k: v[lang] for k, v in ed.dispositions.items()},
        "now_local": now.astimezone(_zone(settings) or UTC).strftime("%H:%M"),
    }


def _board_response(
    request: Request,
    user: Principal,
    session: Any,
    lang: Lang,
    settings: Settings,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = _board_context(request, session, lang, settings, _now())
    context["error"] = error
    return render(request, "ed/_board.html", context, lang=lang, user=user, status_code=status_code)


@pages.get("/ed")
def ed_page(
    request: Request,
    user: EdPageUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """The ED board: live by HTMX polling, with a form to register an arrival."""
    context = _board_context(request, session, lang, settings, _now())
    audit_poll(
        request,
        user,
        "ed.board.read",
        "EdBoard",
        {"visits": len(context["rows"]), "via": "page"},
        shown=_visit_ids(context),
        force=True,
    )
    context["vital_fields"] = FORM_VITALS
    context["error"] = request.query_params.get("error")
    return render(request, "ed/board.html", context, lang=lang, user=user)


@pages.get("/ed/board")
def ed_board_fragment(
    request: Request,
    user: EdPageUser,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """The board fragment the page polls: audited once per user per window, or when the visits
    shown change (:func:`medbrain.api.poll_audit.audit_poll`), not on every poll."""
    context = _board_context(request, session, lang, settings, _now())
    audit_poll(
        request,
        user,
        "ed.board.read",
        "EdBoard",
        {"visits": len(context["rows"]), "via": "poll"},
        shown=_visit_ids(context),
    )
    context["error"] = None
    return render(request, "ed/_board.html", context, lang=lang, user=user)


def _visit_ids(context: dict[str, Any]) -> list[object]:
    return [row["visit_id"] for row in context["rows"]]


def _form_number(raw: str) -> float | int | str:
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


@pages.post("/ed/visits")
async def ed_register(
    request: Request,
    user: EdPageUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Register an arrival from the board's form (the suggested level is confirmed)."""
    form = {k: v.strip()[:500] for k, v in (await request.form()).items() if isinstance(v, str)}
    visit: dict[str, Any] = {"complaint": form.get("complaint", "")}
    if form.get("age_years"):
        visit["age_years"] = _form_number(form["age_years"])
    if form.get("sex") in ("male", "female"):
        visit["sex"] = form["sex"]
    if form.get("arrival") in ("walk-in", "ambulance", "other"):
        visit["arrival"] = form["arrival"]
    vitals = {k: _form_number(form[k]) for k in FORM_VITALS if form.get(k)}
    if vitals:
        visit["vitals"] = vitals
    body: dict[str, Any] = {"visit": visit}
    if form.get("label"):
        body["label"] = form["label"]
    try:
        _register(request, session, auditor, user, lang, settings, body, _now())
    except InputError as exc:
        message = f"{exc.field}: {exc.problem}" if exc.field else exc.problem
        return _board_response(
            request, user, session, lang, settings, error=message, status_code=422
        )
    return redirect(request, "/ed")


@pages.post("/ed/visits/{visit_id}/steps")
async def ed_step(
    request: Request,
    visit_id: RowId,
    user: EdPageUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Stamp a step at the current time; HTMX gets the refreshed board fragment."""
    form = await request.form()
    step = form.get("step")
    disposition = form.get("disposition") or None
    now = _now()
    error: str | None = None
    try:
        if not isinstance(step, str) or not step:
            raise InputError("form", "step", "choose a step")
        _record_step(
            request,
            session,
            auditor,
            user,
            visit_id,
            step,
            now,
            disposition if isinstance(disposition, str) and step == "disposition" else None,
            now,
        )
    except InputError as exc:
        error = f"{exc.field}: {exc.problem}" if exc.field else exc.problem
    if request.headers.get("hx-request") != "true":
        return redirect(request, "/ed" + (f"?error={quote(error)}" if error else ""))
    return _board_response(
        request, user, session, lang, settings, error=error, status_code=422 if error else 200
    )


@pages.post("/ed/visits/{visit_id}/retriage")
async def ed_retriage(
    request: Request,
    visit_id: RowId,
    user: EdPageUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """The nurse's new level with a reason (from the board)."""
    form = await request.form()
    raw_level = form.get("final_level")
    error: str | None = None
    try:
        level = int(raw_level) if isinstance(raw_level, str) and raw_level.isdigit() else raw_level
        _retriage(
            request, session, auditor, user, lang, visit_id, level, form.get("reason"), _now()
        )
    except InputError as exc:
        error = f"{exc.field}: {exc.problem}" if exc.field else exc.problem
    if request.headers.get("hx-request") != "true":
        return redirect(request, "/ed" + (f"?error={quote(error)}" if error else ""))
    return _board_response(
        request, user, session, lang, settings, error=error, status_code=422 if error else 200
    )
