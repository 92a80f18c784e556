"""The synthetic chest CT generator's follow-up option: ``size_factors`` grows the chosen
nodules and changes nothing else (anatomy, places, noise), so a seed gives a prior and a
current study of one patient."""

from __future__ import annotations

import math

import numpy as np

from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct


def scan(*size_factors: float) -> SyntheticScan:
    return generate_chest_ct(
        11, shape=(48, 80, 80), spacing_mm=(2.5, 2.5, 2.5), n_nodules=3, size_factors=size_factors
    )


def test_size_factors_grow_only_the_chosen_nodule() -> None:
    prior, current = scan(), scan(1.0, 1.5)
    assert len(prior.nodules) == len(current.nodules) >= 2
    for n, (before, after) in enumerate(zip(prior.nodules, current.nodules, strict=True)):
        assert after.center_mm == before.center_mm and after.type == before.type
        factor = 1.5 if n == 1 else 1.0
        assert math.isclose(after.diameter_mm, before.diameter_mm * factor, abs_tol=0.01)

    changed = np.argwhere(prior.series.hu != current.series.hu)
    assert len(changed) > 0
    grown = current.nodules[1]
    centre_zyx = np.asarray(grown.center_voxel[::-1])
    spacing_zyx = np.asarray(current.series.spacing_mm[::-1])
    reach_mm = np.linalg.norm((changed - centre_zyx) * spacing_zyx, axis=1).max()
    assert reach_mm <= grown.diameter_mm  # only around the grown nodule (blur included)


def test_no_size_factors_keep_the_seed_s_image() -> None:
    assert np.array_equal(scan().series.hu, scan(1.0, 1.0, 1.0).series.hu)
