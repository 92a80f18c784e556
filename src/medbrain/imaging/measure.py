"""Per-nodule 3D segmentation and measurement: axes, mean diameter, volume, type, location.

Pure functions on arrays indexed ``[slice, row, col]``. A nodule is segmented in a box around
its centre by a half-maximum threshold between lung background and the nodule's own
attenuation (solid part and ground-glass part separately), restricted to the lung mask, with
a morphological opening that detaches vessels when the region leaves the box.

References
----------
Lung-RADS v2022 (ACR, Nov 2022), "Nodule size": long and short axis to one decimal place on
the image where the nodule is largest; mean diameter = (long + short) / 2 to one decimal;
volume to the nearest mm3.
MacMahon H et al. Guidelines for Management of Incidental Pulmonary Nodules Detected on CT
Images: From the Fleischner Society 2017. Radiology 2017;284(1):228-243 (average of long and
short axis, rounded to the nearest millimetre; solid / part-solid / ground-glass).
Bankier AA et al. Recommendations for measuring pulmonary nodules at CT: a statement from the
Fleischner Society. Radiology 2017;285(2):584-600.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

HU_LUNG_BG = -850.0
SOLID_HU = -300.0  # attenuation above which a part is "solid" (obscures vessels)
CALCIFIED_HU = 200.0
HU_SOFT_TISSUE = 40.0
VESSEL_RADIUS_MM = 1.5  # solid parts thinner than this (radius) are read as vessels


@dataclass(frozen=True, slots=True)
class Measurement:
    """Measured nodule; ``*_voxel`` are ``[col, row, slice]`` of the full volume."""

    center_voxel: tuple[float, float, float]
    bbox_voxel: tuple[tuple[int, int, int], tuple[int, int, int]]
    long_axis_mm: float
    short_axis_mm: float
    mean_diameter_mm: float
    volume_mm3: float
    type: str
    solid_component_mm: float | None
    axial_slice: int
    peak_hu: float
    mean_hu: float
    elongation: float
    border_fraction: float
    voxels: int


def _feret_axes(mask2d: NDArray[np.bool_], sy: float, sx: float) -> tuple[float, float]:
    """Longest chord and the largest extent perpendicular to it (pixel centres + one pixel)."""
    rr, cc = np.nonzero(mask2d)
    if rr.size == 0:
        return 0.0, 0.0
    pts = np.stack([cc * sx, rr * sy], axis=1).astype(np.float64)
    if pts.shape[0] > 400:  # boundary only
        inner = ndimage.binary_erosion(mask2d)
        rr, cc = np.nonzero(mask2d & ~inner)
        pts = np.stack([cc * sx, rr * sy], axis=1).astype(np.float64)
    diff = pts[:, None, :] - pts[None, :, :]
    d2 = (diff**2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    pix = math.hypot(sx, sy) / math.sqrt(2.0)
    long_ = math.sqrt(float(d2[i, j]))
    if long_ == 0:
        return pix, pix
    u = (pts[j] - pts[i]) / long_
    perp = pts @ np.asarray([-u[1], u[0]])
    short = float(perp.max() - perp.min())
    return long_ + pix, short + pix


def _equivalent_diameter(mask: NDArray[np.bool_], spacing_zyx: tuple[float, float, float]) -> float:
    """Diameter (mm) of the sphere with the mask's volume."""
    vol = float(mask.sum()) * float(np.prod(spacing_zyx))
    return float(2.0 * (vol * 3.0 / (4.0 * math.pi)) ** (1.0 / 3.0))


def _largest_component_at(
    mask: NDArray[np.bool_], seed: tuple[int, int, int], radius: int
) -> NDArray[np.bool_]:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    z, y, x = seed
    sl = tuple(slice(max(0, c - radius), c + radius + 1) for c in (z, y, x))
    near = labels[sl]
    ids = near[near > 0]
    if ids.size == 0:
        return np.zeros_like(mask)
    lab = int(np.bincount(ids).argmax())
    return np.asarray(labels == lab)


def _open_ball(
    mask: NDArray[np.bool_], r: float, sampling: tuple[float, float, float] | None = None
) -> NDArray[np.bool_]:
    """Morphological opening with a ball of radius ``r`` (voxels, or mm with ``sampling``)
    through distance transforms (erosion: farther than ``r`` from the background; dilation:
    within ``r`` of what is left); linear in the box size, not in the ball's volume."""
    pad = math.ceil(r / min(sampling) if sampling else r) + 1
    padded = np.pad(mask, pad)
    eroded = ndimage.distance_transform_edt(padded, sampling=sampling) > r
    if not eroded.any():
        return np.zeros_like(mask)
    opened = ndimage.distance_transform_edt(~eroded, sampling=sampling) <= r
    inner = tuple(slice(pad, pad + n) for n in mask.shape)
    return np.asarray(opened[inner] & mask, dtype=bool)


def _segment(
    box: NDArray[np.float32],
    lung: NDArray[np.bool_],
    center: tuple[int, int, int],
    threshold: float,
    radius_vox: float,
) -> tuple[NDArray[np.bool_], float]:
    region = (box > threshold) & lung
    comp = _largest_component_at(region, center, max(1, int(radius_vox * 0.5)))
    if not comp.any():
        return comp, 0.0
    border = np.zeros_like(comp)
    border[[0, -1], :, :] = True
    border[:, [0, -1], :] = True
    border[:, :, [0, -1]] = True
    frac = float((comp & border).sum()) / float(comp.sum())
    if frac > 0.0:  # attached to something leaving the box (vessel, wall): open it off
        r = max(1, round(radius_vox * 0.45))
        opened = _open_ball(comp, r)
        opened = _largest_component_at(opened, center, max(1, int(radius_vox * 0.6)))
        if opened.any():
            comp = opened
    return comp, frac


def measure_nodule(
    hu: NDArray[np.float32],
    lung_mask: NDArray[np.bool_],
    spacing_zyx: tuple[float, float, float],
    center_zyx: tuple[int, int, int],
    radius_mm: float,
) -> Measurement | None:
    """Segment and measure the nodule around ``center_zyx`` (estimated radius ``radius_mm``).

    Returns ``None`` when nothing denser than the lung background is found there.
    """
    sz, sy, sx = spacing_zyx
    half = [math.ceil((2.2 * radius_mm + 4.0) / s) + 1 for s in spacing_zyx]
    lo = [max(0, c - h) for c, h in zip(center_zyx, half, strict=True)]
    hi = [min(n, c + h + 1) for c, n, h in zip(center_zyx, hu.shape, half, strict=True)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    box = hu[sl]
    lung = lung_mask[sl]  # closed along the pleura: holds juxtapleural nodules, not the wall
    c = (center_zyx[0] - lo[0], center_zyx[1] - lo[1], center_zyx[2] - lo[2])
    r_vox = radius_mm / min(spacing_zyx)
    # peak within ~1.5 mm of the given centre (one voxel on grids of 1 mm and coarser): a
    # centre mapped from a coarser grid may miss a small nodule's brightest voxel by one
    reach = [max(1, round(1.5 / s)) for s in spacing_zyx]
    core = tuple(slice(max(0, v - h), v + h + 1) for v, h in zip(c, reach, strict=True))
    smooth = ndimage.gaussian_filter(box, sigma=0.6)
    peak = float(smooth[core].max())
    if peak < -750.0:
        return None
    bg = HU_LUNG_BG
    kind = "solid"
    solid_mm: float | None = None
    if peak > SOLID_HU:
        level = min(peak, 40.0) if peak < CALCIFIED_HU else peak
        solid, frac = _segment(box, lung, c, (bg + level) / 2.0, r_vox)
        ggo, _ = _segment(box, lung, c, (bg - 600.0) / 2.0, r_vox)
        if peak >= CALCIFIED_HU:
            # the half-maximum to lung also takes in a touching vessel (soft tissue): keep
            # what lies within 1.5 mm (a voxel on coarse grids) of the calcified core
            # (half-maximum to soft tissue)
            core_cal, _ = _segment(box, lung, c, (HU_SOFT_TISSUE + peak) / 2.0, r_vox)
            if core_cal.any():
                reach_mm = 1.5 if max(spacing_zyx) < 2.0 else max(spacing_zyx)  # >= 1 voxel
                dist = ndimage.distance_transform_edt(~core_cal, sampling=spacing_zyx)
                near = dist <= reach_mm
                solid = _largest_component_at(solid & near, c, max(1, int(r_vox * 0.5)))
            kind, mask = "calcified", solid
        else:
            # a vessel crossing or touching ground glass is neither a solid component nor
            # part of the nodule: keep solid parts thicker than a vessel, drop thin branches
            core_solid = _open_ball(solid, VESSEL_RADIUS_MM, spacing_zyx)
            body = _open_ball(ggo | solid, VESSEL_RADIUS_MM + 0.5, spacing_zyx)
            body = _largest_component_at(body, c, max(1, int(r_vox * 0.6)))
            core_d = _equivalent_diameter(core_solid, spacing_zyx)
            body_d = _equivalent_diameter(body | core_solid, spacing_zyx)
            ring = body & ~ndimage.binary_dilation(solid, iterations=1)
            ring_hu = float(box[ring].mean()) if ring.any() else bg
            if body_d > core_d + 2.5 and ring.sum() > 4 and ring_hu > -760.0:
                if core_solid.any():
                    kind, mask = "part-solid", body | core_solid
                    solid = core_solid
                    solid_mm = core_d
                else:
                    kind, mask = "ground-glass", body
            else:
                kind, mask = "solid", solid
        level_total = level if kind in ("solid", "calcified") else -600.0
    else:
        kind = "ground-glass"
        mask, frac = _segment(box, lung, c, (bg + peak) / 2.0, r_vox)
        level_total = peak
    if not mask.any():
        return None
    # slice of largest area, axes with a partial-volume area correction
    areas = mask.sum(axis=(1, 2))
    k = int(np.argmax(areas))
    long_, short = _feret_axes(mask[k], sy, sx)
    weights = np.clip((box[k] - bg) / max(level_total - bg, 1.0), 0.0, 1.0)
    region2d = ndimage.binary_dilation(mask[k], iterations=1)
    area_pv = float(weights[region2d].sum()) * sx * sy
    if long_ > 0 and short > 0 and area_pv > 0:
        scale = math.sqrt(area_pv / (math.pi / 4.0 * long_ * short))
        scale = min(max(scale, 0.7), 1.3)
        long_, short = long_ * scale, short * scale
    if solid_mm is not None:
        solid_k = mask[k] & (box[k] > (-600.0 + 40.0) / 2.0)  # half-max of GGO vs solid
        solid_k &= ndimage.binary_dilation(solid[k], iterations=1)  # not crossing vessels
        sl_, ss_ = _feret_axes(solid_k, sy, sx)
        solid_mm = round((sl_ + ss_) / 2.0, 1) if solid_k.any() else None
    volume_w = np.clip((box - bg) / max(level_total - bg, 1.0), 0.0, 1.0)
    vol = float(volume_w[ndimage.binary_dilation(mask, iterations=1)].sum()) * sx * sy * sz
    idx = np.argwhere(mask)
    coords_mm = idx * np.asarray(spacing_zyx)
    cov = np.cov(coords_mm.T) if idx.shape[0] > 3 else np.eye(3)
    ev = np.sort(np.linalg.eigvalsh(cov + np.eye(3) * (min(spacing_zyx) ** 2 / 12)))
    elongation = float(math.sqrt(ev[-1] / max(ev[0], 1e-6)))
    cz, cy, cx = idx.mean(axis=0) + np.asarray(lo)
    lo_i = idx.min(axis=0) + np.asarray(lo)
    hi_i = idx.max(axis=0) + np.asarray(lo)
    return Measurement(
        center_voxel=(float(cx), float(cy), float(cz)),
        bbox_voxel=(
            (int(lo_i[2]), int(lo_i[1]), int(lo_i[0])),
            (int(hi_i[2]), int(hi_i[1]), int(hi_i[0])),
        ),
        long_axis_mm=round(long_, 1),
        short_axis_mm=round(short, 1),
        mean_diameter_mm=round((round(long_, 1) + round(short, 1)) / 2.0, 1),
        volume_mm3=float(round(vol)),
        type=kind,
        solid_component_mm=solid_mm,
        axial_slice=int(k + lo[0]),
        peak_hu=peak,
        mean_hu=float(box[mask].mean()),
        elongation=elongation,
        border_fraction=frac,
        voxels=int(mask.sum()),
    )


def fleischner_diameter_mm(measurement: Measurement) -> int:
    """Fleischner 2017: average of long and short axis rounded to the nearest millimetre."""
    return math.floor((measurement.long_axis_mm + measurement.short_axis_mm) / 2.0 + 0.5)
