"""``ct detect`` end to end: load -> lungs -> detect -> measure -> grade -> report.

Returns exactly the DESIGN.md §3 document (plus optional extra fields). Coordinates: LPS mm;
voxel order ``[col, row, slice]`` with slices in ascending z.

References
----------
DICOM PS3.3 C.7.6.2.1.1 (voxel -> patient mapping); Lung-RADS v2022; Fleischner 2017.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medbrain.core.errors import KnowledgeError
from medbrain.imaging.detect import Candidate, ClassicalDetector, ClassifierWeights, Detector
from medbrain.imaging.errors import NoLungsError
from medbrain.imaging.io import CTSeries
from medbrain.imaging.lungs import LEFT, LungMasks, segment_lungs
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
    working_spacing_mm: float = 2.0


def working_grid(
    hu: NDArray[np.float32], spacing_zyx: tuple[float, float, float], target_mm: float
) -> tuple[NDArray[np.float32], tuple[float, float, float], tuple[int, int, int]]:
    """Block-average ``hu`` by integer factors so no axis is finer than about ``target_mm``."""
    factors = tuple(max(1, round(target_mm / s)) if s < 0.8 * target_mm else 1 for s in spacing_zyx)
    fz, fy, fx = factors
    if factors == (1, 1, 1):
        return hu, spacing_zyx, (1, 1, 1)
    nz, ny, nx = (n // f for n, f in zip(hu.shape, factors, strict=True))
    crop = hu[: nz * fz, : ny * fy, : nx * fx]
    out = np.zeros((nz, ny, nx), dtype=np.float32)
    for k in range(fz):  # accumulate to keep peak memory at one extra working-size array
        out += crop[k::fz].reshape(nz, ny, fy, nx, fx).mean(axis=(2, 4), dtype=np.float32)
    out /= fz
    spacing = (spacing_zyx[0] * fz, spacing_zyx[1] * fy, spacing_zyx[2] * fx)
    return out, spacing, (fz, fy, fx)


@lru_cache(maxsize=1)
def default_weights() -> ClassifierWeights:
    data = load_yaml("imaging/detector_classical.yaml")
    try:
        return ClassifierWeights(
            bias=float(data["bias"]),
            weights=tuple(float(v) for v in data["weights"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            threshold=float(data["threshold"]),
            base_mean=tuple(float(v) for v in data.get("base_mean", ())),
            base_std=tuple(float(v) for v in data.get("base_std", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowledgeError(f"imaging/detector_classical.yaml: {exc}") from None


def default_detector() -> ClassicalDetector:
    return ClassicalDetector(default_weights())


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


def detect_series(
    series: CTSeries, options: DetectOptions | None = None, detector: Detector | None = None
) -> dict[str, Any]:
    """Run the whole pipeline on one series; ``seconds`` is added by the caller."""
    opts = options or DetectOptions()
    det = detector or default_detector()
    hu, spacing_zyx, (fz, fy, fx) = working_grid(
        series.hu, series.spacing_zyx, opts.working_spacing_mm
    )
    d = np.asarray(series.direction)
    x_of_col = series.origin_mm[0] + d[0, 0] * spacing_zyx[2] * np.arange(hu.shape[2])
    try:
        lungs = segment_lungs(hu, spacing_zyx, x_of_col=x_of_col)
    except NoLungsError as exc:  # name the series the user gave us
        raise NoLungsError(series.source or series.series_uid, exc.field, exc.problem) from None
    threshold = opts.threshold if opts.threshold is not None else default_weights().threshold
    candidates = [c for c in det.detect(hu, lungs.mask, spacing_zyx) if c.score >= threshold]
    nodules: list[dict[str, Any]] = []
    scale = np.asarray([fx, fy, fz], dtype=np.float64)
    for c in candidates:
        m = c.measurement
        wi, wj, wk = (round(v) for v in m.center_voxel)
        side_code = int(lungs.sides[wk, wj, wi])
        full = tuple(float(v) for v in (np.asarray(m.center_voxel) + 0.5) * scale - 0.5)
        center_full = (full[0], full[1], full[2])
        if side_code == 0:
            x_mm = series.voxel_to_mm(center_full)[0]
            side = "left" if x_mm > float(np.mean(x_of_col)) else "right"
        else:
            side = "left" if side_code == LEFT else "right"
        lo = [int(v) for v in np.asarray(m.bbox_voxel[0]) * scale]
        hi = [int(v) for v in (np.asarray(m.bbox_voxel[1]) + 1) * scale - 1]
        nodules.append(
            {
                "center_mm": [round(v, 1) for v in series.voxel_to_mm(center_full)],
                "center_voxel": [round(v) for v in center_full],
                "bbox_voxel": [lo, hi],
                "long_axis_mm": m.long_axis_mm,
                "short_axis_mm": m.short_axis_mm,
                "mean_diameter_mm": m.mean_diameter_mm,
                "volume_mm3": m.volume_mm3,
                "type": m.type,
                "solid_component_mm": m.solid_component_mm,
                "side": side,
                "lobe": None,
                "location": _location(c, lungs, spacing_zyx),
                "score": round(c.score, 3),
            }
        )
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
    }
