"""Fit and evaluate the classical detector's false-positive classifier on synthetic scans.

Training seeds and evaluation seeds are disjoint ranges (:data:`TRAIN_SEEDS`,
:data:`EVAL_SEEDS`), so reported accuracy is measured on scans never tuned on. Scans follow
:data:`SCAN_KWARGS`: thin-section geometry like the screening CTs of issue 4 (0.78 mm pixels,
1.25 mm slices, 350 mm field of view, 300 mm of z); the first ``--thick`` training seeds are
also generated at 2.5 mm (:data:`THICK_KWARGS`, :data:`SMALL_FOV_KWARGS`) so the classifier
knows thicker scans too.

Run ``python -m medbrain.imaging.training [--seeds N] [--thick N] [--cache DIR] [--jobs N]``
to regenerate the training scans, collect candidate features (working grid of
:func:`pipeline.prepare`; kept per scan in ``DIR/features-<code hash>``), fit a
gradient-boosted tree ensemble (scikit-learn ``HistGradientBoostingClassifier``; every nodule
weighs the same, however many candidates lie on it) and write it as plain arrays to
``knowledge/imaging/detector_classical_trees.json``. The operating threshold comes from
out-of-fold scores (folds by seed) replayed through duplicate suppression and matching exactly
as the benchmark counts them (:func:`replay`), at :data:`TARGET_FP_PER_SCAN`; it and the
printed summary go in ``detector_classical.yaml`` by hand. ``--cache`` keeps generated scans
as int16 HU (what DICOM stores) to refit quickly.

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
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medbrain.imaging.detect import FEATURES, ClassicalDetector, Detector, TreeEnsemble
from medbrain.imaging.io import CTSeries
from medbrain.imaging.measure import Measurement
from medbrain.imaging.pipeline import (
    DetectOptions,
    Work,
    find_nodules,
    native_measurement,
    prepare,
)
from medbrain.imaging.synthetic import NoduleTruth, SyntheticScan, generate_chest_ct

TRAIN_SEEDS = range(1000, 1100)
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
THICK_SEEDS = 30  # the first this many training seeds also have 2.5 mm scans
THICK_GROUP = 100_000  # group id: seed + THICK_GROUP (THICK_KWARGS), + 2 x (SMALL_FOV_KWARGS)
TARGET_FP_PER_SCAN = 0.5  # operating threshold: this many FP/scan on out-of-fold training
PerScan = tuple[list[tuple[float, bool]], list[tuple[float, int | None]]]
Pair = tuple[NoduleTruth, Measurement]


def match(
    center_voxel: tuple[float, float, float], scan: SyntheticScan, used: set[int] | None = None
) -> int | None:
    """Index of the ground-truth nodule whose radius (at least 3 mm) contains the point
    (``center_voxel`` is ``[col, row, slice]`` of the scan's own grid)."""
    return _match(
        np.asarray(center_voxel, dtype=np.float64),
        np.asarray([n.center_voxel for n in scan.nodules], dtype=np.float64).reshape(-1, 3),
        np.asarray([n.diameter_mm for n in scan.nodules], dtype=np.float64),
        np.asarray(scan.series.spacing_mm, dtype=np.float64),
        used,
    )


def _match(
    point: NDArray[np.float64],
    centers: NDArray[np.float64],
    diameters: NDArray[np.float64],
    spacing: NDArray[np.float64],
    used: set[int] | None = None,
) -> int | None:
    best: tuple[float, int] | None = None
    for i in range(len(diameters)):
        if used is not None and i in used:
            continue
        d = float(np.linalg.norm((point - centers[i]) * spacing))
        if d <= max(float(diameters[i]) / 2.0, 3.0) and (best is None or d < best[0]):
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
    if cache is not None and (cache / f"{name}.json").exists():
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
        (cache / f"{name}.json.tmp").write_text(json.dumps([asdict(n) for n in scan.nodules]))
        tmp.rename(cache / f"{name}.npy")
        (cache / f"{name}.json.tmp").rename(cache / f"{name}.json")
        return load_scan(seed, cache, kwargs)  # the int16 HU, as every later read gives
    return scan


@dataclass(frozen=True, slots=True)
class ScanCandidates:
    """Every candidate of one training scan: features, the nodule it lies on (-1: none), and
    what :func:`replay` needs to repeat :meth:`ClassicalDetector.detect` (duplicate
    suppression) and :func:`evaluate_scan` (matching) for any scores."""

    group: int  # seed (+ THICK_GROUP / 2 x THICK_GROUP for the 2.5 mm versions)
    x: NDArray[np.float64]  # (n, len(FEATURES))
    nodule: NDArray[np.int64]  # (n,)
    center_full: NDArray[np.float64]  # (n, 3) [col, row, slice] of the scan's grid
    center_mm: NDArray[np.float64]  # (n, 3) working-grid centre in mm (x, y, z)
    diameter_mm: NDArray[np.float64]  # (n,) working-grid mean diameter
    truth_center: NDArray[np.float64]  # (k, 3) generated nodules, [col, row, slice]
    truth_diameter: NDArray[np.float64]  # (k,)
    spacing_mm: NDArray[np.float64]  # (3,) x, y, z

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, group=np.asarray(self.group), **{k: getattr(self, k) for k in _ARRAYS})
        tmp.rename(path)

    @classmethod
    def load(cls, path: Path) -> ScanCandidates:
        with np.load(path) as d:
            return cls(int(d["group"]), *(np.asarray(d[k]) for k in _ARRAYS))


_ARRAYS = (
    "x",
    "nodule",
    "center_full",
    "center_mm",
    "diameter_mm",
    "truth_center",
    "truth_diameter",
    "spacing_mm",
)


def scan_candidates(
    scan: SyntheticScan,
    detector: ClassicalDetector,
    opts: DetectOptions | None = None,
    group: int | None = None,
) -> ScanCandidates:
    """Every candidate of one scan (before scoring) with its features and nodule."""
    hu, spacing, (fz, fy, fx), lungs, _ = prepare(scan.series, opts or DetectOptions())
    scale = np.asarray([fx, fy, fz], dtype=np.float64)
    sp = np.asarray(spacing[::-1], dtype=np.float64)
    xs: list[tuple[float, ...]] = []
    idx: list[int] = []
    full: list[NDArray[np.float64]] = []
    mm: list[NDArray[np.float64]] = []
    diam: list[float] = []
    for m, f in detector.features(hu, lungs.mask, spacing):
        c = (np.asarray(m.center_voxel) + 0.5) * scale - 0.5
        i = match((c[0], c[1], c[2]), scan)
        xs.append(f)
        idx.append(-1 if i is None else i)
        full.append(c)
        mm.append(np.asarray(m.center_voxel) * sp)
        diam.append(m.mean_diameter_mm)
    return ScanCandidates(
        group=scan.seed if group is None else group,
        x=np.asarray(xs, dtype=np.float64).reshape(-1, len(FEATURES)),
        nodule=np.asarray(idx, dtype=np.int64),
        center_full=np.asarray(full, dtype=np.float64).reshape(-1, 3),
        center_mm=np.asarray(mm, dtype=np.float64).reshape(-1, 3),
        diameter_mm=np.asarray(diam, dtype=np.float64),
        truth_center=np.asarray([n.center_voxel for n in scan.nodules], dtype=np.float64).reshape(
            -1, 3
        ),
        truth_diameter=np.asarray([n.diameter_mm for n in scan.nodules], dtype=np.float64),
        spacing_mm=np.asarray(scan.series.spacing_mm, dtype=np.float64),
    )


def replay(sc: ScanCandidates, scores: NDArray[np.float64]) -> PerScan:
    """What :func:`evaluate_scan` would report for this scan if the classifier gave these
    scores: :meth:`ClassicalDetector.detect` drops a candidate inside a better-scored one,
    then matching counts a detection on an already found nodule as neither hit nor FP."""
    order = sorted(range(len(scores)), key=lambda k: (-float(scores[k]), tuple(sc.center_mm[k])))
    kept: list[int] = []
    for k in order:
        p = sc.center_mm[k]
        if any(
            np.linalg.norm(p - sc.center_mm[j]) < max(float(sc.diameter_mm[j]) / 2.0, 3.0)
            for j in kept
        ):
            continue
        kept.append(k)
    used: set[int] = set()
    dets: list[tuple[float, int | None]] = []
    for k in kept:
        args = (sc.truth_center, sc.truth_diameter, sc.spacing_mm)
        i = _match(sc.center_full[k], *args, used)
        if i is None and _match(sc.center_full[k], *args) is not None:
            continue
        if i is not None:
            used.add(i)
        dets.append((float(scores[k]), i))
    return [(float(d), i in used) for i, d in enumerate(sc.truth_diameter)], dets


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
        # explicit: scikit-learn's "auto" turns early stopping on above 10 000 rows, so the
        # fold models (fewer rows) and the final model were fitted differently and the
        # out-of-fold threshold did not fit the final model's scores
        "early_stopping": False,
        "random_state": 0,
    }
)
# all positives together weigh this much of the negatives' total (out-of-fold on 70 thin
# scans, sensitivity at 1 FP/scan: 1.0 -> 0.936, 0.3 -> 0.946, 0.1 -> 0.943 for >= 4 mm)
POSITIVE_SHARE = 0.3
N_FOLDS = 5


def nodule_weights(
    y: NDArray[np.float64],
    groups: NDArray[np.int64],
    nodules: NDArray[np.int64],
    positive_share: float = 1.0,
) -> NDArray[np.float64]:
    """Sample weights that count every nodule once, not every candidate on it (a 25 mm
    nodule gives a dozen candidates, a 3 mm one a single one; the FROC counts nodules):
    each positive gets 1 / (candidates on its nodule); all positives together then weigh
    ``positive_share`` times the negatives' total (1: class balance)."""
    w = np.ones(len(y))
    pos = y > 0.5
    if not pos.any() or pos.all():
        return w
    key = groups.astype(np.int64) * 100_000 + nodules.astype(np.int64)
    _, inverse, counts = np.unique(key[pos], return_inverse=True, return_counts=True)
    w[pos] = 1.0 / counts[inverse]
    w[pos] *= positive_share * float((~pos).sum()) / float(w[pos].sum())
    return w


@dataclass(frozen=True, slots=True)
class Fit:
    """A fitted classifier with its out-of-fold evidence (thin-section scans only)."""

    trees: dict[str, Any]
    threshold: float
    oof: dict[int, PerScan]  # group -> replayed evaluation with out-of-fold scores
    fold_of: dict[int, int]  # group -> fold


def _stack(
    cands: Sequence[ScanCandidates],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    x = np.concatenate([c.x for c in cands])
    nodules = np.concatenate([c.nodule for c in cands]).astype(np.int64)
    groups = np.concatenate([np.full(len(c.nodule), c.group, dtype=np.int64) for c in cands])
    return x, (nodules >= 0).astype(np.float64), groups, nodules


def _gbt(params: Mapping[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

    return HistGradientBoostingClassifier(**params)


def seed_folds(seeds: Iterable[int], n_folds: int = N_FOLDS) -> dict[int, int]:
    """Fold of each seed (groups of 2.5 mm scans count as their seed): every
    ``n_folds``-th seed in sorted order. A seed's thin and 2.5 mm scans share anatomy and
    nodules, so they always share a fold."""
    return {s: i % n_folds for i, s in enumerate(sorted({g % THICK_GROUP for g in seeds}))}


def fp_threshold(per_scan: Iterable[PerScan], target: float) -> float:
    """The lowest score threshold (4 decimals) at which the false positives per scan stay
    at or below ``target``."""
    results = list(per_scan)
    fps = sorted((s for _, dets in results for s, i in dets if i is None), reverse=True)
    k = math.floor(target * len(results) + 1e-9)
    if k >= len(fps):
        return 0.0
    return math.floor(fps[k] * 10_000) / 10_000 + 0.0001  # just above the (k+1)-th FP


def fit_gbt(
    cands: Sequence[ScanCandidates],
    params: Mapping[str, Any] = GBT_PARAMS,
    target_fp: float = TARGET_FP_PER_SCAN,
    positive_share: float = POSITIVE_SHARE,
) -> Fit:
    """Fit on every candidate of ``cands``; the threshold comes from out-of-fold scores
    (:data:`N_FOLDS` folds by seed) replayed through detection and matching
    (:func:`replay`) on the thin-section scans: at most ``target_fp`` FP/scan."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    x, y, groups, nodules = _stack(cands)
    w = nodule_weights(y, groups, nodules, positive_share)
    base = groups % THICK_GROUP
    fold_of = seed_folds(base.tolist())
    fold = np.asarray([fold_of[int(b)] for b in base])
    oof = np.zeros(len(y))
    with threadpool_limits(1):  # OpenMP threads on a shared 2-core machine only thrash
        for k in range(N_FOLDS):
            tr, te = fold != k, fold == k
            if te.any() and tr.any():
                clf = _gbt(params).fit(x[tr], y[tr], sample_weight=w[tr])
                oof[te] = clf.predict_proba(x[te])[:, 1]
        clf = _gbt(params).fit(x, y, sample_weight=w)
    per_scan: dict[int, PerScan] = {}
    for c in cands:
        if c.group < THICK_GROUP:  # the threshold is chosen on thin-section scans only
            per_scan[c.group] = replay(c, oof[groups == c.group])
    threshold = fp_threshold(per_scan.values(), target_fp)
    trees = export_trees(clf)
    check = ensemble_from(trees, threshold).score_many(x)
    if not np.allclose(check, clf.predict_proba(x)[:, 1], atol=1e-6):
        raise RuntimeError("exported trees do not reproduce the fitted model")
    return Fit(trees, round(threshold, 4), per_scan, {g: fold_of[g] for g in per_scan})


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
    return evaluate_work(scan, find_nodules(scan.series, o, detector, native_for=math.inf))


def evaluate_work(scan: SyntheticScan, work: Work) -> tuple[PerScan, list[Pair]]:
    """:func:`evaluate_scan_full` on an already computed :func:`pipeline.find_nodules` result."""
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


_KINDS: Mapping[int, Mapping[str, object]] = MappingProxyType(
    {0: SCAN_KWARGS, 1: THICK_KWARGS, 2: SMALL_FOV_KWARGS}
)


def code_fingerprint() -> str:
    """Short hash of the code that makes candidates and features (cached features are
    valid only for the code that computed them)."""
    here = Path(__file__).parent
    digest = hashlib.md5(usedforsecurity=False)
    for name in ("detect.py", "measure.py", "lungs.py", "pipeline.py", "lobes.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:10]


def _collect_one(job: tuple[int, Path | None, Path | None]) -> ScanCandidates:
    """Candidates of one scan (group = seed + kind x THICK_GROUP), read from / written to
    the per-scan feature cache."""
    from threadpoolctl import threadpool_limits

    from medbrain.imaging.pipeline import default_detector

    group, cache, features = job
    path = None if features is None else features / f"{group}.npz"
    if path is not None and path.exists():
        return ScanCandidates.load(path)
    seed, kind = group % THICK_GROUP, group // THICK_GROUP
    with threadpool_limits(1):
        sc = scan_candidates(load_scan(seed, cache, _KINDS[kind]), default_detector(), group=group)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sc.save(path)
    found = len(set(sc.nodule[sc.nodule >= 0].tolist()))
    print(f"scan {group}: {len(sc.nodule)} candidates on {found} nodules", flush=True)
    return sc


def collect(
    seeds: Iterable[int],
    cache: Path | None = None,
    thick_seeds: Iterable[int] = (),
    features: Path | None = None,
    workers: int = 1,
) -> list[ScanCandidates]:
    """Candidates of the thin-section scan of every seed, plus the :data:`THICK_KWARGS`
    (group seed + :data:`THICK_GROUP`) and :data:`SMALL_FOV_KWARGS` (seed + 2 x
    :data:`THICK_GROUP`) scans of ``thick_seeds``; ``features``: a per-scan cache directory,
    ``workers``: processes."""
    thick = list(thick_seeds)
    groups = [*seeds, *(s + THICK_GROUP for s in thick), *(s + 2 * THICK_GROUP for s in thick)]
    jobs = [(g, cache, features) for g in groups]
    if workers <= 1:
        return [_collect_one(j) for j in jobs]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return list(pool.imap(_collect_one, jobs))


def summary(fit: Fit) -> dict[str, Any]:
    """Out-of-fold FROC and operating point (thin scans), and FP/scan of each fold."""
    per = list(fit.oof.values())
    out: dict[str, Any] = {"scans": len(per)}
    for lo, hi, name in ((3.0, 4.0, "3-4mm"), (4.0, 1e9, ">=4mm")):
        points = froc(per, lo, hi)
        sens, fps = operating_point(per, fit.threshold, lo, hi)
        out[name] = {
            "froc": [round(v, 3) for v in points.values()],
            "cpm": round(float(np.mean(list(points.values()))), 3),
            "sens_at_threshold": round(sens, 3),
        }
        out["fp_per_scan_at_threshold"] = round(fps, 3)
    folds = sorted(set(fit.fold_of.values()))
    out["fold_fp_per_scan"] = [
        round(
            operating_point([fit.oof[g] for g, f in fit.fold_of.items() if f == k], fit.threshold)[
                1
            ],
            2,
        )
        for k in folds
    ]
    return out


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - offline fitting
    parser = argparse.ArgumentParser(description="fit the classical detector's classifier")
    parser.add_argument("--seeds", type=int, default=len(TRAIN_SEEDS), help="thin-section scans")
    parser.add_argument("--thick", type=int, default=THICK_SEEDS, help="2.5 mm training seeds")
    parser.add_argument("--cache", type=Path, help="generated scans (int16 HU)")
    parser.add_argument(
        "--features",
        type=Path,
        help="per-scan candidate cache (default: CACHE/features-<code hash>)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes collecting candidates")
    parser.add_argument("--target-fp", type=float, default=TARGET_FP_PER_SCAN)
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "knowledge")
    args = parser.parse_args(argv)
    seeds = list(TRAIN_SEEDS)[: args.seeds]
    features = args.features
    if features is None and args.cache is not None:
        features = args.cache / f"features-{code_fingerprint()}"
    cands = collect(seeds, args.cache, seeds[: args.thick], features, args.jobs)
    fit = fit_gbt(cands, target_fp=args.target_fp)
    out = args.out / "imaging"
    (out / "detector_classical_trees.json").write_text(json.dumps(fit.trees, separators=(",", ":")))
    _, y, _, _ = _stack(cands)
    thin = [c for c in cands if c.group < THICK_GROUP]
    print(
        json.dumps(
            {
                "seeds": [seeds[0], seeds[-1]],
                "thick_seeds": len(seeds[: args.thick]),
                "scans": len(cands),
                "candidates": len(y),
                "positives": int(y.sum()),
                "thin_candidates": int(sum(len(c.nodule) for c in thin)),
                "thin_positives": int(sum(int((c.nodule >= 0).sum()) for c in thin)),
                "threshold": fit.threshold,
                "target_fp_per_scan": args.target_fp,
                "out_of_fold": summary(fit),
                "code": code_fingerprint(),
                "date": datetime.now(UTC).date().isoformat(),
                "features": list(FEATURES),
                "trees": len(fit.trees["roots"]),
            }
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
