"""``medbrain ct detect SERIES --prior ...``: follow-up block, growth in Lung-RADS, bad priors.

Two small synthetic chest CTs (96 x 96 x 60 at 2.5 mm) of one phantom anatomy without generated
nodules; solid spheres are painted in at deep lung points: in the prior 6 / 8 / 8 mm, in the
current the first grown to 10.5 mm, the second gone, the third unchanged and a new 9 mm one.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from tests.unit.imaging.test_ct_cli import NODULE_KEYS

SEED = 1
PRIOR_MM = (6.0, 8.0, 8.0, 0.0)
CURRENT_MM = (10.5, 0.0, 8.0, 9.0)
EXPECTED = ("grown", "resolved", "stable", "new")


def _paint(hu: Any, spacing_zyx: Any, center: Any, diameter_mm: float) -> None:
    z, y, x = np.ogrid[: hu.shape[0], : hu.shape[1], : hu.shape[2]]
    r2 = (
        ((z - center[0]) * spacing_zyx[0]) ** 2
        + ((y - center[1]) * spacing_zyx[1]) ** 2
        + ((x - center[2]) * spacing_zyx[2]) ** 2
    )
    hu[r2 <= (diameter_mm / 2) ** 2] = 40.0


def _deep_points(mask: Any, spacing_zyx: Any, count: int) -> list[tuple[int, ...]]:
    depth = ndimage.distance_transform_edt(mask)
    points: list[tuple[int, ...]] = []
    for flat in np.argsort(depth.ravel())[::-1]:
        c = tuple(int(v) for v in np.unravel_index(flat, depth.shape))
        mm = np.multiply(c, spacing_zyx)
        if all(math.dist(mm, np.multiply(p, spacing_zyx)) > 40 for p in points):
            points.append(c)
        if len(points) == count:
            return points
    raise AssertionError("phantom has too little lung")


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    scan = generate_chest_ct(SEED, shape=(60, 96, 96), spacing_mm=(2.5, 2.5, 2.5), n_nodules=0)
    spacing = scan.series.spacing_zyx
    points = _deep_points(scan.lung_mask & (scan.series.hu < -700), spacing, 4)
    root = tmp_path_factory.mktemp("followup")
    out: dict[str, Any] = {"points_mm": []}
    for name, sizes, day in (("prior", PRIOR_MM, "20250301"), ("current", CURRENT_MM, "20260301")):
        hu = scan.series.hu.copy()
        for point, size in zip(points, sizes, strict=True):
            if size:
                _paint(hu, spacing, point, size)
        uid = f"1.2.826.0.1.3680043.8.498.{SEED}.{len(name)}"
        series = replace(scan.series, hu=hu, series_uid=uid)
        files = write_dicom_series(series, root / name, seed=SEED, series_uid=uid)
        for path in files:
            ds = pydicom.dcmread(path)
            ds.StudyDate = day
            ds.save_as(path)
        out[name] = root / name
    out["points_mm"] = [scan.series.voxel_to_mm((p[2], p[1], p[0])) for p in points]
    return out


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "ct", "detect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _status_at(out: dict[str, Any], point_mm: Any) -> str:
    current = {n["id"]: n for n in out["nodules"]}
    prior = {n["id"]: n for n in out["followup"]["prior"]["nodules"]}
    for change in out["followup"]["changes"]:
        n = current.get(change["current_id"]) or prior[change["prior_id"]]
        if math.dist(n["center_mm"], point_mm) < 5:
            return str(change["status"])
    return "missing"


def test_prior_series_gives_followup_and_growth_raises_lung_rads(
    studies: dict[str, Any], tmp_path: Path
) -> None:
    proc = run(str(studies["current"]), "--prior", str(studies["prior"]), "--json", "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # DESIGN.md §3 fields unchanged, in order; followup and study only added
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
    assert all(set(n) == NODULE_KEYS for n in out["nodules"])
    assert set(out["lung_rads"]) >= {"version", "category", "driver_nodule", "management"}
    assert out["study"]["study_date"] == "2026-03-01"
    follow = out["followup"]
    assert follow["interval_days"] == 365 and follow["warnings"] == []
    statuses = [_status_at(out, p) for p in studies["points_mm"]]
    assert statuses == list(EXPECTED)
    grown = next(c for c in follow["changes"] if c["status"] == "grown")
    assert grown["diameter_change_mm"] > 1.5
    assert 0 < grown["volume_doubling_days"] < 365  # more than doubled within the year
    assert follow["counts"] == {"new": 1, "grown": 1, "stable": 1, "shrunk": 0, "resolved": 1}
    # the new >= 8 mm / growing >= 8 mm solid nodule: 4B, above the size-only category
    assert out["lung_rads"]["baseline_category"] == "4A"
    assert out["lung_rads"]["category"] == "4B"
    assert out["lung_rads"]["rule_id"].startswith("lungrads.solid.")
    assert "category 4B (compared with the prior; 4A" in out["report"]["impression"]
    assert "grown (mean diameter +" in out["report"]["findings"]

    # the same comparison from a saved prior result; another patient, another orientation
    prior = run(str(studies["prior"]), "--json")
    assert prior.returncode == 0, prior.stderr
    doc = json.loads(prior.stdout)
    assert "followup" not in doc and doc["study"]["study_date"] == "2025-03-01"
    doc["study"]["patient_key"] = "0" * 16
    doc["study"]["orientation"] = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    saved = tmp_path / "prior.json"
    saved.write_text(json.dumps(doc), encoding="utf-8")
    proc = run(str(studies["current"]), "--prior-result", str(saved), "--json", "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    codes = [w["code"] for w in again["followup"]["warnings"]]
    assert codes == ["patient_mismatch", "orientation_mismatch"]
    assert again["followup"]["counts"] == follow["counts"]
    assert again["followup"]["prior"]["source"] == "result"


def test_unreadable_prior_exits_2_with_one_line(studies: dict[str, Any], tmp_path: Path) -> None:
    missing = run(str(studies["current"]), "--prior", str(tmp_path / "nope"), "--json")
    assert missing.returncode == 2 and missing.stdout == ""
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "prior study" in lines[0] and "nope" in lines[0]
    both = run(str(studies["current"]), "--prior", "a", "--prior-result", "b", "--json")
    assert both.returncode == 2 and "not both" in both.stderr
    garbage = tmp_path / "prior.json"
    garbage.write_text('{"nodules": [{"id": 1}]}', encoding="utf-8")
    bad = run(str(studies["current"]), "--prior-result", str(garbage), "--json")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "nodules[0]" in bad.stderr and "center_mm" in bad.stderr
