"""DICOM SR (TID 1500) and SEG of a reviewed CT, checked with highdicom/pydicom; C-STORE to a
pynetdicom SCP started here."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from medbrain.imaging.io import load_series
from medbrain.imaging.pipeline import detect_series
from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from medbrain.radiology.outputs.dicom_seg import NothingToSegment, build_seg
from medbrain.radiology.outputs.dicom_sr import build_sr
from medbrain.radiology.outputs.geometry import nodule_mask, slice_order
from medbrain.radiology.outputs.model import SignedReport
from medbrain.radiology.outputs.pacs import send_instances


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("ct")
    scan = generate_chest_ct(
        3,
        shape=(40, 64, 64),
        spacing_mm=(5.0, 5.0, 5.0),
        n_nodules=3,
        diameter_range_mm=(8.0, 20.0),
    )
    write_dicom_series(scan.series, directory, seed=3, file_order_seed=7)
    series = load_series(directory)
    result = detect_series(series)
    assert len(result["nodules"]) >= 3
    nodules = tuple({**n, "key": f"e{n['id']}", "source": "engine"} for n in result["nodules"][:3])
    report = SignedReport(
        version=2,
        status="signed",
        language="en",
        findings="f",
        impression="i",
        nodules=nodules,
        lung_rads=result["lung_rads"],
        detector="classical:1",
        signed_by="dr_wang",
        signed_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    )
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in directory.iterdir()]
    return {"series": series, "report": report, "sources": sources, "dir": directory}


def _roundtrip(ds: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def test_sr_is_a_tid1500_report_whose_measurements_match_the_review(
    case: dict[str, Any], tmp_path: Path
) -> None:
    report: SignedReport = case["report"]
    sr = hd.sr.srread(_roundtrip(build_sr(report, case["sources"]), tmp_path, "sr.dcm"))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.StudyInstanceUID == case["sources"][0].StudyInstanceUID
    assert sr.SeriesInstanceUID != case["series"].series_uid
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "VERIFIED"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert [s.SeriesInstanceUID for s in evidence] == [case["series"].series_uid]
    assert len(evidence[0].ReferencedSOPSequence) == len(case["sources"])
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(report.nodules)
    ordered = slice_order(case["sources"])
    for group, nodule in zip(groups, report.nodules, strict=True):
        assert group.tracking_identifier == f"Nodule {nodule['key']}"
        values = {m.name.value: m.value for m in group.get_measurements()}
        assert values[codes.SCT.LongAxis.value] == pytest.approx(nodule["long_axis_mm"])
        assert values[codes.SCT.ShortAxis.value] == pytest.approx(nodule["short_axis_mm"])
        assert values[codes.SCT.Volume.value] == pytest.approx(nodule["volume_mm3"])
        region = group.roi
        assert region is not None
        referenced = region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        centre = ordered[nodule["center_voxel"][2]]
        assert referenced == centre.SOPInstanceUID  # the instance through the nodule's centre
        (i0, j0, _), (i1, j1, _) = nodule["bbox_voxel"]
        corners = np.asarray(region.value)
        assert corners.min(axis=0).tolist() == [i0, j0]
        assert corners.max(axis=0).tolist() == [i1 + 1, j1 + 1]


def test_draft_sr_is_not_verified_and_empty_review_still_builds(
    case: dict[str, Any], tmp_path: Path
) -> None:
    draft = replace(case["report"], status="draft", signed_at=None, nodules=())
    sr = hd.sr.srread(_roundtrip(build_sr(draft, case["sources"]), tmp_path, "d.dcm"))
    assert sr.VerificationFlag == "UNVERIFIED"
    assert sr.content.get_planar_roi_measurement_groups() == []
    assert any(e.value == "No reportable nodule" for e in sr.iterall())


def test_seg_has_one_segment_per_nodule_on_the_source_frames(
    case: dict[str, Any], tmp_path: Path
) -> None:
    report: SignedReport = case["report"]
    hu = case["series"].hu
    seg = hd.seg.segread(_roundtrip(build_seg(report, case["sources"], hu), tmp_path, "s.dcm"))
    assert seg.SegmentationType == "BINARY"
    assert seg.number_of_segments == len(report.nodules)
    assert seg.StudyInstanceUID == case["sources"][0].StudyInstanceUID
    referenced = {s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence}
    assert referenced == {case["series"].series_uid}
    ordered = slice_order(case["sources"])
    uids = [ds.SOPInstanceUID for ds in ordered]
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids,
        ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )
    assert pixels.shape[:3] == hu.shape
    for number, nodule in enumerate(report.nodules, start=1):
        expected = nodule_mask(hu, nodule)
        assert expected.any()
        (i0, _, k0), _ = nodule["bbox_voxel"]
        assert not expected[:, :, :i0].any() and not expected[:k0].any()
        got = pixels[..., number - 1].astype(bool)
        overlap_free = expected & ~np.any(
            [nodule_mask(hu, other) for other in report.nodules[: number - 1]] or [False], axis=0
        )
        assert np.array_equal(got, overlap_free)


def test_seg_needs_a_nodule(case: dict[str, Any]) -> None:
    empty = replace(case["report"], nodules=())
    with pytest.raises(NothingToSegment):
        build_seg(empty, case["sources"], case["series"].hu)


def test_mask_falls_back_to_the_ellipsoid_on_air(case: dict[str, Any]) -> None:
    hu = np.full((10, 20, 20), -1000.0, dtype=np.float32)
    nodule = {"bbox_voxel": [[5, 5, 3], [9, 9, 5]]}
    mask = nodule_mask(hu, nodule)
    assert mask.sum() > 0 and mask[4, 7, 7]
    assert not mask[4, 5, 5]  # a corner of the box lies outside the inscribed ellipsoid


def test_c_store_sends_sr_and_seg_to_a_pacs(case: dict[str, Any]) -> None:
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    received: list[str] = []
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        with lock:
            received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    scp = AE(ae_title="TESTPACS")
    scp.supported_contexts = AllStoragePresentationContexts
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    port = server.server_address[1]
    try:
        report = case["report"]
        sr = build_sr(report, case["sources"])
        seg = build_seg(report, case["sources"], case["series"].hu)
        sent = send_instances([sr, seg], "TESTPACS", "127.0.0.1", port)
        assert sent.ok, sent.to_dict()
        assert sorted(received) == sorted([sr.SOPInstanceUID, seg.SOPInstanceUID])
    finally:
        server.shutdown()


def test_c_store_to_nobody_is_reported_not_raised(case: dict[str, Any]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sr = build_sr(case["report"], case["sources"])
    sent = send_instances([sr], "NOBODY", "127.0.0.1", port, timeout_s=2)
    assert not sent.ok and not sent.associated and sent.error
