"""Where to go (issue 9 item 5): live institution load and ranked recommendations.

===============================================  ===========================================
``PUT  /api/v1/ed/institutions/{code}/load``     queue length and free beds (admin; audited)
``POST /api/v1/ed/where-to-go``                  ranked institutions with the reason shown
===============================================  ===========================================

Institutions are configured (``knowledge/triage/institutions.yaml``, demo content;
``app.state.institutions`` overrides it); the load is stored in ``institution_load``. A red flag
(or emergency care) always recommends the nearest emergency department with capacity, never a
clinic (:func:`medbrain.triage.where.recommend`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from medbrain.api.deps import (
    AuditDep,
    CurrentUser,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    SessionDep,
    require_role,
)
from medbrain.api.routers import triage as triage_api
from medbrain.core.errors import InputError, NotFoundError
from medbrain.core.i18n import t
from medbrain.knowledge.overrides import read_hospital_file
from medbrain.store import institution_load as store
from medbrain.triage import assess_document
from medbrain.triage.where import (
    InstitutionKnowledge,
    Recommendation,
    check_location,
    default_institutions,
    institutions_with,
    recommend,
)

api = APIRouter(prefix="/api/v1/ed", tags=["ed"])
AdminUser = Annotated[Principal, Depends(require_role("admin"))]


def institutions_for(request: Request) -> InstitutionKnowledge:
    """``app.state.institutions``, else the shipped file merged with the hospital's
    ``MEDBRAIN_HOME/triage/institutions.yaml``."""
    configured = getattr(request.app.state, "institutions", None)
    if isinstance(configured, InstitutionKnowledge):
        return configured
    path = request.app.state.settings.home / "triage" / "institutions.yaml"
    override = read_hospital_file(path)
    return default_institutions() if override is None else institutions_with(override)


class LoadIn(BaseModel):
    queue_length: int = Field(ge=0, le=100_000, description="Patients waiting to be seen")
    free_beds: int | None = Field(
        default=None, ge=0, le=100_000, description="Free emergency/observation beds"
    )


def parse_location(request: Request, lat: str, lon: str) -> tuple[float, float]:
    """(lat, lon) from optional form text; both empty → the configured default location."""
    if not lat.strip() and not lon.strip():
        return institutions_for(request).default_location
    try:
        return check_location(float(lat), float(lon))
    except ValueError:
        raise InputError(
            "form", "lat" if not _is_float(lat) else "lon", "must be a number"
        ) from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def reason_text(rec: Recommendation, lang: str) -> str:
    """The reason for one recommendation in words (message templates)."""
    parts = [
        t("where.reason.distance", lang, km=f"{rec.distance_km:.1f}", min=round(rec.travel_minutes))
    ]
    for key in rec.reasons:
        if key == "load":
            parts.append(
                t(
                    "where.reason.load",
                    lang,
                    queue=rec.queue_length,
                    wait=round(rec.wait_minutes or 0),
                )
            )
        elif key == "ed_capacity":
            parts.append(t("where.reason.ed_capacity", lang, beds=rec.free_beds))
        elif key == "season":
            label = (rec.season or {}).get(lang if lang == "en" else "zh", "")
            parts.append(t("where.reason.season", lang, season=label, factor=rec.season_factor))
        else:
            parts.append(t(f"where.reason.{key}", lang))
    return ";".join(parts) if lang == "zh" else "; ".join(parts)


def recommendations(
    request: Request,
    session: Session,
    *,
    lat: float,
    lon: float,
    department: str,
    emergency: bool,
    lang: str,
) -> list[dict[str, Any]]:
    """Ranked institutions as dicts with a worded ``reason``."""
    recs = recommend(
        institutions_for(request),
        store.loads(session),
        lat=lat,
        lon=lon,
        department=department,
        emergency=emergency,
        now=datetime.now(UTC),
    )
    name = "en" if lang == "en" else "zh"
    return [
        {**r.to_dict(), "display_name": r.name[name], "reason": reason_text(r, lang)} for r in recs
    ]


@api.put(
    "/institutions/{code}/load",
    responses={404: {"description": "Unknown institution code"}},
)
def put_load(
    request: Request,
    code: str,
    body: LoadIn,
    user: AdminUser,
    session: SessionDep,
    auditor: AuditDep,
) -> dict[str, Any]:
    """Update an institution's live load (queue length, free beds); audited."""
    if institutions_for(request).get(code) is None:
        raise NotFoundError(f"Institution/{code}")
    now = datetime.now(UTC)
    row = store.put_load(
        session,
        code,
        queue_length=body.queue_length,
        free_beds=body.free_beds,
        by=user.username,
        at=now,
    )
    auditor.record(
        "institution.load.update",
        f"Institution/{code}",
        {"queue_length": body.queue_length, "free_beds": body.free_beds},
    )
    return {
        "code": row.code,
        "queue_length": row.queue_length,
        "free_beds": row.free_beds,
        "updated_at": now.isoformat(),
    }


@api.post(
    "/where-to-go",
    responses={422: {"description": "Invalid location, department or complaint; `field` names it"}},
)
def where_to_go(
    request: Request,
    body: Annotated[
        dict[str, Any],
        Body(
            description="`lat`, `lon` (the patient's location) and either `department` (catalogue "
            "code; optional `emergency`) or `visit` (a DESIGN.md §3 triage document: the "
            "department and red flags come from the triage engine)"
        ),
    ],
    user: CurrentUser,
    session: ReadSessionDep,
    reads: ReadAuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Ranked institutions by distance, capability, live load and season, with the reason."""
    if not isinstance(body, dict):
        raise InputError("body", "", "must be a JSON object")
    lat, lon = check_location(body.get("lat"), body.get("lon"))
    triage = triage_api.knowledge_for(request)
    red_flags: list[str] = []
    if body.get("visit") is not None:
        result = assess_document(body["visit"], triage, lang=lang, source="visit")
        department = result.department.code
        red_flags = list(result.red_flags)
        emergency = result.care == "emergency" or bool(red_flags) or result.level <= 2
    else:
        department = str(body.get("department") or "")
        if department not in triage.departments:
            raise InputError("body", "department", "must be a code of departments.yaml")
        flag = body.get("emergency", False)
        if not isinstance(flag, bool):
            raise InputError("body", "emergency", "must be true or false")
        emergency = flag or department == "20"
    recs = recommendations(
        request, session, lat=lat, lon=lon, department=department, emergency=emergency, lang=lang
    )
    reads.record(
        "where_to_go.recommend",
        "Institution",
        {"department": department, "emergency": emergency, "results": [r["code"] for r in recs]},
    )
    return {
        "department": department,
        "emergency": emergency,
        "red_flags": red_flags,
        "call_120": emergency and all(r["free_beds"] == 0 for r in recs),
        "recommendations": recs,
    }
