"""C-STORE SCP: a pynetdicom SCU and a real Orthanc push studies to MedBrain."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, RTImageStorage, Verification
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.config import Settings
from medbrain.store import migrate
from medbrain.store import radiology as store
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import AuditEntry
from medbrain.store.radiology_models import RadiologyJob
from medbrain.store.radiology_scp import StoreSCP
from tests.integration.radiology._ingest_support import write_series
from tests.support.server import free_port


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct") / "s", seed=31)


@pytest.fixture
def scp(tmp_path: Path) -> Iterator[tuple[StoreSCP, sessionmaker[Session], Settings]]:
    # settle 60 s: only the association release can make the series due in these tests
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}", series_settle_seconds=60
    )
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    server = StoreSCP(factory, settings, ae_title="MEDBRAIN")
    server.start("127.0.0.1", 0)
    try:
        yield server, factory, settings
    finally:
        server.stop()
        engine.dispose()


def test_scu_push_broken_instance_refused_rest_processed(
    scp: tuple[StoreSCP, sessionmaker[Session], Settings], series_files: list[Path]
) -> None:
    server, factory, settings = scp
    ae = AE(ae_title="CT_SCANNER")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="MEDBRAIN")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    statuses = [assoc.send_c_store(pydicom.dcmread(p)).Status for p in series_files]
    broken = pydicom.dcmread(series_files[0])
    broken.SOPInstanceUID = "1.2.3.4.5.6"
    broken.PixelData = broken.PixelData[:64]
    statuses.append(assoc.send_c_store(broken).Status)
    assoc.release()
    assert statuses[:-1] == [0x0000] * 40
    assert statuses[-1] == 0xA900
    deadline = time.monotonic() + 5  # the release handler runs on the SCP's thread
    done: list[int] = []
    while not done and time.monotonic() < deadline:
        done = store.process_pending(factory, settings)
        time.sleep(0.05)
    assert len(done) == 1  # due at once although the settle time is 60 s
    with factory() as session:
        job = session.get(RadiologyJob, done[0])
        assert job is not None and job.status == "ready"
        (row,) = store.worklist(session)
        assert row.instance_count == 40 and row.status == "ready"
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "radiology.ingest")
        ).one()
        assert audit.who == "ae:CT_SCANNER"
        assert audit.detail["stored"] == 40 and audit.detail["failed"] == 1


def test_unsupported_sop_class_is_rejected_at_negotiation(
    scp: tuple[StoreSCP, sessionmaker[Session], Settings],
) -> None:
    server, _, _ = scp
    ae = AE(ae_title="RT")
    ae.add_requested_context(RTImageStorage)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="MEDBRAIN")
    try:
        accepted = [cx for cx in assoc.accepted_contexts]
        assert accepted == []  # no storage context for RT images
    finally:
        if assoc.is_established:
            assoc.release()


@pytest.fixture
def orthanc(tmp_path: Path, scp: tuple[StoreSCP, sessionmaker[Session], Settings]) -> Iterator[str]:
    binary = shutil.which("Orthanc")
    if binary is None:
        pytest.skip("Orthanc binary missing (scripts/system-deps.sh installs Debian 'orthanc')")
    server, _, _ = scp
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "medbrain-test",
        "StorageDirectory": str(tmp_path / "orthanc-storage"),
        "IndexDirectory": str(tmp_path / "orthanc-index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": {"medbrain": ["MEDBRAIN", "127.0.0.1", server.port]},
        "Plugins": [],
    }
    config_file = tmp_path / "orthanc.json"
    config_file.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [binary, str(config_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "Orthanc exited at start"
            try:
                if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Orthanc did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # a throw-away instance: no need to wait long for a clean stop
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_orthanc_pushes_a_study(
    orthanc: str,
    scp: tuple[StoreSCP, sessionmaker[Session], Settings],
    series_files: list[Path],
) -> None:
    _, factory, settings = scp
    study_id = None
    with httpx.Client(base_url=orthanc, timeout=30) as client:
        for path in series_files:
            response = client.post("/instances", content=path.read_bytes())
            assert response.status_code == 200
            study_id = response.json()["ParentStudy"]
        pushed = client.post(
            "/modalities/medbrain/store", json={"Resources": [study_id], "Synchronous": True}
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["InstancesCount"] == 40
        assert pushed.json()["FailedInstancesCount"] == 0
    deadline = time.monotonic() + 5
    done: list[int] = []
    while not done and time.monotonic() < deadline:
        done = store.process_pending(factory, settings)
        time.sleep(0.05)
    assert len(done) == 1
    with factory() as session:
        (row,) = store.worklist(session)
        assert (row.status, row.instance_count, row.mrn) == ("ready", 40, "SYN000031")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--port", "70000"], "port"), (["--ae-title", "A_TITLE_FAR_TOO_LONG"], "ae_title")],
)
def test_listen_command_refuses_bad_options(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from medbrain.cli import app

    monkeypatch.setenv("MEDBRAIN_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["dicom", "listen", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "medbrain.db").exists()  # nothing written


def test_listen_command_stores_and_analyses(tmp_path: Path, series_files: list[Path]) -> None:
    import os
    import sys

    port = free_port()
    env = {**os.environ, "MEDBRAIN_HOME": str(tmp_path), "MEDBRAIN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medbrain.cli",
            "dicom",
            "listen",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ae = AE(ae_title="SCANNER")
        ae.add_requested_context(Verification)
        ae.add_requested_context(CTImageStorage)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "medbrain dicom listen exited"
            assoc = ae.associate("127.0.0.1", port, ae_title="MEDBRAIN")
            if assoc.is_established:
                break
            assert time.monotonic() < deadline, "the SCP did not come up"
            time.sleep(0.2)
        statuses = [assoc.send_c_store(pydicom.dcmread(p)).Status for p in series_files]
        assoc.release()
        assert statuses == [0] * len(series_files)
        engine = make_engine(f"sqlite:///{tmp_path / 'medbrain.db'}")
        factory = make_session_factory(engine)
        status = None
        deadline = time.monotonic() + 60
        while status != "ready" and time.monotonic() < deadline:
            with factory() as session:
                rows = store.worklist(session)
                status = rows[0].status if rows else None
            time.sleep(0.2)
        engine.dispose()
        assert status == "ready"  # the listener's own worker ran the detection
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
