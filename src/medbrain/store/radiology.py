"""Radiology ingestion, the persisted detection queue and the worklist (issue 5).

Contract (used by the DICOMweb/upload/C-STORE adapters, the viewer and tests)
-----------------------------------------------------------------------------
``ingest_instances(session, settings, items, *, source, actor=None, now=None) -> IngestResult``
    ``items``: pydicom ``Dataset`` objects, ``Path`` s of DICOM Part 10 files, or their
    ``bytes``. Each instance is checked (UIDs, SOP class, pixel data present and long enough),
    stored atomically (temp file + rename) at
    ``<MEDBRAIN_HOME>/dicom/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` and
    registered: ``Patient`` (matched by (0010,0020) PatientID = ``Patient.mrn``; an unknown
    patient is **created** from PatientName/Sex/BirthDate, which for synthetic data are
    synthetic), ``ImagingStudy`` (``status`` ``received``, ``received_at``, ``accession``),
    ``ImagingSeries`` (``storage_path`` = the series directory, ``instance_count`` = files on
    disk) and one :class:`~medbrain.store.radiology_models.RadiologyJob` per series. An instance
    already stored (same SOPInstanceUID) is a duplicate: not rewritten, not counted twice. A bad
    instance is refused with a DICOM status (``FailedInstance``) and the others are kept. The
    caller's transaction commits the rows; files written before a rollback are found again as
    duplicates on the next try, which re-registers them (nothing is lost).

``process_pending(session_factory, settings, *, now=None, limit=None) -> list[int]``
    Runs, synchronously, every job whose series has had no new instance for
    ``settings.series_settle_seconds`` (tests use 0), one at a time; returns the job ids run.
    Progress (``stage`` loading → lungs → detection → report, ``progress`` 0–100) is committed
    as it goes. Results: one :class:`~medbrain.store.radiology_models.CtAnalysis` (``result`` =
    exactly the ``medbrain ct detect --json`` dict), study ``status`` ``ready``, and one
    finding in the radiologist inbox (``store.findings``). Non-CT, non-chest or unloadable
    series end ``skipped`` with the reason in ``error``; an unexpected failure is retried once
    (``waiting``) and then ``failed``. ``error`` holds ``<message key>`` or
    ``<message key>\\t<detail>`` (:func:`error_text` renders it in zh/en).

:class:`RadiologyWorker` runs ``process_pending`` in a background thread (web app lifespan and
``medbrain dicom listen``). Several workers (processes) may share one database: a job is
claimed by a conditional ``UPDATE`` (status unchanged since read), which gives it a lease
(``worker_id``, ``lease_until``) that a heartbeat renews while the job runs. A worker re-queues
only jobs whose lease expired (a crashed worker), at start and then periodically, and a worker
that lost its lease does not write its result (the job is another worker's by then).

Also: ``ingest_instances(..., complete=True)`` (a zip upload: whole series, due at once),
``mark_complete(session, job_ids)`` (C-STORE association released), ``expect_study=`` (STOW-RS
to ``/studies/{uid}``); ``process_in_session`` (demo seeding, in the caller's transaction);
readers ``worklist``, ``latest_jobs``, ``latest_analysis``, ``study_by_uid``,
``instance_files``, ``series_dir``, ``error_text``. SR/SEG/KO/PR instances are stored and
retrievable but get no detection job.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.core.errors import InputError, NotFoundError
from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.core.i18n import catalog, t
from medbrain.radiology.ingest_rules import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_OUT_OF_RESOURCES,
    STATUS_SOP_CLASS_MISMATCH,
    InstanceHeader,
    Refusal,
    check_header,
    is_settled,
    patient_display_name,
    patient_sex,
    skip_reason,
    study_status,
)
from medbrain.store.models import ImagingSeries, ImagingStudy, Patient
from medbrain.store.radiology_models import CtAnalysis, RadiologyJob
from medbrain.store.radiology_risk import apply_configured, ct_config

log = logging.getLogger("medbrain.radiology")

IngestItem = Any  # pydicom Dataset | Path | bytes
MAX_ATTEMPTS = 2
JOB_LEASE_SECONDS = 60.0  # a running job's lease; the heartbeat renews it every third of that
DERIVED_MODALITIES = frozenset({"SR", "SEG", "KO", "PR"})
LUNG_RADS_RANK = {"1": 1, "2": 2, "3": 3, "4A": 4, "4B": 5, "4X": 6}
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


@dataclass(frozen=True, slots=True)
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    path: Path
    duplicate: bool


@dataclass(frozen=True, slots=True)
class FailedInstance:
    """An instance refused: ``status`` is the DICOM failure code, ``key`` a message key."""

    index: int
    sop_instance_uid: str | None
    sop_class_uid: str | None
    status: int
    key: str
    detail: str = ""

    def text(self, lang: str) -> str:
        return error_text(f"{self.key}\t{self.detail}" if self.detail else self.key, lang)


@dataclass(slots=True)
class IngestResult:
    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[FailedInstance] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)
    study_uids: list[str] = field(default_factory=list)

    @property
    def new_count(self) -> int:
        return sum(1 for s in self.stored if not s.duplicate)

    @property
    def duplicate_count(self) -> int:
        return sum(1 for s in self.stored if s.duplicate)

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "stored": self.new_count,
            "duplicates": self.duplicate_count,
            "failed": [
                {
                    "index": f.index,
                    "sop_instance_uid": f.sop_instance_uid,
                    "status": f.status,
                    "reason": f.text(lang),
                }
                for f in self.failed
            ],
            "studies": list(self.study_uids),
            "jobs": list(self.job_ids),
        }


def error_text(stored: str | None, lang: str) -> str:
    """Render a job/instance ``error`` (``key`` or ``key\\tdetail``) in ``lang``."""
    if not stored:
        return ""
    key, _, detail = stored.partition("\t")
    if key in catalog():
        text = t(key, lang)
        return f"{text}: {detail}" if detail else text
    return stored


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- ingestion


def _read(item: IngestItem, index: int) -> tuple[Any, bytes | None] | FailedInstance:
    """Parse one item; returns the dataset and, for file input, its original bytes."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.errors import InvalidDicomError

    if isinstance(item, Dataset):
        return item, None
    try:
        data = item.read_bytes() if isinstance(item, Path) else bytes(item)
    except OSError as exc:
        return FailedInstance(
            index, None, None, STATUS_CANNOT_UNDERSTAND, "radiology_ingest.not_dicom", str(exc)
        )
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.PixelData if "PixelData" in ds else None  # noqa: B018 - force the lazy read
    except (
        InvalidDicomError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        OSError,
        AttributeError,
    ) as exc:
        detail = type(exc).__name__ if not str(exc) else str(exc)[:200]
        return FailedInstance(
            index, None, None, STATUS_CANNOT_UNDERSTAND, "radiology_ingest.not_dicom", detail
        )
    return ds, data


def _pixel_refusal(ds: Any) -> Refusal | None:
    """Image instances must carry pixel data; uncompressed data must be long enough."""
    if "PixelData" not in ds:
        if ds.get("Modality", "") in ("SR", "KO", "PR") or "ContentSequence" in ds:
            return None
        return Refusal(STATUS_SOP_CLASS_MISMATCH, "radiology_ingest.no_pixels", "PixelData")
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "1.2.840.10008.1.2.1")
    if syntax in _UNCOMPRESSED:
        try:
            expected = (
                int(ds.Rows)
                * int(ds.Columns)
                * int(ds.get("SamplesPerPixel", 1) or 1)
                * int(ds.get("NumberOfFrames", 1) or 1)
                * int(ds.BitsAllocated)
                // 8
            )
        except (AttributeError, TypeError, ValueError):
            return Refusal(
                STATUS_SOP_CLASS_MISMATCH,
                "radiology_ingest.bad_image_attributes",
                "Rows/Columns/BitsAllocated",
            )
        if len(ds.PixelData) < expected:
            return Refusal(
                STATUS_SOP_CLASS_MISMATCH,
                "radiology_ingest.truncated_pixels",
                f"{len(ds.PixelData)} < {expected}",
            )
    return None


def _encode(ds: Any) -> bytes:
    """A Part 10 file (preamble, file meta) for a dataset without original bytes."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import ExplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _is_part10(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_STAGED = "medbrain.radiology.staged_files"


def write_after_commit(session: Session, path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden file beside ``path``, moved to ``path`` when ``session`` commits.

    On a rollback (or a failed commit) the hidden file is deleted, with the directories this
    created when they are left empty, so no file exists that no committed row refers to.
    Hidden files (leading dot) are never served (:func:`instance_files`).
    """
    created: list[Path] = []
    for parent in reversed([path.parent, *path.parent.parents]):
        if not parent.exists():
            created.append(parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.pending"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    staged: list[tuple[Path, Path, list[Path]]] | None = session.info.get(_STAGED)
    if staged is None:
        staged = session.info[_STAGED] = []
        event.listen(session, "after_commit", _publish_staged)
        event.listen(session, "after_transaction_end", _discard_staged)
    staged.append((tmp, path, created))


def _publish_staged(session: Session) -> None:
    staged = session.info.get(_STAGED) or []
    while staged:
        tmp, path, _created = staged.pop(0)
        try:
            os.replace(tmp, path)
        except OSError:  # the rows are committed: log loudly, the file can be rebuilt
            log.exception("moving %s into place after commit failed", path)


def _discard_staged(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:  # a savepoint: the outer transaction decides
        return
    staged = session.info.get(_STAGED) or []
    while staged:
        tmp, _path, created = staged.pop()
        tmp.unlink(missing_ok=True)
        for directory in reversed(created):
            with contextlib.suppress(OSError):  # not empty: something else lives there
                directory.rmdir()


def series_dir(settings: Settings, study_uid: str, series_uid: str) -> Path:
    return settings.dicom_dir / study_uid / series_uid


def _count_files(directory: Path) -> int:
    if not directory.is_dir():
        return 0
    return sum(1 for p in directory.iterdir() if p.suffix == ".dcm" and not p.name.startswith("."))


def ingest_instances(
    session: Session,
    settings: Settings,
    items: Iterable[IngestItem],
    *,
    source: str,
    actor: tuple[str, str] | None = None,
    now: datetime | None = None,
    complete: bool = False,
    audit: bool = True,
    expect_study: str | None = None,
) -> IngestResult:
    """Store and register instances, enqueue their series (see the module docstring).

    ``source`` is ``upload``, ``stow`` (DICOMweb), ``cstore:<calling AE>`` or ``demo``;
    ``actor`` ``(username, role)`` is audited (default ``system``; ``audit=False`` when the
    caller audits a batch itself, as the C-STORE SCP does per association). ``complete``: the
    sender delivered whole series (a zip upload), so their jobs are due without settling.
    ``expect_study``: refuse instances of another study (STOW-RS to ``/studies/{uid}``).
    """
    given_now = now
    result = IngestResult()
    headers: dict[str, InstanceHeader] = {}  # series uid -> a header of that series
    new_in_series: dict[str, int] = {}
    study_counts: dict[str, int] = {}
    for index, item in enumerate(items):
        read = _read(item, index)
        if isinstance(read, FailedInstance):
            result.failed.append(read)
            continue
        ds, data = read
        header = check_header(ds)
        refusal = header if isinstance(header, Refusal) else _pixel_refusal(ds)
        if (
            refusal is None
            and expect_study
            and isinstance(header, InstanceHeader)
            and header.study_uid != expect_study
        ):
            refusal = Refusal(
                STATUS_SOP_CLASS_MISMATCH, "radiology_ingest.stow_wrong_study", expect_study
            )
        if refusal is not None:
            result.failed.append(
                FailedInstance(
                    index,
                    str(ds.get("SOPInstanceUID", "")) or None,
                    str(ds.get("SOPClassUID", "")) or None,
                    refusal.status,
                    refusal.key,
                    refusal.detail,
                )
            )
            continue
        assert isinstance(header, InstanceHeader)
        existing = headers.get(header.series_uid)
        if existing is not None and existing.study_uid != header.study_uid:
            result.failed.append(
                FailedInstance(
                    index,
                    header.sop_instance_uid,
                    header.sop_class_uid,
                    STATUS_SOP_CLASS_MISMATCH,
                    "radiology_ingest.series_in_two_studies",
                    header.series_uid,
                )
            )
            continue
        target = series_dir(settings, header.study_uid, header.series_uid) / (
            header.sop_instance_uid + ".dcm"
        )
        duplicate = target.exists()
        if not duplicate:
            if header.study_uid not in study_counts:
                study_root = settings.dicom_dir / header.study_uid
                study_counts[header.study_uid] = (
                    sum(_count_files(p) for p in study_root.iterdir() if p.is_dir())
                    if study_root.is_dir()
                    else 0
                )
            if study_counts[header.study_uid] >= settings.max_study_instances:
                result.failed.append(
                    FailedInstance(
                        index,
                        header.sop_instance_uid,
                        header.sop_class_uid,
                        STATUS_OUT_OF_RESOURCES,
                        "radiology_ingest.study_too_large",
                        str(settings.max_study_instances),
                    )
                )
                continue
            payload = data if data is not None and _is_part10(data) else _encode(ds)
            atomic_write(target, payload)
            study_counts[header.study_uid] += 1
            new_in_series[header.series_uid] = new_in_series.get(header.series_uid, 0) + 1
        headers.setdefault(header.series_uid, header)
        result.stored.append(
            StoredInstance(
                header.study_uid,
                header.series_uid,
                header.sop_instance_uid,
                header.sop_class_uid,
                target,
                duplicate,
            )
        )
    now = given_now or _utcnow()  # after the files: the settle time counts from the last one
    if headers:
        _register(session, settings, headers, new_in_series, result, now=now, complete=complete)
    if headers and audit:
        who, role = actor or ("system", "system")
        chain.append(
            session,
            who=who,
            role=role,
            action="radiology.ingest",
            resource="ImagingStudy/" + ",".join(result.study_uids)[:200],
            detail={
                "source": source,
                "stored": result.new_count,
                "duplicates": result.duplicate_count,
                "failed": len(result.failed),
            },
        )
    return result


def _parse_da(value: str) -> date | None:
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date() if len(value) >= 8 else None
    except ValueError:
        return None


def _study_started(header: InstanceHeader, settings: Settings) -> datetime | None:
    day = _parse_da(header.study_date)
    if day is None:
        return None
    digits = "".join(ch for ch in header.study_time.split(".")[0] if ch.isdigit()).ljust(6, "0")
    try:
        hh, mm, ss = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
        local = datetime(day.year, day.month, day.day, hh, mm, min(ss, 59))
    except ValueError:
        local = datetime(day.year, day.month, day.day)
    try:
        zone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return local.replace(tzinfo=zone).astimezone(UTC)


def _patient_for(session: Session, header: InstanceHeader) -> Patient:
    """Match by PatientID = MRN; create the patient from the DICOM header when unknown."""
    from medbrain.interop.fhir.names import name_keys

    mrn = header.patient_id.strip()[:64]
    if not mrn:  # anonymous study: one synthetic MRN per study
        mrn = "DICOM-" + hashlib.sha256(header.study_uid.encode()).hexdigest()[:12].upper()
    patient = session.scalars(select(Patient).where(Patient.mrn == mrn)).first()
    if patient is not None:
        return patient
    name = patient_display_name(header.patient_name)[:128] or mrn
    keys = name_keys(name)
    patient = Patient(
        mrn=mrn,
        name=name,
        name_pinyin=keys.pinyin,
        name_initials=keys.initials,
        sex=patient_sex(header.patient_sex),
        birth_date=_parse_da(header.patient_birth_date),
    )
    session.add(patient)
    session.flush()
    return patient


def _register(
    session: Session,
    settings: Settings,
    headers: dict[str, InstanceHeader],
    new_in_series: dict[str, int],
    result: IngestResult,
    *,
    now: datetime,
    complete: bool,
) -> None:
    studies: dict[str, ImagingStudy] = {}
    for series_uid, header in headers.items():
        study = studies.get(header.study_uid)
        if study is None:
            study = session.scalars(
                select(ImagingStudy).where(ImagingStudy.study_uid == header.study_uid)
            ).first()
            if study is None:
                patient = _patient_for(session, header)
                study = ImagingStudy(
                    study_uid=header.study_uid,
                    patient_id=patient.id,
                    modality=header.modality[:16] or None,
                    description=header.study_description[:256] or None,
                    started_at=_study_started(header, settings),
                    status="received",
                    accession=header.accession[:64] or None,
                    received_at=now,
                )
                session.add(study)
                session.flush()
            elif study.received_at is None:
                study.received_at = now
            studies[header.study_uid] = study
            if header.study_uid not in result.study_uids:
                result.study_uids.append(header.study_uid)
        directory = series_dir(settings, header.study_uid, series_uid)
        series = session.scalars(
            select(ImagingSeries).where(ImagingSeries.series_uid == series_uid)
        ).first()
        if series is None:
            series = ImagingSeries(
                study_id=study.id,
                series_uid=series_uid,
                modality=header.modality[:16] or None,
                body_part=header.body_part[:64] or None,
                description=header.series_description[:256] or None,
            )
            session.add(series)
        series.storage_path = str(directory)
        series.instance_count = _count_files(directory)
        if study.modality is None and header.modality:
            study.modality = header.modality[:16]
        if header.modality in DERIVED_MODALITIES:
            continue  # SR/SEG/KO/PR: stored and retrievable, nothing to detect
        job = _latest_job(session, study.id, series_uid)
        added = new_in_series.get(series_uid, 0)
        if job is None or (added and job.status not in ("received", "waiting")):
            job = RadiologyJob(
                study_id=study.id,
                series_uid=series_uid,
                status="received",
                progress=0,
                attempts=0,
                received_at=now,
                last_instance_at=now,
                complete=complete,
            )
            session.add(job)
        elif added:
            job.last_instance_at = now
            job.status = "received"
            job.complete = complete
        session.flush()
        if job.id not in result.job_ids:
            result.job_ids.append(job.id)
    for study in studies.values():
        refresh_study_status(session, study)


def _latest_job(session: Session, study_id: int, series_uid: str) -> RadiologyJob | None:
    return session.scalars(
        select(RadiologyJob)
        .where(RadiologyJob.study_id == study_id, RadiologyJob.series_uid == series_uid)
        .order_by(RadiologyJob.id.desc())
        .limit(1)
    ).first()


def mark_complete(session: Session, job_ids: Iterable[int]) -> None:
    """The sender finished (C-STORE association released): these jobs need not settle."""
    ids = list(job_ids)
    if ids:
        session.execute(
            update(RadiologyJob)
            .where(RadiologyJob.id.in_(ids), RadiologyJob.status.in_(("received", "waiting")))
            .values(complete=True)
            .execution_options(synchronize_session=False)
        )


def latest_jobs(session: Session, study_id: int) -> list[RadiologyJob]:
    """The newest job of each series of a study."""
    jobs = session.scalars(
        select(RadiologyJob).where(RadiologyJob.study_id == study_id).order_by(RadiologyJob.id)
    ).all()
    newest: dict[str, RadiologyJob] = {}
    for job in jobs:
        newest[job.series_uid] = job
    return list(newest.values())


def refresh_study_status(session: Session, study: ImagingStudy) -> None:
    statuses = [job.status for job in latest_jobs(session, study.id)]
    study.status = study_status(statuses, study.status)


# --------------------------------------------------------------------------- processing


def new_worker_id() -> str:
    """``host:pid:random``: unique per worker, readable in the job row."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]


def _lease_expired(now: datetime) -> Any:
    return (RadiologyJob.lease_until.is_(None)) | (RadiologyJob.lease_until < now)


def has_expired_leases(read_factory: sessionmaker[Session], *, now: datetime | None = None) -> bool:
    """Any ``processing`` job whose worker stopped renewing its lease (read-only)."""
    with read_factory() as session, session.begin():
        return (
            session.scalar(
                select(RadiologyJob.id)
                .where(RadiologyJob.status == "processing", _lease_expired(now or _utcnow()))
                .limit(1)
            )
            is not None
        )


def recover_interrupted(
    session_factory: sessionmaker[Session], *, now: datetime | None = None
) -> int:
    """Re-queue ``processing`` jobs whose lease expired (their worker died); returns how many.

    A job another live worker is running (lease still valid) is left alone. Each job is
    re-queued by a conditional ``UPDATE`` so a worker renewing its lease at the same moment wins.
    """
    clock = now or _utcnow()
    requeued = 0
    with session_factory() as session, session.begin():
        jobs = session.scalars(
            select(RadiologyJob).where(RadiologyJob.status == "processing", _lease_expired(clock))
        ).all()
        for job in jobs:
            done = session.execute(
                update(RadiologyJob)
                .where(
                    RadiologyJob.id == job.id,
                    RadiologyJob.status == "processing",
                    _lease_expired(clock),
                )
                .values(
                    status="received",
                    progress=0,
                    stage=None,
                    error="radiology_ingest.requeued",
                    worker_id=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 0) != 1:
                continue
            requeued += 1
            session.refresh(job)
            study = session.get(ImagingStudy, job.study_id)
            if study is not None:
                refresh_study_status(session, study)
        return requeued


def _claim_next(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime | None,
    worker_id: str | None = None,
    lease_seconds: float = JOB_LEASE_SECONDS,
) -> int | None:
    """Claim the oldest due job for ``worker_id``; ``None`` when there is none (or another won)."""
    worker = worker_id or new_worker_id()
    with session_factory() as session, session.begin():
        candidates = session.scalars(
            select(RadiologyJob)
            .where(RadiologyJob.status.in_(("received", "waiting")))
            .order_by(RadiologyJob.received_at, RadiologyJob.id)
        ).all()
        clock = now or _utcnow()
        for job in candidates:
            if not job.complete and not is_settled(
                job.last_instance_at, clock, settings.series_settle_seconds
            ):
                continue
            claimed = session.execute(
                update(RadiologyJob)
                .where(RadiologyJob.id == job.id, RadiologyJob.status == job.status)
                .values(
                    status="processing",
                    progress=0,
                    stage="loading",
                    started_at=_utcnow(),
                    finished_at=None,
                    attempts=RadiologyJob.attempts + 1,
                    worker_id=worker,
                    lease_until=_utcnow() + timedelta(seconds=lease_seconds),
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                continue
            session.refresh(job)
            study = session.get(ImagingStudy, job.study_id)
            if study is not None:
                refresh_study_status(session, study)
            return job.id
    return None


def _held_by(job_id: int, worker_id: str | None) -> Any:
    where = (RadiologyJob.id == job_id) & (RadiologyJob.status == "processing")
    return where & (RadiologyJob.worker_id == worker_id) if worker_id is not None else where


def renew_lease(
    session_factory: sessionmaker[Session],
    job_id: int,
    worker_id: str,
    lease_seconds: float = JOB_LEASE_SECONDS,
) -> bool:
    """Extend this worker's lease on a running job; ``False`` when it no longer holds it."""
    with session_factory() as session, session.begin():
        done = session.execute(
            update(RadiologyJob)
            .where(_held_by(job_id, worker_id))
            .values(lease_until=_utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        return getattr(done, "rowcount", 0) == 1


class _Heartbeat:
    """Renews a job's lease every third of the lease while the job runs (daemon thread)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        job_id: int,
        worker_id: str | None,
        lease_seconds: float,
    ) -> None:
        self._args = (session_factory, job_id, worker_id, lease_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self._args[2] is not None:
            self._thread = threading.Thread(target=self._beat, name="radiology-lease", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _beat(self) -> None:
        factory, job_id, worker_id, lease_seconds = self._args
        assert worker_id is not None
        while not self._stop.wait(max(lease_seconds / 3, 0.05)):
            try:
                if not renew_lease(factory, job_id, worker_id, lease_seconds):
                    return
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("renewing the lease of radiology job %s failed", job_id)


def _set_progress(
    session_factory: sessionmaker[Session],
    job_id: int,
    progress: int,
    stage: str,
    worker_id: str | None = None,
) -> None:
    with session_factory() as session, session.begin():
        session.execute(
            update(RadiologyJob)
            .where(_held_by(job_id, worker_id))
            .values(progress=progress, stage=stage)
            .execution_options(synchronize_session=False)
        )


def _finish(
    session_factory: sessionmaker[Session],
    job_id: int,
    status: str,
    *,
    error: str | None = None,
    analysis: dict[str, Any] | None = None,
    detector_version: str | None = None,
    lang: str = "zh",
    worker_id: str | None = None,
) -> None:
    with session_factory() as session, session.begin():
        job = session.get(RadiologyJob, job_id)
        if job is None:
            return
        if worker_id is not None and (job.status != "processing" or job.worker_id != worker_id):
            log.warning("radiology job %s: lease lost by %s, result dropped", job_id, worker_id)
            return
        study = session.get(ImagingStudy, job.study_id)
        job.status = status
        job.error = error[:2000] if error else None
        job.finished_at = _utcnow()
        job.lease_until = None
        job.progress = 100 if status == "ready" else job.progress
        job.stage = "report" if status == "ready" else job.stage
        if detector_version:
            job.detector_version = detector_version[:64]
        if analysis is not None and study is not None:
            row = CtAnalysis(
                study_id=study.id,
                series_uid=job.series_uid,
                job_id=job.id,
                detector_version=(detector_version or "unknown")[:64],
                result=analysis,
            )
            session.add(row)
            session.flush()
            _save_finding(session, study, row, lang)
        if study is not None:
            session.flush()
            refresh_study_status(session, study)
        chain.append(
            session,
            who="system",
            role="system",
            action=f"radiology.job.{status}",
            resource=f"RadiologyJob/{job_id}",
            detail=(
                {"error": (error or "").split("\t")[0]}
                if error
                else {"guideline": analysis.get("guideline")}
                if analysis is not None
                else {}
            ),
        )


def _save_finding(session: Session, study: ImagingStudy, row: CtAnalysis, lang: str) -> None:
    """One radiologist-inbox finding per analysis that found nodules."""
    from medbrain.store.findings import save_findings

    result = row.result
    nodules = result.get("nodules") or []
    if not nodules:
        return
    category = str((result.get("lung_rads") or {}).get("category", ""))
    rank = LUNG_RADS_RANK.get(category, 0)
    severity = Severity.CRITICAL if rank >= 5 else Severity.WARNING if rank >= 3 else Severity.INFO
    impression = str((result.get("report") or {}).get("impression", ""))
    finding = Finding(
        rule_id="imaging.lung_nodules",
        category="lung_nodule",
        severity=severity,
        message=t(
            "radiology_ingest.finding_message", lang, count=len(nodules), category=category or "-"
        ),
        suggestion=impression[:2000],
        evidence=(
            Evidence(
                source="Lung-RADS v2022 (ACR)",
                resource=f"ImagingStudy/{study.id}",
            ),
        ),
        confidence=float(max(n.get("score", 0.0) for n in nodules)),
        needs_review=True,
        extra={"study_uid": study.study_uid, "ct_analysis_id": row.id, "lung_rads": category},
    )
    save_findings(
        session,
        [finding],
        engine="imaging",
        target_role="radiologist",
        patient_id=study.patient_id,
        subject=f"ImagingStudy/{study.id}",
    )


class _ProgressDetector:
    """Wraps a detector to report that lung segmentation ended and detection began."""

    def __init__(self, inner: Any, on_start: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self._on_start = on_start

    def detect(self, hu: Any, lung_mask: Any, spacing_zyx: tuple[float, float, float]) -> Any:
        self._on_start()
        return self.inner.detect(hu, lung_mask, spacing_zyx)


def _series_header(directory: Path) -> Any | None:
    import pydicom

    for path in sorted(directory.glob("*.dcm")):
        try:
            return pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # any unreadable file: try the next one
            continue
    return None


def run_job(
    session_factory: sessionmaker[Session],
    settings: Settings,
    job_id: int,
    *,
    worker_id: str | None = None,
    lease_seconds: float = JOB_LEASE_SECONDS,
) -> str:
    """Process one claimed job; returns its final status.

    With ``worker_id`` (the claimer), the lease is renewed while the job runs and progress and
    the result are written only while this worker still holds the job.
    """
    with _Heartbeat(session_factory, job_id, worker_id, lease_seconds):
        return _run_job(session_factory, settings, job_id, worker_id)


def _run_job(
    session_factory: sessionmaker[Session], settings: Settings, job_id: int, worker_id: str | None
) -> str:
    from medbrain.imaging.errors import NoLungsError
    from medbrain.imaging.io import load_dicom_dir
    from medbrain.imaging.pipeline import DetectOptions, default_detector, detect_series

    lang = settings.default_lang
    with session_factory() as session:
        job = session.get(RadiologyJob, job_id)
        if job is None:
            return "missing"
        series = session.scalars(
            select(ImagingSeries).where(ImagingSeries.series_uid == job.series_uid)
        ).first()
        directory = Path(series.storage_path) if series and series.storage_path else None
        study_id = job.study_id
    if directory is None or not directory.is_dir():
        _finish(
            session_factory,
            job_id,
            worker_id=worker_id,
            status="failed",
            error="radiology_ingest.files_missing",
        )
        return "failed"
    started = time.perf_counter()
    try:
        header = _series_header(directory)
        if header is None:
            _finish(
                session_factory,
                job_id,
                worker_id=worker_id,
                status="skipped",
                error="radiology_ingest.skip_unloadable",
            )
            return "skipped"
        reason = skip_reason(
            str(header.get("Modality", "")).upper(),
            str(header.get("SOPClassUID", "")),
            str(header.get("BodyPartExamined", "") or ""),
        )
        if reason is not None:
            detail = f"{header.get('Modality', '')} {header.get('BodyPartExamined', '') or ''}"
            _finish(
                session_factory,
                job_id,
                worker_id=worker_id,
                status="skipped",
                error=f"{reason}\t{detail.strip()}",
            )
            return "skipped"
        _set_progress(session_factory, job_id, 10, "loading", worker_id)
        try:
            loaded = load_dicom_dir(directory)
        except InputError as exc:
            _finish(
                session_factory,
                job_id,
                "skipped",
                worker_id=worker_id,
                error=f"radiology_ingest.skip_unloadable\t{exc.field}: {exc.problem}",
            )
            return "skipped"
        _set_progress(session_factory, job_id, 35, "lungs", worker_id)
        detector = _ProgressDetector(
            default_detector(),
            lambda: _set_progress(session_factory, job_id, 55, "detection", worker_id),
        )
        version = f"{detector.name}:{detector.version}"
        options = DetectOptions(lang=lang, risk=ct_config(settings).risk)
        try:
            result = detect_series(loaded, options, detector=detector)
        except NoLungsError:
            _finish(
                session_factory,
                job_id,
                worker_id=worker_id,
                status="skipped",
                error="radiology_ingest.skip_no_lungs",
            )
            return "skipped"
        with session_factory() as session:  # configured guideline, Brock from the record
            study_row = session.get(ImagingStudy, study_id)
            if study_row is not None:
                result = apply_configured(
                    session, settings, study_row, result, lang, loaded.hu.shape[0]
                )
        result["seconds"] = round(time.perf_counter() - started, 3)
        _set_progress(session_factory, job_id, 90, "report", worker_id)
        _finish(
            session_factory,
            job_id,
            "ready",
            worker_id=worker_id,
            analysis=result,
            detector_version=version,
            lang=lang,
        )
        return "ready"
    except Exception as exc:  # recorded on the job, shown in the worklist
        log.exception("radiology job %s failed", job_id)
        with session_factory() as session:
            job = session.get(RadiologyJob, job_id)
            attempts = job.attempts if job is not None else MAX_ATTEMPTS
        status = "waiting" if attempts < MAX_ATTEMPTS else "failed"
        detail = f"{type(exc).__name__}: {exc}"[:500]
        _finish(
            session_factory,
            job_id,
            worker_id=worker_id,
            status=status,
            error=f"radiology_ingest.job_error\t{detail}",
        )
        return status


def process_in_session(session: Session, settings: Settings, job_id: int) -> CtAnalysis | None:
    """Run one job inside the caller's transaction (demo seeding); no progress updates.

    Only for small series: the caller holds its transaction (and SQLite's write lock) for the
    whole detection. Non-chest-CT series end ``skipped`` as in :func:`run_job`.
    """
    from medbrain.imaging.io import load_dicom_dir
    from medbrain.imaging.pipeline import DetectOptions, default_detector, detect_series

    job = session.get(RadiologyJob, job_id)
    if job is None:
        raise NotFoundError(f"RadiologyJob/{job_id}")
    study = session.get(ImagingStudy, job.study_id)
    assert study is not None
    directory = series_dir(settings, study.study_uid, job.series_uid)
    started = time.perf_counter()
    job.status, job.started_at, job.attempts = "processing", _utcnow(), job.attempts + 1
    header = _series_header(directory)
    reason = (
        "radiology_ingest.skip_unloadable"
        if header is None
        else skip_reason(
            str(header.get("Modality", "")).upper(),
            str(header.get("SOPClassUID", "")),
            str(header.get("BodyPartExamined", "") or ""),
        )
    )
    analysis = None
    if reason is not None:
        job.status, job.error = "skipped", reason
    else:
        detector = default_detector()
        lang = settings.default_lang
        options = DetectOptions(lang=lang, risk=ct_config(settings).risk)
        loaded = load_dicom_dir(directory)
        result = detect_series(loaded, options)
        result = apply_configured(session, settings, study, result, lang, loaded.hu.shape[0])
        result["seconds"] = round(time.perf_counter() - started, 3)
        version = f"{detector.name}:{detector.version}"[:64]
        analysis = CtAnalysis(
            study_id=study.id,
            series_uid=job.series_uid,
            job_id=job.id,
            detector_version=version,
            result=result,
        )
        session.add(analysis)
        session.flush()
        _save_finding(session, study, analysis, settings.default_lang)
        job.status, job.progress, job.stage, job.detector_version = "ready", 100, "report", version
    job.finished_at = _utcnow()
    session.flush()
    refresh_study_status(session, study)
    return analysis


def has_pending(read_factory: sessionmaker[Session]) -> bool:
    """Any job waiting to run (read-only: no write lock for the worker's idle polls)."""
    with read_factory() as session, session.begin():
        return (
            session.scalar(
                select(RadiologyJob.id)
                .where(RadiologyJob.status.in_(("received", "waiting")))
                .limit(1)
            )
            is not None
        )


def process_pending(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    worker_id: str | None = None,
    lease_seconds: float = JOB_LEASE_SECONDS,
) -> list[int]:
    """Run every due job now, one after another, as ``worker_id`` (a fresh id by default)."""
    worker = worker_id or new_worker_id()
    done: list[int] = []
    while limit is None or len(done) < limit:
        job_id = _claim_next(session_factory, settings, now, worker, lease_seconds)
        if job_id is None:
            break
        run_job(session_factory, settings, job_id, worker_id=worker, lease_seconds=lease_seconds)
        done.append(job_id)
    return done


class RadiologyWorker:
    """A daemon thread that runs due jobs; :meth:`wake` after an ingest skips the poll wait."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = JOB_LEASE_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.worker_id = new_worker_id()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            recover_interrupted(self.session_factory)
        except Exception:  # a worker that cannot recover still processes
            log.exception("re-queueing interrupted radiology jobs failed")
        self._thread = threading.Thread(target=self._run, name="medbrain-radiology", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        from medbrain.store.db import make_read_session_factory

        bind = self.session_factory.kw.get("bind")
        reader = make_read_session_factory(bind) if bind is not None else self.session_factory
        next_recovery = time.monotonic() + self.lease_seconds
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_recovery:  # a peer worker died mid-job
                    next_recovery = time.monotonic() + self.lease_seconds
                    if has_expired_leases(reader):
                        recover_interrupted(self.session_factory)
                while (
                    not self._stop.is_set()
                    and has_pending(reader)
                    and process_pending(
                        self.session_factory,
                        self.settings,
                        limit=1,
                        worker_id=self.worker_id,
                        lease_seconds=self.lease_seconds,
                    )
                ):
                    pass
            except Exception:  # keep the worker alive (database restart...)
                log.exception("radiology worker pass failed")
            wait = self.poll_seconds
            if self.settings.series_settle_seconds > 0:
                wait = min(wait, max(self.settings.series_settle_seconds / 4, 0.1))
            self._wake.wait(wait)
            self._wake.clear()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class WorklistRow:
    study_id: int
    study_uid: str
    patient_id: int
    patient_name: str
    mrn: str
    modality: str | None
    description: str | None
    accession: str | None
    status: str
    progress: int | None
    stage: str | None
    error: str | None
    lung_rads: str | None
    nodule_count: int | None
    series_count: int
    instance_count: int
    received_at: datetime | None

    def to_dict(self, lang: str, now: datetime) -> dict[str, Any]:
        return {
            "study_id": self.study_id,
            "study_uid": self.study_uid,
            "patient": {"id": self.patient_id, "name": self.patient_name, "mrn": self.mrn},
            "modality": self.modality,
            "description": self.description,
            "accession": self.accession,
            "status": self.status,
            "progress": self.progress,
            "stage": self.stage,
            "error": error_text(self.error, lang) or None,
            "lung_rads": self.lung_rads,
            "nodules": self.nodule_count,
            "series": self.series_count,
            "instances": self.instance_count,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "waiting_seconds": (
                int((now - self.received_at).total_seconds()) if self.received_at else None
            ),
            "viewer_url": f"/radiology/studies/{self.study_uid}",
        }


def latest_analysis(session: Session, study_id: int) -> CtAnalysis | None:
    return session.scalars(
        select(CtAnalysis)
        .where(CtAnalysis.study_id == study_id)
        .order_by(CtAnalysis.id.desc())
        .limit(1)
    ).first()


def latest_signed_reports(session: Session, study_ids: list[int]) -> dict[int, Any]:
    """``{study_id: newest signed RadiologyReport}`` for the studies that have one."""
    from medbrain.store.radiology_review_models import RadiologyReport

    if not study_ids:
        return {}
    newest = (
        select(RadiologyReport.study_id, func.max(RadiologyReport.version).label("version"))
        .where(RadiologyReport.study_id.in_(study_ids), RadiologyReport.status == "signed")
        .group_by(RadiologyReport.study_id)
        .subquery()
    )
    rows = session.scalars(
        select(RadiologyReport).join(
            newest,
            (RadiologyReport.study_id == newest.c.study_id)
            & (RadiologyReport.version == newest.c.version),
        )
    ).all()
    return {row.study_id: row for row in rows}


def worklist(session: Session, *, limit: int = 200) -> list[WorklistRow]:
    """Studies that arrived as DICOM: unsigned first, highest Lung-RADS, longest waiting.

    Lung-RADS and the nodule count come from the radiologist's newest signed report when there
    is one (rejected nodules not counted), else from the detector's latest analysis.
    """
    studies = session.execute(
        select(ImagingStudy, Patient)
        .join(Patient, Patient.id == ImagingStudy.patient_id)
        .where(ImagingStudy.received_at.is_not(None))
        .order_by(ImagingStudy.received_at.desc())
        .limit(limit)
    ).all()
    ids = [s.id for s, _ in studies]
    series_stats: dict[int, tuple[int, int]] = {}
    if ids:
        for study_id, n, total in session.execute(
            select(
                ImagingSeries.study_id,
                func.count(ImagingSeries.id),
                func.coalesce(func.sum(ImagingSeries.instance_count), 0),
            )
            .where(ImagingSeries.study_id.in_(ids))
            .group_by(ImagingSeries.study_id)
        ):
            series_stats[study_id] = (int(n), int(total))
    signed = latest_signed_reports(session, ids)
    rows: list[WorklistRow] = []
    for study, patient in studies:
        jobs = latest_jobs(session, study.id)
        processing = [j for j in jobs if j.status == "processing"]
        errors = [j.error for j in jobs if j.status in ("failed", "skipped") and j.error]
        analysis = latest_analysis(session, study.id)
        lung_rads = None
        nodules = None
        report = signed.get(study.id)
        if report is not None:
            lung_rads = str((report.lung_rads or {}).get("category") or "") or None
            nodules = sum(1 for n in report.nodules or [] if n.get("decision") != "rejected")
        elif analysis is not None:
            lung_rads = str((analysis.result.get("lung_rads") or {}).get("category") or "") or None
            nodules = len(analysis.result.get("nodules") or [])
        n_series, n_instances = series_stats.get(study.id, (0, 0))
        rows.append(
            WorklistRow(
                study_id=study.id,
                study_uid=study.study_uid,
                patient_id=patient.id,
                patient_name=patient.name,
                mrn=patient.mrn,
                modality=study.modality,
                description=study.description,
                accession=study.accession,
                status=study.status,
                progress=min(j.progress for j in processing) if processing else None,
                stage=processing[0].stage if processing else None,
                error=errors[0] if errors else None,
                lung_rads=lung_rads,
                nodule_count=nodules,
                series_count=n_series,
                instance_count=n_instances,
                received_at=study.received_at,
            )
        )
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows.sort(
        key=lambda r: (
            r.status == "signed",
            -LUNG_RADS_RANK.get(r.lung_rads or "", 0),
            r.received_at or epoch,
        )
    )
    return rows


def study_by_uid(session: Session, study_uid: str) -> ImagingStudy:
    study = session.scalars(select(ImagingStudy).where(ImagingStudy.study_uid == study_uid)).first()
    if study is None:
        raise NotFoundError(f"ImagingStudy/{study_uid}")
    return study


def instance_files(settings: Settings, study_uid: str, series_uid: str | None = None) -> list[Path]:
    """Stored files of a study (or one series), sorted by path; UIDs must be valid."""
    from medbrain.radiology.ingest_rules import valid_uid

    if not valid_uid(study_uid) or (series_uid is not None and not valid_uid(series_uid)):
        return []
    root = settings.dicom_dir / study_uid
    dirs = [root / series_uid] if series_uid else sorted(p for p in root.glob("*") if p.is_dir())
    files: list[Path] = []
    for directory in dirs:
        if directory.is_dir():
            files.extend(sorted(p for p in directory.glob("*.dcm") if not p.name.startswith(".")))
    return files
