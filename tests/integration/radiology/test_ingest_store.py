"""Ingest → queue → detection on the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.config import Settings
from medbrain.imaging.io import load_dicom_dir
from medbrain.imaging.pipeline import detect_series
from medbrain.store import radiology as store
from medbrain.store.models import FindingRecord, ImagingSeries, ImagingStudy, Patient
from medbrain.store.radiology_models import CtAnalysis, RadiologyJob
from tests.integration.radiology._ingest_support import write_series


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct") / "s1", seed=11)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, series_settle_seconds=0)


def _ingest(factory: sessionmaker[Session], settings: Settings, items: list) -> store.IngestResult:  # type: ignore[type-arg]
    with factory() as session, session.begin():
        return store.ingest_instances(session, settings, items, source="test")


def test_ingest_process_gives_the_ct_detect_result(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    result = _ingest(session_factory, settings, series_files)
    assert (result.new_count, result.duplicate_count, result.failed) == (40, 0, [])
    study_uid = result.study_uids[0]
    first = pydicom.dcmread(series_files[0], stop_before_pixels=True)
    stored_dir = settings.dicom_dir / study_uid / str(first.SeriesInstanceUID)
    assert len(list(stored_dir.glob("*.dcm"))) == 40
    assert (stored_dir / f"{first.SOPInstanceUID}.dcm").read_bytes() == series_files[0].read_bytes()
    assert not list(stored_dir.glob(".*"))  # no temp file left behind
    with session_factory() as session:
        study = session.scalars(select(ImagingStudy)).one()
        assert study.status == "received" and study.received_at is not None
        patient = session.get(Patient, study.patient_id)
        assert patient is not None and patient.mrn == "SYN000011"

    assert store.process_pending(session_factory, settings) == result.job_ids
    expected = detect_series(load_dicom_dir(stored_dir))
    with session_factory() as session:
        job = session.get(RadiologyJob, result.job_ids[0])
        assert job is not None
        assert (job.status, job.progress, job.stage, job.error) == ("ready", 100, "report", None)
        assert job.detector_version and job.finished_at is not None
        analysis = session.scalars(select(CtAnalysis)).one()
        assert analysis.job_id == job.id
        assert analysis.result["series_uid"] == str(first.SeriesInstanceUID)
        assert [n["center_voxel"] for n in analysis.result["nodules"]] == [
            n["center_voxel"] for n in expected["nodules"]
        ]
        assert analysis.result["lung_rads"]["category"] == expected["lung_rads"]["category"]
        study = session.scalars(select(ImagingStudy)).one()
        assert study.status == "ready"
        if expected["nodules"]:
            finding = session.scalars(select(FindingRecord)).one()
            assert finding.target_role == "radiologist"
            assert finding.extra["study_uid"] == study_uid
        rows = store.worklist(session)
        assert [(r.study_uid, r.status, r.instance_count) for r in rows] == [
            (study_uid, "ready", 40)
        ]
    assert store.process_pending(session_factory, settings) == []  # nothing left to do


def test_duplicates_are_ignored_and_new_instances_requeue(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    first = _ingest(session_factory, settings, series_files[:30])
    again = _ingest(session_factory, settings, series_files[:30])
    assert (again.new_count, again.duplicate_count) == (0, 30)
    assert again.job_ids == first.job_ids  # same queued job, not a second one
    store.process_pending(session_factory, settings)
    rest = _ingest(session_factory, settings, series_files[25:])  # 5 duplicates, 10 new
    assert (rest.new_count, rest.duplicate_count) == (10, 5)
    assert rest.job_ids != first.job_ids  # the completed series is analysed again
    with session_factory() as session:
        series = session.scalars(select(ImagingSeries)).one()
        assert series.instance_count == 40
        assert session.scalar(select(func.count(RadiologyJob.id))) == 2


def test_series_waits_for_the_settle_time(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    slow = Settings(home=settings.home, database_url="", series_settle_seconds=10)
    result = _ingest(session_factory, slow, series_files)
    now = datetime.now(UTC)
    assert store.process_pending(session_factory, slow, now=now) == []
    assert store.process_pending(session_factory, slow, now=now + timedelta(seconds=11)) == (
        result.job_ids
    )


def test_interrupted_job_is_requeued_after_restart(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    result = _ingest(session_factory, settings, series_files)
    job_id = result.job_ids[0]
    with session_factory() as session, session.begin():  # a worker died mid-job
        job = session.get(RadiologyJob, job_id)
        assert job is not None
        job.status, job.progress, job.attempts = "processing", 55, 1
        job.started_at = datetime.now(UTC)
    assert store.process_pending(session_factory, settings) == []  # not picked twice
    assert store.recover_interrupted(session_factory) == 1
    assert store.process_pending(session_factory, settings) == [job_id]
    with session_factory() as session:
        job = session.get(RadiologyJob, job_id)
        assert job is not None and job.status == "ready" and job.attempts == 2


def test_non_ct_is_stored_and_skipped_with_a_reason(
    session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    files = write_series(tmp_path / "mr", seed=12, modality="MR")[:5]
    result = _ingest(session_factory, settings, files)
    assert result.new_count == 5
    store.process_pending(session_factory, settings)
    with session_factory() as session:
        job = session.get(RadiologyJob, result.job_ids[0])
        assert job is not None and job.status == "skipped"
        assert store.error_text(job.error, "en").startswith("not a CT image series")
        assert "不是 CT" in store.error_text(job.error, "zh")
        assert session.scalar(select(func.count(CtAnalysis.id))) == 0
        (row,) = store.worklist(session)
        assert row.status == "skipped" and row.error == job.error


def test_bad_instances_are_refused_and_the_rest_kept(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    truncated = pydicom.dcmread(series_files[1])
    truncated.SOPInstanceUID = "1.2.3.999"
    truncated.file_meta.MediaStorageSOPInstanceUID = "1.2.3.999"
    truncated.PixelData = truncated.PixelData[:100]
    items = [series_files[0], b"\x00garbage, not DICOM", truncated, series_files[2]]
    result = _ingest(session_factory, settings, items)
    assert result.new_count == 2
    assert [(f.index, f.status) for f in result.failed] == [(1, 0xC000), (2, 0xA900)]
    assert result.failed[1].key == "radiology_ingest.truncated_pixels"
    assert not any(p.name.startswith("1.2.3.999") for p in settings.dicom_dir.rglob("*"))


def test_study_instance_limit(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    small = Settings(home=settings.home, database_url="", max_study_instances=10)
    result = _ingest(session_factory, small, series_files)
    assert result.new_count == 10
    assert {f.status for f in result.failed} == {0xA700}
    assert len(result.failed) == 30
    assert "MEDBRAIN_MAX_STUDY_INSTANCES" in result.failed[0].text("en")


def test_known_patient_is_matched_by_mrn_and_missing_files_fail_visibly(
    session_factory: sessionmaker[Session], settings: Settings, series_files: list[Path]
) -> None:
    with session_factory() as session, session.begin():
        session.add(Patient(mrn="SYN000011", name="王芳", sex="female"))
    result = _ingest(session_factory, settings, series_files)
    with session_factory() as session:
        study = session.scalars(select(ImagingStudy)).one()
        patient = session.get(Patient, study.patient_id)
        assert patient is not None and patient.name == "王芳"
        assert session.scalar(select(func.count(Patient.id))) == 1
    shutil.rmtree(settings.dicom_dir)
    store.process_pending(session_factory, settings)
    with session_factory() as session:
        job = session.get(RadiologyJob, result.job_ids[0])
        assert job is not None and job.status == "failed"
        (row,) = store.worklist(session)
        assert row.status == "failed"
        assert store.error_text(row.error, "en") == "series files are missing"
