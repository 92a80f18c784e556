"""Loader: DICOM directory and NIfTI to HU, geometry in LPS; every bad input refused clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medbrain.core.errors import InputError
from medbrain.imaging.errors import (
    MissingSlicesError,
    MixedSeriesError,
    NotCTError,
    SingleImageError,
    UnreadableImageError,
)
from medbrain.imaging.io import load_series
from medbrain.imaging.synthetic import SyntheticScan, write_dicom_series, write_nifti


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_shuffled_dicom_files_load_sorted_by_position(scan: SyntheticScan, dicom_dir: Path) -> None:
    loaded = load_series(dicom_dir)
    assert loaded.hu.shape == scan.series.hu.shape
    assert np.abs(loaded.hu - scan.series.hu).max() <= 0.5 + 1e-3  # stored as integers
    assert loaded.series_uid == scan.series.series_uid


def test_dicom_spacing_origin_and_orientation(scan: SyntheticScan, dicom_dir: Path) -> None:
    loaded = load_series(dicom_dir)
    assert loaded.spacing_mm == pytest.approx(scan.series.spacing_mm)
    assert loaded.origin_mm == pytest.approx(scan.series.origin_mm, abs=1e-3)
    assert np.allclose(loaded.direction, np.eye(3))
    z = [loaded.voxel_to_mm((0, 0, k))[2] for k in range(3)]
    assert z[0] < z[1] < z[2]


def test_rescale_slope_and_intercept_are_applied(scan: SyntheticScan, tmp_path: Path) -> None:
    write_dicom_series(
        scan.series, tmp_path / "s", seed=7, rescale_slope=2.0, rescale_intercept=-2048.0
    )
    loaded = load_series(tmp_path / "s")
    assert np.abs(loaded.hu - scan.series.hu).max() <= 1.0 + 1e-3


def test_reversed_slice_order_in_files_still_gives_ascending_z(
    scan: SyntheticScan, tmp_path: Path
) -> None:
    src = write_dicom_series(scan.series, tmp_path / "s", seed=7)
    for path in src:  # name files so that name order is the reverse of z order
        ds = pydicom.dcmread(path)
        path.rename(path.with_name(f"Z{1000 - int(ds.InstanceNumber):05d}.dcm"))
    loaded = load_series(tmp_path / "s")
    assert np.allclose(loaded.hu[0], scan.series.hu[0], atol=0.5 + 1e-3)


def test_nifti_ras_is_converted_to_lps(scan: SyntheticScan, tmp_path: Path) -> None:
    path = tmp_path / "ct.nii.gz"
    write_nifti(scan.series, path)
    loaded = load_series(path)
    assert loaded.hu.shape == scan.series.hu.shape
    assert loaded.origin_mm == pytest.approx(scan.series.origin_mm, abs=1e-3)
    assert np.allclose(loaded.direction, np.eye(3))
    assert np.abs(loaded.hu - np.round(scan.series.hu)).max() <= 1.0


def test_real_pydicom_ct_single_image_is_refused_as_2d(tmp_path: Path) -> None:
    shutil.copy(str(get_testdata_file("CT_small.dcm")), tmp_path / "CT_small.dcm")
    with pytest.raises(SingleImageError, match="single 2D image") as info:
        load_series(tmp_path)
    assert "CT_small.dcm" in str(info.value)
    assert isinstance(info.value, InputError)


def test_mr_series_is_refused_as_not_ct(tmp_path: Path) -> None:
    shutil.copy(str(get_testdata_file("MR_small.dcm")), tmp_path / "MR_small.dcm")
    with pytest.raises(NotCTError, match="Modality"):
        load_series(tmp_path)


def test_mixed_series_in_one_folder_is_refused(
    scan: SyntheticScan, dicom_dir: Path, tmp_path: Path
) -> None:
    d = _copy(dicom_dir, tmp_path / "mixed")
    write_dicom_series(scan.series, tmp_path / "other", seed=8, series_uid="1.2.3.4.5")
    shutil.copy(next((tmp_path / "other").iterdir()), d / "extra.dcm")
    with pytest.raises(MixedSeriesError, match="2 different series"):
        load_series(d)


def test_missing_slices_are_refused(dicom_dir: Path, tmp_path: Path) -> None:
    d = _copy(dicom_dir, tmp_path / "gap")
    files = sorted(d.iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    for p in files[40:43]:
        p.unlink()
    with pytest.raises(MissingSlicesError, match="missing slices"):
        load_series(d)


def test_unreadable_file_is_named(dicom_dir: Path, tmp_path: Path) -> None:
    d = _copy(dicom_dir, tmp_path / "junk")
    (d / "notes.txt").write_text("not dicom")
    with pytest.raises(UnreadableImageError, match=r"notes\.txt"):
        load_series(d)


def test_corrupt_pixel_data_is_refused(dicom_dir: Path, tmp_path: Path) -> None:
    d = _copy(dicom_dir, tmp_path / "corrupt")
    path = sorted(d.iterdir())[5]
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(path)
    with pytest.raises(UnreadableImageError, match="pixel data"):
        load_series(d)


def test_missing_path_and_wrong_suffix_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match="no such file"):
        load_series(tmp_path / "nope")
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(UnreadableImageError, match="expected a directory"):
        load_series(tmp_path / "x.png")


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless"])
def test_compressed_transfer_syntaxes_decode_to_the_same_hu(
    scan: SyntheticScan, dicom_dir: Path, tmp_path: Path, syntax: str
) -> None:
    from pydicom import uid

    target = getattr(uid, syntax)
    d = _copy(dicom_dir, tmp_path / "compressed")
    for path in sorted(d.iterdir()):
        ds = pydicom.dcmread(path)
        try:
            ds.compress(target)
        except (RuntimeError, NotImplementedError, ValueError) as exc:  # no encoder installed
            pytest.skip(f"no {syntax} encoder: {exc}")
        ds.save_as(path)
    assert pydicom.dcmread(next(d.iterdir())).file_meta.TransferSyntaxUID == target
    loaded = load_series(d)
    assert np.abs(loaded.hu - scan.series.hu).max() <= 0.5 + 1e-3


def test_flipped_row_direction_keeps_patient_geometry(scan: SyntheticScan, tmp_path: Path) -> None:
    from medbrain.imaging.io import CTSeries

    flipped = CTSeries(
        hu=np.ascontiguousarray(scan.series.hu[:, :, ::-1]),
        spacing_mm=scan.series.spacing_mm,
        origin_mm=(-scan.series.origin_mm[0], *scan.series.origin_mm[1:]),
        direction=((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        series_uid="1.2.826.0.1.3680043.8.498.2",
    )
    write_dicom_series(flipped, tmp_path / "flip", seed=3)
    loaded = load_series(tmp_path / "flip")
    assert np.allclose(loaded.direction, flipped.direction)
    # the same voxel maps to the same LPS point as in the original orientation
    nx = scan.series.hu.shape[2]
    assert loaded.voxel_to_mm((nx - 1 - 10, 20, 30)) == pytest.approx(
        scan.series.voxel_to_mm((10, 20, 30)), abs=1e-3
    )
