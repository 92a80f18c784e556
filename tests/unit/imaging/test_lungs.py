"""Lung segmentation: both lungs, sides in LPS, juxtapleural nodules kept, no lungs refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medbrain.imaging.errors import NoLungsError
from medbrain.imaging.lungs import LEFT, RIGHT, segment_lungs
from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct


def test_lung_mask_matches_phantom_lungs(scan: SyntheticScan) -> None:
    lungs = segment_lungs(scan.series.hu, scan.series.spacing_zyx)
    truth = scan.lung_mask
    dice = 2 * (lungs.mask & truth).sum() / (lungs.mask.sum() + truth.sum())
    assert dice > 0.95


def test_sides_follow_lps_x(scan: SyntheticScan) -> None:
    lungs = segment_lungs(scan.series.hu, scan.series.spacing_zyx)
    cols = np.arange(scan.series.hu.shape[2])
    right_cols = cols[(lungs.sides == RIGHT).any(axis=(0, 1))]
    left_cols = cols[(lungs.sides == LEFT).any(axis=(0, 1))]
    assert right_cols.mean() < left_cols.mean()  # +x (higher column) is the patient's left


def test_juxtapleural_nodule_is_kept_inside_the_mask() -> None:
    scan = generate_chest_ct(
        3,
        types=("solid",),
        placements=("juxtapleural",),
        n_nodules=2,
        diameter_range_mm=(8.0, 14.0),
    )
    lungs = segment_lungs(scan.series.hu, scan.series.spacing_zyx)
    inner = ndimage.binary_erosion(scan.lung_mask)  # ignore the partial-volume pleural rim
    assert scan.nodules
    for n in scan.nodules:
        i, j, k = (round(v) for v in n.center_voxel)
        r = int(np.ceil(n.diameter_mm / 2 / 2.5))
        box = (slice(k - r, k + r + 1), slice(j - r, j + r + 1), slice(i - r, i + r + 1))
        nodule_in_lung = (scan.series.hu[box] > -400) & inner[box]
        kept = (lungs.mask[box] & nodule_in_lung).sum() / max(nodule_in_lung.sum(), 1)
        assert kept >= 0.9


def test_volume_without_lungs_is_refused(scan: SyntheticScan) -> None:
    soft = np.full(scan.series.hu.shape, 40.0, dtype=np.float32)
    soft[:, :, :5] = -1000.0
    with pytest.raises(NoLungsError, match="lung"):
        segment_lungs(soft, scan.series.spacing_zyx)
