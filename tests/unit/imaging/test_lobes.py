"""Lobes from fitted fissures: synthetic fissures + truth, fitting, margins, null with reasons."""

from __future__ import annotations

import numpy as np
import pytest

from medbrain.imaging.lobes import (
    LobeModel,
    assign_lobes,
    fit_lobes,
    on_fissure,
    working_affine,
)
from medbrain.imaging.lungs import segment_lungs
from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct
from medbrain.imaging.synthetic_fissures import LOBES, lobe_label_volume


def _model(scan: SyntheticScan) -> LobeModel:
    s = scan.series
    x_of_col = s.origin_mm[0] + s.spacing_mm[0] * np.arange(s.hu.shape[2])
    lungs = segment_lungs(s.hu, s.spacing_zyx, x_of_col=x_of_col)
    affine = working_affine(s.origin_mm, s.direction, s.spacing_mm)
    return fit_lobes(s.hu, lungs, s.spacing_zyx, affine)


@pytest.fixture(scope="module")
def fissured() -> SyntheticScan:
    return generate_chest_ct(6101, fissures=True, n_nodules=8)


def test_fissures_do_not_change_the_rest_of_the_phantom() -> None:
    plain = generate_chest_ct(6102, n_nodules=4)
    with_f = generate_chest_ct(6102, n_nodules=4, fissures=True)
    assert [n.center_mm for n in plain.nodules] == [n.center_mm for n in with_f.nodules]
    assert all(n.lobe is None for n in plain.nodules)
    assert {n.lobe for n in with_f.nodules} <= set(LOBES)
    changed = np.abs(plain.series.hu - with_f.series.hu) > 1e-3
    assert changed.any()
    # only inside the lungs (plus the one-voxel partial-volume blur at their edge)
    from scipy import ndimage

    assert not (changed & ~ndimage.binary_dilation(with_f.lung_mask)).any()


def test_truth_lobes_are_anatomical(fissured: SyntheticScan) -> None:
    labels = lobe_label_volume(fissured.fissures, fissured.lung_mask, fissured.series.spacing_zyx)
    counts = np.bincount(labels[fissured.lung_mask], minlength=6)[1:]
    assert (counts > 0).all()  # all five lobes exist
    z = np.arange(labels.shape[0])[:, None, None]
    mean_z = [float(np.broadcast_to(z, labels.shape)[labels == k].mean()) for k in (1, 2, 3)]
    assert mean_z[0] > mean_z[1]  # RUL above RML
    ys = np.arange(labels.shape[1])[None, :, None]
    y_rml = float(np.broadcast_to(ys, labels.shape)[labels == 2].mean())
    y_rll = float(np.broadcast_to(ys, labels.shape)[labels == 3].mean())
    assert y_rml < y_rll  # middle lobe anterior (lower row = anterior), lower lobe posterior
    for n in fissured.nodules:
        i, j, k = (round(v) for v in n.center_voxel)
        if labels[k, j, i]:
            assert LOBES[labels[k, j, i] - 1] == n.lobe


def test_fissures_found_and_lobes_correct_on_held_out_seeds() -> None:
    assigned = total = 0
    for seed in (6201, 6202):
        scan = generate_chest_ct(seed, fissures=True, n_nodules=8)
        model = _model(scan)
        fits = model.to_dict()
        assert all(f["found"] for f in fits.values()), fits
        for n in scan.nodules:
            lobe, reason = model.assign(np.asarray(n.center_mm), n.diameter_mm / 2, n.side)
            total += 1
            if lobe is not None:
                assigned += 1
                assert lobe == n.lobe, (seed, n, reason)
            else:
                assert "fissure" in reason
    assert assigned >= total // 2  # coverage: most nodules are clear of the fissures


def test_no_fissures_means_no_lobe_with_a_reason() -> None:
    scan = generate_chest_ct(6103, n_nodules=3)
    model = _model(scan)
    assert not model.right_oblique.found and not model.left_oblique.found
    nodules = [
        {"center_mm": list(n.center_mm), "mean_diameter_mm": n.diameter_mm, "side": n.side}
        for n in scan.nodules
    ]
    assign_lobes(nodules, model)
    assert nodules and all(n["lobe"] is None for n in nodules)
    assert all("oblique fissure not found" in n["lobe_reason"] for n in nodules)


def test_a_nodule_on_the_fissure_gets_no_lobe(fissured: SyntheticScan) -> None:
    model = _model(fissured)
    fit = model.left_oblique
    assert fit.found
    on = fit.origin.copy()  # the fitted surface passes close to its own origin
    d0 = float(fit.signed_distance(on)[0])
    on = on - d0 * fit.frame[2]
    lobe, reason = model.assign(on, 2.0, "left")
    assert lobe is None and "within" in reason
    above = on + 25.0 * fit.frame[2]
    below = on - 25.0 * fit.frame[2]
    assert model.assign(above, 2.0, "left")[0] == "LUL"
    assert model.assign(below, 2.0, "left")[0] == "LLL"


def test_working_affine_matches_the_series_and_block_centres(scan: SyntheticScan) -> None:
    s = scan.series
    a = working_affine(s.origin_mm, s.direction, s.spacing_mm)
    k, j, i = 10, 20, 30
    np.testing.assert_allclose(a @ [k, j, i, 1.0], s.voxel_to_mm((i, j, k)), atol=1e-9)
    a2 = working_affine(s.origin_mm, s.direction, s.spacing_mm, (2, 2, 2))
    # working voxel 0 averages input voxels 0 and 1: its centre is input index 0.5
    np.testing.assert_allclose(a2 @ [0, 0, 0, 1.0], s.voxel_to_mm((0.5, 0.5, 0.5)), atol=1e-9)


def test_non_axial_scans_are_not_guessed(scan: SyntheticScan) -> None:
    s = scan.series
    lungs = segment_lungs(s.hu, s.spacing_zyx)
    coronal = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0))  # slices along y
    model = fit_lobes(
        s.hu, lungs, s.spacing_zyx, working_affine(s.origin_mm, coronal, s.spacing_mm)
    )
    lobe, reason = model.assign(np.zeros(3), 3.0, "right")
    assert lobe is None and "axial" in reason


def test_ground_glass_smear_on_a_seen_fissure_is_flagged(fissured: SyntheticScan) -> None:
    model = _model(fissured)
    fit = model.left_oblique
    seen = fit.seen_uv[len(fit.seen_uv) // 2]  # a place where the fissure was seen
    q = np.asarray([seen[0], seen[1], 0.0])
    coef = fit.coef
    q[2] = coef[0] + coef[1] * q[0] + coef[2] * q[1] + coef[3] * q[0] ** 2
    q[2] += coef[4] * q[0] * q[1] + coef[5] * q[1] ** 2
    on = fit.origin + q @ fit.frame  # back to LPS mm
    ggn = {"type": "ground-glass", "side": "left", "center_mm": list(on)}
    assert on_fissure(ggn, model) == "left_oblique"
    assert on_fissure({**ggn, "type": "solid"}, model) is None  # only faint smears
    away = on + 8.0 * fit.frame[2]
    assert on_fissure({**ggn, "center_mm": list(away)}, model) is None
