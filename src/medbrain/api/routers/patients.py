"""``/api/v1/patients``: search, the patient page as JSON, and document version history.

Clinical roles may search and read every patient; a ``patient`` account reads only its own
record (any other id answers 404, exactly like a missing one, so ids cannot be probed) and
cannot search. Data is read in a read-only transaction; the audit entry is then written in
its own short transaction before the response leaves (:class:`medbrain.api.deps.ReadAuditor`),
so concurrent readers never queue behind each other for the database's write lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from medbrain.api.deps import (
    CurrentUser,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    RowId,
    ensure_patient_visible,
    require_role,
)
from medbrain.api.schemas import DocumentHistoryOut, PatientDetailOut, PatientSearchOut
from medbrain.api.security import CLINICAL_ROLES
from medbrain.store import patients as store

router = APIRouter(
    prefix="/api/v1/patients",
    tags=["patients"],
    responses={
        401: {"description": "Not logged in"},
        403: {"description": "Role not allowed, or missing CSRF token on a cookie request"},
    },
)

Clinician = Annotated[Principal, Depends(require_role(*CLINICAL_ROLES))]


def no_store(response: Response) -> None:
    """Patient data must not stay in browser or proxy caches."""
    response.headers["Cache-Control"] = "no-store"


@router.get("", response_model=PatientSearchOut, dependencies=[Depends(no_store)])
def search_patients(
    principal: Clinician,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    q: Annotated[
        str,
        Query(max_length=200, description="Name substring, pinyin initials (zs), pinyin or MRN"),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=store.SEARCH_LIMIT_MAX)] = 20,
) -> PatientSearchOut:
    """Find patients; results are audited by id (the search text may be a name, so it is not)."""
    query = store.normalize_query(q)
    hits = store.search_patients(session, query, today=datetime.now(UTC).date(), limit=limit)
    if query:
        auditor.record(
            "patient.search",
            "Patient",
            {"results": len(hits), "patient_ids": [hit.id for hit in hits]},
        )
    return PatientSearchOut.model_validate(
        {"query": query, "count": len(hits), "results": hits}, from_attributes=True
    )


@router.get(
    "/{patient_id}",
    response_model=PatientDetailOut,
    dependencies=[Depends(no_store)],
    responses={404: {"description": "No such patient, or not visible to a patient account"}},
)
def read_patient(
    patient_id: RowId,
    principal: CurrentUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> PatientDetailOut:
    """Summary, encounters with documents, labs with series, medications, conditions, findings."""
    ensure_patient_visible(principal, patient_id, lang)
    page = store.patient_page(
        session,
        patient_id,
        today=datetime.now(UTC).date(),
        include_findings=principal.role != "patient",
    )
    auditor.record("patient.read", f"Patient/{patient_id}", {"via": principal.via})
    return PatientDetailOut.model_validate(page)


@router.get(
    "/{patient_id}/documents/{document_id}/versions",
    response_model=DocumentHistoryOut,
    dependencies=[Depends(no_store)],
    responses={404: {"description": "No such document for this patient"}},
)
def document_versions(
    patient_id: RowId,
    document_id: RowId,
    principal: CurrentUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> DocumentHistoryOut:
    """Every version of one document, newest first; edits never overwrite earlier text."""
    ensure_patient_visible(principal, patient_id, lang)
    history = store.document_history(session, patient_id, document_id)
    auditor.record(
        "document.read",
        f"Document/{document_id}",
        {"patient": f"Patient/{patient_id}", "versions": len(history.versions)},
    )
    return DocumentHistoryOut.model_validate(history)
