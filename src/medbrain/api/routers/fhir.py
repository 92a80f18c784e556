"""The FHIR R4 facade under ``/fhir``: Bundle import, ``Patient/$everything``, metadata.

``POST /fhir`` takes a collection or transaction Bundle (``application/fhir+json`` or
``application/json``) from a doctor or an administrator and answers with MedBrain's import
counts, the same document ``medbrain import --json`` prints, not a transaction-response
Bundle: the import is all-or-nothing, so there is no per-entry outcome to report. An invalid
bundle is a 422 problem whose ``field`` names ``entry[i].resource.<field>``.

Every route needs a login (only ``/health`` and the login page are public); reads of patient
data and imports are written to the audit chain.

References
----------
HL7 FHIR R4 (4.0.1): §3.1.0 RESTful API (§3.1.0.1.7 content types, §3.1.0.11 transaction),
§2.37 CapabilityStatement, OperationDefinition Patient-everything; RFC 9457 problem details.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from medbrain.api.deps import (
    AuditDep,
    CurrentUser,
    LangDep,
    Principal,
    SessionDep,
    ensure_patient_visible,
    require_role,
)
from medbrain.api.routers.alert_tracking import track_after_import
from medbrain.api.routers.qc import recheck_imported
from medbrain.api.routers.workbench import screen_after_import
from medbrain.core.i18n import t
from medbrain.interop.fhir import (
    capability_statement,
    find_patient,
    import_bundle,
    patient_everything,
)

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = (FHIR_JSON, "application/json")

router = APIRouter(prefix="/fhir", tags=["fhir"])

Importer = Annotated[Principal, Depends(require_role("admin", "doctor"))]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


async def fhir_json_body(request: Request, lang: LangDep) -> Any:
    """The request body as JSON, refusing other media types (415) and malformed JSON (400)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_TYPES:
        raise HTTPException(
            415,
            t(
                "error.content_type",
                lang,
                content_type=media_type or "(none)",
                expected=" / ".join(ACCEPTED_TYPES),
            ),
        )
    raw = await request.body()
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise HTTPException(
            400, t("error.invalid_json", lang, problem=f"not UTF-8 (byte {exc.start})")
        ) from None
    except json.JSONDecodeError as exc:
        problem = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise HTTPException(400, t("error.invalid_json", lang, problem=problem)) from None


@router.post(
    "",
    responses={
        400: {"description": "Malformed JSON"},
        415: {"description": "Content-Type is not application/fhir+json or application/json"},
        422: {"description": "Invalid Bundle; `field` names entry index and element"},
    },
)
def post_bundle(
    request: Request,
    _user: Importer,
    session: SessionDep,
    auditor: AuditDep,
    bundle: Annotated[Any, Depends(fhir_json_body)],
) -> dict[str, Any]:
    """Import a FHIR R4 collection/transaction Bundle; answers with counts per type."""
    result = import_bundle(session, bundle, source="body")
    counts = result.to_dict()
    auditor.record(
        "fhir.import",
        result.bundle,
        {k: counts[k] for k in ("imported", "updated", "unchanged", "skipped")},
    )
    # New lab results raise tracked alerts (critical values) for their patients and are
    # screened for rare diseases (doctor's inbox); changed documents are re-checked by QC
    # and their defects become notices to their authors.
    track_after_import(request, session, _user, result, bundle)
    screen_after_import(request, session, _user, result, bundle)
    recheck_imported(request, session, _user, result.document_encounter_ids)
    return counts


@router.get("/metadata")
def metadata(request: Request, _user: CurrentUser) -> JSONResponse:
    """The server's CapabilityStatement."""
    return JSONResponse(capability_statement(_base_url(request)), media_type=FHIR_JSON)


@router.get("/Patient/{patient_id}/$everything")
def everything(
    patient_id: str,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    auditor: AuditDep,
    lang: LangDep,
) -> JSONResponse:
    """All of one patient's resources as a searchset Bundle (a patient: only their own)."""
    patient = find_patient(session, patient_id)
    # A patient account gets the same 404 for someone else's record as for a missing one,
    # so ids cannot be probed (the policy of ensure_patient_visible, with the asked-for id).
    if patient is None or (principal.role == "patient" and principal.patient_id != patient.id):
        raise HTTPException(404, t("error.not_found", lang, resource=f"Patient/{patient_id}"))
    ensure_patient_visible(principal, patient.id, lang)
    bundle = patient_everything(session, patient.id, base_url=_base_url(request))
    auditor.record(
        "patient.read",
        f"Patient/{patient.id}",
        {"via": "fhir.$everything", "fhir_id": patient.fhir_id, "entries": bundle["total"]},
    )
    return JSONResponse(bundle, media_type=FHIR_JSON)
