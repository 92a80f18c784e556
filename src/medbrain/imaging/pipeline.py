"""``ct detect`` end to end: load -> lungs -> detect -> measure -> grade -> report.

Returns exactly the DESIGN.md §3 document (plus optional extra fields). Coordinates: LPS mm;
voxel order ``[col, row, slice]`` with slices in ascending z.

References
----------
DICOM PS3.3 C.7.6.2.1.1 (voxel -> patient mapping); Lung-RADS v2022; Fleischner 2017.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medbrain.core.errors import KnowledgeError
from medbrain.imaging.detect import (
    FEATURES,
    Candidate,
    ClassicalDetector,
    ClassifierWeights,
    Detector,
    Scorer,
    TreeEnsemble,
    _block_mean,
)
from medbrain.imaging.errors import NoLungsError
from medbrain.imaging.io import CTSeries
from medbrain.imaging.lobes import assign_lobes, fit_lobes, on_fissure, working_affine
from medbrain.imaging.lungs import LEFT, LungMasks, refine_pleura, segment_lungs
from medbrain.imaging.measure import Measurement, measure_nodule
from medbrain.imaging.report import draft_report
from medbrain.imaging.risk import NoduleForRisk, fleischner, lung_rads
from medbrain.knowledge.loaders import load_yaml


@dataclass(frozen=True, slots=True)
class DetectOptions:
    """Run options: language, Fleischner patient risk, an optional score threshold, and the
    working grid: axes finer than ``working_spacing_mm`` are block-averaged by an integer
    factor before segmentation and detection (coordinates are mapped back to the input grid).
    """

    lang: str = "zh"
    risk: str = "high"
    threshold: float | None = None
    working_spacing_mm: float = 1.4


def working_grid(
    hu: NDArray[np.float32], spacing_zyx: tuple[float, float, float], target_mm: float
) -> tuple[NDArray[np.float32], tuple[float, float, float], tuple[int, int, int]]:
    """Block-average ``hu`` by integer factors so no axis is finer than about ``target_mm``."""
    factors = tuple(max(1, round(target_mm / s)) if s < 0.8 * target_mm else 1 for s in spacing_zyx)
    fz, fy, fx = factors
    if factors == (1, 1, 1):
        return hu, spacing_zyx, (1, 1, 1)
    out = _block_mean(hu, (fz, fy, fx))
    spacing = (spacing_zyx[0] * fz, spacing_zyx[1] * fy, spacing_zyx[2] * fx)
    return out, spacing, (fz, fy, fx)


@lru_cache(maxsize=1)
def default_weights() -> Scorer:
    """The shipped false-positive classifier (``knowledge/imaging/detector_classical.yaml``).

    ``model: gbt`` reads the tree ensemble from the JSON file it names (plain arrays, no
    pickle); ``model: logistic`` (or no ``model``) reads second-order logistic weights.
    """
    data = load_yaml("imaging/detector_classical.yaml")
    try:
        if data.get("model") == "gbt":
            if tuple(data["features"]) != FEATURES:
                raise ValueError(f"features {data['features']} are not {list(FEATURES)}")
            name = str(data["trees_file"])
            text = resources.files("medbrain.knowledge").joinpath("imaging", name).read_text()
            trees = json.loads(text)
            return TreeEnsemble(
                baseline=float(trees["baseline"]),
                roots=np.asarray(trees["roots"], dtype=np.int64),
                feature=np.asarray(trees["feature"], dtype=np.int64),
                threshold_value=np.asarray(trees["threshold"], dtype=np.float64),
                left=np.asarray(trees["left"], dtype=np.int64),
                right=np.asarray(trees["right"], dtype=np.int64),
                value=np.asarray(trees["value"], dtype=np.float64),
                threshold=float(data["threshold"]),
            )
        return ClassifierWeights(
            bias=float(data["bias"]),
            weights=tuple(float(v) for v in data["weights"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            threshold=float(data["threshold"]),
            base_mean=tuple(float(v) for v in data.get("base_mean", ())),
            base_std=tuple(float(v) for v in data.get("base_std", ())),
        )
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise KnowledgeError(f"imaging/detector_classical.yaml: {exc}") from None


def default_detector() -> ClassicalDetector:
    return ClassicalDetector(default_weights())


def _repeat_to(a: NDArray[Any], factors: tuple[int, int, int], shape: tuple[int, ...]) -> Any:
    for axis, f in enumerate(factors):
        if f > 1:
            a = np.repeat(a, f, axis=axis)
    pad = [(0, max(0, n - m)) for n, m in zip(shape, a.shape, strict=True)]
    if any(p[1] for p in pad):
        a = np.pad(a, pad, mode="edge")
    return a[: shape[0], : shape[1], : shape[2]]


def lungs_on_working_grid(
    hu: NDArray[np.float32],
    spacing_zyx: tuple[float, float, float],
    x_of_col: NDArray[np.float64],
) -> LungMasks:
    """Lung masks for the working grid, segmented on a grid twice as coarse (axes < 1.8 mm).

    The coarse masks are repeated back (the detector reads a one-voxel rim as lung).
    """
    f = tuple(2 if s < 1.8 else 1 for s in spacing_zyx)
    factors = (f[0], f[1], f[2])
    if factors == (1, 1, 1):
        return segment_lungs(hu, spacing_zyx, x_of_col=x_of_col)
    coarse = _block_mean(hu, factors)
    sp = (spacing_zyx[0] * f[0], spacing_zyx[1] * f[1], spacing_zyx[2] * f[2])
    xs = x_of_col[: coarse.shape[2] * f[2]].reshape(-1, f[2]).mean(axis=1)
    lungs = segment_lungs(coarse, sp, x_of_col=xs)
    body = _repeat_to(lungs.body, factors, hu.shape)
    # the coarse mask stops up to a coarse voxel short of the pleura: refine it on this grid
    # so that the visible part of a juxtapleural nodule stays inside
    mask = refine_pleura(_repeat_to(lungs.mask, factors, hu.shape), hu, body)
    sides = _repeat_to(lungs.sides, factors, hu.shape)
    if (mask & (sides == 0)).any():  # added voxels take the side of the lung beside them
        near_side = ndimage.maximum_filter(sides, size=2 * 4 + 1)
        sides = np.where(sides > 0, sides, near_side)
    sides = sides * mask
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    return replace(
        lungs,
        mask=mask,
        sides=sides.astype(np.uint8),
        body=body,
        volume_ml=float(mask.sum()) * voxel_ml,
    )


@dataclass(frozen=True, slots=True)
class Found:
    """One candidate: working-grid result, its measurement on the input grid, and its centre
    as ``[col, row, slice]`` of the input volume."""

    candidate: Candidate
    native: Measurement
    center_full: tuple[float, float, float]


def native_measurement(
    series_hu: NDArray[np.float32],
    spacing_zyx: tuple[float, float, float],
    mask_w: NDArray[np.bool_],
    factors: tuple[int, int, int],
    m: Measurement,
) -> Measurement:
    """Re-segment and measure a working-grid nodule on the input grid's own voxels.

    Sizes, volume and type then come from undiluted voxels (Lung-RADS/Fleischner measure on
    the thin-section images); falls back to ``m`` (mapped) if nothing is found there.
    """
    fz, fy, fx = factors
    sc = np.asarray([fx, fy, fz], dtype=np.float64)
    full = (np.asarray(m.center_voxel) + 0.5) * sc - 0.5
    center = (round(full[2]), round(full[1]), round(full[0]))
    radius = max(m.mean_diameter_mm / 2.0, 1.5)
    half = [int((2.2 * radius + 6.0) / s) + 2 for s in spacing_zyx]
    lo = [max(0, c - h) for c, h in zip(center, half, strict=True)]
    hi = [min(n, c + h + 1) for c, n, h in zip(center, series_hu.shape, half, strict=True)]
    box = series_hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    iz = np.minimum(np.arange(lo[0], hi[0]) // fz, mask_w.shape[0] - 1)
    iy = np.minimum(np.arange(lo[1], hi[1]) // fy, mask_w.shape[1] - 1)
    ix = np.minimum(np.arange(lo[2], hi[2]) // fx, mask_w.shape[2] - 1)
    mbox = mask_w[np.ix_(iz, iy, ix)]
    c = (center[0] - lo[0], center[1] - lo[1], center[2] - lo[2])
    out = None
    if factors != (1, 1, 1) and all(0 <= v < n for v, n in zip(c, box.shape, strict=True)):
        sp = np.asarray(spacing_zyx)
        for r in (radius, radius * 0.5):  # drifted along a vessel: tighter box, then give up
            out = measure_nodule(box, mbox, spacing_zyx, c, r)
            if out is None:
                break
            drift = np.linalg.norm((np.asarray(out.center_voxel[::-1]) - np.asarray(c)) * sp)
            if drift <= max(radius, 3.0):
                break
            out = None
    if out is None:
        (i0, j0, k0), (i1, j1, k1) = m.bbox_voxel
        return replace(
            m,
            center_voxel=(float(full[0]), float(full[1]), float(full[2])),
            bbox_voxel=(
                (i0 * fx, j0 * fy, k0 * fz),
                ((i1 + 1) * fx - 1, (j1 + 1) * fy - 1, (k1 + 1) * fz - 1),
            ),
            axial_slice=int((m.axial_slice + 0.5) * fz),
        )
    (i0, j0, k0), (i1, j1, k1) = out.bbox_voxel
    return replace(
        out,
        center_voxel=(
            out.center_voxel[0] + lo[2],
            out.center_voxel[1] + lo[1],
            out.center_voxel[2] + lo[0],
        ),
        bbox_voxel=(
            (i0 + lo[2], j0 + lo[1], k0 + lo[0]),
            (i1 + lo[2], j1 + lo[1], k1 + lo[0]),
        ),
        axial_slice=out.axial_slice + lo[0],
    )


def _location(c: Candidate, lungs: LungMasks, spacing_zyx: tuple[float, float, float]) -> str:
    m = c.measurement
    (i0, j0, k0), (i1, j1, k1) = m.bbox_voxel
    sl = (
        slice(max(0, k0 - 1), k1 + 2),
        slice(max(0, j0 - 1), j1 + 2),
        slice(max(0, i0 - 1), i1 + 2),
    )
    wall = lungs.body[sl] & ~lungs.mask[sl]
    box_hu_mask = lungs.mask[sl]
    if wall.any() and box_hu_mask.any():
        from scipy import ndimage

        inner = ndimage.binary_erosion(box_hu_mask, iterations=1)
        if (box_hu_mask & ~inner & ndimage.binary_dilation(wall, iterations=1)).any():
            # touches the pleura within its bounding box (+1 voxel)
            return "juxtapleural"
    ci, cj, ck = (round(v) for v in m.center_voxel)
    side_mask = (
        lungs.sides[ck] == lungs.sides[ck, cj, ci] if lungs.sides[ck, cj, ci] else lungs.mask[ck]
    )
    cols = np.nonzero(side_mask.any(axis=0))[0]
    if cols.size == 0:
        return "peripheral"
    lo, hi = float(cols.min()), float(cols.max())
    width = max(hi - lo, 1.0)
    # medial edge: the side nearer the body's midline
    body_cols = np.nonzero(lungs.body[ck].any(axis=0))[0]
    mid = float(body_cols.mean()) if body_cols.size else (lo + hi) / 2
    medial = hi if abs(hi - mid) < abs(lo - mid) else lo
    return "central" if abs(ci - medial) / width < 1.0 / 3.0 else "peripheral"


@dataclass(frozen=True, slots=True)
class Work:
    """Working-grid state of one run (shared by ``detect_series``, training and benchmarks)."""

    hu: NDArray[np.float32]
    spacing_zyx: tuple[float, float, float]
    factors: tuple[int, int, int]
    lungs: LungMasks
    x_of_col: NDArray[np.float64]
    found: list[Found]


def prepare(
    series: CTSeries, opts: DetectOptions
) -> tuple[
    NDArray[np.float32],
    tuple[float, float, float],
    tuple[int, int, int],
    LungMasks,
    NDArray[np.float64],
]:
    """Working grid, its spacing and factors, lung masks on it, patient x of each column."""
    hu, spacing_zyx, factors = working_grid(series.hu, series.spacing_zyx, opts.working_spacing_mm)
    d = np.asarray(series.direction)
    x_of_col = series.origin_mm[0] + d[0, 0] * spacing_zyx[2] * (np.arange(hu.shape[2]) + 0.5)
    x_of_col -= d[0, 0] * series.spacing_zyx[2] * 0.5
    try:
        lungs = lungs_on_working_grid(hu, spacing_zyx, x_of_col)
    except NoLungsError as exc:  # name the series the user gave us
        raise NoLungsError(series.source or series.series_uid, exc.field, exc.problem) from None
    return hu, spacing_zyx, factors, lungs, x_of_col


def find_nodules(
    series: CTSeries,
    opts: DetectOptions,
    det: Detector | ClassicalDetector,
    *,
    native_for: float | None = None,
) -> Work:
    """Working grid, lungs and every scored candidate (best first), each re-measured on the
    input grid when its score is at least ``native_for`` (default: the model threshold)."""
    hu, spacing_zyx, factors, lungs, x_of_col = prepare(series, opts)
    fz, fy, fx = factors
    if native_for is None:
        native_for = opts.threshold if opts.threshold is not None else default_weights().threshold
    scale = np.asarray([fx, fy, fz], dtype=np.float64)
    found: list[Found] = []
    for c in det.detect(hu, lungs.mask, spacing_zyx):
        m = c.measurement
        full = tuple(float(v) for v in (np.asarray(m.center_voxel) + 0.5) * scale - 0.5)
        native = m
        if c.score >= native_for:
            native = native_measurement(series.hu, series.spacing_zyx, lungs.mask, factors, m)
        found.append(Found(c, native, (full[0], full[1], full[2])))
    return Work(hu, spacing_zyx, factors, lungs, x_of_col, found)


def detect_series(
    series: CTSeries, options: DetectOptions | None = None, detector: Detector | None = None
) -> dict[str, Any]:
    """Run the whole pipeline on one series; ``seconds`` is added by the caller."""
    opts = options or DetectOptions()
    det = detector or default_detector()
    work = find_nodules(series, opts, det)
    hu, spacing_zyx, lungs = work.hu, work.spacing_zyx, work.lungs
    fz, fy, fx = work.factors
    threshold = opts.threshold if opts.threshold is not None else default_weights().threshold
    nodules: list[dict[str, Any]] = []
    for f in work.found:
        if f.candidate.score < threshold:
            continue
        c = f.candidate
        m = c.measurement
        nm = f.native
        wi, wj, wk = (round(v) for v in m.center_voxel)
        side_code = int(lungs.sides[wk, wj, wi])
        center_full = f.center_full
        if side_code == 0:
            x_mm = series.voxel_to_mm(center_full)[0]
            side = "left" if x_mm > float(np.mean(work.x_of_col)) else "right"
        else:
            side = "left" if side_code == LEFT else "right"
        nodules.append(
            {
                "center_mm": [round(v, 1) for v in series.voxel_to_mm(center_full)],
                "center_voxel": [round(v) for v in center_full],
                "bbox_voxel": [list(nm.bbox_voxel[0]), list(nm.bbox_voxel[1])],
                "long_axis_mm": nm.long_axis_mm,
                "short_axis_mm": nm.short_axis_mm,
                "mean_diameter_mm": nm.mean_diameter_mm,
                "volume_mm3": nm.volume_mm3,
                "type": nm.type,
                "solid_component_mm": nm.solid_component_mm,
                "side": side,
                "lobe": None,
                "location": _location(c, lungs, spacing_zyx),
                "score": round(c.score, 3),
            }
        )
    # lobes (helper ct-lobes, lobes.py): fissure surfaces; lobe None + lobe_reason if unclear
    affine = working_affine(series.origin_mm, series.direction, series.spacing_mm, (fx, fy, fz))
    lobe_model = fit_lobes(hu, lungs, spacing_zyx, affine)
    assign_lobes(nodules, lobe_model)
    on_fissures = [n for n in nodules if on_fissure(n, lobe_model)]  # a fissure, not a GGN
    nodules = [n for n in nodules if n not in on_fissures]
    nodules.sort(key=lambda n: (-n["score"], n["center_voxel"]))
    for i, n in enumerate(nodules, start=1):
        n["id"] = i
    nodules = [{"id": n["id"], **{k: v for k, v in n.items() if k != "id"}} for n in nodules]
    for_risk = [
        NoduleForRisk(
            id=n["id"],
            type=n["type"],
            mean_diameter_mm=n["mean_diameter_mm"],
            solid_component_mm=n["solid_component_mm"],
            fleischner_mm=math.floor((n["long_axis_mm"] + n["short_axis_mm"]) / 2 + 0.5),
        )
        for n in nodules
    ]
    lr = lung_rads(for_risk, opts.lang).to_dict()
    fl = fleischner(for_risk, opts.risk, opts.lang).to_dict()
    report = draft_report(nodules, lr, fl, series.hu.shape[0], opts.lang)
    return {
        "series_uid": series.series_uid,
        "seconds": 0.0,
        "spacing_mm": [round(v, 4) for v in series.spacing_mm],
        "nodules": nodules,
        "lung_rads": lr,
        "fleischner": fl,
        "report": report,
        "detector": {"name": det.name, "version": det.version, "threshold": threshold},
        "lung_volume_ml": round(lungs.volume_ml, 1),
        "fissures": {**lobe_model.to_dict(), "suppressed_on_fissure": len(on_fissures)},
    }
