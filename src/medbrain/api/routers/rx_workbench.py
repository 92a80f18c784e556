"""Pharmacist workbench pages: review queue, return to prescriber, rule tuning, stewardship.

=============================================  ==================================  ==============
route                                          what                                roles
=============================================  ==================================  ==============
``GET /rx/queue``                              prescriptions awaiting review       pharmacist,
                                               (refreshed from the store)          admin
``GET /rx/reviews/{id}``                       one prescription: findings,         pharmacist,
                                               history, actions                    doctor, admin
``POST /rx/reviews/{id}/approve|return``       pharmacist decisions                pharmacist,
``POST /rx/reviews/{id}/findings/{o}/override``                                    admin
``GET /rx/inbox``                              prescriptions returned to me        doctor, admin
``POST /rx/reviews/{id}/modify|justify``       prescriber answers                  doctor, admin
``GET /rx/rules``                              per-rule statistics                 pharmacist,
                                                                                   admin
``POST /rx/rules/*``                           enable/disable, severity,           admin, listed
                                               thresholds                          pharmacists
``GET /rx/stewardship``                        antimicrobial use metrics           pharmacist,
                                                                                   doctor, admin
=============================================  ==================================  ==============

The routes call :mod:`medbrain.store.rx_review` (state, history, audit) and the pure engines;
no clinical logic lives here. A refused action (missing reason, wrong state) is shown on the page
with 422/409 and nothing is written.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第十八条; 《抗菌药物临床应用管理办法》(卫生部令
第84号, 2012); DESIGN.md §4 (roles, audit).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from medbrain.api.deps import (
    LangDep,
    Principal,
    ReadSessionDep,
    RowId,
    SessionDep,
    SettingsDep,
)
from medbrain.api.routers import rx as rx_api
from medbrain.api.routers.ui import audit_read, page_router, redirect, render, ui_role
from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.core.errors import ConflictError, InputError, PermissionDenied
from medbrain.core.i18n import Lang, t
from medbrain.store import rx_review as store
from medbrain.store import rx_stewardship

router = page_router()


PharmacistUser = Annotated[Principal, Depends(ui_role("pharmacist", "admin"))]
PrescriberUser = Annotated[Principal, Depends(ui_role("doctor", "admin"))]
ReviewUser = Annotated[Principal, Depends(ui_role("pharmacist", "doctor", "admin"))]
#: Who may read the rule statistics.
RuleAdmin = Annotated[Principal, Depends(ui_role("pharmacist", "admin"))]


def can_edit_rules(user: Principal, settings: Settings) -> bool:
    """Rule and threshold changes: an admin, or a pharmacist named in
    ``MEDBRAIN_RX_RULE_EDITORS`` (the pharmacy lead; default: the demo ``pharmacist``)."""
    return user.role == "admin" or (
        user.role == "pharmacist" and user.username in settings.rx_rule_editors
    )


def _rule_editor(user: RuleAdmin, settings: SettingsDep, lang: LangDep) -> Principal:
    if not can_edit_rules(user, settings):
        raise PermissionDenied(t("rx.wb.rules_editor_only", lang))
    return user


#: Who may change the hospital's rule configuration.
RuleEditor = Annotated[Principal, Depends(_rule_editor)]

Reason = Annotated[str, Form(max_length=4000)]


def _actor(user: Principal) -> store.Actor:
    return store.Actor(username=user.username, role=user.role)


def _error_text(exc: InputError) -> str:
    return f"{exc.field}: {exc.problem}" if exc.field and exc.source == "form" else exc.problem


# -- queue -------------------------------------------------------------------------------------


@router.get("/rx/queue")
def rx_queue(
    request: Request,
    user: PharmacistUser,
    session: SessionDep,
    lang: LangDep,
    settings: SettingsDep,
    show: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """Refresh the reviews from the store, then list what awaits the pharmacist."""
    key, knowledge = store.current_knowledge(session)
    now = datetime.now(UTC)
    refreshed = store.sync_queue(
        session, knowledge, key, now, lang=lang, threshold=settings.review_threshold
    )
    views = store.queue(session, include_pass=show == "all")
    counts = store.status_counts(session)
    detail = {"reviews": [v.review.id for v in views], "refreshed": refreshed}
    if refreshed:
        chain.append(
            session,
            who=user.username,
            role=user.role,
            action="rx.queue.refresh",
            resource="RxReview",
            detail={"refreshed": refreshed, "knowledge": key},
            now=now,
        )
    chain.append(
        session,
        who=user.username,
        role=user.role,
        action="rx.queue",
        resource="RxReview",
        detail={**detail, "patient_ids": sorted({v.patient.id for v in views})},
        now=now,
    )
    return render(
        request,
        "workbench/rx_queue.html",
        {"views": views, "counts": counts, "show": show},
        lang=lang,
        user=user,
    )


# -- one prescription --------------------------------------------------------------------------


def _review_page(
    request: Request,
    session: Session,
    user: Principal,
    lang: Lang,
    review_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    view = store.get_review(session, review_id)
    return render(
        request,
        "workbench/rx_review.html",
        {
            "v": view,
            "outcomes": {o.finding_key: o for o in view.outcomes},
            "error": error,
        },
        lang=lang,
        user=user,
        status_code=status_code,
    )


@router.get("/rx/reviews/{review_id}")
def rx_review_page(
    request: Request,
    review_id: RowId,
    user: ReviewUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    view = store.get_review(session, review_id)
    audit_read(
        request,
        user,
        "rx.review.read",
        f"RxReview/{review_id}",
        {"patient_id": view.patient.id, "encounter_id": view.encounter.id},
    )
    return _review_page(request, session, user, lang, review_id)


def _act(
    request: Request,
    session: Session,
    user: Principal,
    lang: Lang,
    review_id: int,
    action: Callable[[], Any],
    done_url: str,
) -> Response:
    """Run ``action`` in a savepoint: on a refusal nothing is written and the page says why."""
    try:
        with session.begin_nested():
            action()
    except ConflictError as exc:
        return _review_page(
            request, session, user, lang, review_id, error=_error_text(exc), status_code=409
        )
    except InputError as exc:
        return _review_page(
            request, session, user, lang, review_id, error=_error_text(exc), status_code=422
        )
    return redirect(request, done_url)


@router.post("/rx/reviews/{review_id}/approve")
def rx_approve(
    request: Request,
    review_id: RowId,
    user: PharmacistUser,
    session: SessionDep,
    lang: LangDep,
    note: Reason = "",
) -> Response:
    def action() -> None:
        store.approve(session, review_id, _actor(user), datetime.now(UTC), note=note, lang=lang)

    return _act(request, session, user, lang, review_id, action, "/rx/queue")


@router.post("/rx/reviews/{review_id}/return")
def rx_return(
    request: Request,
    review_id: RowId,
    user: PharmacistUser,
    session: SessionDep,
    lang: LangDep,
    reason: Reason = "",
) -> Response:
    def action() -> None:
        store.return_to_prescriber(
            session, review_id, _actor(user), reason, datetime.now(UTC), lang=lang
        )

    return _act(request, session, user, lang, review_id, action, "/rx/queue")


@router.post("/rx/reviews/{review_id}/findings/{outcome_id}/override")
def rx_override(
    request: Request,
    review_id: RowId,
    outcome_id: RowId,
    user: PharmacistUser,
    session: SessionDep,
    lang: LangDep,
    reason: Reason = "",
) -> Response:
    def action() -> None:
        store.override_finding(
            session, review_id, outcome_id, _actor(user), reason, datetime.now(UTC), lang=lang
        )

    return _act(request, session, user, lang, review_id, action, f"/rx/reviews/{review_id}")


# -- the prescriber's side -----------------------------------------------------------------------


@router.get("/rx/inbox")
def rx_inbox(
    request: Request,
    user: PrescriberUser,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    """Prescriptions the pharmacist returned to this prescriber, with the reason."""
    from medbrain.store import models as m

    account = session.get(m.User, user.user_id)
    views = store.prescriber_inbox(
        session,
        display_name=user.display_name,
        department=account.department if account is not None else None,
        everyone=user.role == "admin",
    )
    audit_read(
        request,
        user,
        "rx.inbox",
        "RxReview",
        {
            "reviews": [v.review.id for v in views],
            "patient_ids": sorted({v.patient.id for v in views}),
        },
    )
    return render(request, "workbench/rx_inbox.html", {"views": views}, lang=lang, user=user)


def _ensure_prescriber(session: Session, user: Principal, review_id: int, lang: str) -> None:
    """A doctor answers only prescriptions they wrote or of their department (admin: any)."""
    if user.role == "admin":
        return
    from medbrain.store import models as m
    from medbrain.store.rx_models import RxReview

    row = session.get(RxReview, review_id)
    account = session.get(m.User, user.user_id)
    department = account.department if account is not None else None
    if row is not None and not store.is_prescriber_of(row, user.display_name, department):
        raise PermissionDenied(t("error.forbidden", lang))


@router.post("/rx/reviews/{review_id}/justify")
def rx_justify(
    request: Request,
    review_id: RowId,
    user: PrescriberUser,
    session: SessionDep,
    lang: LangDep,
    reason: Reason = "",
) -> Response:
    _ensure_prescriber(session, user, review_id, lang)

    def action() -> None:
        store.justify(session, review_id, _actor(user), reason, datetime.now(UTC), lang=lang)

    return _act(request, session, user, lang, review_id, action, "/rx/inbox")


def _number(raw: str, field_name: str, lang: str, integer: bool = False) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError("form", field_name, t("rx.wb.not_a_number", lang)) from None
    if integer and not value.is_integer():
        raise InputError("form", field_name, t("rx.wb.not_a_number", lang))
    return value


@router.post("/rx/reviews/{review_id}/modify")
async def rx_modify(
    request: Request,
    review_id: RowId,
    user: PrescriberUser,
    session: SessionDep,
    lang: LangDep,
    settings: SettingsDep,
) -> Response:
    """Form fields per medication request id: ``dose_<id>``, ``unit_<id>``, ``frequency_<id>``,
    ``days_<id>``, ``cancel_<id>``; plus an optional ``note``."""
    _ensure_prescriber(session, user, review_id, lang)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    key, knowledge = store.current_knowledge(session)

    def action() -> None:
        ids = sorted(
            {int(k.split("_", 1)[1]) for k in fields if k.split("_", 1)[-1].isdigit() and "_" in k}
        )
        changes = []
        for rid in ids:
            days = _number(fields.get(f"days_{rid}", ""), f"days_{rid}", lang, integer=True)
            changes.append(
                store.ItemChange(
                    request_id=rid,
                    dose=_number(fields.get(f"dose_{rid}", ""), f"dose_{rid}", lang),
                    unit=fields.get(f"unit_{rid}", "").strip() or None,
                    frequency=fields.get(f"frequency_{rid}", "").strip() or None,
                    days=int(days) if days is not None else None,
                    cancel=fields.get(f"cancel_{rid}") == "1",
                )
            )
        store.modify(
            session,
            review_id,
            _actor(user),
            changes,
            knowledge,
            key,
            datetime.now(UTC),
            note=fields.get("note", "")[:4000],
            lang=lang,
            threshold=settings.review_threshold,
        )

    return _act(request, session, user, lang, review_id, action, "/rx/inbox")


# -- rules -------------------------------------------------------------------------------------


def _rules_page(
    request: Request,
    session: Session,
    user: Principal,
    lang: Lang,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    key, knowledge = store.current_knowledge(session)
    stats = store.rule_stats(session)
    document = store.config_document(session)
    policy = document.get("policy") or {}
    disabled = list(policy.get("disabled_rules") or [])
    severities = dict(policy.get("severity_overrides") or {})
    known = {s.rule_id for s in stats}
    extra = sorted((set(disabled) | set(severities)) - known)
    config = store.active_config(session)
    return render(
        request,
        "workbench/rx_rules.html",
        {
            "stats": stats,
            "extra_rules": extra,
            "disabled": set(disabled),
            "severities": severities,
            "thresholds": store.threshold_values(knowledge),
            "threshold_keys": list(store.THRESHOLDS),
            "config": config,
            "knowledge_key": key,
            "error": error,
            "can_edit": can_edit_rules(user, request.app.state.settings),
        },
        lang=lang,
        user=user,
        status_code=status_code,
    )


@router.get("/rx/rules")
def rx_rules(request: Request, user: RuleAdmin, session: ReadSessionDep, lang: LangDep) -> Response:
    """Alert statistics per rule, and the hospital's switches for each."""
    audit_read(request, user, "rx.rules.read", "RxRuleConfig", {})
    return _rules_page(request, session, user, lang)


def _configure(
    request: Request,
    session: Session,
    user: Principal,
    lang: Lang,
    build: Callable[[dict[str, Any]], dict[str, Any]],
    change: dict[str, Any],
) -> Response:
    try:
        with session.begin_nested():
            document = build(store.config_document(session))
            store.save_rule_config(
                session, document, _actor(user), datetime.now(UTC), change=change
            )
    except InputError as exc:
        return _rules_page(request, session, user, lang, error=_error_text(exc), status_code=422)
    return redirect(request, "/rx/rules")


@router.post("/rx/rules/toggle")
def rx_rule_toggle(
    request: Request,
    user: RuleEditor,
    session: SessionDep,
    lang: LangDep,
    rule_id: Annotated[str, Form(max_length=200)] = "",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    on = enabled == "1"
    return _configure(
        request,
        session,
        user,
        lang,
        lambda doc: store.rule_config_change(doc, rule_id=rule_id, enabled=on, lang=lang),
        {"rule_id": rule_id, "enabled": on},
    )


@router.post("/rx/rules/severity")
def rx_rule_severity(
    request: Request,
    user: RuleEditor,
    session: SessionDep,
    lang: LangDep,
    rule_id: Annotated[str, Form(max_length=200)] = "",
    severity: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    return _configure(
        request,
        session,
        user,
        lang,
        lambda doc: store.rule_config_change(doc, rule_id=rule_id, severity=severity, lang=lang),
        {"rule_id": rule_id, "severity": severity or None},
    )


@router.post("/rx/rules/threshold")
def rx_rule_threshold(
    request: Request,
    user: RuleEditor,
    session: SessionDep,
    lang: LangDep,
    key: Annotated[str, Form(max_length=64)] = "",
    value: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    return _configure(
        request,
        session,
        user,
        lang,
        lambda doc: store.threshold_change(doc, key, value, lang),
        {"threshold": key, "value": value},
    )


# -- antimicrobial stewardship -----------------------------------------------------------------


@router.get("/rx/stewardship")
def rx_stewardship_page(
    request: Request,
    user: ReviewUser,
    session: ReadSessionDep,
    lang: LangDep,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
) -> Response:
    """Antibiotic use rate, DDDs per 100 patient-days and graded prescribing by prescriber."""
    knowledge = rx_api.knowledge_for(request)
    if end is None or start is None:
        last = rx_stewardship.latest_activity(session)
        end = end or (last.date() if last else datetime.now(UTC).date())
        start = start or end - timedelta(days=89)
    error = None
    report = None
    try:
        report = rx_stewardship.stewardship_report(session, knowledge, start, end, lang=lang)
    except InputError as exc:
        error = _error_text(exc)
    audit_read(
        request,
        user,
        "rx.stewardship",
        "MedicationRequest",
        {"start": start.isoformat(), "end": end.isoformat()},
    )
    return render(
        request,
        "workbench/rx_stewardship.html",
        {"report": report, "start": start, "end": end, "error": error},
        lang=lang,
        user=user,
        status_code=422 if error else 200,
    )
