"""DICOMweb STOW-RS / QIDO-RS / WADO-RS, the zip upload page and the worklist, on a real app."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient

from medbrain.api.app import create_app
from medbrain.core.config import Settings
from medbrain.store import radiology as store
from tests.integration.radiology._ingest_support import write_series
from tests.support.accounts import make_tokens

ROLES = ("radiologist", "doctor", "admin")


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct") / "s", seed=21)


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        series_settle_seconds=0,
        radiology_worker=False,
    )
    app = create_app(settings)
    tokens = make_tokens(app.state.session_factory, ROLES)
    with TestClient(app) as client:
        yield client, tokens, app


def _multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for ctype, data in parts:
        body += f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def _split_multipart(response: Any) -> list[bytes]:
    boundary = response.headers["content-type"].split("boundary=")[1].strip('"')
    chunks = response.content.split(f"--{boundary}".encode())[1:-1]
    return [c.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")] for c in chunks]


def test_stow_qido_wado_round_trip(
    app_client: tuple[TestClient, dict[str, str], Any], series_files: list[Path]
) -> None:
    client, tokens, app = app_client
    auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
    good = [p.read_bytes() for p in series_files]
    body, ctype = _multipart(
        [("application/dicom", d) for d in good[:10]] + [("application/dicom", b"junk")]
    )
    response = client.post(
        "/dicomweb/studies", content=body, headers={**auth, "Content-Type": ctype}
    )
    assert response.status_code == 202, response.text  # some stored, one refused
    assert response.headers["content-type"].startswith("application/dicom+json")
    out = response.json()
    assert len(out["00081199"]["Value"]) == 10
    failed = out["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[0xC000]]

    # the rest of the series in a second request: duplicates are fine
    body, ctype = _multipart([("application/dicom", d) for d in good[5:]])
    response = client.post(
        "/dicomweb/studies", content=body, headers={**auth, "Content-Type": ctype}
    )
    assert response.status_code == 200
    assert len(response.json()["00081199"]["Value"]) == 35

    ds0 = pydicom.dcmread(series_files[0], stop_before_pixels=True)
    study, series = str(ds0.StudyInstanceUID), str(ds0.SeriesInstanceUID)
    studies = client.get("/dicomweb/studies", params={"PatientID": "SYN000021"}, headers=auth)
    assert studies.status_code == 200
    (entry,) = studies.json()
    assert entry["0020000D"]["Value"] == [study]
    assert entry["00201208"]["Value"] == [40]
    assert (
        client.get("/dicomweb/studies", params={"PatientID": "nobody"}, headers=auth).json() == []
    )
    (s,) = client.get(f"/dicomweb/studies/{study}/series", headers=auth).json()
    assert s["0020000E"]["Value"] == [series] and s["00080060"]["Value"] == ["CT"]
    instances = client.get(
        f"/dicomweb/studies/{study}/series/{series}/instances", headers=auth
    ).json()
    assert len(instances) == 40
    assert [i["00200013"]["Value"][0] for i in instances] == list(range(1, 41))

    sop = str(ds0.SOPInstanceUID)
    one = client.get(
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}",
        headers={**auth, "Accept": 'multipart/related; type="application/dicom"'},
    )
    assert one.status_code == 200
    (part,) = _split_multipart(one)
    assert part == series_files[0].read_bytes()
    whole = client.get(f"/dicomweb/studies/{study}/series/{series}", headers=auth)
    parts = _split_multipart(whole)
    assert len(parts) == 40
    assert {pydicom.dcmread(io.BytesIO(p)).SOPInstanceUID for p in parts} == {
        pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in series_files
    }
    metadata = client.get(f"/dicomweb/studies/{study}/series/{series}/metadata", headers=auth)
    assert metadata.status_code == 200 and len(metadata.json()) == 40
    assert (
        client.get(
            f"/dicomweb/studies/{study}", headers={**auth, "Accept": "image/jpeg"}
        ).status_code
        == 406
    )
    assert client.get(f"/dicomweb/studies/{study}/series/1.2.3", headers=auth).status_code == 404
    assert client.get("/dicomweb/studies/..%2f..%2fetc/series", headers=auth).status_code == 404

    # processing then shows in the worklist JSON
    store.process_pending(app.state.session_factory, app.state.settings)
    worklist = client.get("/api/v1/radiology/worklist", headers=auth).json()["studies"]
    assert [(w["study_uid"], w["status"], w["instances"]) for w in worklist] == [
        (study, "ready", 40)
    ]
    assert worklist[0]["lung_rads"] is not None
    assert worklist[0]["viewer_url"] == f"/radiology/studies/{study}"


def test_stow_refusals(
    app_client: tuple[TestClient, dict[str, str], Any], series_files: list[Path]
) -> None:
    client, tokens, _ = app_client
    data = series_files[0].read_bytes()
    body, ctype = _multipart([("application/dicom", data)])
    assert (
        client.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code
        == 401
    )
    doctor = {"Authorization": f"Bearer {tokens['doctor']}", "Content-Type": ctype}
    assert client.post("/dicomweb/studies", content=body, headers=doctor).status_code == 403
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    wrong = client.post(
        "/dicomweb/studies", content=data, headers={**auth, "Content-Type": "application/dicom"}
    )
    assert wrong.status_code == 415
    # an instance posted to another study's URL is refused, nothing stored: 409
    other = client.post(
        "/dicomweb/studies/1.2.3.4", content=body, headers={**auth, "Content-Type": ctype}
    )
    assert other.status_code == 409
    assert other.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]
    assert client.get("/dicomweb/studies", headers=auth).json() == []


def _zip(files: list[Path], extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, f"series/{path.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_and_bad_uploads(
    app_client: tuple[TestClient, dict[str, str], Any], series_files: list[Path]
) -> None:
    client, tokens, app = app_client
    auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
    bad = client.post(
        "/radiology/upload",
        files={"file": ("notes.txt", b"hello, not a study", "text/plain")},
        headers=auth,
    )
    assert bad.status_code == 422
    assert "不是 zip" in bad.text
    traversal = client.post(
        "/radiology/upload",
        files={
            "file": ("x.zip", _zip(series_files[:2], {"../../evil.dcm": b"x"}), "application/zip")
        },
        headers=auth,
    )
    assert traversal.status_code == 422
    assert "路径不安全" in traversal.text
    assert not (app.state.settings.dicom_dir).exists()  # nothing half-stored
    ok = client.post(
        "/radiology/upload?lang=en",
        files={"file": ("ct.zip", _zip(series_files, {"README.txt": b"hi"}), "application/zip")},
        headers=auth,
    )
    assert ok.status_code == 200, ok.text
    assert "Received 40 new image(s) (0 duplicate, 1 refused)" in ok.text
    with app.state.session_factory() as session:
        (row,) = store.worklist(session)
        assert row.status == "received" and row.instance_count == 40
        job = store.latest_jobs(session, row.study_id)[0]
        assert job.complete  # a whole series: no settle wait
    page = client.get("/radiology?lang=en", headers=auth)
    assert page.status_code == 200
    assert 'hx-trigger="every 2s"' in page.text  # polls while something waits
    store.process_pending(app.state.session_factory, app.state.settings)
    rows = client.get("/radiology/worklist/rows", headers=auth)
    assert 'data-status="ready"' in rows.text and "every 2s" not in rows.text
    assert f'href="/radiology/studies/{row.study_uid}"' in rows.text
    assert (
        client.get(
            "/radiology", headers={"Authorization": f"Bearer {tokens['doctor']}"}
        ).status_code
        == 403
    )


def test_worker_in_app_lifespan_processes_stow(tmp_path: Path, series_files: list[Path]) -> None:
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}", series_settle_seconds=0
    )
    app = create_app(settings)
    tokens = make_tokens(app.state.session_factory, ("radiologist",))
    auth = {"Authorization": f"Bearer {tokens['radiologist']}"}
    body, ctype = _multipart([("application/dicom", p.read_bytes()) for p in series_files])
    with TestClient(app) as client:
        assert app.state.radiology_worker is not None
        response = client.post(
            "/dicomweb/studies", content=body, headers={**auth, "Content-Type": ctype}
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            rows = client.get("/api/v1/radiology/worklist", headers=auth).json()["studies"]
            status = rows[0]["status"]
            if status in ("ready", "failed", "skipped"):
                break
            time.sleep(0.2)
        assert status == "ready"
    assert app.state.radiology_worker is None  # stopped with the app


def test_zip_with_more_instances_than_a_study_may_hold_is_refused_whole(
    tmp_path: Path, series_files: list[Path]
) -> None:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        max_study_instances=10,
        radiology_worker=False,
    )
    app = create_app(settings)
    tokens = make_tokens(app.state.session_factory, ("radiologist",))
    with TestClient(app) as client:
        response = client.post(
            "/radiology/upload?lang=en",
            files={"file": ("big.zip", _zip(series_files), "application/zip")},
            headers={"Authorization": f"Bearer {tokens['radiologist']}"},
        )
    assert response.status_code == 422
    assert "too many entries" in response.text
    assert not settings.dicom_dir.exists()
