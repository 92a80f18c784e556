"""Fit the classical detector's logistic false-positive classifier on synthetic scans.

Training seeds and evaluation seeds are disjoint ranges (:data:`TRAIN_SEEDS`,
:data:`EVAL_SEEDS`), so reported accuracy is measured on scans never tuned on.

References
----------
Hastie T, Tibshirani R, Friedman J. The Elements of Statistical Learning, 2nd ed., 2009,
section 4.4 (logistic regression, fitted here by L2-regularised gradient descent).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from medbrain.imaging.detect import ClassicalDetector, ClassifierWeights
from medbrain.imaging.lungs import segment_lungs
from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct

TRAIN_SEEDS = range(1000, 1030)
EVAL_SEEDS = range(5000, 5100)
SCAN_KWARGS: dict[str, object] = {"n_nodules": 8, "diameter_range_mm": (3.0, 30.0)}


def match(
    center_voxel: tuple[float, float, float], scan: SyntheticScan, used: set[int] | None = None
) -> int | None:
    """Index of the ground-truth nodule whose radius (at least 3 mm) contains the point."""
    sp = np.asarray(scan.series.spacing_mm)
    best: tuple[float, int] | None = None
    for i, n in enumerate(scan.nodules):
        if used is not None and i in used:
            continue
        d = float(np.linalg.norm((np.asarray(center_voxel) - np.asarray(n.center_voxel)) * sp))
        if d <= max(n.diameter_mm / 2.0, 3.0) and (best is None or d < best[0]):
            best = (d, i)
    return None if best is None else best[1]


def collect(seeds: range, detector: ClassicalDetector) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Feature matrix and 0/1 labels of all candidates over ``seeds``."""
    xs: list[tuple[float, ...]] = []
    ys: list[float] = []
    for seed in seeds:
        scan = generate_chest_ct(seed, **SCAN_KWARGS)  # type: ignore[arg-type]
        lungs = segment_lungs(scan.series.hu, scan.series.spacing_zyx)
        for m, f in detector.features(scan.series.hu, lungs.mask, scan.series.spacing_zyx):
            xs.append(f)
            ys.append(1.0 if match(m.center_voxel, scan) is not None else 0.0)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def fit_logistic(
    x: NDArray[np.float64], y: NDArray[np.float64], l2: float = 1e-2, steps: int = 3000
) -> ClassifierWeights:
    """Standardise features and fit a class-balanced logistic regression."""
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    z = (x - mean) / std
    pos = max(float(y.sum()), 1.0)
    neg = max(float((1 - y).sum()), 1.0)
    sample_w = np.where(y > 0, 0.5 / pos, 0.5 / neg)
    w = np.zeros(z.shape[1])
    b = 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = (p - y) * sample_w
        w -= lr * (z.T @ g + l2 * w)
        b -= lr * float(g.sum())
    return ClassifierWeights(
        bias=round(b, 4),
        weights=tuple(round(float(v), 4) for v in w),
        mean=tuple(round(float(v), 4) for v in mean),
        std=tuple(round(float(v), 4) for v in std),
        threshold=0.5,
    )


def logit(p: float) -> float:
    return math.log(p / (1 - p))
