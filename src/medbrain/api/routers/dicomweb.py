"""DICOMweb: STOW-RS (store), QIDO-RS (search) and WADO-RS (retrieve) over the stored DICOM.

==========================================================  =====================================
route                                                       what
==========================================================  =====================================
``POST /dicomweb/studies[/{study}]``                        STOW-RS, ``multipart/related;
                                                            type="application/dicom"``
``GET /dicomweb/studies``                                   QIDO-RS studies (``PatientID``,
                                                            ``StudyInstanceUID``,
                                                            ``AccessionNumber``, ``limit``,
                                                            ``offset``)
``GET /dicomweb/studies/{study}/series``                    QIDO-RS series of a study
``GET /dicomweb/studies/{study}/series/{series}/instances``  QIDO-RS instances of a series
``GET /dicomweb/studies/{study}[/series/{series}[/instances/{sop}]]``  WADO-RS retrieve
``GET /dicomweb/studies/{study}/series/{series}/metadata``  WADO-RS metadata (DICOM JSON)
==========================================================  =====================================

Roles: ``radiologist`` and ``admin`` (bearer token or web session). A PACS or modality that
pushes by STOW-RS uses a service account with the ``radiologist`` role; C-STORE
(``medbrain dicom listen``) needs no account (association by AE title, on the hospital LAN).

STOW-RS answers with the Store Instances Response Module (PS3.18 §10.5.3): ReferencedSOPSequence
for stored instances (duplicates included), FailedSOPSequence with a FailureReason (0xA700 out of
resources, 0xA900 data set does not match, 0xC000 cannot understand) for refused ones; 200 when
all were stored, 202 when some failed, 409 when none was stored. Every call is audited.

References
----------
DICOM PS3.18 §10.4 (WADO-RS), §10.5 (STOW-RS), §10.6 (QIDO-RS), Annex F (DICOM JSON model);
RFC 2387 (multipart/related).
"""

from __future__ import annotations

import mmap
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from medbrain.api.deps import (
    LangDep,
    Principal,
    ReadAuditDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    require_role,
)
from medbrain.core.config import Settings
from medbrain.core.i18n import t
from medbrain.radiology.ingest_rules import valid_uid
from medbrain.store import radiology as store
from medbrain.store.models import ImagingSeries, ImagingStudy, Patient

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

DicomUser = Annotated[Principal, Depends(require_role("radiologist", "admin"))]
DICOM_JSON = "application/dicom+json"
QIDO_LIMIT_MAX = 1000
_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_TYPE_RE = re.compile(r'type="?([^";]+)"?', re.IGNORECASE)


def _uid(value: str, lang: str) -> str:
    if not valid_uid(value):
        raise HTTPException(404, t("error.not_found", lang, resource=value[:64]))
    return value


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/dicomweb"


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    vals = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": vals} if vals else {"vr": vr}


# -- STOW-RS --------------------------------------------------------------------------------


def _parts(path: Path, boundary: str) -> Iterator[tuple[dict[str, str], bytes]]:
    """Split a multipart/related body stored in ``path`` into (headers, content) parts."""
    with open(path, "rb") as fh:
        size = path.stat().st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as body:
            delimiter = b"--" + boundary.encode("latin-1")
            pos = body.find(delimiter)
            while pos != -1:
                start = pos + len(delimiter)
                if body[start : start + 2] == b"--":
                    return  # close delimiter
                header_end = body.find(b"\r\n\r\n", start)
                if header_end == -1:
                    return
                headers: dict[str, str] = {}
                for line in body[start:header_end].split(b"\r\n"):
                    name, sep, value = line.partition(b":")
                    if sep:
                        headers[name.strip().lower().decode("latin-1")] = value.strip().decode(
                            "latin-1"
                        )
                nxt = body.find(b"\r\n" + delimiter, header_end + 4)
                if nxt == -1:
                    return
                yield headers, bytes(body[header_end + 4 : nxt])
                pos = nxt + 2


def _stow_response(
    request: Request, result: store.IngestResult, n_parts_failed: list[tuple[int, str]]
) -> dict[str, Any]:
    base = _base(request)
    referenced = [
        {
            "00081150": _attr("UI", s.sop_class_uid),
            "00081155": _attr("UI", s.sop_instance_uid),
            "00081190": _attr(
                "UR",
                f"{base}/studies/{s.study_uid}/series/{s.series_uid}/instances/{s.sop_instance_uid}",
            ),
        }
        for s in result.stored
    ]
    failed = [
        {
            "00081150": _attr("UI", f.sop_class_uid),
            "00081155": _attr("UI", f.sop_instance_uid),
            "00081197": _attr("US", f.status),
        }
        for f in result.failed
    ]
    out: dict[str, Any] = {}
    if len(result.study_uids) == 1:
        out["00081190"] = _attr("UR", f"{base}/studies/{result.study_uids[0]}")
    if failed:
        out["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        out["00081199"] = {"vr": "SQ", "Value": referenced}
    return out


async def _stow(
    request: Request,
    session: Session,
    settings: Settings,
    user: Principal,
    lang: str,
    study: str | None,
) -> Response:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    boundary = _BOUNDARY_RE.search(content_type)
    part_type = _TYPE_RE.search(content_type)
    if (
        media != "multipart/related"
        or boundary is None
        or (part_type is not None and part_type.group(1).lower() != "application/dicom")
    ):
        raise HTTPException(415, t("radiology_ingest.stow_content_type", lang))
    spool = settings.uploads_dir / "stow"
    spool.mkdir(parents=True, exist_ok=True)
    tmp = spool / f"{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        items: list[bytes] = []
        wrong_type: list[tuple[int, str]] = []
        for index, (headers, content) in enumerate(_parts(tmp, boundary.group(1))):
            ctype = headers.get("content-type", "application/dicom").split(";")[0].strip()
            if ctype.lower() != "application/dicom":
                wrong_type.append((index, ctype))
                continue
            items.append(content)
        result = await run_in_threadpool(
            store.ingest_instances,
            session,
            settings,
            items,
            source="stow",
            actor=(user.username, user.role),
            expect_study=study,
        )
    finally:
        tmp.unlink(missing_ok=True)
    for index, _ctype in wrong_type:
        result.failed.append(
            store.FailedInstance(
                index, None, None, 0xC000, "radiology_ingest.accept_unsupported", _ctype
            )
        )
    worker = getattr(request.app.state, "radiology_worker", None)
    if worker is not None and result.job_ids:
        worker.wake()
    body = _stow_response(request, result, wrong_type)
    stored = len(result.stored)
    status = 200 if not result.failed else 202 if stored else 409
    return JSONResponse(body, status_code=status, media_type=DICOM_JSON)


@router.post("/studies", summary="STOW-RS: store instances")
async def stow(
    request: Request, user: DicomUser, session: SessionDep, settings: SettingsDep, lang: LangDep
) -> Response:
    return await _stow(request, session, settings, user, lang, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
async def stow_study(
    study: str,
    request: Request,
    user: DicomUser,
    session: SessionDep,
    settings: SettingsDep,
    lang: LangDep,
) -> Response:
    return await _stow(request, session, settings, user, lang, _uid(study, lang))


# -- QIDO-RS --------------------------------------------------------------------------------


def _pn(name: str) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": name}]} if name else {"vr": "PN"}


def _da(study: ImagingStudy) -> str:
    return study.started_at.strftime("%Y%m%d") if study.started_at else ""


@router.get("/studies", summary="QIDO-RS: search studies")
def search_studies(
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    patient_id: Annotated[str | None, Query(alias="PatientID", max_length=64)] = None,
    study_uid: Annotated[str | None, Query(alias="StudyInstanceUID", max_length=64)] = None,
    accession: Annotated[str | None, Query(alias="AccessionNumber", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=QIDO_LIMIT_MAX)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    query = select(ImagingStudy, Patient).join(Patient, Patient.id == ImagingStudy.patient_id)
    if patient_id:
        query = query.where(Patient.mrn == patient_id)
    if study_uid:
        query = query.where(ImagingStudy.study_uid == study_uid)
    if accession:
        query = query.where(ImagingStudy.accession == accession)
    rows = session.execute(query.order_by(ImagingStudy.id).offset(offset).limit(limit)).all()
    ids = [s.id for s, _ in rows]
    stats: dict[int, tuple[int, int, set[str]]] = {sid: (0, 0, set()) for sid in ids}
    if ids:
        for series in session.scalars(select(ImagingSeries).where(ImagingSeries.study_id.in_(ids))):
            n, total, mods = stats[series.study_id]
            if series.modality:
                mods.add(series.modality)
            stats[series.study_id] = (n + 1, total + series.instance_count, mods)
    base = _base(request)
    out = []
    for study, patient in rows:
        n_series, n_instances, mods = stats[study.id]
        out.append(
            {
                "00080020": _attr("DA", _da(study)),
                "00080050": _attr("SH", study.accession),
                "00080061": _attr("CS", *sorted(mods or {study.modality or ""})),
                "00081030": _attr("LO", study.description),
                "00081190": _attr("UR", f"{base}/studies/{study.study_uid}"),
                "00100010": _pn(patient.name),
                "00100020": _attr("LO", patient.mrn),
                "0020000D": _attr("UI", study.study_uid),
                "00201206": _attr("IS", n_series),
                "00201208": _attr("IS", n_instances),
            }
        )
    auditor.record("dicomweb.search", "ImagingStudy", {"results": len(out)})
    return JSONResponse(out, media_type=DICOM_JSON)


def _study(session: Session, study_uid: str, lang: str) -> ImagingStudy:
    study = session.scalars(select(ImagingStudy).where(ImagingStudy.study_uid == study_uid)).first()
    if study is None:
        raise HTTPException(404, t("error.not_found", lang, resource=f"study {study_uid}"))
    return study


@router.get("/studies/{study}/series", summary="QIDO-RS: series of a study")
def search_series(
    study: str,
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    row = _study(session, _uid(study, lang), lang)
    series_rows = session.scalars(
        select(ImagingSeries).where(ImagingSeries.study_id == row.id).order_by(ImagingSeries.id)
    ).all()
    base = _base(request)
    out = [
        {
            "00080060": _attr("CS", s.modality),
            "0008103E": _attr("LO", s.description),
            "00180015": _attr("CS", s.body_part),
            "00081190": _attr("UR", f"{base}/studies/{row.study_uid}/series/{s.series_uid}"),
            "0020000D": _attr("UI", row.study_uid),
            "0020000E": _attr("UI", s.series_uid),
            "00201209": _attr("IS", s.instance_count),
        }
        for s in series_rows
    ]
    auditor.record("dicomweb.search", f"ImagingStudy/{row.id}", {"series": len(out)})
    return JSONResponse(out, media_type=DICOM_JSON)


def _headers(files: list[Path]) -> list[Any]:
    import pydicom

    out = []
    for path in files:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except Exception:  # a stored file that no longer reads: left out of the listing
            continue
    return out


def _series_files(
    session: Session, settings: Settings, study: str, series: str, lang: str
) -> tuple[ImagingStudy, list[Path]]:
    row = _study(session, _uid(study, lang), lang)
    files = store.instance_files(settings, row.study_uid, _uid(series, lang))
    if not files:
        raise HTTPException(404, t("error.not_found", lang, resource=f"series {series}"))
    return row, files


@router.get("/studies/{study}/series/{series}/instances", summary="QIDO-RS: instances of a series")
def search_instances(
    study: str,
    series: str,
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    row, files = _series_files(session, settings, study, series, lang)
    base = _base(request)
    out = []
    for ds in _headers(files):
        sop = str(ds.get("SOPInstanceUID", ""))
        out.append(
            {
                "00080016": _attr("UI", str(ds.get("SOPClassUID", ""))),
                "00080018": _attr("UI", sop),
                "00081190": _attr(
                    "UR", f"{base}/studies/{row.study_uid}/series/{series}/instances/{sop}"
                ),
                "0020000D": _attr("UI", row.study_uid),
                "0020000E": _attr("UI", series),
                "00200013": _attr("IS", ds.get("InstanceNumber")),
                "00280010": _attr("US", ds.get("Rows")),
                "00280011": _attr("US", ds.get("Columns")),
            }
        )
    out.sort(key=lambda d: int((d["00200013"].get("Value") or [0])[0] or 0))
    auditor.record("dicomweb.search", f"ImagingStudy/{row.id}", {"instances": len(out)})
    return JSONResponse(out, media_type=DICOM_JSON)


# -- WADO-RS --------------------------------------------------------------------------------


def _check_accept(request: Request, lang: str) -> None:
    accept = request.headers.get("accept", "*/*").lower()
    if not any(a in accept for a in ("multipart/related", "application/dicom", "*/*")):
        raise HTTPException(406, t("radiology_ingest.accept_unsupported", lang))


def _multipart(files: list[Path]) -> StreamingResponse:
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for path in files:
            yield (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {path.stat().st_size}\r\n\r\n"
            ).encode()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(
        body(),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


@router.get("/studies/{study}", summary="WADO-RS: retrieve a study")
def retrieve_study(
    study: str,
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    _check_accept(request, lang)
    row = _study(session, _uid(study, lang), lang)
    files = store.instance_files(settings, row.study_uid)
    if not files:
        raise HTTPException(404, t("error.not_found", lang, resource=f"study {study}"))
    auditor.record("dicomweb.retrieve", f"ImagingStudy/{row.id}", {"instances": len(files)})
    return _multipart(files)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series")
def retrieve_series(
    study: str,
    series: str,
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    _check_accept(request, lang)
    row, files = _series_files(session, settings, study, series, lang)
    auditor.record("dicomweb.retrieve", f"ImagingStudy/{row.id}", {"instances": len(files)})
    return _multipart(files)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}", summary="WADO-RS: retrieve an instance"
)
def retrieve_instance(
    study: str,
    series: str,
    sop: str,
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    _check_accept(request, lang)
    row = _study(session, _uid(study, lang), lang)
    path = store.series_dir(settings, row.study_uid, _uid(series, lang)) / (
        _uid(sop, lang) + ".dcm"
    )
    if not path.is_file():
        raise HTTPException(404, t("error.not_found", lang, resource=f"instance {sop}"))
    auditor.record("dicomweb.retrieve", f"ImagingStudy/{row.id}", {"instances": 1})
    return _multipart([path])


@router.get(
    "/studies/{study}/series/{series}/metadata", summary="WADO-RS: series metadata (DICOM JSON)"
)
def series_metadata(
    study: str,
    series: str,
    request: Request,
    user: DicomUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    auditor: ReadAuditDep,
    lang: LangDep,
) -> Response:
    row, files = _series_files(session, settings, study, series, lang)
    out = [ds.to_json_dict(bulk_data_threshold=4096) for ds in _headers(files)]
    auditor.record("dicomweb.metadata", f"ImagingStudy/{row.id}", {"instances": len(out)})
    return JSONResponse(out, media_type=DICOM_JSON)
