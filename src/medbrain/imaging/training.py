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
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from medbrain.imaging.detect import ClassicalDetector, ClassifierWeights, quadratic_expand
from medbrain.imaging.lungs import segment_lungs
from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct

TRAIN_SEEDS = range(1000, 1030)
EVAL_SEEDS = range(5000, 5100)
SCAN_KWARGS: Mapping[str, object] = MappingProxyType(
    {"n_nodules": 8, "diameter_range_mm": (3.0, 30.0)}
)


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


def collect(
    seeds: range, detector: ClassicalDetector
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
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


def fit_quadratic(
    x: NDArray[np.float64], y: NDArray[np.float64], l2: float = 1e-2, steps: int = 4000
) -> ClassifierWeights:
    """Second-order (pairwise products) class-balanced logistic regression."""
    base_mean = x.mean(axis=0)
    base_std = x.std(axis=0) + 1e-6
    lin = fit_logistic(quadratic_expand((x - base_mean) / base_std), y, l2=l2, steps=steps)
    return ClassifierWeights(
        bias=lin.bias,
        weights=lin.weights,
        mean=lin.mean,
        std=lin.std,
        threshold=lin.threshold,
        base_mean=tuple(round(float(v), 4) for v in base_mean),
        base_std=tuple(round(float(v), 4) for v in base_std),
    )


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


def evaluate_scan(
    scan: SyntheticScan, detector: ClassicalDetector
) -> tuple[list[tuple[float, bool]], list[tuple[float, int | None]]]:
    """Score one scan: ``(truth (diameter, found at any score), detections (score, truth index))``.

    A detection matched to an already-matched nodule counts as neither hit nor false positive
    (duplicate), as in the LUNA16 FROC protocol.
    """
    lungs = segment_lungs(scan.series.hu, scan.series.spacing_zyx)
    cands = detector.detect(scan.series.hu, lungs.mask, scan.series.spacing_zyx)
    used: set[int] = set()
    dets: list[tuple[float, int | None]] = []
    for c in cands:  # best first
        i = match(c.measurement.center_voxel, scan, used)
        if i is None and match(c.measurement.center_voxel, scan) is not None:
            continue  # duplicate of a found nodule
        if i is not None:
            used.add(i)
        dets.append((c.score, i))
    truth = [(n.diameter_mm, i in used) for i, n in enumerate(scan.nodules)]
    return truth, dets


def froc(
    per_scan: list[tuple[list[tuple[float, bool]], list[tuple[float, int | None]]]],
    min_mm: float = 0.0,
    max_mm: float = 1e9,
    fp_rates: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
) -> dict[float, float]:
    """Sensitivity at each average false-positive rate per scan (nodules in [min_mm, max_mm))."""
    events: list[tuple[float, int]] = []  # (score, +1 tp / 0 fp)
    total = 0
    for s, (truth, dets) in enumerate(per_scan):
        keep = {i for i, (d, _) in enumerate(truth) if min_mm <= d < max_mm}
        total += len(keep)
        for score, i in dets:
            if i is None:
                events.append((score, 0))
            elif i in keep:
                events.append((score, 1))
        del s
    events.sort(key=lambda e: -e[0])
    n_scans = max(len(per_scan), 1)
    out: dict[float, float] = {}
    for rate in fp_rates:
        tp = fp = 0
        best = 0
        for _, hit in events:
            if hit:
                tp += 1
            else:
                fp += 1
                if fp / n_scans > rate:
                    break
            best = tp
        out[rate] = best / total if total else float("nan")
    return out


def operating_point(
    per_scan: list[tuple[list[tuple[float, bool]], list[tuple[float, int | None]]]],
    threshold: float,
    min_mm: float = 0.0,
    max_mm: float = 1e9,
) -> tuple[float, float]:
    """(sensitivity, false positives per scan) at a score threshold."""
    hits = total = fps = 0
    for truth, dets in per_scan:
        keep = {i for i, (d, _) in enumerate(truth) if min_mm <= d < max_mm}
        total += len(keep)
        for score, i in dets:
            if score < threshold:
                continue
            if i is None:
                fps += 1
            elif i in keep:
                hits += 1
    return (hits / total if total else float("nan")), fps / max(len(per_scan), 1)
