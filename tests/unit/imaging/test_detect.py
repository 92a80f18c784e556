"""Detection on a held-out thin-section synthetic scan (never used to fit the classifier),
the tree-ensemble model format, vessel suppression and input-grid measurement."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pytest
from scipy import ndimage

from medbrain.imaging.detect import (
    FEATURES,
    ClassicalDetector,
    Point,
    TreeEnsemble,
    _ray_features,
)
from medbrain.imaging.pipeline import DetectOptions, default_detector, default_weights, prepare
from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct
from medbrain.imaging.training import (
    EVAL_SEEDS,
    SCAN_KWARGS,
    TRAIN_SEEDS,
    Pair,
    PerScan,
    ensemble_from,
    evaluate_scan,
    evaluate_scan_full,
    export_trees,
    nodule_weights,
    operating_point,
)
from tests.unit.imaging.test_measure import _juxtavascular

HELD_OUT = 5003


def test_evaluation_seeds_are_disjoint_from_training_seeds() -> None:
    assert not set(TRAIN_SEEDS) & set(EVAL_SEEDS)
    assert HELD_OUT in EVAL_SEEDS


@pytest.fixture(scope="module")
def thin_scan() -> SyntheticScan:
    return generate_chest_ct(HELD_OUT, **SCAN_KWARGS)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result(thin_scan: SyntheticScan) -> tuple[PerScan, list[Pair]]:
    return evaluate_scan_full(thin_scan, default_detector())


def test_finds_nodules_of_4mm_and_larger_on_a_held_out_thin_section_scan(
    result: tuple[PerScan, list[Pair]],
) -> None:
    sensitivity, fp_per_scan = operating_point([result[0]], default_weights().threshold, 4.0)
    # one scan; the FROC over 20 held-out scans is printed by tests/bench/bench_ct.py
    assert sensitivity >= 0.6
    assert fp_per_scan <= 3


def test_found_nodules_are_measured_on_the_input_grid(
    thin_scan: SyntheticScan, result: tuple[PerScan, list[Pair]]
) -> None:
    pairs = result[1]
    assert pairs
    sp = np.asarray(thin_scan.series.spacing_mm)
    for truth, m in pairs:
        # centres are input-grid voxels (not the 1.4 mm working grid)
        offset = (np.asarray(m.center_voxel) - np.asarray(truth.center_voxel)) * sp
        assert np.linalg.norm(offset) <= max(truth.diameter_mm / 2, 3.0)
    free = [(t, m) for t, m in pairs if t.placement != "juxtapleural" and t.diameter_mm >= 6]
    errors = [abs(m.mean_diameter_mm - t.diameter_mm) for t, m in free]
    assert errors
    assert float(np.median(errors)) <= 1.0
    typed = sum(1 for t, m in pairs if t.type == m.type)
    assert typed / len(pairs) >= 0.7


def test_scores_are_probabilities_and_sorted(result: tuple[PerScan, list[Pair]]) -> None:
    _, dets = result[0]
    scores = [s for s, _ in dets]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_empty_lungs_give_few_candidates_above_threshold() -> None:
    scan = generate_chest_ct(5050, n_nodules=0)  # coarse 2.5 mm scan: still runs
    truth, dets = evaluate_scan(scan, default_detector())
    assert truth == []
    assert sum(1 for s, _ in dets if s >= default_weights().threshold) <= 4


def test_shipped_model_is_plain_data_with_the_detector_features() -> None:
    model = default_weights()
    assert isinstance(model, TreeEnsemble)
    text = resources.files("medbrain.knowledge").joinpath(
        "imaging", "detector_classical_trees.json"
    )
    data = json.loads(text.read_text())
    assert set(data) == {"baseline", "roots", "feature", "threshold", "left", "right", "value"}
    assert max(data["feature"]) < len(FEATURES)
    assert 0.0 < model.threshold < 1.0


def test_exported_trees_reproduce_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0.3).astype(float)
    clf = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8).fit(x, y)
    ens = ensemble_from(export_trees(clf), 0.5)
    probe = rng.normal(size=(50, 5))
    assert np.allclose(ens.score_many(probe), clf.predict_proba(probe)[:, 1], atol=1e-9)


def _phantom() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Lung block at 1 mm with a straight vessel (r 1.5 mm) and a 5 mm nodule away from it."""
    sp = (1.0, 1.0, 1.0)
    z, y, x = np.indices((60, 60, 60)).astype(np.float32)
    hu = np.full((60, 60, 60), -850.0, dtype=np.float32)
    hu[((y - 20) ** 2 + (x - 20) ** 2) <= 1.5**2] = 40.0  # along z
    hu[((z - 30) ** 2 + (y - 42) ** 2 + (x - 40) ** 2) <= 2.5**2] = 40.0
    hu = ndimage.gaussian_filter(hu, 0.6).astype(np.float32)
    lung = np.zeros(hu.shape, dtype=bool)
    lung[3:-3, 3:-3, 3:-3] = True
    return hu, lung, sp


def test_hessian_keeps_the_nodule_and_drops_the_vessel() -> None:
    hu, lung, sp = _phantom()
    points = default_detector().candidate_points(hu, lung, sp)
    near_nodule = [p for p in points if np.linalg.norm(np.subtract(p.center, (30, 42, 40))) < 3]
    on_vessel = [
        p
        for p in points
        if 10 < p.center[0] < 50 and np.hypot(p.center[1] - 20, p.center[2] - 20) < 3
    ]
    assert near_nodule
    assert not on_vessel


def test_working_grid_lungs_cover_the_generated_lungs() -> None:
    scan = generate_chest_ct(5051, shape=(64, 192, 192), spacing_mm=(1.6, 1.6, 3.0), n_nodules=0)
    hu, _, factors, lungs, _ = prepare(scan.series, DetectOptions(working_spacing_mm=1.4))
    assert factors == (1, 1, 1)  # 1.6 mm: already the working grid
    assert lungs.mask.shape == hu.shape  # segmented twice coarser, repeated back
    truth_ml = float(scan.lung_mask.sum()) * 1.6 * 1.6 * 3.0 / 1000.0
    assert 0.85 < lungs.volume_ml / truth_ml < 1.15
    overlap = float((lungs.mask & scan.lung_mask).sum()) / float(scan.lung_mask.sum())
    assert overlap > 0.9


def test_classical_detector_accepts_any_scorer() -> None:
    class Constant:
        threshold = 0.5

        def score_many(self, x: np.ndarray) -> np.ndarray:
            return np.full(len(x), 0.25)

    hu, lung, sp = _phantom()
    cands = ClassicalDetector(Constant()).detect(hu, lung, sp)
    assert cands
    assert all(c.score == 0.25 and len(c.features) == len(FEATURES) for c in cands)


def test_ray_features_tell_a_round_nodule_from_a_vessel() -> None:
    hu, _, sp = _phantom()
    med_n, long_n, _ = _ray_features(hu, sp, (30.0, 42.0, 40.0))  # 5 mm nodule, nothing attached
    med_v, long_v, max_v = _ray_features(hu, sp, (30.0, 20.0, 20.0))  # on the vessel
    assert 2.0 <= med_n <= 3.5 and long_n == 0.0
    assert med_v < med_n
    assert long_v > 0.0 and max_v >= 5.0  # the rays along the vessel run out


def _pleural_phantom() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Lung (x < 40) against a chest wall (40 HU) at 1.5 mm voxels: a 4 mm calcified nodule
    sitting on the pleura and a long bright bar (a rib) inside the wall along it."""
    sp = (1.5, 1.5, 1.5)
    z, y, x = np.indices((40, 40, 60)).astype(np.float32)
    hu = np.where(x < 40, -850.0, 40.0).astype(np.float32)
    nodule = ((z - 20) ** 2 + (y - 12) ** 2 + (x - 39.5) ** 2) * 1.5**2 <= 2.0**2
    hu[nodule] = 500.0
    hu[(np.abs(y - 30) <= 2) & (np.abs(x - 42) <= 1)] = 500.0  # rib, runs along z
    hu = ndimage.gaussian_filter(hu, 0.5).astype(np.float32)
    lung = np.zeros(hu.shape, dtype=bool)
    lung[2:-2, 2:-2, 2:39] = True
    lung &= ~ndimage.binary_dilation(nodule)  # the lung mask leaves the nodule out
    return hu, lung, sp


def test_calcified_nodule_on_the_pleura_outside_the_mask_is_a_candidate() -> None:
    hu, lung, sp = _pleural_phantom()
    det = default_detector()
    points, with_bright = det.pleural_bright_points(hu, lung, sp)
    assert [p.center for p in points if abs(p.center[1] - 12) <= 2] == [points[0].center]
    assert not [p for p in points if abs(p.center[1] - 30) <= 3]  # not the rib
    assert with_bright[points[0].center] and not lung[points[0].center]
    measured = det.features(hu, lung, sp)
    near = [
        m for m, _ in measured if np.hypot(m.center_voxel[1] - 12, m.center_voxel[0] - 39.5) < 2.5
    ]
    assert near and near[0].type == "calcified"
    assert 2.5 <= near[0].mean_diameter_mm <= 6.0


def test_every_nodule_weighs_the_same_in_the_fit() -> None:
    y = np.asarray([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    groups = np.asarray([1000, 1000, 1000, 1001, 1000, 1000, 1000, 1001, 1001, 1001])
    nodules = np.asarray([0, 0, 0, 0, -1, -1, -1, -1, -1, -1])  # 3 candidates on one nodule
    w = nodule_weights(y, groups, nodules)
    assert w[0] == w[1] == w[2] and np.isclose(w[:3].sum(), w[3])  # same nodule total
    assert np.isclose(w[y > 0.5].sum(), w[y < 0.5].sum())  # classes balanced
    assert np.all(w[y < 0.5] == 1.0)


@dataclass(frozen=True, slots=True)
class _GivenPoints(ClassicalDetector):
    """The classical detector with its scale-space points given (their order matters)."""

    points: tuple[Point, ...] = ()

    def candidate_points(
        self, hu: np.ndarray, lung_mask: np.ndarray, spacing_zyx: tuple[float, float, float]
    ) -> list[Point]:
        return list(self.points)


def test_small_nodule_merged_into_an_earlier_vessel_measurement_keeps_its_own() -> None:
    # a 5.6 mm nodule touching a 4 mm vessel; a coarse point on the vessel beside it comes
    # first and its measurement takes in both (centre ~3 mm off the nodule's). The nodule's
    # own fine-scale point lies inside that measurement but is measured again: its own,
    # clean measurement is a candidate.
    hu, lung, c, sp = _juxtavascular(5.6, 30.0, 2.0, seed=3)
    lung[[0, -1], :, :] = lung[:, [0, -1], :] = lung[:, :, [0, -1]] = False
    eig = (-1.0, -1.0, -1.0)
    vessel_side = (c[0], c[1] + 5, c[2])  # 3.5 mm from the nodule's centre, on the vessel
    first = Point(vessel_side, 400.0, 3.0, 0.9, 0.9, eig)
    merged = [m for m, _ in _GivenPoints(default_weights(), points=(first,)).features(hu, lung, sp)]
    assert len(merged) == 1 and merged[0].mean_diameter_mm > 7.5
    points = (first, Point(c, 300.0, 1.06, 0.9, 0.9, eig))
    found = [m for m, _ in _GivenPoints(default_weights(), points=points).features(hu, lung, sp)]
    assert len(found) == 2
    own = found[1]
    off = np.subtract(own.center_voxel[::-1], c) * np.asarray(sp)
    assert float(np.linalg.norm(off)) <= 1.0
    assert abs(own.mean_diameter_mm - 5.6) <= 0.8
    # a point inside a nodule already measured is not measured twice
    again = (*points, Point((c[0], c[1] - 1, c[2]), 250.0, 0.9, 0.9, 0.9, eig))
    assert len(_GivenPoints(default_weights(), points=again).features(hu, lung, sp)) == 2
