"""Review, sign, versioning, feedback, outputs and audit of a CT study through the real API.

A synthetic 64×64×40 chest CT goes through the ingest engineer's ``ingest_instances`` and
``process_pending`` (real detection), then the radiologist works on it over HTTP. Runs on
SQLite and on PostgreSQL (``database_url``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.app import create_app
from medbrain.api.routers import radiology_viewer as viewer_router
from medbrain.api.routers.radiology_viewer import load_volume, read_slices, slice_index
from medbrain.api.security import issue_token
from medbrain.audit.verify import verify
from medbrain.core.config import Settings
from medbrain.imaging.io import load_series
from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from medbrain.store import radiology_review as review
from medbrain.store.models import AuditEntry, ImagingSeries, ImagingStudy, User
from medbrain.store.radiology import ingest_instances, process_pending
from medbrain.store.radiology_models import CtAnalysis
from medbrain.store.radiology_review_models import RadiologyFeedback
from tests.support.world import password_hash_of

SEED = 3
API = "/api/v1/radiology/studies"


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    scan = generate_chest_ct(
        SEED,
        shape=(40, 64, 64),
        spacing_mm=(5.0, 5.0, 5.0),
        n_nodules=3,
        diameter_range_mm=(8.0, 20.0),
    )
    return write_dicom_series(scan.series, tmp_path_factory.mktemp("ct"), seed=SEED)


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    factory: sessionmaker[Session]
    settings: Settings
    study_uid: str

    def h(self, role: str = "radiologist") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def _ingest(factory: sessionmaker[Session], settings: Settings, items: list[Any]) -> str:
    with factory() as session, session.begin():
        result = ingest_instances(session, settings, items, source="test")
    assert not result.failed
    process_pending(factory, settings)
    return result.study_uids[0]


def _app(tmp_path: Path, database_url: str, **extra: Any) -> tuple[Any, Settings]:
    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        radiology_worker=False,
        series_settle_seconds=0,
        **extra,
    )
    return create_app(settings), settings


def _world(app: Any, settings: Settings, files: list[Path]) -> Iterator[World]:
    factory = app.state.session_factory
    tokens: dict[str, str] = {}
    with factory() as session, session.begin():
        for role in ("radiologist", "admin", "doctor", "nurse"):
            user = User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=password_hash_of(role),
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(
                session, user, "api", timedelta(hours=1), datetime.now(UTC)
            ).token
    study_uid = _ingest(factory, settings, list(files))
    with TestClient(app) as client:
        yield World(client, tokens, factory, settings, study_uid)


@pytest.fixture
def any_db_world(tmp_path: Path, database_url: str, series_files: list[Path]) -> Iterator[World]:
    """On SQLite and on PostgreSQL: for the test of the whole review path."""
    app, settings = _app(tmp_path, database_url)
    yield from _world(app, settings, series_files)


@pytest.fixture
def world(tmp_path: Path, series_files: list[Path]) -> Iterator[World]:
    app, settings = _app(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    yield from _world(app, settings, series_files)


def _analysis(w: World) -> dict[str, Any]:
    with w.factory() as session:
        return dict(session.scalars(select(CtAnalysis)).one().result)


def _actions(w: World) -> list[str]:
    with w.factory() as session:
        return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def test_review_sign_and_edit_after_signing_makes_a_new_version(any_db_world: World) -> None:
    w = any_db_world
    url = f"{API}/{w.study_uid}"
    engine = _analysis(w)["nodules"]
    assert len(engine) >= 3
    viewer = w.client.get(f"{url}/viewer", headers=w.h()).json()
    assert viewer["review"]["saved"] is False and viewer["review"]["version"] == 1
    assert [n["key"] for n in viewer["review"]["nodules"]] == [f"e{n['id']}" for n in engine]
    assert viewer["series"]["slices"] == 40 and viewer["series"]["cols"] == 64

    r = w.client.post(f"{url}/review/nodules/e1", json={"decision": "rejected"}, headers=w.h())
    assert r.status_code == 200, r.text
    r = w.client.post(
        f"{url}/review/nodules/e2",
        json={"long_axis_mm": 12.4, "short_axis_mm": 8.0, "type": "part-solid"},
        headers=w.h(),
    )
    edited = next(n for n in r.json()["review"]["nodules"] if n["key"] == "e2")
    assert edited["mean_diameter_mm"] == 10.2 and edited["edited"] is True
    assert edited["decision"] == "accepted" and edited["type"] == "part-solid"
    r = w.client.post(f"{url}/review/nodules", json={"center_voxel": [20, 30, 21]}, headers=w.h())
    assert r.status_code == 201 and r.json()["added"] == "a1"
    added = r.json()["review"]["nodules"][-1]
    assert added["source"] == "radiologist" and added["center_voxel"] == [20, 30, 21]
    (i0, j0, k0), (i1, j1, k1) = added["bbox_voxel"]
    assert i0 < 20 < i1 and j0 < 30 < j1 and k0 < 21 < k1
    assert added["side"] == "right"  # low column index = patient's right (LPS)
    r = w.client.put(
        f"{url}/review/report",
        json={"findings": "见结节。", "impression": "Lung-RADS 4A,3个月复查。"},
        headers=w.h(),
    )
    assert r.status_code == 200

    signed = w.client.post(f"{url}/review/sign", headers=w.h()).json()
    assert signed["signed"] is True and signed["version"] == 1
    v1 = signed["review"]
    assert v1["status"] == "signed" and v1["signed_by"] == "u_radiologist"
    assert v1["findings"] == "见结节。"
    assert all(n["decision"] != "pending" for n in v1["nodules"])
    with w.factory() as session:
        study = session.scalars(select(ImagingStudy)).one()
        assert study.status == "signed"
        derived = session.scalars(
            select(ImagingSeries).where(ImagingSeries.modality.in_(["SR", "SEG"]))
        ).all()
        assert sorted(s.modality for s in derived) == ["SEG", "SR"]
        kinds = sorted(f.kind for f in session.scalars(select(RadiologyFeedback)))
    assert kinds.count("false_positive") == 1 and kinds.count("miss") == 1
    assert kinds.count("accepted") == len(engine) - 1

    # signing again changes nothing
    again = w.client.post(f"{url}/review/sign", headers=w.h()).json()
    assert again["signed"] is False and len(again["versions"]) == 1

    # an edit after signing opens version 2; version 1 stays as signed
    r = w.client.post(f"{url}/review/nodules/e1", json={"decision": "accepted"}, headers=w.h())
    assert [v["version"] for v in r.json()["versions"]] == [1, 2]
    assert r.json()["review"]["version"] == 2 and r.json()["review"]["status"] == "draft"
    old = w.client.get(f"{url}/review/versions/1", headers=w.h()).json()
    assert old["status"] == "signed" and old["findings"] == "见结节。"
    assert next(n for n in old["nodules"] if n["key"] == "e1")["decision"] == "rejected"
    second = w.client.post(f"{url}/review/sign", headers=w.h()).json()
    assert second["version"] == 2
    feedback = w.client.get("/api/v1/radiology/feedback", headers=w.h("admin")).json()
    assert len(feedback) == 1
    row = feedback[0]
    with w.factory() as session:
        detector = session.scalars(select(CtAnalysis)).one().detector_version
    assert row["detector_version"] == detector
    assert (row["false_positive"], row["miss"], row["accepted"]) == (0, 1, len(engine))
    assert row["studies"] == 1

    actions = _actions(w)
    for action in (
        "radiology.nodule.update",
        "radiology.nodule.add",
        "radiology.report.edit",
        "radiology.report.sign",
    ):
        assert action in actions
    assert actions.count("radiology.report.sign") == 2
    with w.factory() as session:
        assert verify(session, None).ok

    page = w.client.get("/radiology/feedback", headers=w.h("admin"))
    assert page.status_code == 200 and 'data-miss="1"' in page.text


def test_sign_untouched_study_and_the_outputs(world: World) -> None:
    w = world
    url = f"{API}/{w.study_uid}"
    n_engine = len(_analysis(w)["nodules"])
    signed = w.client.post(f"{url}/review/sign?lang=en", headers=w.h()).json()
    assert signed["signed"] is True and signed["version"] == 1
    outputs = signed["review"]["outputs"]

    sr_bytes = w.client.get(f"{url}/sr", headers=w.h()).content
    sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(io.BytesIO(sr_bytes)))
    assert sr.SOPInstanceUID == outputs["sr"]["sop_uid"]
    assert len(sr.content.get_planar_roi_measurement_groups()) == n_engine
    seg = hd.seg.Segmentation.from_dataset(
        pydicom.dcmread(io.BytesIO(w.client.get(f"{url}/seg", headers=w.h()).content))
    )
    assert seg.number_of_segments == n_engine

    # both are stored with the study: DICOMweb WADO-RS returns them
    wado = w.client.get(
        f"/dicomweb/studies/{w.study_uid}/series/{outputs['sr']['series_uid']}",
        headers={**w.h(), "Accept": 'multipart/related; type="application/dicom"'},
    )
    assert wado.status_code == 200 and outputs["sr"]["sop_uid"].encode() in wado.content

    pdf = w.client.get(f"{url}/report.pdf?version=1", headers=w.h("doctor"))
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert pdf.headers["content-type"] == "application/pdf"
    fhir = w.client.get(f"{url}/fhir", headers=w.h("doctor"))
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    bundle = fhir.json()
    Bundle.model_validate(bundle)
    report = bundle["entry"][0]["resource"]
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "final"
    assert len(report["result"]) == n_engine
    series_uids = {s["uid"] for s in bundle["entry"][1]["resource"]["series"]}
    assert {outputs["sr"]["series_uid"], outputs["seg"]["series_uid"]} <= series_uids


def test_worklist_lung_rads_comes_from_the_signed_report(world: World) -> None:
    w = world
    url = f"{API}/{w.study_uid}"
    engine = _analysis(w)
    detector_category = engine["lung_rads"]["category"]
    assert detector_category not in ("1", "2") and engine["nodules"]

    def row() -> dict[str, Any]:
        studies = w.client.get("/api/v1/radiology/worklist", headers=w.h()).json()["studies"]
        assert len(studies) == 1
        return dict(studies[0])

    assert (row()["lung_rads"], row()["nodules"]) == (detector_category, len(engine["nodules"]))
    for nodule in engine["nodules"]:  # the radiologist rejects every detection
        r = w.client.post(
            f"{url}/review/nodules/e{nodule['id']}", json={"decision": "rejected"}, headers=w.h()
        )
        assert r.status_code == 200, r.text
    assert row()["lung_rads"] == detector_category  # a draft does not count yet
    signed = w.client.post(f"{url}/review/sign", headers=w.h()).json()
    category = signed["review"]["lung_rads"]["category"]
    assert category == "1" != detector_category
    assert (row()["status"], row()["lung_rads"], row()["nodules"]) == ("signed", category, 0)


def test_drawn_axes_move_the_added_nodules_box(world: World) -> None:
    w = world
    url = f"{API}/{w.study_uid}"
    r = w.client.post(f"{url}/review/nodules", json={"center_voxel": [20, 30, 21]}, headers=w.h())
    added = r.json()["review"]["nodules"][-1]
    default_box = added["bbox_voxel"]
    axes = [[30.2, 40.5, 36.8, 44.1], [33.0, 39.0, 34.1, 45.6]]  # on slice 12, 5 mm voxels
    r = w.client.post(
        f"{url}/review/nodules/{added['key']}",
        json={"long_axis_mm": 37.5, "short_axis_mm": 33.0, "axes_voxel": axes, "slice": 12},
        headers=w.h(),
    )
    assert r.status_code == 200, r.text
    moved = next(n for n in r.json()["review"]["nodules"] if n["key"] == added["key"])
    assert moved["bbox_voxel"] != default_box
    assert moved["bbox_voxel"] == [[30, 39, 8], [36, 45, 16]]  # short 33 mm: ±4 slices
    assert moved["center_voxel"] == [33, 42, 12]
    assert moved["center_mm"] != added["center_mm"]
    assert (moved["long_axis_mm"], moved["short_axis_mm"]) == (37.5, 33.0)
    updates = [a for a in _actions(w) if a == "radiology.nodule.update"]
    assert len(updates) == 1

    bad = w.client.post(
        f"{url}/review/nodules/{added['key']}?lang=en",
        json={"axes_voxel": [[1, 2, 3], [1, 2, 3, 4]], "slice": 12},
        headers=w.h(),
    )
    assert bad.status_code == 422 and "long and the short axis" in bad.text
    outside = w.client.post(
        f"{url}/review/nodules/{added['key']}",
        json={"axes_voxel": [[1, 2, 3, 4], [1, 2, 300, 4]], "slice": 12},
        headers=w.h(),
    )
    assert outside.status_code == 422


def _stored_files(settings: Settings) -> set[Path]:
    return {p for p in settings.dicom_dir.rglob("*") if p.is_file()}


class _CommitFailed(Exception):
    pass


def test_sr_and_seg_appear_only_when_the_signing_commit_succeeds(world: World) -> None:
    w = world
    before = _stored_files(w.settings)
    dirs_before = {p for p in w.settings.dicom_dir.rglob("*") if p.is_dir()}
    with pytest.raises(_CommitFailed), w.factory() as session, session.begin():
        ctx = review.load_context(session, w.study_uid)
        row, signed_now = review.sign(session, ctx, "u_radiologist", "en")
        outputs, _ = viewer_router._write_outputs(session, w.settings, ctx, row)
        assert signed_now and set(outputs) == {"sr", "seg"}
        assert not (w.settings.home / outputs["sr"]["path"]).exists()  # not before the commit
        raise _CommitFailed  # the transaction rolls back
    assert _stored_files(w.settings) == before  # no orphan SR/SEG, no temp file
    assert {p for p in w.settings.dicom_dir.rglob("*") if p.is_dir()} == dirs_before

    with w.factory() as session, session.begin():
        ctx = review.load_context(session, w.study_uid)
        row, _ = review.sign(session, ctx, "u_radiologist", "en")
        outputs, _ = viewer_router._write_outputs(session, w.settings, ctx, row)
        row.outputs = outputs
    added = _stored_files(w.settings) - before
    assert added == {w.settings.home / outputs[k]["path"] for k in ("sr", "seg")}
    sr = pydicom.dcmread(w.settings.home / outputs["sr"]["path"])
    assert sr.SOPInstanceUID == outputs["sr"]["sop_uid"]
    with w.factory() as session:
        uids = set(session.scalars(select(ImagingSeries.series_uid)))
    assert {outputs["sr"]["series_uid"], outputs["seg"]["series_uid"]} <= uids


def test_slices_are_raw_hu_with_etag(world: World) -> None:
    w = world
    url = f"{API}/{w.study_uid}/slices"
    with w.factory() as session:
        directory = (
            session.scalars(select(ImagingSeries).where(ImagingSeries.modality == "CT"))
            .one()
            .storage_path
        )
    assert directory is not None
    hu = load_series(directory).hu
    # the first slices come from the files while the volume decodes: both give the same bytes
    index = slice_index(Path(directory))
    assert index is not None and len(index.files) == 40
    assert np.array_equal(read_slices(index, 0, 40), load_volume(Path(directory)).voxels)
    r = w.client.get(f"{url}?start=10&count=4", headers=w.h())
    assert r.status_code == 200 and r.headers["x-slice-count"] == "4"
    got = np.frombuffer(r.content, dtype="<i2").reshape(4, 64, 64)
    assert np.array_equal(got, np.clip(np.rint(hu[10:14]), -1024, 3071).astype(np.int16))
    etag = r.headers["etag"]
    assert "max-age" in r.headers["cache-control"]
    cached = w.client.get(f"{url}?start=10&count=4", headers={**w.h(), "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    tail = w.client.get(f"{url}?start=38&count=8", headers=w.h())
    assert tail.headers["x-slice-count"] == "2" and len(tail.content) == 2 * 64 * 64 * 2
    assert w.client.get(f"{url}?start=40", headers=w.h()).status_code == 422
    assert w.client.get(f"{url}?start=0&count=65", headers=w.h()).status_code == 422


BAD_EDITS: list[tuple[dict[str, Any], str]] = [
    ({"long_axis_mm": -3}, "long_axis_mm"),
    ({"long_axis_mm": 150, "short_axis_mm": 5}, "long_axis_mm"),
    ({"long_axis_mm": "abc"}, "long_axis_mm"),
    ({"long_axis_mm": 5, "short_axis_mm": 9}, "short_axis_mm"),
    ({"decision": "maybe"}, "decision"),
    ({"type": "spiculated"}, "type"),
]


def test_bad_edits_are_422_in_zh_and_en_and_write_nothing(world: World) -> None:
    w = world
    url = f"{API}/{w.study_uid}/review/nodules/e1"
    for body, field in BAD_EDITS:
        zh = w.client.post(url, json=body, headers=w.h())
        assert zh.status_code == 422, body
        assert zh.json().get("field", zh.json().get("errors", [{}])[0].get("field")) == field
        en = w.client.post(f"{url}?lang=en", json=body, headers=w.h())
        assert en.status_code == 422
        if "field" in zh.json():  # our own messages exist in both languages
            assert en.json()["detail"] != zh.json()["detail"]
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.json()["detail"])
    assert w.client.get(f"{API}/{w.study_uid}/review/versions", headers=w.h()).json() == []
    assert "radiology.nodule.update" not in _actions(w)


def test_unknown_things_and_roles(world: World) -> None:
    w = world
    url = f"{API}/{w.study_uid}"
    assert w.client.get(f"{API}/1.2.3.999/viewer", headers=w.h()).status_code == 404
    assert w.client.post(f"{API}/1.2.3.999/review/sign", headers=w.h()).status_code == 404
    assert w.client.get("/radiology/studies/1.2.3.999", headers=w.h()).status_code == 404
    assert (
        w.client.post(f"{url}/review/nodules/e99", json={"decision": "rejected"}, headers=w.h())
    ).status_code == 404
    assert w.client.get(f"{url}/review/versions/3", headers=w.h()).status_code == 404
    assert w.client.get(f"{url}/sr", headers=w.h()).status_code == 404  # nothing signed yet
    assert w.client.get(f"{url}/viewer", headers=w.h("nurse")).status_code == 403
    assert w.client.post(f"{url}/review/sign", headers=w.h("doctor")).status_code == 403
    assert w.client.post(f"{url}/review/sign", headers=w.h("admin")).status_code == 403
    add_outside = w.client.post(
        f"{url}/review/nodules", json={"center_voxel": [64, 0, 0]}, headers=w.h()
    )
    assert add_outside.status_code == 422
    assert w.client.get("/radiology/feedback", headers=w.h("nurse")).status_code == 403
    assert w.client.post(f"{url}/send", headers=w.h()).status_code == 409  # no PACS set

    page = w.client.get(f"/radiology/studies/{w.study_uid}?lang=en", headers=w.h())
    assert page.status_code == 200 and "CT viewer and review" in page.text
    assert 'data-may-review="1"' in page.text and "/static/radiology/viewer.js" in page.text
    admin_page = w.client.get(f"/radiology/studies/{w.study_uid}", headers=w.h("admin"))
    assert admin_page.status_code == 200 and 'data-may-review="0"' in admin_page.text
    assert w.client.get("/static/radiology/viewer.js").status_code == 200


def test_prior_study_of_the_same_patient_is_compared(world: World, tmp_path: Path) -> None:
    w = world
    scan = generate_chest_ct(
        SEED,
        shape=(40, 64, 64),
        spacing_mm=(5.0, 5.0, 5.0),
        n_nodules=3,
        diameter_range_mm=(8.0, 20.0),
    )
    files = write_dicom_series(
        scan.series, tmp_path / "prior", seed=SEED + 1000, series_uid=hd.UID()
    )
    prior_items = []
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PatientID = "SYN000003"  # same patient as the current study
        ds.StudyDate = "20250101"
        prior_items.append(ds)
    assert prior_items[0].StudyInstanceUID != w.study_uid
    with w.factory() as session, session.begin():
        study = session.scalars(
            select(ImagingStudy).where(ImagingStudy.study_uid == w.study_uid)
        ).one()
        study.started_at = datetime(2026, 1, 1, tzinfo=UTC)
    prior_uid = _ingest(w.factory, w.settings, prior_items)
    viewer = w.client.get(f"{API}/{w.study_uid}/viewer", headers=w.h()).json()
    prior = viewer["prior"]
    assert prior is not None and prior["study_uid"] == prior_uid
    assert prior["interval_days"] == 365
    assert prior["changes"] and all(c["status"] == "stable" for c in prior["changes"])


def test_signing_sends_sr_and_seg_to_the_configured_pacs(
    tmp_path: Path, series_files: list[Path]
) -> None:
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    received: list[str] = []
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        with lock:
            received.append(str(event.dataset.Modality))
        return 0

    scp = AE(ae_title="PACS")
    scp.supported_contexts = AllStoragePresentationContexts
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        port = server.server_address[1]
        app, settings = _app(
            tmp_path,
            f"sqlite:///{tmp_path / 'm.db'}",
            pacs_ae="PACS",
            pacs_host="127.0.0.1",
            pacs_port=port,
        )
        for w in _world(app, settings, series_files):
            signed = w.client.post(f"{API}/{w.study_uid}/review/sign", headers=w.h()).json()
            assert signed["pacs"]["queued"] is True  # sent after the signing transaction
            assert sorted(received) == ["SEG", "SR"]
            again = w.client.post(f"{API}/{w.study_uid}/send", headers=w.h("admin")).json()
            assert again["ok"] is True and len(received) == 4
            with w.factory() as session:
                sends = session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "radiology.pacs.send")
                ).all()
                assert [e.detail["ok"] for e in sends] == [True, True]
    finally:
        server.shutdown()
