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

from medbrain.core.errors import KnowledgeError
from medbrain.imaging.detect import Candidate, ClassicalDetector, ClassifierWeights, Detector
from medbrain.imaging.io import CTSeries
from medbrain.imaging.lungs import LEFT, LungMasks, segment_lungs
from medbrain.imaging.report import draft_report
from medbrain.imaging.risk import NoduleForRisk, fleischner, lung_rads
from medbrain.knowledge.loaders import load_yaml


@dataclass(frozen=True, slots=True)
class DetectOptions:
    """Run options: language, Fleischner patient risk, and an optional score threshold."""

    lang: str = "zh"
    risk: str = "high"
    threshold: float | None = None


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
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowledgeError(f"imaging/detector_classical.yaml: {exc}") from None


def default_detector() -> ClassicalDetector:
    return ClassicalDetector(default_weights())


def _location(c: Candidate, lungs: LungMasks, spacing_zyx: tuple[float, float, float]) -> str:
    m = c.measurement
    (i0, j0, k0), (i1, j1, k1) = m.bbox_voxel
    sl = (slice(max(0, k0 - 1), k1 + 2), slice(max(0, j0 - 1), j1 + 2), slice(max(0, i0 - 1), i1 + 2))
    wall = lungs.body[sl] & ~lungs.mask[sl]
    box_hu_mask = lungs.mask[sl]
    if wall.any() and box_hu_mask.any():
        from scipy import ndimage

        inner = ndimage.binary_erosion(box_hu_mask, iterations=1)
        if (box_hu_mask & ~inner & ndimage.binary_dilation(wall, iterations=1)).any():
            # touches the pleura within its bounding box (+1 voxel)
            return "juxtapleural"
    ci, cj, ck = (int(round(v)) for v in m.center_voxel)
    side_mask = lungs.sides[ck] == lungs.sides[ck, cj, ci] if lungs.sides[ck, cj, ci] else lungs.mask[ck]
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
    spacing_zyx = series.spacing_zyx
    d = np.asarray(series.direction)
    x_of_col = series.origin_mm[0] + d[0, 0] * series.spacing_mm[0] * np.arange(series.hu.shape[2])
    lungs = segment_lungs(series.hu, spacing_zyx, x_of_col=x_of_col)
    threshold = opts.threshold if opts.threshold is not None else default_weights().threshold
    candidates = [c for c in det.detect(series.hu, lungs.mask, spacing_zyx) if c.score >= threshold]
    nodules: list[dict[str, Any]] = []
    for c in candidates:
        m = c.measurement
        ci, cj, ck = (int(round(v)) for v in m.center_voxel)
        side_code = int(lungs.sides[ck, cj, ci])
        if side_code == 0:
            x_mm = series.voxel_to_mm(m.center_voxel)[0]
            side = "left" if x_mm > float(np.mean(x_of_col)) else "right"
        else:
            side = "left" if side_code == LEFT else "right"
        nodules.append(
            {
                "center_mm": [round(v, 1) for v in series.voxel_to_mm(m.center_voxel)],
                "center_voxel": [ci, cj, ck],
                "bbox_voxel": [list(m.bbox_voxel[0]), list(m.bbox_voxel[1])],
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
            fleischner_mm=int(math.floor((n["long_axis_mm"] + n["short_axis_mm"]) / 2 + 0.5)),
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
