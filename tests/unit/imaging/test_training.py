"""Fitting the classical detector's classifier: the out-of-fold replay of detection and
matching, the threshold rule, weights and folds (medbrain.imaging.training)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medbrain.imaging.pipeline import default_detector, default_weights
from medbrain.imaging.synthetic import SyntheticScan
from medbrain.imaging.training import (
    EVAL_SEEDS,
    GBT_PARAMS,
    THICK_GROUP,
    TRAIN_SEEDS,
    PerScan,
    ScanCandidates,
    evaluate_scan,
    fit_gbt,
    fp_threshold,
    nodule_weights,
    operating_point,
    replay,
    scan_candidates,
    seed_folds,
)


@pytest.fixture(scope="module")
def candidates(scan: SyntheticScan) -> ScanCandidates:
    return scan_candidates(scan, default_detector())


def test_training_seeds_stay_out_of_the_held_out_range() -> None:
    assert not set(TRAIN_SEEDS) & set(EVAL_SEEDS)
    assert max(TRAIN_SEEDS) < THICK_GROUP


def test_replay_gives_what_the_evaluation_of_the_scan_gives(
    scan: SyntheticScan, candidates: ScanCandidates
) -> None:
    # the threshold is chosen on replayed out-of-fold scores, so the replay must count hits,
    # duplicates and false positives exactly as detection + evaluate_scan do
    scores = default_weights().score_many(candidates.x)
    assert replay(candidates, scores) == evaluate_scan(scan, default_detector())
    assert (candidates.nodule >= 0).any() and (candidates.nodule < 0).any()


def test_replay_drops_a_lower_scored_candidate_inside_a_better_one(
    candidates: ScanCandidates,
) -> None:
    # the same centre twice: the copy is suppressed, whatever its score
    one = ScanCandidates(
        0,
        np.repeat(candidates.x[:1], 2, axis=0),
        np.asarray([-1, -1]),
        np.repeat(candidates.center_full[:1], 2, axis=0),
        np.repeat(candidates.center_mm[:1], 2, axis=0),
        np.asarray([6.0, 6.0]),
        np.zeros((0, 3)),
        np.zeros(0),
        candidates.spacing_mm,
    )
    truth, dets = replay(one, np.asarray([0.3, 0.9]))
    assert truth == [] and dets == [(0.9, None)]


def test_scan_candidates_round_trip(candidates: ScanCandidates, tmp_path: Path) -> None:
    path = tmp_path / "7.npz"
    candidates.save(path)
    back = ScanCandidates.load(path)
    assert back.group == candidates.group
    for name in ("x", "nodule", "center_full", "center_mm", "truth_diameter", "spacing_mm"):
        assert np.array_equal(getattr(back, name), getattr(candidates, name))


def test_fp_threshold_keeps_false_positives_per_scan_at_the_target() -> None:
    per_scan: list[PerScan] = [
        ([(5.0, True)], [(0.9, 0), (0.8, None), (0.4, None)]),
        ([(5.0, True)], [(0.7, None), (0.6, 0), (0.2, None)]),
    ]
    for target in (0.0, 0.5, 1.0, 1.5):
        thr = fp_threshold(per_scan, target)
        _, fps = operating_point(per_scan, thr)
        assert fps <= target
        _, fps_below = operating_point(per_scan, thr - 0.0002)
        assert fps_below > target  # the lowest such threshold
    assert fp_threshold(per_scan, 5.0) == 0.0


def test_nodule_weights_share_of_positives() -> None:
    y = np.asarray([1, 1, 1, 0, 0, 0, 0, 0], dtype=np.float64)
    groups = np.zeros(8, dtype=np.int64)
    nodules = np.asarray([0, 0, 1, -1, -1, -1, -1, -1])
    w = nodule_weights(y, groups, nodules, positive_share=0.3)
    assert w[:3].sum() == pytest.approx(0.3 * 5)
    assert w[0] == pytest.approx(w[2] / 2)  # nodule 0 has two candidates, nodule 1 one
    assert np.all(w[3:] == 1.0)


def test_folds_keep_a_seed_and_its_thick_scans_together() -> None:
    seeds = [1000, 1001, 1002, 1003, 1004, 1005, 1006]
    folds = seed_folds(seeds + [s + THICK_GROUP for s in seeds[:3]])
    assert folds == seed_folds(seeds)
    assert set(folds.values()) == set(range(5))
    assert GBT_PARAMS["early_stopping"] is False  # fold and final models fit the same way


def test_fit_gbt_threshold_meets_its_out_of_fold_target(candidates: ScanCandidates) -> None:
    # ten copies of one scan with shifted features stand in for ten seeds
    rng = np.random.default_rng(0)
    cands = [
        replace(
            candidates,
            group=1000 + k,
            x=candidates.x + rng.normal(0.0, 0.05, candidates.x.shape),
        )
        for k in range(10)
    ]
    fit = fit_gbt(cands, params={**GBT_PARAMS, "max_iter": 20}, target_fp=0.5)
    assert sorted(fit.oof) == [c.group for c in cands]
    _, fps = operating_point(list(fit.oof.values()), fit.threshold)
    assert fps <= 0.5
    assert 0.0 < fit.threshold < 1.0
    assert len(fit.trees["roots"]) == 20
