"""Lung segmentation: both lungs, sides in LPS, juxtapleural nodules kept, no lungs refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medbrain.imaging.errors import NoLungsError
from medbrain.imaging.lungs import LEFT, RIGHT, refine_pleura, segment_lungs
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


def test_refine_pleura_puts_a_small_juxtapleural_bump_back_in_the_mask() -> None:
    # lung (air) above row 30, chest wall below; a 3 mm-high bump of the wall (a juxtapleural
    # nodule) at column 30; the coarse mask stops two voxels short of the pleura
    hu = np.full((20, 50, 60), -850.0, dtype=np.float32)
    hu[:, 30:, :] = 40.0
    zz, yy, xx = np.mgrid[:20, :50, :60]
    bump = ((zz - 10) ** 2 + (yy - 30) ** 2 + (xx - 30) ** 2) <= 3.2**2
    hu[bump] = 40.0
    body = np.ones(hu.shape, dtype=bool)
    coarse = np.zeros(hu.shape, dtype=bool)
    coarse[2:18, 2:28, 2:58] = True
    refined = refine_pleura(coarse, hu, body)
    assert refined[coarse].all()
    assert refined[10, 28:30, 10].all()  # the aerated rim at the pleura is back
    assert refined[10, 28, 29:32].all()  # and the tip of the nodule left out with it
    assert not coarse[10, 28, 29:32].any()
    assert not refined[:, 31:, :].any()  # never into the wall beyond the nodule's base
    away = refined.copy()
    away[:, :, 24:37] = False
    assert not (away & (hu > -400)).any()  # the flat pleura gets no wall voxels
