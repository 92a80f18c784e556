"""Fit and evaluate the classical detector's false-positive classifier on synthetic scans.

Training seeds and evaluation seeds are disjoint ranges (:data:`TRAIN_SEEDS`,
:data:`EVAL_SEEDS`), so reported accuracy is measured on scans never tuned on. Scans follow
:data:`SCAN_KWARGS`: thin-section geometry like the screening CTs of issue 4 (0.78 mm pixels,
1.25 mm slices, 350 mm field of view, 300 mm of z).

Run ``python -m medbrain.imaging.training [--seeds N] [--cache DIR]`` to regenerate the
training scans, collect candidate features (working grid of :func:`pipeline.prepare`), fit a
gradient-boosted tree ensemble (scikit-learn ``HistGradientBoostingClassifier``) and write it
as plain arrays to ``knowledge/imaging/detector_classical_trees.json`` with its metadata in
``detector_classical.yaml``. ``--cache`` keeps generated scans as int16 HU (what DICOM
stores) to refit quickly.

References
----------
Friedman JH. Greedy function approximation: a gradient boosting machine. Ann Stat
2001;29(5):1189-1232. Ke G et al. LightGBM. NeurIPS 2017 (histogram-based trees, as
scikit-learn's HistGradientBoostingClassifier).
Setio AAA et al. Validation, comparison, and combination of algorithms for automatic
detection of pulmonary nodules in CT images: the LUNA16 challenge. Med Image Anal
2017;42:1-13 (FROC, CPM: mean sensitivity at 1/8 ... 8 false positives per scan).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medbrain.imaging.detect import FEATURES, ClassicalDetector, Detector, TreeEnsemble
from medbrain.imaging.io import CTSeries
from medbrain.imaging.measure import Measurement
from medbrain.imaging.pipeline import DetectOptions, find_nodules, native_measurement, prepare
from medbrain.imaging.synthetic import NoduleTruth, SyntheticScan, generate_chest_ct

TRAIN_SEEDS = range(1000, 1030)
EVAL_SEEDS = range(5000, 5100)
SCAN_KWARGS: Mapping[str, object] = MappingProxyType(
    {
        "shape": (240, 448, 448),
        "spacing_mm": (0.78, 0.78, 1.25),
        "n_nodules": 8,
        "diameter_range_mm": (3.0, 30.0),
    }
)
TARGET_FP_PER_SCAN = 0.75  # operating threshold: this many FP/scan on out-of-fold training
PerScan = tuple[list[tuple[float, bool]], list[tuple[float, int | None]]]
Pair = tuple[NoduleTruth, Measurement]


def match(
    center_voxel: tuple[float, float, float], scan: SyntheticScan, used: set[int] | None = None
) -> int | None:
    """Index of the ground-truth nodule whose radius (at least 3 mm) contains the point
    (``center_voxel`` is ``[col, row, slice]`` of the scan's own grid)."""
    sp = np.asarray(scan.series.spacing_mm)
    best: tuple[float, int] | None = None
    for i, n in enumerate(scan.nodules):
        if used is not None and i in used:
            continue
        d = float(np.linalg.norm((np.asarray(center_voxel) - np.asarray(n.center_voxel)) * sp))
        if d <= max(n.diameter_mm / 2.0, 3.0) and (best is None or d < best[0]):
            best = (d, i)
    return None if best is None else best[1]


def load_scan(seed: int, cache: Path | None = None) -> SyntheticScan:
    """Generate the scan of ``seed`` with :data:`SCAN_KWARGS` (or read it from ``cache``)."""
    if cache is not None and (cache / f"{seed}.npy").exists():
        hu = np.load(cache / f"{seed}.npy").astype(np.float32)
        truths = json.loads((cache / f"{seed}.json").read_text())
        spacing: tuple[float, float, float] = SCAN_KWARGS["spacing_mm"]  # type: ignore[assignment]
        sx, sy, sz = spacing
        nz, ny, nx = hu.shape
        series = CTSeries(
            hu=hu,
            spacing_mm=(sx, sy, sz),
            origin_mm=(-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz),
            direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
            series_uid=f"cache-{seed}",
            source=f"synthetic:{seed}",
        )
        rows: list[dict[str, Any]] = [
            {k: tuple(v) if isinstance(v, list) else v for k, v in t.items()} for t in truths
        ]
        nodules = tuple(NoduleTruth(**row) for row in rows)
        return SyntheticScan(series, nodules, np.zeros((1, 1, 1), dtype=bool), seed)
    scan = generate_chest_ct(seed, **SCAN_KWARGS)  # type: ignore[arg-type]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{seed}.tmp.npy"
        np.save(tmp, np.round(scan.series.hu).astype(np.int16))
        tmp.rename(cache / f"{seed}.npy")
        (cache / f"{seed}.json").write_text(json.dumps([asdict(n) for n in scan.nodules]))
    return scan


def scan_features(
    scan: SyntheticScan, detector: ClassicalDetector, opts: DetectOptions | None = None
) -> tuple[list[tuple[float, ...]], list[float]]:
    """Feature rows and 0/1 labels of every candidate of one scan (working grid)."""
    xs, idx = scan_candidates(scan, detector, opts)
    return xs, [0.0 if i < 0 else 1.0 for i in idx]


def scan_candidates(
    scan: SyntheticScan, detector: ClassicalDetector, opts: DetectOptions | None = None
) -> tuple[list[tuple[float, ...]], list[int]]:
    """Feature rows of every candidate of one scan and the nodule each lies on (-1: none)."""
    hu, spacing, (fz, fy, fx), lungs, _ = prepare(scan.series, opts or DetectOptions())
    scale = np.asarray([fx, fy, fz], dtype=np.float64)
    xs: list[tuple[float, ...]] = []
    idx: list[int] = []
    for m, f in detector.features(hu, lungs.mask, spacing):
        full = (np.asarray(m.center_voxel) + 0.5) * scale - 0.5
        i = match((full[0], full[1], full[2]), scan)
        xs.append(f)
        idx.append(-1 if i is None else i)
    return xs, idx


def export_trees(clf: Any) -> dict[str, Any]:
    """A fitted binary ``HistGradientBoostingClassifier`` as flat node arrays
    (:class:`medbrain.imaging.detect.TreeEnsemble`)."""
    roots: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    for (pred,) in clf._predictors:
        nodes = pred.nodes
        base = len(feature)
        roots.append(base)
        for nd in nodes:
            leaf = bool(nd["is_leaf"])
            feature.append(0 if leaf else int(nd["feature_idx"]))
            threshold.append(0.0 if leaf else float(nd["num_threshold"]))
            left.append(-1 if leaf else base + int(nd["left"]))
            right.append(-1 if leaf else base + int(nd["right"]))
            value.append(float(nd["value"]) if leaf else 0.0)
    return {
        "baseline": float(np.ravel(clf._baseline_prediction)[0]),
        "roots": roots,
        "feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "value": value,
    }


def ensemble_from(data: Mapping[str, Any], threshold: float) -> TreeEnsemble:
    return TreeEnsemble(
        baseline=float(data["baseline"]),
        roots=np.asarray(data["roots"], dtype=np.int64),
        feature=np.asarray(data["feature"], dtype=np.int64),
        threshold_value=np.asarray(data["threshold"], dtype=np.float64),
        left=np.asarray(data["left"], dtype=np.int64),
        right=np.asarray(data["right"], dtype=np.int64),
        value=np.asarray(data["value"], dtype=np.float64),
        threshold=threshold,
    )


GBT_PARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "max_iter": 250,
        "learning_rate": 0.05,
        "max_leaf_nodes": 12,
        "min_samples_leaf": 12,
        "l2_regularization": 1.0,
        "class_weight": "balanced",
        "random_state": 0,
    }
)


def fit_gbt(
    x: NDArray[np.float64], y: NDArray[np.float64], groups: NDArray[np.int64]
) -> tuple[dict[str, Any], float, NDArray[np.float64]]:
    """Fit on all rows; the threshold comes from out-of-fold scores (5 folds by scan) at
    :data:`TARGET_FP_PER_SCAN`. Returns (trees, threshold, out-of-fold scores)."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    oof = np.zeros(len(y))
    with threadpool_limits(1):  # OpenMP threads on a shared 2-core machine only thrash
        for tr, te in GroupKFold(n_splits=5).split(x, y, groups):
            clf = HistGradientBoostingClassifier(**GBT_PARAMS).fit(x[tr], y[tr])
            oof[te] = clf.predict_proba(x[te])[:, 1]
        clf = HistGradientBoostingClassifier(**GBT_PARAMS).fit(x, y)
    n_scans = len(set(groups.tolist()))
    neg = np.sort(oof[y < 0.5])[::-1]
    k = int(TARGET_FP_PER_SCAN * n_scans)
    threshold = float(neg[k]) if k < len(neg) else 0.5
    trees = export_trees(clf)
    check = ensemble_from(trees, threshold).score_many(x)
    if not np.allclose(check, clf.predict_proba(x)[:, 1], atol=1e-6):
        raise RuntimeError("exported trees do not reproduce the fitted model")
    return trees, round(threshold, 4), oof


def evaluate_scan(
    scan: SyntheticScan, detector: Detector | ClassicalDetector, opts: DetectOptions | None = None
) -> PerScan:
    """Score one scan: ``(truth (diameter, found at any score), detections (score, truth index))``."""
    per, _ = evaluate_scan_full(scan, detector, opts)
    return per


def evaluate_scan_full(
    scan: SyntheticScan, detector: Detector | ClassicalDetector, opts: DetectOptions | None = None
) -> tuple[PerScan, list[Pair]]:
    """As :func:`evaluate_scan`, plus each found nodule with its input-grid measurement.

    A detection matched to an already-matched nodule counts as neither hit nor false positive
    (duplicate), as in the LUNA16 FROC protocol.
    """
    o = opts or DetectOptions()
    work = find_nodules(scan.series, o, detector, native_for=math.inf)
    used: set[int] = set()
    dets: list[tuple[float, int | None]] = []
    pairs: list[Pair] = []
    for f in work.found:  # best first
        i = match(f.center_full, scan, used)
        if i is None and match(f.center_full, scan) is not None:
            continue  # duplicate of a found nodule
        if i is not None:
            used.add(i)
            native = native_measurement(
                scan.series.hu,
                scan.series.spacing_zyx,
                work.lungs.mask,
                work.factors,
                f.candidate.measurement,
            )
            pairs.append((scan.nodules[i], native))
        dets.append((f.candidate.score, i))
    truth = [(n.diameter_mm, i in used) for i, n in enumerate(scan.nodules)]
    return (truth, dets), pairs


def froc(
    per_scan: list[PerScan],
    min_mm: float = 0.0,
    max_mm: float = 1e9,
    fp_rates: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
) -> dict[float, float]:
    """Sensitivity at each average false-positive rate per scan (nodules in [min_mm, max_mm))."""
    events: list[tuple[float, int]] = []  # (score, +1 tp / 0 fp)
    total = 0
    for truth, dets in per_scan:
        keep = {i for i, (d, _) in enumerate(truth) if min_mm <= d < max_mm}
        total += len(keep)
        for score, i in dets:
            if i is None:
                events.append((score, 0))
            elif i in keep:
                events.append((score, 1))
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
    per_scan: list[PerScan], threshold: float, min_mm: float = 0.0, max_mm: float = 1e9
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


def collect(
    seeds: Iterable[int], detector: ClassicalDetector, cache: Path | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Feature matrix, 0/1 labels and the seed of every candidate over ``seeds``."""
    xs: list[tuple[float, ...]] = []
    ys: list[float] = []
    gs: list[int] = []
    for seed in seeds:
        x, y = scan_features(load_scan(seed, cache), detector)
        xs.extend(x)
        ys.extend(y)
        gs.extend([seed] * len(y))
        print(f"seed {seed}: {len(y)} candidates, {int(sum(y))} on nodules", flush=True)
    return (
        np.asarray(xs, dtype=np.float64),
        np.asarray(ys, dtype=np.float64),
        np.asarray(gs, dtype=np.int64),
    )


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - offline fitting
    from medbrain.imaging.pipeline import default_detector

    parser = argparse.ArgumentParser(description="fit the classical detector's classifier")
    parser.add_argument("--seeds", type=int, default=len(TRAIN_SEEDS))
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "knowledge")
    args = parser.parse_args(argv)
    seeds = list(TRAIN_SEEDS)[: args.seeds]
    x, y, g = collect(seeds, default_detector(), args.cache)
    trees, threshold, _ = fit_gbt(x, y, g)
    out = args.out / "imaging"
    (out / "detector_classical_trees.json").write_text(json.dumps(trees, separators=(",", ":")))
    print(
        json.dumps(
            {
                "seeds": [seeds[0], seeds[-1]],
                "candidates": len(y),
                "positives": int(y.sum()),
                "threshold": threshold,
                "date": datetime.now(UTC).date().isoformat(),
                "features": list(FEATURES),
                "trees": len(trees["roots"]),
            }
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
