"""Per-nodule 3D segmentation and measurement: axes, mean diameter, volume, type, location.

Pure functions on arrays indexed ``[slice, row, col]``. A nodule is segmented in a box around
its centre by half-maximum thresholds between lung background and the nodule's own
attenuation (solid part and ground-glass part separately):

- touching vessels are detached by a size-adaptive opening: the nodule's inscribed ball sets
  the scale, a ball of 0.6 of its radius opens the region (a vessel thinner than that falls
  off, a rounded nodule survives); a vessel nearly as thick as the nodule (a 3-4 mm vessel on
  a 5-6 mm nodule) is detached by a ball of up to 0.95 of the radius, the edge that ball
  rounds off given back; what is left of a still thicker vessel is cut where a rounded
  nodule ends (1.5 inscribed radii from its centre);
- where the nodule abuts the chest wall (the coarse lung mask cuts it), the pleural surface
  under it is interpolated from the lung/wall interface around it (trimmed least-squares
  quadric) and the nodule ends there, as a reader draws it along the pleural line;
- type: calcified when the voxels at the centre reach 200 HU; otherwise a dense rounded core
  inside a wider ground-glass body is a solid component (part-solid), a dense tube through
  ground glass is a vessel (ground-glass), and a dense nodule without such a halo is solid.

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
Hansell DM et al. Fleischner Society: glossary of terms for thoracic imaging. Radiology
2008;246(3):697-722 (ground-glass opacity: hazy increased attenuation that does not obscure
vessels; part-solid: ground glass with a solid component that obscures them).
Siegelman SS et al. CT of the solitary pulmonary nodule. AJR 1980;135(1):1-13 (malignant
nodules at most 147 HU; calcified benign ones 164 HU and above); > 200 HU is the usual
working definition of calcific attenuation at CT.
Kostis WJ et al. Three-dimensional segmentation and growth-rate estimation of small pulmonary
nodules in helical CT images. IEEE TMI 2003;22(10):1259-1274 (vessel removal by opening with
a sphere sized to the nodule). Kuhnigk JM et al. Morphological segmentation and partial volume
analysis for volumetry of solid pulmonary lesions in thoracic CT scans. IEEE TMI
2006;25(4):417-434 (adaptive opening for juxtavascular nodules, pleural-surface separation,
partial-volume correction of size).
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
SOLID_SMALL_ROI_HU = -200.0  # 2 densest voxels above this: solid (ground glass stays < -300)
CALCIFIED_SMOOTHED_MIN_HU = 0.0  # smoothed peak a small calcified nodule must still reach
HU_SOFT_TISSUE = 40.0
SOLID_IN_GGO_HU = (-600.0 + HU_SOFT_TISSUE) / 2.0  # half-maximum of solid vs ground glass
GGO_THRESHOLD = (HU_LUNG_BG - 600.0) / 2.0  # half-maximum of faint ground glass (-600 HU)
OPEN_FRACTION = 0.6  # vessel-detaching opening: ball radius / the nodule's inscribed radius
# when a vessel survives that opening: the largest ball tried, then smaller ones (descending)
OPEN_FRACTION_MAX = 0.95
OPEN_FRACTIONS_BETWEEN = (0.8,)
EXTENT_FACTOR = 1.5  # a rounded nodule lies within this many inscribed radii of its centre
PV_RIM_VOXELS = 2  # partial-volume voxels counted outside the half-maximum edge
MIN_SOLID_RADIUS_MM = 1.0  # a solid component's inscribed radius (>= 2 mm across)
MAX_SOLID_ELONGATION = 1.75  # a solid component is rounded; a dense tube is a vessel


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
    pix = math.hypot(sx, sy) / math.sqrt(2.0)
    long_ = math.sqrt(float(d2.max()))
    if long_ == 0:
        return pix, pix
    # chords within half a pixel of the longest are equally "the long axis" (a shape cut flat
    # by the pleura has many): take the one whose perpendicular extent is least, as a reader
    # lays the long axis along the flat side
    ii, jj = np.nonzero(np.triu(d2 >= (long_ - 0.5 * pix) ** 2))
    step = max(1, ii.size // 64)
    short = math.inf
    for i, j in zip(ii[::step], jj[::step], strict=True):
        u = (pts[j] - pts[i]) / math.sqrt(float(d2[i, j]))
        perp = pts @ np.asarray([-u[1], u[0]])
        short = min(short, float(perp.max() - perp.min()))
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
    mask: NDArray[np.bool_],
    r: float,
    sampling: tuple[float, float, float] | None = None,
    *,
    edge: bool = False,
) -> NDArray[np.bool_]:
    """Morphological opening with a ball of radius ``r`` (voxels, or mm with ``sampling``)
    through distance transforms (erosion: farther than ``r`` from the background; dilation:
    within ``r`` of what is left); linear in the box size, not in the ball's volume.
    ``edge``: the volume continues past the box faces (a wall cut by the box stays thick)."""
    pad = math.ceil(r / min(sampling) if sampling else r) + 1
    padded = np.pad(mask, pad, mode="edge" if edge else "constant")
    eroded = ndimage.distance_transform_edt(padded, sampling=sampling) > r
    if not eroded.any():
        return np.zeros_like(mask)
    opened = ndimage.distance_transform_edt(~eroded, sampling=sampling) <= r
    inner = tuple(slice(pad, pad + n) for n in mask.shape)
    return np.asarray(opened[inner] & mask, dtype=bool)


def _distance_from(
    shape: tuple[int, ...], p: tuple[int, ...], spacing: tuple[float, float, float]
) -> NDArray[np.float64]:
    """Euclidean distance (mm) of every voxel of a box from voxel ``p``."""
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    d2 = ((zz - p[0]) * spacing[0]) ** 2 + ((yy - p[1]) * spacing[1]) ** 2
    return np.sqrt(d2 + ((xx - p[2]) * spacing[2]) ** 2)


def _elongation(mask: NDArray[np.bool_], spacing: tuple[float, float, float]) -> float:
    """Square root of the largest over the smallest principal variance of the voxels (mm)."""
    idx = np.argwhere(mask)
    coords_mm = idx * np.asarray(spacing)
    cov = np.cov(coords_mm.T) if idx.shape[0] > 3 else np.eye(3)
    ev = np.sort(np.linalg.eigvalsh(cov + np.eye(3) * (min(spacing) ** 2 / 12)))
    return float(math.sqrt(ev[-1] / max(ev[0], 1e-6)))


def _detach_vessels(
    comp: NDArray[np.bool_],
    spacing: tuple[float, float, float],
    center: tuple[int, int, int],
    radius_mm: float,
    wall: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], float]:
    """Keep the rounded body at ``center`` and drop attached tubes (vessels, bronchial walls).

    The nodule's inscribed ball (the distance-transform maximum near the centre, radius
    ``r_in``) sets the scale: if the region reaches farther than a rounded nodule can
    (``EXTENT_FACTOR * r_in``), it is opened with a ball of ``OPEN_FRACTION * r_in`` (a sphere
    survives an opening by any smaller ball; a vessel thinner than the ball does not). When
    a vessel survives and leaves the nodule's extent thinner than ``OPEN_FRACTION_MAX * r_in``
    (not a tube, whose inscribed radius is the same everywhere), a ball of
    ``OPEN_FRACTION_MAX * r_in`` (or the smallest of ``OPEN_FRACTIONS_BETWEEN`` that still
    detaches it) is used and the edge it rounds off beyond the first opening is given back;
    what a still thicker vessel leaves is cut at ``EXTENT_FACTOR * r_in`` from the centre
    (size-adaptive opening + spherical constraint, as in Kuhnigk et al., IEEE TMI
    2006;25(4):417-434, and Kostis et al., IEEE TMI 2003;22(10):1259-1274).
    ``wall``: dense tissue the nodule abuts (chest wall, mediastinum): counted as nodule for
    the inscribed ball and the opening, so a juxtapleural nodule keeps its base.
    Returns the mask and ``r_in`` (mm).
    """
    if not comp.any():
        return comp, 0.0
    full = comp if wall is None else comp | wall
    dist = ndimage.distance_transform_edt(full, sampling=spacing)
    near = _distance_from(comp.shape, center, spacing) <= max(0.5 * radius_mm, 1.5)
    d = np.where(near & comp, dist, 0.0)
    flat = int(np.argmax(d))
    r_in = float(d.flat[flat])
    if r_in <= 0.0:
        return comp, 0.0
    p = tuple(int(v) for v in np.unravel_index(flat, comp.shape))
    reach = _distance_from(comp.shape, p, spacing) <= EXTENT_FACTOR * r_in + max(spacing)
    if not (comp & ~reach).any():  # nothing attached beyond a rounded nodule's extent
        return comp, r_in

    def opening(frac: float) -> NDArray[np.bool_] | None:
        """The part of ``comp`` that survives the opening and stays connected to ``p``."""
        ball = frac * r_in
        if ball < 0.5 * min(spacing):
            return None
        labels, _ = ndimage.label(_open_ball(full, ball, spacing, edge=wall is not None))
        return np.asarray(comp & (labels == labels[p]), dtype=bool) if labels[p] else None

    first = opening(OPEN_FRACTION)
    if first is None:
        return np.asarray(comp & reach, dtype=bool), r_in
    exits = first & ~reach & ndimage.binary_dilation(reach)
    # (only where what leaves the nodule's extent is thinner than that ball there: not along
    # a tube, whose inscribed radius is the same everywhere)
    if exits.any() and float(dist[exits].max()) < OPEN_FRACTION_MAX * r_in:
        # a vessel nearly as thick as the nodule survives (typical of 5-6 mm juxtavascular
        # nodules): a ball nearly the nodule's own inscribed radius detaches it; then the
        # smallest ball tried that still does (it rounds off less of the nodule)
        best: tuple[float, NDArray[np.bool_]] | None = None
        for frac in (OPEN_FRACTION_MAX, *OPEN_FRACTIONS_BETWEEN):
            o = opening(frac)
            if o is None or (o & ~reach).any():
                break
            best = (frac, o)
        if best is not None:
            # the larger ball also rounds off the nodule's own edge: give back what the
            # first opening kept within the difference of the two balls
            near = ndimage.distance_transform_edt(~best[1], sampling=spacing)
            keep = near <= (best[0] - OPEN_FRACTION) * r_in
            return np.asarray(first & reach & keep, dtype=bool), r_in
    comp = first
    return np.asarray(comp & reach, dtype=bool), r_in


def _component(
    box: NDArray[np.float32],
    allowed: NDArray[np.bool_],
    center: tuple[int, int, int],
    threshold: float,
    radius_vox: float,
) -> tuple[NDArray[np.bool_], float]:
    """Connected region above ``threshold`` at the centre, and its share on the box faces."""
    comp = _largest_component_at((box > threshold) & allowed, center, max(1, int(radius_vox * 0.5)))
    if not comp.any():
        return comp, 0.0
    border = np.zeros_like(comp)
    border[[0, -1], :, :] = True
    border[:, [0, -1], :] = True
    border[:, :, [0, -1]] = True
    return comp, float((comp & border).sum()) / float(comp.sum())


def _pleura_cut(
    box: NDArray[np.float32],
    lung: NDArray[np.bool_],
    spacing: tuple[float, float, float],
    center: tuple[int, int, int],
    comp: NDArray[np.bool_],
    threshold: float,
    radius_mm: float,
) -> NDArray[np.bool_]:
    """Where the nodule may lie when it touches the lung mask's edge (juxtapleural).

    The lung mask comes from a coarser grid and may cut a nodule that abuts the pleura (or
    leave the centre outside). The pleural surface under the nodule is interpolated, as a
    reader draws the nodule's edge along the pleural line: lung-side voxels next to dense
    tissue outside the mask (air within that reach of it), away from the nodule (beyond 1.3 radii), sample the surface; a
    quadric ``h = f(u, v)`` in their principal plane is fitted by least squares, and the
    nodule may extend (up to ``max(4 mm, 0.6 radius)`` past the mask) only on the lung side.
    Points off the surface (vessels, the nodule's own edge) are trimmed (residual > 2.5x the
    median); falls back to the mask when under 60 % of the points fit within 1.5 mm rms."""
    dense = box > threshold
    outside = dense & ~lung
    touching = (ndimage.binary_dilation(comp) & outside).any() if comp.any() else True
    if not lung.any() or not outside.any() or not touching:
        return lung
    reach = max(4.0, 0.6 * radius_mm)
    near = ndimage.distance_transform_edt(~lung, sampling=spacing) <= reach
    iface = ~dense & near & ndimage.binary_dilation(outside)
    sp = np.asarray(spacing)
    pts = np.argwhere(iface) * sp
    c_mm = np.asarray(center) * sp
    pts = pts[np.linalg.norm(pts - c_mm, axis=1) > 1.3 * radius_mm + 1.0]
    if pts.shape[0] < 30:
        return lung
    mean = pts.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((pts - mean).T))
    n, u_ax, v_ax = vecs[:, 0], vecs[:, 1], vecs[:, 2]

    def design(q: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        d = q - mean
        u, v = d @ u_ax, d @ v_ax
        return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1), d @ n

    a, h = design(pts)
    keep = np.ones(h.shape, dtype=bool)
    for _ in range(3):  # trimmed least squares: vessels and the nodule's own edge are outliers
        coef, *_ = np.linalg.lstsq(a[keep], h[keep], rcond=None)
        res = np.abs(a @ coef - h)
        keep = res <= max(2.5 * float(np.median(res[keep])), float(sp.max()))
    if keep.mean() < 0.6 or float(np.sqrt(np.mean(res[keep] ** 2))) > 1.5:
        return lung
    grid = np.indices(box.shape).reshape(3, -1).T * sp
    ag, hg = design(grid)
    signed = (hg - ag @ coef).reshape(box.shape)  # along n, from the fitted surface
    side = 1.0 if float(signed[lung].mean()) > 0 else -1.0
    lung_side = signed * side > -0.5 * float(sp.min())
    return np.asarray(lung | (near & lung_side), dtype=bool)


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
    # calcification: > 200 HU. Smoothing and partial volume pull a small calcified nodule's
    # smoothed peak far below that (a 3 mm one spans ~4 voxels), so the mean of its 2 densest
    # voxels decides (a minimal region of interest rather than one voxel, Fleischner 2017),
    # once the smoothed peak is at least soft tissue-like (>= 0 HU). Synthetic noise (sd
    # 20 HU) keeps soft tissue's 2 densest voxels under 120 HU; on very noisy low-dose
    # lung-kernel series (sd > ~70 HU) raise CALCIFIED_SMOOTHED_MIN_HU.
    top2 = float(np.sort(box[core], axis=None)[-2:].mean())
    calcified = peak >= CALCIFIED_HU or (peak >= CALCIFIED_SMOOTHED_MIN_HU and top2 >= CALCIFIED_HU)
    bg = HU_LUNG_BG
    kind = "solid"
    solid_mm: float | None = None
    # solid attenuation (> -300 HU, denser than any ground glass); a small solid nodule's
    # smoothed peak may fall below it, its 2 densest voxels (> -200 HU) do not
    if peak > SOLID_HU or top2 > SOLID_SMALL_ROI_HU:
        level = max(peak, CALCIFIED_HU) if calcified else min(peak, HU_SOFT_TISSUE)
        t_solid = (bg + level) / 2.0
        solid_raw, frac = _component(box, lung, c, t_solid, r_vox)
        allowed = _pleura_cut(box, lung, spacing_zyx, c, solid_raw, t_solid, radius_mm)
        if allowed is not lung:
            solid_raw, frac = _component(box, allowed, c, t_solid, r_vox)
        # dense tissue outside the allowed region that the nodule touches (wall, mediastinum)
        wall: NDArray[np.bool_] | None = (box > t_solid) & ~allowed
        if not (ndimage.binary_dilation(solid_raw) & wall).any():
            wall = None
        if calcified:
            # the half-maximum to lung also takes in a touching vessel (soft tissue): keep
            # what lies within 1.5 mm (a voxel on coarse grids) of the calcified core
            # (half-maximum to soft tissue)
            core_cal, _ = _component(box, allowed, c, (HU_SOFT_TISSUE + level) / 2.0, r_vox)
            solid = solid_raw
            if core_cal.any():
                reach_mm = 1.5 if max(spacing_zyx) < 2.0 else max(spacing_zyx)  # >= 1 voxel
                dist = ndimage.distance_transform_edt(~core_cal, sampling=spacing_zyx)
                solid = _largest_component_at(
                    solid_raw & (dist <= reach_mm), c, max(1, int(r_vox * 0.5))
                )
            kind, mask = "calcified", solid
        else:
            solid, r_core = _detach_vessels(solid_raw, spacing_zyx, c, radius_mm, wall)
            ggo_raw, _ = _component(box, allowed, c, GGO_THRESHOLD, r_vox)
            body, _ = _detach_vessels(ggo_raw | solid, spacing_zyx, c, radius_mm, wall)
            # the solid component's edge is the half-maximum between ground glass (-600 HU)
            # and soft tissue, not the one to lung used for solid nodules
            core_d = _equivalent_diameter(solid & (box > SOLID_IN_GGO_HU), spacing_zyx)
            body_d = _equivalent_diameter(body | solid, spacing_zyx)
            ring = body & ~ndimage.binary_dilation(solid_raw, iterations=1)
            ring_hu = float(box[ring].mean()) if ring.any() else bg
            ring_ok = ring.sum() > 4 and ring_hu > -760.0
            # a solid component is a rounded opacity (Lung-RADS v2022, Fleischner 2017); a
            # dense tube through the centre is a vessel, not a solid component (one flattened
            # against the pleura is not a tube)
            on_wall = wall is not None and bool((ndimage.binary_dilation(solid) & wall).any())
            rounded = (
                solid.any()
                and r_core >= MIN_SOLID_RADIUS_MM
                and (on_wall or _elongation(solid, spacing_zyx) < MAX_SOLID_ELONGATION)
            )
            if rounded and body_d > core_d + 2.5 and ring_ok:
                kind, mask = "part-solid", body | solid
                solid_mm = core_d
            elif rounded:
                kind, mask = "solid", solid
            elif body_d > _equivalent_diameter(solid_raw & body, spacing_zyx) + 2.5 and ring_ok:
                kind, mask = "ground-glass", body  # ground glass with a vessel through it
            else:
                kind, mask = "solid", solid
        level_total = level if kind in ("solid", "calcified") else -600.0
        t_mask = t_solid if kind in ("solid", "calcified") else GGO_THRESHOLD
    else:
        kind = "ground-glass"
        raw, frac = _component(box, lung, c, (bg + peak) / 2.0, r_vox)
        mask, _ = _detach_vessels(raw, spacing_zyx, c, radius_mm)
        level_total = peak
        t_mask = (bg + peak) / 2.0
    if not mask.any():
        return None
    if kind in ("solid", "ground-glass"):
        # the nodule's own attenuation (mean of its interior) rather than the noisy peak
        interior = ndimage.binary_erosion(mask, iterations=1)
        if interior.sum() >= 8:
            level_total = float(box[interior].mean())
    # partial-volume rim: voxels next to the mask below its threshold (denser neighbours are
    # a vessel or the wall that was cut off, not the nodule's blurred edge)
    rim = ndimage.binary_dilation(mask, iterations=PV_RIM_VOXELS) & (mask | (box <= t_mask))
    # slice of largest area, axes with a partial-volume area correction
    areas = mask.sum(axis=(1, 2))
    k = int(np.argmax(areas))
    long_, short = _feret_axes(mask[k], sy, sx)
    weights = np.clip((box[k] - bg) / max(level_total - bg, 1.0), 0.0, 1.0)
    area_pv = float(weights[rim[k]].sum()) * sx * sy
    if long_ > 0 and short > 0 and area_pv > 0:
        scale = math.sqrt(area_pv / (math.pi / 4.0 * long_ * short))
        scale = min(max(scale, 0.7), 1.3)
        long_, short = long_ * scale, short * scale
    if solid_mm is not None:
        solid_k = mask[k] & (box[k] > SOLID_IN_GGO_HU)
        solid_k &= ndimage.binary_dilation(solid[k], iterations=1)  # not crossing vessels
        sl_, ss_ = _feret_axes(solid_k, sy, sx)
        solid_mm = round((sl_ + ss_) / 2.0, 1) if solid_k.any() else None
    volume_w = np.clip((box - bg) / max(level_total - bg, 1.0), 0.0, 1.0)
    vol = float(volume_w[rim].sum()) * sx * sy * sz
    idx = np.argwhere(mask)
    elongation = _elongation(mask, spacing_zyx)
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
