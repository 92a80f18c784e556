"""CT viewer, radiologist review and sign-off, and the results that leave MedBrain (issue 5).

=====================================================================  ======================
route                                                                  roles
=====================================================================  ======================
``GET /radiology/studies/{study_uid}`` (viewer page)                   radiologist, admin
``GET /radiology/feedback`` (detector feedback page)                   admin, radiologist
``GET /api/v1/radiology/studies/{uid}/viewer`` (metadata, review)      radiologist, admin
``GET /api/v1/radiology/studies/{uid}/slices?start=&count=``           radiologist, admin
``POST /api/v1/radiology/studies/{uid}/review/nodules[/{key}]``        radiologist
``PUT /api/v1/radiology/studies/{uid}/review/report``                  radiologist
``POST /api/v1/radiology/studies/{uid}/review/redraft``                radiologist
``POST /api/v1/radiology/studies/{uid}/review/sign``                   radiologist
``GET /api/v1/radiology/studies/{uid}/review/versions[/{n}]``          radiologist, admin
``GET /api/v1/radiology/studies/{uid}/report.pdf``                     radiologist, admin, doctor
``GET /api/v1/radiology/studies/{uid}/fhir``                           radiologist, admin, doctor
``GET /api/v1/radiology/studies/{uid}/sr``, ``/seg`` (application/dicom)  radiologist, admin
``POST /api/v1/radiology/studies/{uid}/send`` (C-STORE to the PACS)    radiologist, admin
``GET /api/v1/radiology/feedback``                                     admin, radiologist
=====================================================================  ======================

Slices go to the browser as raw HU, int16 little-endian, ``count`` slices of ``rows × cols``
in a row (``[slice, row, col]``), with an ``ETag`` and a private cache lifetime; the page
windows them itself. Slices are read from the stored files (headers indexed once per series);
the fully decoded volume, needed to add a nodule and for SR/SEG/PDF, is cached in this process
(a few series, LRU) and as ``.npy`` under ``MEDBRAIN_HOME/cache/viewer``.

Every change is audited in the request's transaction; signing also writes the DICOM SR
(TID 1500) and SEG next to the study in ``MEDBRAIN_HOME/dicom`` (so DICOMweb serves them),
registers them as series, and sends them to the PACS when ``MEDBRAIN_PACS_*`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, BackgroundTasks, Body, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadAuditDep,
    ReadAuditor,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    require_role,
)
from medbrain.api.routers.ui import audit_read, page_router, redirect, render, ui_role
from medbrain.core.config import Settings
from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.core.i18n import t
from medbrain.imaging.io import CTSeries, load_series
from medbrain.radiology.outputs.dicom_seg import NothingToSegment, build_seg
from medbrain.radiology.outputs.dicom_sr import build_sr
from medbrain.radiology.outputs.fhir import build_fhir_bundle
from medbrain.radiology.outputs.pacs import send_instances
from medbrain.radiology.outputs.pdf import build_pdf
from medbrain.store import models as m
from medbrain.store import radiology as ingest_store
from medbrain.store import radiology_review as review
from medbrain.store import radiology_risk as risk_store
from medbrain.store.radiology_review_models import RadiologyReport

MAX_SLICES_PER_REQUEST = 64
HU_MIN, HU_MAX = -1024, 3071
VOLUME_CACHE_SIZE = 3

api = APIRouter(prefix="/api/v1/radiology", tags=["radiology review"])


pages = page_router()

Viewer = Annotated[Principal, Depends(require_role("radiologist", "admin"))]
Reviewer = Annotated[Principal, Depends(require_role("radiologist"))]
Reader = Annotated[Principal, Depends(require_role("radiologist", "admin", "doctor"))]
FeedbackViewer = Annotated[Principal, Depends(require_role("admin", "radiologist"))]


ViewerPage = Annotated[Principal, Depends(ui_role("radiologist", "admin"))]
ReviewerPage = Annotated[Principal, Depends(ui_role("radiologist"))]
FeedbackPage = Annotated[Principal, Depends(ui_role("admin", "radiologist"))]


# -- the volume --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedVolume:
    series: CTSeries
    voxels: np.ndarray[Any, np.dtype[np.int16]]
    """HU as int16, ``[slice, row, col]``, C-contiguous: what the slice endpoint sends."""
    tag: str
    """Changes when the series' files change (ETag base)."""


_cache: OrderedDict[str, LoadedVolume] = OrderedDict()
_cache_lock = threading.Lock()
_load_locks: dict[str, threading.Lock] = {}


def _dir_tag(directory: Path) -> str:
    files = sorted(p for p in directory.glob("*.dcm") if not p.name.startswith("."))
    digest = hashlib.sha256()
    for p in files:
        stat = p.stat()
        digest.update(f"{p.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def _from_disk_cache(file: Path) -> LoadedVolume | None:
    """The int16 volume and its geometry saved by an earlier load (survives restarts)."""
    meta_file = file.with_suffix(".json")
    if not file.is_file() or not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        voxels = np.load(file, allow_pickle=False)
    except (OSError, ValueError):
        return None
    series = CTSeries(
        hu=voxels.astype(np.float32),
        spacing_mm=tuple(meta["spacing_mm"]),
        origin_mm=tuple(meta["origin_mm"]),
        direction=tuple(tuple(row) for row in meta["direction"]),
        series_uid=meta["series_uid"],
        source=meta["source"],
    )
    return LoadedVolume(series=series, voxels=voxels, tag=meta["tag"])


def _to_disk_cache(file: Path, loaded: LoadedVolume) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    with tmp.open("wb") as out:
        np.save(out, loaded.voxels, allow_pickle=False)
    tmp.replace(file)
    s = loaded.series
    meta = {
        "spacing_mm": list(s.spacing_mm),
        "origin_mm": list(s.origin_mm),
        "direction": [list(row) for row in s.direction],
        "series_uid": s.series_uid,
        "source": s.source,
        "tag": loaded.tag,
    }
    file.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")


def load_volume(directory: Path, cache_dir: Path | None = None) -> LoadedVolume:
    """The series in ``directory``, loaded once per change of its files.

    Kept in memory (LRU of a few series) and, with ``cache_dir``, as an int16 ``.npy`` on disk
    so a restarted server does not decode the DICOM files again. Concurrent callers for the
    same series wait for one load.
    """
    key = str(directory.resolve())
    tag = _dir_tag(directory)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit.tag == tag:
            _cache.move_to_end(key)
            return hit
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None and hit.tag == tag:
                return hit
        disk = None
        if cache_dir is not None:
            disk = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}-{tag}.npy"
        loaded = _from_disk_cache(disk) if disk is not None else None
        if loaded is None:
            series = load_series(directory)
            voxels = np.ascontiguousarray(
                np.clip(np.rint(series.hu), HU_MIN, HU_MAX).astype("<i2", copy=False)
            )
            loaded = LoadedVolume(series=series, voxels=voxels, tag=tag)
            if disk is not None:
                with contextlib.suppress(OSError):
                    _to_disk_cache(disk, loaded)
        with _cache_lock:
            _cache[key] = loaded
            _cache.move_to_end(key)
            while len(_cache) > VOLUME_CACHE_SIZE:
                _cache.popitem(last=False)
        return loaded


def cached_volume(directory: Path) -> LoadedVolume | None:
    """The volume if it is already in memory and current (never loads)."""
    key = str(directory.resolve())
    with _cache_lock:
        hit = _cache.get(key)
    return hit if hit is not None and hit.tag == _dir_tag(directory) else None


@dataclass(frozen=True, slots=True)
class SliceIndex:
    """The series' files in slice order, read from headers only (no pixel data).

    Lets the first slices reach the browser while the whole volume is still being decoded;
    ordering and HU arithmetic are those of :func:`medbrain.imaging.io.load_dicom_dir`
    (position along the slice normal, ascending; float32 slope × stored + intercept).
    """

    files: tuple[Path, ...]
    rows: int
    cols: int
    spacing_mm: tuple[float, float, float]
    series_uid: str
    tag: str


_index_cache: OrderedDict[str, SliceIndex] = OrderedDict()
INDEX_TAGS = (
    "SeriesInstanceUID",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
)


def slice_index(directory: Path) -> SliceIndex | None:
    """The :class:`SliceIndex` of ``directory``, or ``None`` when its headers are unusual
    (then the caller loads the whole volume, which names the problem)."""
    import pydicom

    key = str(directory.resolve())
    tag = _dir_tag(directory)
    with _cache_lock:
        hit = _index_cache.get(key)
    if hit is not None and hit.tag == tag:
        return hit
    files = sorted(p for p in directory.glob("*.dcm") if not p.name.startswith("."))
    try:
        headers = [
            (f, pydicom.dcmread(f, stop_before_pixels=True, specific_tags=list(INDEX_TAGS)))
            for f in files
        ]
        iop = np.asarray([float(v) for v in headers[0][1].ImageOrientationPatient])
        row_dir = iop[:3] / np.linalg.norm(iop[:3])
        col_dir = iop[3:] / np.linalg.norm(iop[3:])
        normal = np.cross(row_dir, col_dir)
        if normal[2] < 0:
            normal = -normal
        placed = sorted(
            (float(np.asarray([float(v) for v in ds.ImagePositionPatient]) @ normal), f)
            for f, ds in headers
        )
        z = np.asarray([p for p, _ in placed])
        first = headers[0][1]
        spacing = [float(v) for v in first.PixelSpacing]
        index = SliceIndex(
            files=tuple(f for _, f in placed),
            rows=int(first.Rows),
            cols=int(first.Columns),
            spacing_mm=(spacing[1], spacing[0], float(np.median(np.diff(z)))),
            series_uid=str(first.SeriesInstanceUID),
            tag=tag,
        )
    except (AttributeError, ValueError, TypeError, IndexError, OSError, EOFError, KeyError):
        return None
    with _cache_lock:
        _index_cache[key] = index
        while len(_index_cache) > 16:
            _index_cache.popitem(last=False)
    return index


def read_slices(index: SliceIndex, start: int, stop: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    """HU of slices ``start:stop`` as int16, decoded from their files only."""
    import pydicom

    out = np.empty((stop - start, index.rows, index.cols), dtype="<i2")
    for k in range(start, stop):
        ds = pydicom.dcmread(index.files[k])
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        hu = ds.pixel_array.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        out[k - start] = np.clip(np.rint(hu), HU_MIN, HU_MAX).astype("<i2")
    return out


def _series_dir(ctx: review.StudyContext) -> Path:
    path = ctx.series.storage_path if ctx.series is not None else None
    if not path or not Path(path).is_dir():
        raise NotFoundError(f"ImagingSeries/{ctx.study_uid}")
    return Path(path)


def _volume(ctx: review.StudyContext, settings: Settings) -> LoadedVolume:
    return load_volume(_series_dir(ctx), settings.home / "cache" / "viewer")


def _source_datasets(ctx: review.StudyContext) -> list[Any]:
    import pydicom

    path = ctx.series.storage_path if ctx.series is not None else None
    if not path:
        raise NotFoundError(f"ImagingSeries/{ctx.study_uid}")
    files = sorted(p for p in Path(path).glob("*.dcm") if not p.name.startswith("."))
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in files]


# -- helpers -----------------------------------------------------------------------------------


def _context(session: Session, study_uid: str) -> review.StudyContext:
    return review.load_context(session, study_uid)


def _detector(ctx: review.StudyContext) -> str:
    return ctx.analysis.detector_version if ctx.analysis is not None else "unknown"


def _state(session: Session, ctx: review.StudyContext, lang: str) -> dict[str, Any]:
    row = review.latest_report(session, ctx.study.id)
    return review.state_dict(ctx, row, lang)


def _resource(ctx: review.StudyContext) -> str:
    return f"ImagingStudy/{ctx.study_uid}"


def _pick_version(
    session: Session, ctx: review.StudyContext, version: int | None, lang: str
) -> RadiologyReport:
    if version is not None:
        return review.get_version(session, ctx.study.id, version)
    row = review.latest_report(session, ctx.study.id)
    if row is None:
        raise ConflictError(ctx.study_uid, "version", t("radiology_review.not_signed", lang))
    return row


@dataclass(frozen=True, slots=True)
class SliceSource:
    """Where slices come from right now: the decoded volume, or the files in slice order."""

    volume: LoadedVolume | None
    index: SliceIndex | None

    @property
    def shape(self) -> tuple[int, int, int]:
        if self.volume is not None:
            nz, ny, nx = self.volume.voxels.shape
            return int(nz), int(ny), int(nx)
        assert self.index is not None
        return len(self.index.files), self.index.rows, self.index.cols

    @property
    def tag(self) -> str:
        if self.volume is not None:
            return self.volume.tag
        assert self.index is not None
        return self.index.tag

    def info(self) -> dict[str, Any]:
        nz, ny, nx = self.shape
        if self.volume is not None:
            spacing, uid = self.volume.series.spacing_mm, self.volume.series.series_uid
        else:
            assert self.index is not None
            spacing, uid = self.index.spacing_mm, self.index.series_uid
        return {
            "series_uid": uid,
            "cols": nx,
            "rows": ny,
            "slices": nz,
            "spacing_mm": [round(v, 4) for v in spacing],
            "tag": self.tag,
            "hu_min": HU_MIN,
        }

    def read(self, start: int, stop: int) -> bytes:
        if self.volume is not None:
            return self.volume.voxels[start:stop].tobytes()
        assert self.index is not None
        return read_slices(self.index, start, stop).tobytes()


def _slice_source(ctx: review.StudyContext, settings: Settings) -> SliceSource:
    """The decoded volume when it is in memory, otherwise the files themselves.

    Reading a chunk's files (≈ 1 ms a slice) answers the first request at once, where decoding
    the whole series first would keep the viewer waiting; the full volume is loaded only for
    what needs it (adding a nodule, SR/SEG, PDF key images).
    """
    directory = _series_dir(ctx)
    volume = cached_volume(directory)
    if volume is not None:
        return SliceSource(volume, None)
    index = slice_index(directory)
    if index is None:
        return SliceSource(_volume(ctx, settings), None)
    return SliceSource(None, index)


# -- pages -------------------------------------------------------------------------------------


@pages.get("/radiology/studies/{study_uid}")
def viewer_page(
    request: Request,
    study_uid: str,
    user: ViewerPage,
    session: ReadSessionDep,
    lang: LangDep,
) -> Response:
    ctx = _context(session, study_uid)
    patient = session.get(m.Patient, ctx.study.patient_id)
    audit_read(request, user, "radiology.view", _resource(ctx), {})
    risk = _state(session, ctx, lang)["risk"] if ctx.analysis is not None else None
    return render(
        request,
        "radiology/viewer.html",
        {
            "study": ctx.study,
            "patient": patient,
            "ready": ctx.analysis is not None,
            "may_review": user.role == "radiologist",
            "risk": risk,
        },
        lang=lang,
        user=user,
    )


@pages.get("/radiology/feedback")
def feedback_page(
    request: Request, user: FeedbackPage, session: ReadSessionDep, lang: LangDep
) -> Response:
    rows = review.feedback_counts(session)
    return render(request, "radiology/feedback.html", {"rows": rows}, lang=lang, user=user)


# -- viewer data -------------------------------------------------------------------------------


@api.get("/studies/{study_uid}/viewer")
def viewer_data(
    study_uid: str,
    user: Viewer,
    session: ReadSessionDep,
    lang: LangDep,
    audit: ReadAuditDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Series geometry, the review's current version, the version list and the prior study."""
    ctx = _context(session, study_uid)
    review.require_analysis(ctx, lang)
    source = _slice_source(ctx, settings)
    audit.record("radiology.view", _resource(ctx), {"what": "viewer"})
    return {
        "study_uid": ctx.study_uid,
        "status": ctx.study.status,
        "series": source.info(),
        "detector": _detector(ctx),
        "engine_lung_rads": (ctx.analysis.result.get("lung_rads") if ctx.analysis else None),
        "review": _state(session, ctx, lang),
        "versions": [
            review.version_summary(r) for r in review.list_versions(session, ctx.study.id)
        ],
        "prior": review.prior_summary(session, ctx, lang),
        "may_review": user.role == "radiologist",
    }


@api.get("/studies/{study_uid}/slices")
def slices(
    request: Request,
    study_uid: str,
    user: Viewer,
    session: ReadSessionDep,
    lang: LangDep,
    settings: SettingsDep,
    start: Annotated[int, Query(ge=0, le=100_000)] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_SLICES_PER_REQUEST)] = 8,
) -> Response:
    """``count`` axial slices from ``start`` as int16 little-endian HU (ETag, cacheable)."""
    ctx = _context(session, study_uid)
    source = _slice_source(ctx, settings)
    nz, rows, cols = source.shape
    if start >= nz:
        raise InputError("query", "start", t("radiology_review.bad_slices", lang))
    stop = min(nz, start + count)
    etag = f'"{source.tag}-{start}-{stop}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=3600",
        "X-Slice-Start": str(start),
        "X-Slice-Count": str(stop - start),
        "X-Rows": str(rows),
        "X-Cols": str(cols),
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = source.read(start, stop)
    return Response(body, media_type="application/octet-stream", headers=headers)


# -- review ------------------------------------------------------------------------------------


class NoduleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: str | None = Field(default=None, max_length=16)
    type: str | None = Field(default=None, max_length=16)
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    # the long and short axis drawn on slice ``slice``: [[col0, row0, col1, row1], [...]]
    axes_voxel: list[list[float]] | None = Field(default=None, min_length=2, max_length=2)
    slice: int | None = None


class NoduleAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    center_voxel: list[int] = Field(min_length=3, max_length=3)
    long_axis_mm: float = review.DEFAULT_ADDED_MM
    short_axis_mm: float = review.DEFAULT_ADDED_MM
    type: str = Field(default="solid", max_length=16)


class ReportText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    findings: str | None = None
    impression: str | None = None


class Redraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: str = Field(default="zh", pattern="^(zh|en)$")


def _answer(session: Session, ctx: review.StudyContext, lang: str, **extra: Any) -> dict[str, Any]:
    return {
        "review": _state(session, ctx, lang),
        "versions": [
            review.version_summary(r) for r in review.list_versions(session, ctx.study.id)
        ],
        **extra,
    }


@api.post("/studies/{study_uid}/review/nodules/{key}")
def change_nodule(
    study_uid: str,
    key: Annotated[str, PathParam(max_length=16)],
    change: NoduleChange,
    user: Reviewer,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    ctx = _context(session, study_uid)
    changes = change.model_dump(exclude_none=True)
    axes, slice_index = changes.pop("axes_voxel", None), changes.pop("slice", None)
    box = None
    if axes is not None:
        review.require_analysis(ctx, lang)
        if slice_index is None:
            raise InputError("nodule", "slice", t("radiology_review.bad_axes", lang))
        volume = _volume(ctx, settings)
        nz, ny, nx = volume.voxels.shape
        box = review.box_from_axes(
            axes,
            slice_index,
            shape_voxel=(nx, ny, nz),
            spacing_mm=volume.series.spacing_mm,
            lang=lang,
        )
        i, j, k = box["center_voxel"]
        centre = volume.series.voxel_to_mm((float(i), float(j), float(k)))
        box["center_mm"] = [round(float(v), 1) for v in centre]
        changes.setdefault("long_axis_mm", box["long_axis_mm"])
        changes.setdefault("short_axis_mm", box["short_axis_mm"])
    row = review.update_nodule(session, ctx, key, changes, user.username, lang, box=box)
    detail = {"version": row.version, "nodule": key, **changes}
    if box is not None:
        detail["bbox_voxel"] = box["bbox_voxel"]
    audit.record("radiology.nodule.update", _resource(ctx), detail)
    return _answer(session, ctx, lang)


@api.post("/studies/{study_uid}/review/nodules", status_code=201)
def add_nodule(
    study_uid: str,
    body: NoduleAdd,
    user: Reviewer,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    ctx = _context(session, study_uid)
    review.require_analysis(ctx, lang)
    volume = _volume(ctx, settings)
    nz, ny, nx = volume.voxels.shape
    i, j, k = body.center_voxel
    inside = 0 <= i < nx and 0 <= j < ny and 0 <= k < nz
    center_mm = volume.series.voxel_to_mm((float(i), float(j), float(k))) if inside else (0, 0, 0)
    mid_x = volume.series.voxel_to_mm(((nx - 1) / 2, float(j), float(k)))[0]
    side = "left" if center_mm[0] > mid_x else "right"  # LPS: +x is the patient's left
    row, nodule = review.add_nodule(
        session,
        ctx,
        center_voxel=body.center_voxel,
        center_mm=center_mm,
        side=side,
        shape_voxel=(nx, ny, nz),
        spacing_mm=volume.series.spacing_mm,
        who=user.username,
        lang=lang,
        long_axis_mm=body.long_axis_mm,
        short_axis_mm=body.short_axis_mm,
        kind=body.type,
    )
    audit.record(
        "radiology.nodule.add",
        _resource(ctx),
        {"version": row.version, "nodule": nodule["key"], "center_voxel": body.center_voxel},
    )
    return _answer(session, ctx, lang, added=nodule["key"])


@api.put("/studies/{study_uid}/review/report")
def edit_report(
    study_uid: str,
    body: ReportText,
    user: Reviewer,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    ctx = _context(session, study_uid)
    row = review.update_text(
        session,
        ctx,
        findings=body.findings,
        impression=body.impression,
        who=user.username,
        lang=lang,
    )
    digest = hashlib.sha256(f"{row.findings}\n{row.impression}".encode()).hexdigest()[:16]
    audit.record("radiology.report.edit", _resource(ctx), {"version": row.version, "sha": digest})
    return _answer(session, ctx, lang)


class BrockInputs(BaseModel):
    """Yes/no Brock inputs to record in the patient's record (``null``: leave as is)."""

    model_config = ConfigDict(extra="forbid")
    family_history: bool | None = None
    emphysema: bool | None = None


def _record_brock(
    session: Session, ctx: review.StudyContext, values: dict[str, bool], audit: Any, lang: str
) -> None:
    if not values:
        raise InputError("brock", "inputs", t("radiology_risk.nothing_to_record", lang))
    refs = risk_store.record_brock_inputs(session, ctx.study, values, datetime.now(UTC))
    audit.record(
        "radiology.brock.inputs",
        f"Patient/{ctx.study.patient_id}",
        {"study": ctx.study_uid, **values, "observations": refs},
    )


@api.post("/studies/{study_uid}/review/brock-inputs")
def record_brock_inputs(
    study_uid: str,
    body: BrockInputs,
    user: Reviewer,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
) -> dict[str, Any]:
    """Record family history of lung cancer / emphysema (yes or no) for the study's patient;
    Brock is recomputed from the record (the signed versions keep what they showed)."""
    ctx = _context(session, study_uid)
    review.require_analysis(ctx, lang)
    _record_brock(session, ctx, body.model_dump(exclude_none=True), audit, lang)
    return _answer(session, ctx, lang)


@pages.post("/radiology/studies/{study_uid}/brock-inputs")
def record_brock_inputs_form(
    request: Request,
    study_uid: str,
    user: ReviewerPage,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
    family_history: Annotated[str, Form(max_length=8)] = "",
    emphysema: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """The study page's form: ``yes`` / ``no`` / empty (not recorded now) per input."""
    ctx = _context(session, study_uid)
    review.require_analysis(ctx, lang)
    values: dict[str, bool] = {}
    for key, raw in (("family_history", family_history), ("emphysema", emphysema)):
        if raw not in ("", "yes", "no"):
            raise InputError("brock", key, t("radiology_risk.bad_choice", lang))
        if raw:
            values[key] = raw == "yes"
    _record_brock(session, ctx, values, audit, lang)
    return redirect(request, f"/radiology/studies/{study_uid}#ct-risk")


@api.post("/studies/{study_uid}/review/redraft")
def redraft(
    study_uid: str,
    user: Reviewer,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
    body: Annotated[Redraft | None, Body()] = None,
) -> dict[str, Any]:
    ctx = _context(session, study_uid)
    language = body.language if body is not None else lang
    row = review.redraft_text(session, ctx, report_lang=language, who=user.username, lang=lang)
    audit.record(
        "radiology.report.redraft", _resource(ctx), {"version": row.version, "language": language}
    )
    return _answer(session, ctx, lang)


def _write_outputs(
    session: Session,
    settings: Settings,
    ctx: review.StudyContext,
    row: RadiologyReport,
) -> tuple[dict[str, Any], list[Any]]:
    """Build the SR (and the SEG when a nodule is kept), store them as series of the study."""
    report = review.signed_report(row, _detector(ctx))
    sources = _source_datasets(ctx)
    volume = _volume(ctx, settings)
    built: list[tuple[str, Any]] = [("sr", build_sr(report, sources))]
    with contextlib.suppress(NothingToSegment):
        built.append(("seg", build_seg(report, sources, volume.series.hu)))
    outputs: dict[str, Any] = {}
    for kind, ds in built:
        series_uid, sop_uid = str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
        directory = settings.dicom_dir / ctx.study_uid / series_uid
        target = directory / f"{sop_uid}.dcm"
        encoded = io.BytesIO()
        ds.save_as(encoded, enforce_file_format=True)
        # In place only once the signing transaction commits; deleted if it rolls back.
        ingest_store.write_after_commit(session, target, encoded.getvalue())
        session.add(
            m.ImagingSeries(
                study_id=ctx.study.id,
                series_uid=series_uid,
                modality=str(ds.Modality),
                description=str(ds.get("SeriesDescription", kind.upper())),
                instance_count=1,
                storage_path=str(directory),
            )
        )
        outputs[kind] = {
            "series_uid": series_uid,
            "sop_uid": sop_uid,
            "sop_class": str(ds.SOPClassUID),
            "path": str(target.relative_to(settings.home)),
        }
    return outputs, [ds for _, ds in built]


def _pacs_target(settings: Settings) -> tuple[str, str, int] | None:
    if not settings.pacs_ae or not settings.pacs_host or not settings.pacs_port:
        return None
    return settings.pacs_ae, settings.pacs_host, settings.pacs_port


@api.post("/studies/{study_uid}/review/sign")
def sign(
    request: Request,
    study_uid: str,
    user: Reviewer,
    session: SessionDep,
    audit: AuditDep,
    lang: LangDep,
    settings: SettingsDep,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Sign the current draft and write SR/SEG; C-STORE them to the PACS when one is set.

    The C-STORE runs after the response, outside the signing transaction (a slow PACS must not
    hold the database's write lock); its outcome is audited as ``radiology.pacs.send``.
    """
    ctx = _context(session, study_uid)
    row, signed_now = review.sign(session, ctx, user.username, lang)
    pacs: dict[str, Any] | None = None
    if signed_now:
        outputs, datasets = _write_outputs(session, settings, ctx, row)
        row.outputs = outputs
        audit.record(
            "radiology.report.sign",
            _resource(ctx),
            {
                "version": row.version,
                "lung_rads": row.lung_rads.get("category"),
                "kept": len(review.kept(row.nodules)),
                "outputs": {k: v["sop_uid"] for k, v in outputs.items()},
            },
        )
        target = _pacs_target(settings)
        if target is not None:
            pacs = {"queued": True, "ae_title": target[0], "host": target[1], "port": target[2]}
            background.add_task(
                _send_and_audit,
                request.app.state.session_factory,
                user,
                _resource(ctx),
                row.version,
                datasets,
                target,
            )
        session.flush()
    return _answer(session, ctx, lang, signed=signed_now, version=row.version, pacs=pacs)


def _send_and_audit(
    factory: sessionmaker[Session],
    user: Principal,
    resource: str,
    version: int,
    datasets: list[Any],
    target: tuple[str, str, int],
) -> None:
    sent = send_instances(datasets, *target)
    ReadAuditor(factory=factory, principal=user).record(
        "radiology.pacs.send",
        resource,
        {"version": version, "ok": sent.ok, "error": sent.error, "after": "sign"},
    )


@api.post("/studies/{study_uid}/send")
def send_to_pacs(
    study_uid: str,
    user: Viewer,
    session: ReadSessionDep,
    audit: ReadAuditDep,
    lang: LangDep,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    """C-STORE the SR and SEG of a signed version (the newest by default) to the PACS.

    Reads only: the send holds no database lock, and its audit entry is its own transaction.
    """
    import pydicom

    ctx = _context(session, study_uid)
    target = _pacs_target(settings)
    if target is None:
        raise ConflictError("settings", "MEDBRAIN_PACS_AE", t("radiology_review.no_pacs", lang))
    row = _pick_version(session, ctx, version, lang)
    if row.status != "signed" or not row.outputs:
        raise ConflictError(ctx.study_uid, "version", t("radiology_review.no_outputs", lang))
    datasets = [pydicom.dcmread(settings.home / o["path"]) for o in row.outputs.values()]
    sent = send_instances(datasets, *target)
    audit.record(
        "radiology.pacs.send",
        _resource(ctx),
        {"version": row.version, "ok": sent.ok, "error": sent.error},
    )
    return sent.to_dict()


# -- versions and outputs ------------------------------------------------------------------------


@api.get("/studies/{study_uid}/review/versions")
def versions(study_uid: str, user: Viewer, session: ReadSessionDep) -> list[dict[str, Any]]:
    ctx = _context(session, study_uid)
    return [review.version_summary(r) for r in review.list_versions(session, ctx.study.id)]


@api.get("/studies/{study_uid}/review/versions/{version}")
def version_detail(
    study_uid: str,
    version: Annotated[int, PathParam(ge=1, le=100_000)],
    user: Viewer,
    session: ReadSessionDep,
    lang: LangDep,
    audit: ReadAuditDep,
) -> dict[str, Any]:
    ctx = _context(session, study_uid)
    row = review.get_version(session, ctx.study.id, version)
    audit.record("radiology.view", _resource(ctx), {"version": version})
    return review.state_dict(ctx, row, lang)


def _report_for_output(
    session: Session, ctx: review.StudyContext, version: int | None, lang: str
) -> tuple[RadiologyReport | None, Any]:
    review.require_analysis(ctx, lang)
    if version is not None:
        chosen = review.get_version(session, ctx.study.id, version)
        return chosen, review.signed_report(chosen, _detector(ctx))
    latest = review.latest_report(session, ctx.study.id)
    if latest is not None:
        return latest, review.signed_report(latest, _detector(ctx))
    state = review.initial_state(ctx, lang)
    from medbrain.radiology.outputs.model import SignedReport

    return None, SignedReport(
        version=1,
        status="draft",
        language=lang,
        findings=state["findings"],
        impression=state["impression"],
        nodules=tuple(review.kept(state["nodules"])),
        lung_rads=state["lung_rads"],
        detector=_detector(ctx),
    )


@api.get("/studies/{study_uid}/report.pdf")
def report_pdf(
    study_uid: str,
    user: Reader,
    session: ReadSessionDep,
    lang: LangDep,
    audit: ReadAuditDep,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """The report PDF (newest version by default) in the language it was written in."""
    ctx = _context(session, study_uid)
    _, report = _report_for_output(session, ctx, version, lang)
    volume = _volume(ctx, settings)
    pdf = build_pdf(report, review.study_info(session, ctx), volume.series.hu)
    audit.record("radiology.report.pdf", _resource(ctx), {"version": report.version})
    name = f"ct-report-v{report.version}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@api.get("/studies/{study_uid}/fhir")
def report_fhir(
    study_uid: str,
    user: Reader,
    session: ReadSessionDep,
    lang: LangDep,
    audit: ReadAuditDep,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """FHIR R4 Bundle (collection): DiagnosticReport, ImagingStudy, one Observation a nodule."""
    ctx = _context(session, study_uid)
    row, report = _report_for_output(session, ctx, version, lang)
    extra = [
        {
            "uid": o["series_uid"],
            "modality": "SR" if kind == "sr" else "SEG",
            "number": 9001 if kind == "sr" else 9002,
            "instances": [{"uid": o["sop_uid"], "sop_class": o["sop_class"]}],
        }
        for kind, o in ((row.outputs if row is not None else {}) or {}).items()
    ]
    bundle = build_fhir_bundle(report, review.study_info(session, ctx), extra_series=extra)
    audit.record("radiology.report.fhir", _resource(ctx), {"version": report.version})
    return Response(
        json.dumps(bundle, ensure_ascii=False),
        media_type="application/fhir+json",
        headers={"Cache-Control": "no-store"},
    )


def _dicom_output(
    session: Session, settings: Settings, study_uid: str, kind: str, version: int | None, lang: str
) -> tuple[review.StudyContext, int, bytes]:
    ctx = _context(session, study_uid)
    if version is None:
        signed = [r for r in review.list_versions(session, ctx.study.id) if r.status == "signed"]
        if not signed:
            raise NotFoundError(f"{kind.upper()}/{ctx.study_uid}")
        row = signed[-1]
    else:
        row = review.get_version(session, ctx.study.id, version)
    output = (row.outputs or {}).get(kind)
    if output is None:
        raise NotFoundError(f"{kind.upper()}/v{row.version}")
    return ctx, row.version, (settings.home / output["path"]).read_bytes()


@api.get("/studies/{study_uid}/sr")
def report_sr(
    study_uid: str,
    user: Viewer,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    audit: ReadAuditDep,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    ctx, number, data = _dicom_output(session, settings, study_uid, "sr", version, lang)
    audit.record("radiology.report.sr", _resource(ctx), {"version": number})
    return Response(
        data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="sr-v{number}.dcm"'},
    )


@api.get("/studies/{study_uid}/seg")
def report_seg(
    study_uid: str,
    user: Viewer,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    audit: ReadAuditDep,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    ctx, number, data = _dicom_output(session, settings, study_uid, "seg", version, lang)
    audit.record("radiology.report.seg", _resource(ctx), {"version": number})
    return Response(
        data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="seg-v{number}.dcm"'},
    )


@api.get("/feedback")
def feedback(user: FeedbackViewer, session: ReadSessionDep) -> list[dict[str, Any]]:
    """False-positive, miss and accepted counts per detector version (signed reports)."""
    return review.feedback_counts(session)


def study_uids_with_review(session: Session) -> list[str]:
    """UIDs of studies that have a review version (for tests and the demo)."""
    return list(
        session.scalars(
            select(m.ImagingStudy.study_uid)
            .join(RadiologyReport, RadiologyReport.study_id == m.ImagingStudy.id)
            .distinct()
        )
    )
