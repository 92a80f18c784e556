"""Medical-insurance review: DRG grouping, compliance checks, the insurance office's queue.

=============================================  ====================================  ==========
route                                          what                                  roles
=============================================  ====================================  ==========
``GET /insurance``                             review queue ranked by risk + stats   insurance_
``GET /insurance/cases/{id}``                  case: DRG path, flags with evidence   officer,
``POST /insurance/flags/{id}/decision``        confirm / dismiss with reason         director,
``GET /insurance/export.csv``                  all flags as CSV                      admin
``GET /insurance/export.xlsx``                 flags + evidence, stats by dept/doctor
``POST /api/v1/insurance/group``               group one front page (JSON)
``POST /api/v1/insurance/check``               group + check one front page
``POST /api/v1/insurance/batch``               group + check + rank many (optionally store)
``GET /api/v1/insurance/cases``                the queue as JSON
``GET /api/v1/insurance/stats?by=department``  statistics by department or doctor
``POST /api/v1/insurance/flags/{id}/decision`` decide a flag (JSON)
=============================================  ====================================  ==========

Every read of case data and every decision is written to the audit chain.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Query, Request
from fastapi.responses import Response

from medbrain.api.deps import (
    AuditDep,
    JsonContent,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    RowId,
    SessionDep,
    require_role,
)
from medbrain.api.routers.ui import page_router, redirect, render, ui_role
from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.insurance.compliance import check_case, risk_score
from medbrain.insurance.drg import group
from medbrain.insurance.frontpage import parse_frontpage
from medbrain.insurance.pipeline import analyse_documents, insurance_knowledge
from medbrain.store import insurance as store

ROLES = ("insurance_officer", "director", "admin")
MAX_BATCH = 5000


pages = page_router()
api = APIRouter(prefix="/api/v1/insurance", tags=["insurance"])


PageUser = Annotated[Principal, Depends(ui_role(*ROLES))]
ApiUser = Annotated[Principal, Depends(require_role(*ROLES))]


# -- pages -----------------------------------------------------------------------------------


@pages.get("/insurance")
def queue_page(
    request: Request,
    user: PageUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    lang: LangDep,
    department: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    rows = store.review_queue(session, limit=50, department=department or None)
    stats_dept = store.statistics(session, "department")
    stats_doctor = store.statistics(session, "doctor")[:15]
    auditor.record("insurance.queue", "InsuranceCase", {"shown": len(rows)})
    return render(
        request,
        "insurance/queue.html",
        {
            "rows": rows,
            "stats_dept": stats_dept,
            "stats_doctor": stats_doctor,
            "department": department,
        },
        lang=lang,
        user=user,
    )


@pages.get("/insurance/cases/{case_pk}")
def case_page(
    request: Request,
    case_pk: RowId,
    user: PageUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    case = store.get_case(session, case_pk)
    auditor.record("insurance.read", f"InsuranceCase/{case.id}", {"case_id": case.case_id})
    return render(request, "insurance/case.html", {"case": case}, lang=lang, user=user)


@pages.post("/insurance/flags/{flag_id}/decision")
def decide_form(
    request: Request,
    flag_id: RowId,
    user: PageUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    decision: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        flag = store.decide_flag(
            session, flag_id, decision, reason, who=user.username, role=user.role
        )
    except InputError as exc:
        case_pk = _case_of(session, flag_id)
        case = store.get_case(session, case_pk)
        return render(
            request,
            "insurance/case.html",
            {"case": case, "error": exc.problem, "error_flag": flag_id},
            lang=lang,
            user=user,
            status_code=409 if exc.__class__.__name__ == "ConflictError" else 422,
        )
    auditor.record(
        f"insurance.{decision}",
        f"InsuranceFlag/{flag.id}",
        {"case_id": flag.case.case_id, "rule_id": flag.rule_id, "reason": flag.decision_reason},
    )
    return redirect(request, f"/insurance/cases/{flag.case_pk}")


def _case_of(session: Any, flag_id: int) -> int:
    from medbrain.store.insurance_models import InsuranceFlag

    flag = session.get(InsuranceFlag, flag_id)
    if flag is None:
        from medbrain.core.errors import NotFoundError

        raise NotFoundError(f"InsuranceFlag/{flag_id}")
    return int(flag.case_pk)


@pages.get("/insurance/export.csv")
def export_page(user: PageUser, session: ReadSessionDep, auditor: ReadAuditDep) -> Response:
    text = store.export_csv(session)
    auditor.record("insurance.export", "InsuranceFlag", {"format": "csv"})
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="insurance_flags.csv"'},
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pages.get("/insurance/export.xlsx")
def export_xlsx_page(user: PageUser, session: ReadSessionDep, auditor: ReadAuditDep) -> Response:
    data = store.export_xlsx(session)
    auditor.record("insurance.export", "InsuranceFlag", {"format": "xlsx"})
    return Response(
        data,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="insurance_review.xlsx"'},
    )


# -- JSON API --------------------------------------------------------------------------------


@api.post("/group")
def api_group(
    user: ApiUser,
    _json: JsonContent,
    lang: LangDep,
    document: Annotated[Any, Body()],
    ambiguous: Annotated[bool, Query(description="QY group for unrelated operations")] = False,
) -> dict[str, Any]:
    """Group one front page (CHS-DRG 1.1). Ungroupable cases come back with their reasons."""
    knowledge = insurance_knowledge()
    fp = parse_frontpage(document, "body")
    return group(fp, knowledge.tables, lang=lang, ambiguous=True if ambiguous else None).to_dict(
        lang
    )


@api.post("/check")
def api_check(
    user: ApiUser, _json: JsonContent, lang: LangDep, document: Annotated[Any, Body()]
) -> dict[str, Any]:
    """Group and check one front page; ``history`` (earlier stays) may be included as a list."""
    knowledge = insurance_knowledge()
    if not isinstance(document, dict):
        raise InputError("body", "", "a front page must be a JSON object")
    history_raw = document.get("history") or []
    if not isinstance(history_raw, list):
        raise InputError("body", "history", "must be a list of front pages")
    fp = parse_frontpage(document, "body")
    from medbrain.insurance.compliance import Stay

    stays = [
        Stay(h, group(h, knowledge.tables, lang=lang))
        for h in (parse_frontpage(doc, f"body.history[{i}]") for i, doc in enumerate(history_raw))
    ]
    drg = group(fp, knowledge.tables, lang=lang)
    findings = check_case(fp, drg, knowledge.rules, knowledge.tables, history=stays, lang=lang)
    return {
        "case_id": fp.case_id,
        "drg": drg.to_dict(lang),
        "findings": [f.to_dict() for f in findings],
        "rule_risk": risk_score(findings),
    }


@api.post("/batch")
def api_batch(
    user: ApiUser,
    _json: JsonContent,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    documents: Annotated[Any, Body()],
    store_results: Annotated[bool, Query(alias="store")] = False,
) -> dict[str, Any]:
    """Group + check a list of front pages; with ``?store=true`` they join the review queue."""
    if not isinstance(documents, list):
        raise InputError("body", "", "expected a JSON array of front pages")
    if len(documents) > MAX_BATCH:
        raise InputError("body", "", f"at most {MAX_BATCH} front pages per batch")
    knowledge = insurance_knowledge()
    if store_results:
        rows = store.store_batch(session, documents, knowledge, lang=lang, source="body")
        auditor.record("insurance.batch", "InsuranceCase", {"stored": len(rows)})
        return {
            "stored": len(rows),
            "cases": [
                {
                    "id": r.id,
                    "case_id": r.case_id,
                    "drg": r.drg,
                    "risk": round(r.risk, 4),
                    "flags": len(r.flags),
                }
                for r in rows
            ],
        }
    results = analyse_documents(documents, knowledge, lang=lang, source="body")
    return {"cases": [r.to_dict(lang) for r in results]}


@api.get("/cases")
def api_cases(
    user: ApiUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    rows = store.review_queue(session, limit=limit)
    auditor.record("insurance.queue", "InsuranceCase", {"shown": len(rows), "via": "api"})
    return {
        "cases": [
            dict(zip(r.__slots__, (getattr(r, s) for s in r.__slots__), strict=True)) for r in rows
        ]
    }


@api.get("/stats")
def api_stats(
    user: ApiUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    by: Annotated[str, Query(pattern="^(department|doctor)$")] = "department",
) -> dict[str, Any]:
    """Cases, flagged cases, decisions, amount at risk and CMI per department or doctor."""
    rows = store.statistics(session, by)
    auditor.record("insurance.stats", "InsuranceCase", {"by": by, "via": "api"})
    return {
        "by": by,
        "rows": [
            dict(zip(r.__slots__, (getattr(r, s) for s in r.__slots__), strict=True)) for r in rows
        ],
    }


@api.post("/flags/{flag_id}/decision")
def api_decide(
    flag_id: RowId,
    user: ApiUser,
    _json: JsonContent,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    decision = body.get("decision")
    reason = body.get("reason")
    if not isinstance(decision, str) or not isinstance(reason, str | None):
        raise InputError("body", "decision", t("insurance.ui.decision_invalid", lang))
    flag = store.decide_flag(
        session, flag_id, decision, reason or "", who=user.username, role=user.role
    )
    auditor.record(
        f"insurance.{decision}",
        f"InsuranceFlag/{flag.id}",
        {"case_id": flag.case.case_id, "rule_id": flag.rule_id, "reason": flag.decision_reason},
    )
    return {"id": flag.id, "status": flag.status, "reason": flag.decision_reason}
