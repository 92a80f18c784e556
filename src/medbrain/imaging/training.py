"""Fit and evaluate the classical detector's false-positive classifier on synthetic scans.

Training seeds and evaluation seeds are disjoint ranges (:data:`TRAIN_SEEDS`,
:data:`EVAL_SEEDS`), so reported accuracy is measured on scans never tuned on. Scans follow
:data:`SCAN_KWARGS`: thin-section geometry like the screening CTs of issue 4 (0.78 mm pixels,
1.25 mm slices, 350 mm field of view, 300 mm of z); the first ``--thick`` training seeds are
also generated at 2.5 mm (:data:`THICK_KWARGS`, :data:`SMALL_FOV_KWARGS`) so the classifier
knows thicker scans too.

Run ``python -m medbrain.imaging.training [--seeds N] [--thick N] [--cache DIR]`` to
regenerate the training scans, collect candidate features (working grid of
:func:`pipeline.prepare`), fit a gradient-boosted tree ensemble (scikit-learn
``HistGradientBoostingClassifier``; every nodule weighs the same, however many candidates
lie on it) and write it as plain arrays to ``knowledge/imaging/detector_classical_trees.json``;
its metadata and threshold go in ``detector_classical.yaml`` by hand. ``--cache`` keeps
generated scans as int16 HU (what DICOM stores) to refit quickly.

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
# thick-section (2.5 mm) versions of some training seeds, so that the classifier also knows
# what vessels and nodules look like on thicker, coarser scans (many routine chest CTs);
# the operating threshold is still chosen on the thin-section training scans only
THICK_KWARGS: Mapping[str, object] = MappingProxyType(
    {
        "shape": (120, 140, 140),
        "spacing_mm": (2.5, 2.5, 2.5),
        "n_nodules": 8,
        "diameter_range_mm": (3.0, 30.0),
    }
)
# and a small field of view at 2.5 mm (96 x 96 x 60 voxels: the body fills the image)
SMALL_FOV_KWARGS: Mapping[str, object] = MappingProxyType(
    {
        "shape": (60, 96, 96),
        "spacing_mm": (2.5, 2.5, 2.5),
        "n_nodules": 4,
        "diameter_range_mm": (3.0, 20.0),
    }
)
THICK_GROUP = 100_000  # group id: seed + THICK_GROUP (THICK_KWARGS), + 2 x (SMALL_FOV_KWARGS)
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


def load_scan(
    seed: int, cache: Path | None = None, kwargs: Mapping[str, object] = SCAN_KWARGS
) -> SyntheticScan:
    """Generate the scan of ``seed`` with :data:`SCAN_KWARGS` (or ``kwargs``), or read it
    from ``cache``."""
    name = str(seed)
    if kwargs is not SCAN_KWARGS:
        shape = "x".join(str(v) for v in kwargs["shape"])  # type: ignore[attr-defined]
        spacing_s = "x".join(f"{v:g}" for v in kwargs["spacing_mm"])  # type: ignore[attr-defined]
        name = f"{seed}-{shape}-{spacing_s}"
    if cache is not None and (cache / f"{name}.npy").exists():
        hu = np.load(cache / f"{name}.npy").astype(np.float32)
        truths = json.loads((cache / f"{name}.json").read_text())
        spacing: tuple[float, float, float] = kwargs["spacing_mm"]  # type: ignore[assignment]
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
    scan = generate_chest_ct(seed, **kwargs)  # type: ignore[arg-type]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{name}.tmp.npy"
        np.save(tmp, np.round(scan.series.hu).astype(np.int16))
        tmp.rename(cache / f"{name}.npy")
        (cache / f"{name}.json").write_text(json.dumps([asdict(n) for n in scan.nodules]))
    return scan


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


def nodule_weights(
    y: NDArray[np.float64], groups: NDArray[np.int64], nodules: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Sample weights that count every nodule once, not every candidate on it (a 25 mm
    nodule gives a dozen candidates, a 3 mm one a single one; the FROC counts nodules):
    each positive gets 1 / (candidates on its nodule); positives and negatives then weigh
    the same in total (class balance)."""
    w = np.ones(len(y))
    pos = y > 0.5
    if not pos.any() or pos.all():
        return w
    key = groups.astype(np.int64) * 100_000 + nodules.astype(np.int64)
    _, inverse, counts = np.unique(key[pos], return_inverse=True, return_counts=True)
    w[pos] = 1.0 / counts[inverse]
    w[pos] *= float((~pos).sum()) / float(w[pos].sum())
    return w


def fit_gbt(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    groups: NDArray[np.int64],
    nodules: NDArray[np.int64] | None = None,
) -> tuple[dict[str, Any], float, NDArray[np.float64]]:
    """Fit on all rows; the threshold comes from out-of-fold scores (5 folds by seed) at
    :data:`TARGET_FP_PER_SCAN` per thin-section scan. Returns (trees, threshold, out-of-fold scores).

    With ``nodules`` (the nodule index of each positive row within its scan) the rows are
    weighted by :func:`nodule_weights` instead of scikit-learn's class balancing."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.model_selection import GroupKFold  # type: ignore[import-untyped]
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    params = dict(GBT_PARAMS)
    w = None
    if nodules is not None:
        params.pop("class_weight")
        w = nodule_weights(y, groups, nodules)
    oof = np.zeros(len(y))
    with threadpool_limits(1):  # OpenMP threads on a shared 2-core machine only thrash
        # folds by seed: a thin scan and the 2.5 mm scans of the same seed (same anatomy and
        # nodules) stay in one fold, or the out-of-fold scores (and threshold) are optimistic
        for tr, te in GroupKFold(n_splits=5).split(x, y, groups % THICK_GROUP):
            clf = HistGradientBoostingClassifier(**params).fit(
                x[tr], y[tr], sample_weight=None if w is None else w[tr]
            )
            oof[te] = clf.predict_proba(x[te])[:, 1]
        clf = HistGradientBoostingClassifier(**params).fit(x, y, sample_weight=w)
    thin = groups < THICK_GROUP  # the threshold is chosen on thin-section scans only
    n_scans = len(set(groups[thin].tolist()))
    neg = np.sort(oof[(y < 0.5) & thin])[::-1]
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
    seeds: Iterable[int],
    detector: ClassicalDetector,
    cache: Path | None = None,
    thick_seeds: Iterable[int] = (),
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Feature matrix, 0/1 labels, the group (seed; seed + :data:`THICK_GROUP` for the
    :data:`THICK_KWARGS` scan of a ``thick_seeds`` seed, seed + 2 x :data:`THICK_GROUP` for
    its :data:`SMALL_FOV_KWARGS` scan) and the nodule index (-1: none) of every candidate."""
    xs: list[tuple[float, ...]] = []
    idx: list[int] = []
    gs: list[int] = []
    jobs = [(s, SCAN_KWARGS, s) for s in seeds]
    thick = list(thick_seeds)
    jobs += [(s, THICK_KWARGS, s + THICK_GROUP) for s in thick]
    jobs += [(s, SMALL_FOV_KWARGS, s + 2 * THICK_GROUP) for s in thick]
    for seed, kwargs, group in jobs:
        x, i = scan_candidates(load_scan(seed, cache, kwargs), detector)
        xs.extend(x)
        idx.extend(i)
        gs.extend([group] * len(i))
        print(f"scan {group}: {len(i)} candidates, {sum(v >= 0 for v in i)} on nodules", flush=True)
    nodules = np.asarray(idx, dtype=np.int64)
    return (
        np.asarray(xs, dtype=np.float64),
        (nodules >= 0).astype(np.float64),
        np.asarray(gs, dtype=np.int64),
        nodules,
    )


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - offline fitting
    from medbrain.imaging.pipeline import default_detector

    parser = argparse.ArgumentParser(description="fit the classical detector's classifier")
    parser.add_argument("--seeds", type=int, default=len(TRAIN_SEEDS))
    parser.add_argument("--thick", type=int, default=15, help="thick-section training scans")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "knowledge")
    parser.add_argument("--save-features", type=Path, help="write x, seed, nodule as .npz")
    args = parser.parse_args(argv)
    seeds = list(TRAIN_SEEDS)[: args.seeds]
    x, y, g, nodules = collect(seeds, default_detector(), args.cache, seeds[: args.thick])
    if args.save_features:  # to study the classifier without collecting again
        np.savez_compressed(args.save_features, x=x, g=g, nodules=nodules)
    trees, threshold, _ = fit_gbt(x, y, g, nodules)
    out = args.out / "imaging"
    (out / "detector_classical_trees.json").write_text(json.dumps(trees, separators=(",", ":")))
    print(
        json.dumps(
            {
                "seeds": [seeds[0], seeds[-1]],
                "thick_seeds": len(seeds[: args.thick]),
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
