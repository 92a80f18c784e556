"""``medbrain ct detect`` contract (DESIGN.md §3) through a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

NODULE_KEYS = {
    "id",
    "center_mm",
    "center_voxel",
    "bbox_voxel",
    "long_axis_mm",
    "short_axis_mm",
    "mean_diameter_mm",
    "volume_mm3",
    "type",
    "solid_component_mm",
    "side",
    "lobe",
    "lobe_reason",  # added (issue 4 lobes): why lobe is null, or which fissures decided
    "location",
    "score",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "ct", "detect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dicom_series_gives_contract_json(dicom_dir: Path) -> None:
    proc = run(str(dicom_dir), "--json", "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out)[:8] == [
        "series_uid",
        "seconds",
        "spacing_mm",
        "nodules",
        "lung_rads",
        "fleischner",
        "report",
        "detector",
    ]
    assert out["spacing_mm"] == [2.5, 2.5, 2.5]
    assert out["nodules"], "the phantom has nodules"
    for n in out["nodules"]:
        assert set(n) == NODULE_KEYS
        assert n["type"] in {"solid", "part-solid", "ground-glass", "calcified"}
        assert n["side"] in {"left", "right"} and n["lobe"] is None
        assert n["location"] in {"peripheral", "central", "juxtapleural", "perifissural"}
    scores = [n["score"] for n in out["nodules"]]
    assert scores == sorted(scores, reverse=True)
    assert out["lung_rads"]["version"] == "v2022"
    assert out["lung_rads"]["category"] in {"1", "2", "3", "4A", "4B", "4X"}
    assert set(out["fleischner"]) >= {"category", "recommendation"}
    assert out["report"]["language"] == "en"
    assert isinstance(out["seconds"], float)


def test_non_ct_exits_2_with_one_stderr_line(tmp_path: Path) -> None:
    shutil.copy(str(get_testdata_file("MR_small.dcm")), tmp_path / "MR_small.dcm")
    proc = run(str(tmp_path), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "MR_small.dcm" in lines[0] and "expected CT" in lines[0]


def test_single_image_exits_2(tmp_path: Path) -> None:
    shutil.copy(str(get_testdata_file("CT_small.dcm")), tmp_path / "CT_small.dcm")
    proc = run(str(tmp_path), "--json")
    assert proc.returncode == 2
    assert "single 2D image" in proc.stderr


def test_volume_without_lungs_exits_2_and_invents_no_nodules(tmp_path: Path) -> None:
    import numpy as np

    from medbrain.imaging.io import CTSeries
    from medbrain.imaging.synthetic import write_dicom_series

    block = CTSeries(
        hu=np.full((12, 64, 64), 40.0, dtype=np.float32),
        spacing_mm=(2.0, 2.0, 2.5),
        origin_mm=(0.0, 0.0, 0.0),
        direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        series_uid="1.2.826.0.1.3680043.8.498.1",
    )
    write_dicom_series(block, tmp_path / "block", seed=1)
    proc = run(str(tmp_path / "block"), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "lung" in proc.stderr and str(tmp_path / "block") in proc.stderr
