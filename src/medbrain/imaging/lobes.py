"""Pulmonary lobes from detected fissures: RUL, RML, RLL, LUL, LLL — or ``None`` with a reason.

Fissures are thin bright sheets in the aerated lung. At each voxel inside the (eroded) lung
the Hessian of the Gaussian-smoothed image is computed; a fissure voxel is plate-like: one
large negative eigenvalue (bright across the sheet) and two small ones (flat along it), at
lung-like attenuation (-900 to -450 HU, so vessel walls and nodule rims are excluded). The
eigenvector of the large eigenvalue is the sheet's normal.

Per lung, the oblique (major) fissure is fitted to plate voxels whose normal is tilted 20-75
degrees from the patient's z axis towards anterior (the fissure runs from posterior-superior
to anterior-inferior): RANSAC plane with normal agreement, then a quadratic height surface in
the plane's frame, refitted on inliers. In the right lung the horizontal (minor) fissure is
fitted the same way to near-horizontal plate voxels on the upper/anterior side of the oblique
fissure. A surface is accepted only if it has enough support (share of its extent inside the
lung with fissure voxels nearby), a small residual, and splits the lung into plausible parts
(each lobe at least a few percent of its lung).

A nodule gets a lobe only when its centre lies clearly on one side of every surface that
decides it: farther than its radius plus a margin, and near (in the fissure plane) where the
fissure was actually seen, so incomplete fissures are not extrapolated far. Otherwise the lobe
is ``None`` with a ``lobe_reason`` (issue 4: never guess). The side (left/right) comes from the
lung split and is always reported.

All coordinates here are patient LPS millimetres (+z superior, +y posterior), so any axial
orientation works; the voxel-to-mm affine of the working grid is passed in.

References
----------
Lassen B, van Rikxoort EM, Schmidt M, Kerkstra S, van Ginneken B, Kuhnigk JM. Automatic
segmentation of the pulmonary lobes from chest CT scans based on fissures, vessels, and
bronchi. IEEE Trans Med Imaging 2013;32(2):210-222.
van Rikxoort EM, van Ginneken B, Klik M, Prokop M. Supervised enhancement filters: application
to fissure detection in chest CT scans. IEEE Trans Med Imaging 2008;27(1):1-10 (plate-like
Hessian response of fissures).
Fischler MA, Bolles RC. Random sample consensus. Commun ACM 1981;24(6):381-395.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from medbrain.imaging.lungs import LEFT, RIGHT, LungMasks

FloatArray = NDArray[np.float64]
LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")
UPPER_LOBES = frozenset({"RUL", "LUL"})


@dataclass(frozen=True, slots=True)
class LobeSettings:
    """Tunable constants (mm, HU, degrees).

    Defaults tuned on synthetic seeds 3000-3019 (2.5 mm) and 5001-5002 (0.78 x 0.78 x 1.25 mm);
    ``tests/bench/bench_ct_lobes.py`` measures on other seeds.
    """

    sigma_mm: float = 1.5
    min_sigma_vox: float = 0.7
    wall_margin_mm: float = 4.0
    hu_range: tuple[float, float] = (-900.0, -450.0)
    plate_ratio: float = 0.35
    min_plate_response: float = 10.0
    oblique_tilt_deg: tuple[float, float] = (20.0, 75.0)
    horizontal_tilt_deg: float = 25.0
    ransac_iterations: int = 300
    inlier_mm: float = 3.0
    normal_agreement_deg: float = 30.0
    min_inlier_area_mm2: float = 1200.0
    min_support: float = 0.3
    max_rmse_mm: float = 2.5
    min_lobe_fraction: float = 0.04
    margin_mm: float = 3.0
    max_gap_mm: float = 30.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class FissureFit:
    """One fitted fissure surface (or why none was accepted).

    Surface: in the frame ``(u, v, n)`` (rows of ``frame``) around ``origin`` (LPS mm),
    ``w = c0 + c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2``; the signed distance of a point is
    approximately ``w_point - w_surface`` (positive on the superior side: ``n`` has +z).
    """

    name: str
    found: bool
    reason: str | None = None
    origin: FloatArray = field(default_factory=lambda: np.zeros(3))
    frame: FloatArray = field(default_factory=lambda: np.eye(3))
    coef: FloatArray = field(default_factory=lambda: np.zeros(6))
    inliers: int = 0
    support: float = 0.0
    rmse_mm: float = 0.0
    seen_uv: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))

    def signed_distance(self, p: FloatArray) -> FloatArray:
        """Signed distance (mm, approximately) of LPS points ``p`` (N, 3); + is superior."""
        q = (np.atleast_2d(p) - self.origin) @ self.frame.T
        u, v, w = q[:, 0], q[:, 1], q[:, 2]
        c = self.coef
        h = c[0] + c[1] * u + c[2] * v + c[3] * u * u + c[4] * u * v + c[5] * v * v
        gu = c[1] + 2 * c[3] * u + c[4] * v
        gv = c[2] + c[4] * u + 2 * c[5] * v
        return np.asarray((w - h) / np.sqrt(1.0 + gu * gu + gv * gv))

    def gap_mm(self, p: FloatArray) -> float:
        """In-plane distance from ``p`` to the nearest place the fissure was seen."""
        if len(self.seen_uv) == 0:
            return math.inf
        q = (np.asarray(p, dtype=np.float64) - self.origin) @ self.frame.T
        d, _ = cKDTree(self.seen_uv).query(q[:2])
        return float(d)

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "reason": self.reason,
            "inlier_voxels": self.inliers,
            "support": round(self.support, 2),
            "rmse_mm": round(self.rmse_mm, 2),
        }


@dataclass(frozen=True, slots=True)
class LobeModel:
    """Fitted fissures of one scan; :meth:`assign` gives a nodule's lobe or the reason why not."""

    right_oblique: FissureFit
    left_oblique: FissureFit
    right_horizontal: FissureFit
    settings: LobeSettings = LobeSettings()

    def assign(self, center_lps: FloatArray, radius_mm: float, side: str) -> tuple[str | None, str]:
        """``(lobe, reason)``: lobe ``None`` unless the centre is clearly inside one lobe."""
        p = np.asarray(center_lps, dtype=np.float64)
        margin = radius_mm + self.settings.margin_mm
        oblique = self.right_oblique if side == "right" else self.left_oblique
        verdict = _side_of(oblique, p, margin, self.settings.max_gap_mm, "oblique fissure")
        if isinstance(verdict, str):
            return None, verdict
        if side == "left":
            return ("LUL" if verdict else "LLL"), "left oblique fissure"
        if not verdict:
            return "RLL", "right oblique fissure"
        horiz = _side_of(
            self.right_horizontal, p, margin, self.settings.max_gap_mm, "horizontal fissure"
        )
        if isinstance(horiz, str):
            return None, horiz
        return ("RUL" if horiz else "RML"), "right oblique and horizontal fissures"

    def to_dict(self) -> dict[str, Any]:
        return {
            "right_oblique": self.right_oblique.to_dict(),
            "right_horizontal": self.right_horizontal.to_dict(),
            "left_oblique": self.left_oblique.to_dict(),
        }


def _side_of(
    fit: FissureFit, p: FloatArray, margin: float, max_gap: float, what: str
) -> bool | str:
    """True above / False below the surface, or a reason string when that is not clear."""
    if not fit.found:
        return f"{what} not found ({fit.reason})"
    d = float(fit.signed_distance(p)[0])
    if abs(d) < margin:
        return f"within {abs(d):.1f} mm of the {what} (margin {margin:.1f} mm)"
    gap = fit.gap_mm(p)
    if gap > max_gap:
        return f"{what} not seen within {max_gap:.0f} mm of the nodule (incomplete fissure)"
    return d > 0


def working_affine(
    origin_mm: tuple[float, float, float],
    direction: tuple[tuple[float, float, float], ...],
    spacing_mm: tuple[float, float, float],
    factors_xyz: tuple[int, int, int] = (1, 1, 1),
) -> FloatArray:
    """3x4 matrix mapping working-grid ``[slice, row, col, 1]`` to LPS mm.

    The working grid block-averages the input by ``factors_xyz`` (col, row, slice): working
    voxel ``i`` covers input voxels ``f*i .. f*i+f-1`` whose centre is ``f*i + (f-1)/2``.
    """
    d = np.asarray(direction, dtype=np.float64)  # columns: col, row, slice directions
    s = np.asarray(spacing_mm, dtype=np.float64)
    f = np.asarray(factors_xyz, dtype=np.float64)
    lin_xyz = d * (s * f)[None, :]  # LPS per working index (col, row, slice)
    off = np.asarray(origin_mm) + d @ (s * (f - 1) / 2.0)
    a = np.zeros((3, 4))
    a[:, 0] = lin_xyz[:, 2]  # slice
    a[:, 1] = lin_xyz[:, 1]  # row
    a[:, 2] = lin_xyz[:, 0]  # col
    a[:, 3] = off
    return a


def plate_voxels(
    hu: NDArray[np.float32],
    region: NDArray[np.bool_],
    spacing_zyx: tuple[float, float, float],
    settings: LobeSettings,
) -> tuple[NDArray[np.int64], FloatArray, FloatArray]:
    """Plate-like voxels in ``region``: ``(indices zyx (N,3), normals in grid mm axes zyx,
    response)``."""
    found = ndimage.find_objects(region.astype(np.uint8))
    empty = (np.zeros((0, 3), np.int64), np.zeros((0, 3)), np.zeros(0))
    if not found or found[0] is None:
        return empty
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    pad = [math.ceil(3 * settings.sigma_mm / s) + 1 for s in sp]
    box = tuple(
        slice(max(0, b.start - p), min(n, b.stop + p))
        for b, p, n in zip(found[0], pad, hu.shape, strict=True)
    )
    img = np.clip(hu[box], -1000.0, 0.0).astype(np.float32)
    sig = [max(settings.sigma_mm / s, settings.min_sigma_vox) for s in sp]
    sig_mm = float(np.mean([g * s for g, s in zip(sig, sp, strict=True)]))
    sm = ndimage.gaussian_filter(img, sig)
    # Hessian by central differences of the smoothed image (scale-normalised by sigma^2):
    # the diagonal everywhere for a cheap pre-filter (a bright sheet has a clearly negative
    # Laplacian), the full matrix only at the voxels that pass it
    c = sm[1:-1, 1:-1, 1:-1]
    norm = sig_mm**2
    dzz = (sm[2:, 1:-1, 1:-1] - 2 * c + sm[:-2, 1:-1, 1:-1]) * (norm / sp[0] ** 2)
    dyy = (sm[1:-1, 2:, 1:-1] - 2 * c + sm[1:-1, :-2, 1:-1]) * (norm / sp[1] ** 2)
    dxx = (sm[1:-1, 1:-1, 2:] - 2 * c + sm[1:-1, 1:-1, :-2]) * (norm / sp[2] ** 2)
    inside = region[box][1:-1, 1:-1, 1:-1]
    inside &= (c >= settings.hu_range[0]) & (c <= settings.hu_range[1])
    thr = settings.min_plate_response * (1 - 2 * settings.plate_ratio)
    cand = inside & (dzz + dyy + dxx < -thr)
    idx = np.argwhere(cand)
    if idx.size == 0:
        return empty
    t = tuple(idx.T)
    k, j, i = (idx + 1).T

    def cross(a: int, b: int) -> NDArray[np.float64]:
        def at(da: int, db: int) -> NDArray[np.float32]:
            off = [0, 0, 0]
            off[a], off[b] = da, db
            return np.asarray(sm[k + off[0], j + off[1], i + off[2]], dtype=np.float32)

        h = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * sp[a] * sp[b])
        return np.asarray(h * norm, dtype=np.float64)

    m = np.empty((len(idx), 3, 3))
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = dzz[t], dyy[t], dxx[t]
    m[:, 0, 1] = m[:, 1, 0] = cross(0, 1)
    m[:, 0, 2] = m[:, 2, 0] = cross(0, 2)
    m[:, 1, 2] = m[:, 2, 1] = cross(1, 2)
    ev, vec = np.linalg.eigh(m)  # ascending: ev[:, 0] most negative
    l1 = ev[:, 0]
    other = np.maximum(np.abs(ev[:, 1]), np.abs(ev[:, 2]))
    ok = (l1 < -settings.min_plate_response) & (other < settings.plate_ratio * np.abs(l1))
    offset = np.asarray([b.start for b in box]) + 1
    return idx[ok] + offset, vec[ok, :, 0], -l1[ok]


def _fit_plane(pts: FloatArray) -> tuple[FloatArray, FloatArray]:
    c = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - c, full_matrices=False)
    n = vt[2]
    return c, n / np.linalg.norm(n)


def _frame(n: FloatArray) -> FloatArray:
    n = n / np.linalg.norm(n)
    if n[2] < 0:
        n = -n
    ref = np.asarray([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.asarray([0.0, 1.0, 0.0])
    u = np.cross(ref, n)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    return np.stack([u, v, n])


def _quad_design(u: FloatArray, v: FloatArray) -> FloatArray:
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)


def fit_surface(
    name: str,
    pts: FloatArray,
    normals: FloatArray,
    voxel_area_mm2: float,
    lung_pts: FloatArray,
    settings: LobeSettings,
    rng: np.random.Generator,
) -> FissureFit:
    """RANSAC plane (points + normal agreement), then a quadratic height surface on inliers."""
    min_inliers = max(30, int(settings.min_inlier_area_mm2 / voxel_area_mm2))
    if len(pts) < min_inliers:
        return FissureFit(name, False, f"{len(pts)} fissure-like voxels, need {min_inliers}")
    cos_agree = math.cos(math.radians(settings.normal_agreement_deg))
    n_pts = len(pts)
    # vectorised RANSAC: all hypotheses at once, scored on a subsample of at most 6000 points
    sub = rng.choice(n_pts, min(n_pts, 6000), replace=False)
    scale = n_pts / len(sub)
    picks = np.stack(
        [rng.choice(n_pts, 3, replace=False) for _ in range(settings.ransac_iterations)]
    )
    a, b, c = pts[picks[:, 0]], pts[picks[:, 1]], pts[picks[:, 2]]
    e1, e2 = b - a, c - a
    hyp = np.stack(
        [
            e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1],
            e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2],
            e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0],
        ],
        axis=1,
    )
    norms = np.linalg.norm(hyp, axis=1)
    valid = norms > 1e-6
    hyp = hyp[valid] / norms[valid, None]
    a = a[valid]
    if len(hyp) == 0:
        return FissureFit(name, False, "no consistent surface (degenerate samples)")
    dist = np.abs(pts[sub] @ hyp.T - np.sum(a * hyp, axis=1)[None, :])
    agree = np.abs(normals[sub] @ hyp.T) >= cos_agree
    counts = np.count_nonzero((dist < settings.inlier_mm) & agree, axis=0)
    best = int(np.argmax(counts))
    best_count = int(counts[best] * scale)
    if best_count < min_inliers:
        return FissureFit(name, False, f"no consistent surface ({best_count} voxels)")
    p0, n = a[best], hyp[best]
    inl = (np.abs((pts - p0) @ n) < settings.inlier_mm) & (np.abs(normals @ n) >= cos_agree)
    origin, n = _fit_plane(pts[inl])
    frame = _frame(n)
    coef = np.zeros(6)
    q = (pts - origin) @ frame.T
    for tol in (3.0 * settings.inlier_mm, 2.0 * settings.inlier_mm, settings.inlier_mm):
        a = _quad_design(q[:, 0], q[:, 1])
        resid = q[:, 2] - a @ coef
        nq = _normals_in_frame(normals, frame)
        sel = (np.abs(resid) < tol) & (np.abs(nq[:, 2]) >= cos_agree * 0.9)
        if np.count_nonzero(sel) < min_inliers:
            break
        inl = sel
        coef, *_ = np.linalg.lstsq(a[inl], q[inl, 2], rcond=None)
    a = _quad_design(q[:, 0], q[:, 1])
    resid = q[:, 2] - a @ coef
    inl = (np.abs(resid) < settings.inlier_mm) & inl
    count = int(np.count_nonzero(inl))
    rmse = float(np.sqrt(np.mean(resid[inl] ** 2))) if count else math.inf
    fit = FissureFit(
        name,
        True,
        None,
        origin,
        frame,
        coef,
        count,
        0.0,
        rmse,
        q[inl, :2],
    )
    support = _support(fit, lung_pts)
    fit = FissureFit(name, True, None, origin, frame, coef, count, support, rmse, q[inl, :2])
    if count < min_inliers:
        return _rejected(fit, f"{count} voxels on the surface, need {min_inliers}")
    if rmse > settings.max_rmse_mm:
        return _rejected(fit, f"surface residual {rmse:.1f} mm")
    if support < settings.min_support:
        return _rejected(fit, f"fissure seen on {support:.0%} of its extent")
    return fit


def _normals_in_frame(normals: FloatArray, frame: FloatArray) -> FloatArray:
    return np.asarray(normals @ frame.T)


def _rejected(fit: FissureFit, reason: str) -> FissureFit:
    return FissureFit(
        fit.name,
        False,
        reason,
        fit.origin,
        fit.frame,
        fit.coef,
        fit.inliers,
        fit.support,
        fit.rmse_mm,
        fit.seen_uv,
    )


def _support(fit: FissureFit, lung_pts: FloatArray, cell_mm: float = 6.0) -> float:
    """Share of the surface's extent inside the lung (cells of ``cell_mm``) with inliers."""
    if len(lung_pts) == 0 or len(fit.seen_uv) == 0:
        return 0.0
    d = fit.signed_distance(lung_pts)
    near = lung_pts[np.abs(d) < cell_mm / 2]
    if len(near) == 0:
        return 0.0
    q = (near - fit.origin) @ fit.frame.T
    extent = {tuple(c) for c in np.floor(q[:, :2] / cell_mm).astype(int).tolist()}
    seen = {tuple(c) for c in np.floor(fit.seen_uv / cell_mm).astype(int).tolist()}
    return len(extent & seen) / max(len(extent), 1)


def _tilt_deg(n: FloatArray) -> FloatArray:
    return np.asarray(np.degrees(np.arccos(np.clip(np.abs(n[:, 2]), 0.0, 1.0))))


def fit_lobes(
    hu: NDArray[np.float32],
    lungs: LungMasks,
    spacing_zyx: tuple[float, float, float],
    affine: FloatArray,
    settings: LobeSettings | None = None,
) -> LobeModel:
    """Detect and fit the fissures of both lungs (``affine``: see :func:`working_affine`)."""
    cfg = settings or LobeSettings()
    rng = np.random.default_rng(cfg.seed)
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    lin = affine[:, :3]
    # rotation part (grid mm axes zyx -> LPS), for the normals
    rot = lin / sp[None, :]
    voxel_area = float(np.prod(sp)) ** (2.0 / 3.0)
    if abs(abs(rot[2, 0]) - 1.0) > 0.05:
        why = "not an axial acquisition (slice normal not along patient z)"
        return LobeModel(
            FissureFit("right_oblique", False, why),
            FissureFit("left_oblique", False, why),
            FissureFit("right_horizontal", False, why),
            cfg,
        )
    # away from the pleura (its edge is a strong plate-like response too)
    steps = max(1, round(cfg.wall_margin_mm / float(np.mean(sp))))
    inner = ndimage.binary_erosion(lungs.mask, iterations=steps)
    fits: dict[str, FissureFit] = {}
    for side_code, side in ((RIGHT, "right"), (LEFT, "left")):
        region = inner & (lungs.sides == side_code)
        side_mask = lungs.sides == side_code
        lung_idx = np.argwhere(side_mask)
        step = max(1, len(lung_idx) // 20000)
        lung_pts = _to_mm(lung_idx[::step], affine)
        idx, normals_grid, _resp = plate_voxels(hu, region, spacing_zyx, cfg)
        pts = _to_mm(idx, affine)
        normals = normals_grid @ rot.T
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
        normals *= np.where(normals[:, 2:3] < 0, -1.0, 1.0)
        tilt = _tilt_deg(normals)
        lo, hi = cfg.oblique_tilt_deg
        oblique_sel = (tilt >= lo) & (tilt <= hi) & (normals[:, 1] < 0)
        oblique = fit_surface(
            f"{side}_oblique",
            pts[oblique_sel],
            normals[oblique_sel],
            voxel_area,
            lung_pts,
            cfg,
            rng,
        )
        oblique = _check_split(oblique, lung_pts, cfg)
        fits[f"{side}_oblique"] = oblique
        if side == "right":
            if not oblique.found:
                fits["right_horizontal"] = FissureFit(
                    "right_horizontal", False, "needs the right oblique fissure"
                )
                continue
            upper = oblique.signed_distance(pts) > cfg.inlier_mm
            h_sel = (tilt <= cfg.horizontal_tilt_deg) & upper
            upper_lung = lung_pts[oblique.signed_distance(lung_pts) > 0]
            horizontal = fit_surface(
                "right_horizontal",
                pts[h_sel],
                normals[h_sel],
                voxel_area,
                upper_lung,
                cfg,
                rng,
            )
            horizontal = _check_split(horizontal, upper_lung, cfg, total=len(lung_pts))
            fits["right_horizontal"] = horizontal
    return LobeModel(fits["right_oblique"], fits["left_oblique"], fits["right_horizontal"], cfg)


def _check_split(
    fit: FissureFit, lung_pts: FloatArray, cfg: LobeSettings, total: int | None = None
) -> FissureFit:
    """Reject a surface that does not split its lung into two plausible parts."""
    if not fit.found or len(lung_pts) == 0:
        return fit
    above = float(np.count_nonzero(fit.signed_distance(lung_pts) > 0))
    n = float(total or len(lung_pts))
    low = min(above, len(lung_pts) - above) / n
    if low < cfg.min_lobe_fraction:
        return _rejected(fit, f"surface leaves only {low:.0%} of the lung on one side")
    return fit


def _to_mm(idx_zyx: NDArray[np.int64], affine: FloatArray) -> FloatArray:
    if len(idx_zyx) == 0:
        return np.zeros((0, 3))
    return np.asarray(idx_zyx, dtype=np.float64) @ affine[:, :3].T + affine[:, 3]


def assign_lobes(nodules: list[dict[str, Any]], model: LobeModel) -> list[dict[str, Any]]:
    """Set ``lobe`` and ``lobe_reason`` on contract nodule dicts (``center_mm`` LPS, ``side``)."""
    for n in nodules:
        lobe, reason = model.assign(
            np.asarray(n["center_mm"], dtype=np.float64),
            float(n["mean_diameter_mm"]) / 2.0,
            str(n["side"]),
        )
        n["lobe"] = lobe
        n["lobe_reason"] = reason
    return nodules


def on_fissure(n: dict[str, Any], model: LobeModel, tol_mm: float = 1.5) -> str | None:
    """Name of the seen fissure a ground-glass candidate lies on (its centre within ``tol_mm``
    of a fitted surface where the fissure was seen), else ``None``.

    A fissure crossing an axial slice obliquely looks like a faint ground-glass smear; a real
    ground-glass nodule touching a fissure has its centre about one radius away from it.
    """
    if n.get("type") != "ground-glass":
        return None
    p = np.asarray(n["center_mm"], dtype=np.float64)
    fits = (
        (model.right_oblique, model.right_horizontal)
        if n.get("side") == "right"
        else (model.left_oblique,)
    )
    for fit in fits:
        if not fit.found:
            continue
        if abs(float(fit.signed_distance(p)[0])) <= tol_mm and fit.gap_mm(p) <= 10.0:
            return fit.name
    return None
