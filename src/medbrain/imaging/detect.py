"""Nodule detection behind one :class:`Detector` interface; the classical CPU detector.

:class:`ClassicalDetector`:

1. **Candidates** from a two-level scale space: scale-normalised difference-of-Gaussians
   (a LoG approximation, Lindeberg 1998) at 0.8-1.7 mm on the working grid and 2-8 mm on a
   grid twice as coarse (a pyramid keeps a full scan within seconds), local maxima inside the
   lung. The chest wall and mediastinum read as lung, so the pleura gives no edge. A
   ground-glass pass on the coarse grid with solid voxels (and their partial-volume rim)
   removed, so a ground-glass nodule beside a vessel keeps its own maximum; and a pass for
   small calcified blobs on the pleura that the lung mask leaves out.
2. **Vessel suppression**: the Hessian of the Gaussian-smoothed image at each maximum's scale;
   bright blobs have three large negative eigenvalues, vessel segments one near zero
   (tubular) and walls two near zero (plate). Clearly tubular or plate-like maxima are
   dropped before the costlier steps (Li et al. 2003; Frangi et al. 1998).
3. **Features** per remaining candidate: its segmentation (size, elongation, attenuation,
   sphericity), multi-scale responses, eigenvalue ratios, distance to the pleura, the
   dense structures crossing a shell around it (vessels attached) and rays cast from its
   centre (how far the object reaches in 26 directions; independent of the segmentation).
   When the segmentation of a small nodule leaks into an attached vessel, the candidate
   stays at its own intensity peak; a finer-scale point inside an earlier, coarser
   measurement (a point on the vessel that took in the nodule beside it) is measured again.
4. **False-positive reduction** with a gradient-boosted tree ensemble stored as plain data in
   ``knowledge/imaging/detector_classical.json`` (:class:`TreeEnsemble`; no pickle), fitted by
   :mod:`medbrain.imaging.training` on training seeds only.

A learned detector (e.g. a MONAI bundle) implements the same :class:`Detector` protocol.

References
----------
Lindeberg T. Feature detection with automatic scale selection. IJCV 1998;30(2):79-116.
Li Q, Sone S, Doi K. Selective enhancement filters for nodules, vessels, and airway walls in
two- and three-dimensional CT scans. Med Phys 2003;30(8):2040-2051.
Frangi AF et al. Multiscale vessel enhancement filtering. MICCAI 1998:130-137.
Friedman JH. Greedy function approximation: a gradient boosting machine. Ann Stat
2001;29(5):1189-1232.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medbrain.imaging.measure import Measurement, measure_nodule

FEATURES = (
    "log_response",
    "scale_mm",
    "response_ratio_finer",
    "response_ratio_coarser",
    "hess_l1_l3",
    "hess_l2_l3",
    "hess_l3",
    "elongation",
    "border_fraction",
    "log_diameter",
    "peak_hu",
    "mean_hu",
    "hu_std",
    "size_ratio",
    "fill_ratio",
    "pleura_mm",
    "shell_dense_frac",
    "shell_branches",
    "vessel_hu_ratio",
    "ray_median_mm",
    "ray_long_frac",
    "ray_max_median",
)

# scales (mm) of the Gaussians: level 0 on the working grid, level 1 on a grid twice coarser
LEVEL0_SIGMAS = (0.65, 0.9, 1.25, 1.75)
LEVEL1_SIGMAS = (1.75, 2.45, 3.4, 4.8, 6.7, 9.4)
HU_BACKGROUND = -850.0  # lung parenchyma (measure.HU_LUNG_BG)
GGO_CENTRE_HU = -400.0  # a faint-pass maximum whose own attenuation is below this: ground glass
FAINT_SOLID_HU = -350.0  # removed (with a one-voxel rim) from the ground-glass pass
# calcified blobs on the pleura (> 200 HU: calcification, Fleischner glossary) that the lung
# mask leaves out: small, compact, and with lung on a good part of their surroundings
BRIGHT_HU = 150.0  # on the working grid: a 3 mm calcified nodule reads about 175 HU
BRIGHT_MAX_MM = 15.0  # longest extent; ribs and vertebrae are far longer
BRIGHT_MIN_MM3 = 2.0
BRIGHT_LUNG_FRACTION = 0.15  # aerated (< -400 HU) part of a 2-voxel shell around the blob
DUPLICATE_MM = 2.0  # a re-checked point whose measured centre is this close repeats one
RECHECK_SMALLER = 0.8  # and its own measurement must be smaller than the one it lay in


@dataclass(frozen=True, slots=True)
class Candidate:
    """One detected nodule: the measurement plus its classifier score in [0, 1]."""

    measurement: Measurement
    score: float
    features: tuple[float, ...]


def quadratic_expand(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``[z_i] + [z_i * z_j for i <= j]`` per row (second-order logistic model)."""
    n = z.shape[1]
    cols = [z] + [(z[:, i] * z[:, j])[:, None] for i in range(n) for j in range(i, n)]
    return np.concatenate(cols, axis=1)


class Scorer(Protocol):
    """A false-positive classifier: probabilities for feature rows, and its threshold."""

    @property
    def threshold(self) -> float: ...

    def score_many(self, x: NDArray[np.float64]) -> NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True)
class ClassifierWeights:
    """Second-order logistic model on standardised features (kept for simple detectors).

    ``z0 = (f - base_mean) / base_std``; ``e = quadratic_expand(z0)``;
    ``p = 1 / (1 + exp(-(bias + sum(w * (e - mean) / std))))``.
    """

    bias: float
    weights: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    threshold: float
    base_mean: tuple[float, ...] = ()
    base_std: tuple[float, ...] = ()

    def score_many(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        f = np.asarray(x, dtype=np.float64)
        if self.base_mean:
            f = quadratic_expand((f - np.asarray(self.base_mean)) / np.asarray(self.base_std))
        z = self.bias + ((f - np.asarray(self.mean)) / np.asarray(self.std)) @ np.asarray(
            self.weights
        )
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))), dtype=np.float64)

    def score(self, features: tuple[float, ...]) -> float:
        return float(self.score_many(np.asarray([features]))[0])


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """Binary gradient-boosted regression trees as flat arrays (portable, no pickle).

    Node ``i`` of the concatenated trees: a leaf when ``left[i] < 0`` (value ``value[i]``),
    otherwise go to ``left[i]`` when ``x[feature[i]] <= threshold[i]`` else ``right[i]``.
    ``roots`` are the root node of each tree; ``p = sigmoid(baseline + sum of leaf values)``.
    """

    baseline: float
    roots: NDArray[np.int64]
    feature: NDArray[np.int64]
    threshold_value: NDArray[np.float64]
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    value: NDArray[np.float64]
    threshold: float
    depth: int = 32

    def raw(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] == 0:
            return np.zeros(0)
        node = np.broadcast_to(self.roots, (x.shape[0], self.roots.size)).copy()
        rows = np.arange(x.shape[0])[:, None]
        for _ in range(self.depth):
            inner = self.left[node] >= 0
            if not inner.any():
                break
            go_left = x[rows, self.feature[node]] <= self.threshold_value[node]
            step = np.where(go_left, self.left[node], self.right[node])
            node = np.where(inner, step, node)
        return np.asarray(self.baseline + self.value[node].sum(axis=1), dtype=np.float64)

    def score_many(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(self.raw(x), -50.0, 50.0))))


class Detector(Protocol):
    """What every nodule detector provides (classical, MONAI bundle, ensemble)."""

    name: str
    version: str

    def detect(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[Candidate]:
        """All candidates with scores (unfiltered by the operating threshold), best first."""
        ...


@dataclass(frozen=True, slots=True)
class Point:
    """A scale-space maximum: centre (working grid), response, scale and Hessian eigenvalues."""

    center: tuple[int, int, int]
    response: float
    sigma_mm: float
    finer: float
    coarser: float
    eig: tuple[float, float, float]  # sorted by magnitude: |l1| <= |l2| <= |l3|


def _block_mean(image: NDArray[np.float32], factors: tuple[int, int, int]) -> NDArray[np.float32]:
    fz, fy, fx = factors
    nz, ny, nx = (max(1, n // f) for n, f in zip(image.shape, factors, strict=True))
    out = np.zeros((nz, ny, nx), dtype=np.float32)
    for dz in range(fz):  # strided sums: one extra output-sized array, no big temporaries
        for dy in range(fy):
            for dx in range(fx):
                out += image[dz : nz * fz : fz, dy : ny * fy : fy, dx : nx * fx : fx]
    out *= np.float32(1.0 / (fz * fy * fx))
    return out


def _hessian_eigs(
    g: NDArray[np.float32], p: tuple[int, int, int], spacing: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Eigenvalues (mm^-2 scaled) of the Hessian of ``g`` at ``p`` by central differences."""
    z, y, x = p
    if any(c < 1 or c >= n - 1 for c, n in zip(p, g.shape, strict=True)):
        return (0.0, 0.0, 0.0)
    w = g[z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2].astype(np.float64)
    sz, sy, sx = spacing
    c = w[1, 1, 1]
    h = np.empty((3, 3))
    h[0, 0] = (w[2, 1, 1] - 2 * c + w[0, 1, 1]) / sz**2
    h[1, 1] = (w[1, 2, 1] - 2 * c + w[1, 0, 1]) / sy**2
    h[2, 2] = (w[1, 1, 2] - 2 * c + w[1, 1, 0]) / sx**2
    h[0, 1] = h[1, 0] = (w[2, 2, 1] - w[2, 0, 1] - w[0, 2, 1] + w[0, 0, 1]) / (4 * sz * sy)
    h[0, 2] = h[2, 0] = (w[2, 1, 2] - w[2, 1, 0] - w[0, 1, 2] + w[0, 1, 0]) / (4 * sz * sx)
    h[1, 2] = h[2, 1] = (w[1, 2, 2] - w[1, 2, 0] - w[1, 0, 2] + w[1, 0, 0]) / (4 * sy * sx)
    ev = np.linalg.eigvalsh(h)
    ev = ev[np.argsort(np.abs(ev))]
    return (float(ev[0]), float(ev[1]), float(ev[2]))


def _level_points(
    image: NDArray[np.float32],
    mask: NDArray[np.bool_],
    spacing: tuple[float, float, float],
    sigmas: Sequence[float],
    min_response: float,
    limit: int,
    per_scale: bool = True,
) -> list[tuple[tuple[int, int, int], float, int, NDArray[np.float32], list[float]]]:
    """Maxima of the normalised DoG stack on one level: (centre, response, scale index,
    the smoothed image at that scale, the responses at every scale there)."""
    gs = [
        ndimage.gaussian_filter(image, sigma=[s / sp for sp in spacing], truncate=3.0)
        for s in sigmas
    ]
    responses = []
    for i in range(len(sigmas) - 1):
        k = sigmas[i + 1] / sigmas[i]
        responses.append((gs[i] - gs[i + 1]) / np.float32(k - 1.0))
    out: list[tuple[tuple[int, int, int], float, int, NDArray[np.float32], list[float]]] = []
    if not per_scale:  # maxima of the maximum over scales (one filter pass)
        best = np.max(responses, axis=0)
        arg = np.argmax(responses, axis=0)
        peaks = (best == ndimage.maximum_filter(best, size=3)) & mask & (best > min_response)
        idx = np.argwhere(peaks)
        values = best[tuple(idx.T)]
        for o in np.argsort(-values)[:limit]:
            p = (int(idx[o][0]), int(idx[o][1]), int(idx[o][2]))
            a = int(arg[p])
            out.append((p, float(values[o]), a, gs[a], [float(rr[p]) for rr in responses]))
        return out
    for a, r in enumerate(responses):  # maxima in space at each scale (a faint blob beside a
        # bright vessel keeps its own maximum at its own scale)
        peaks = (r == ndimage.maximum_filter(r, size=3)) & mask & (r > min_response)
        idx = np.argwhere(peaks)
        if idx.size == 0:
            continue
        values = r[tuple(idx.T)]
        if a + 1 < len(responses):  # not a maximum over scale: the coarser scale is stronger
            values = np.where(responses[a + 1][tuple(idx.T)] > values, -1.0, values)
        if a > 0:
            values = np.where(responses[a - 1][tuple(idx.T)] > values, -1.0, values)
        order = np.argsort(-values)[:limit]
        for o in order:
            if values[o] <= 0:
                break
            p = (int(idx[o][0]), int(idx[o][1]), int(idx[o][2]))
            out.append((p, float(values[o]), a, gs[a], [float(rr[p]) for rr in responses]))
    return out


def _shell_features(
    hu: NDArray[np.float32],
    lung_mask: NDArray[np.bool_],
    spacing: tuple[float, float, float],
    center: tuple[float, float, float],
    radius_mm: float,
) -> tuple[float, float, float, float]:
    """(HU std inside, dense fraction of a shell 1-3.5 mm outside, dense shell components,
    mean HU of the dense shell relative to the nodule's) around a sphere of ``radius_mm``."""
    outer = radius_mm + 3.5
    half = [math.ceil(outer / s) + 1 for s in spacing]
    c = [round(v) for v in center]
    lo = [max(0, v - h) for v, h in zip(c, half, strict=True)]
    hi = [min(n, v + h + 1) for v, n, h in zip(c, hu.shape, half, strict=True)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    box = hu[sl]
    lung = lung_mask[sl]
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    d2 = np.asarray(
        sum(((g - cv) * s) ** 2 for g, cv, s in zip(grids, center, spacing, strict=True))
    )
    inside = d2 <= radius_mm**2
    shell = (d2 >= (radius_mm + 1.0) ** 2) & (d2 <= outer**2) & lung
    std = float(box[inside].std()) / 100.0 if inside.sum() > 1 else 0.0
    if not shell.any():
        return std, 0.0, 0.0, 0.0
    dense = shell & (box > -500.0)
    frac = float(dense.sum()) / float(shell.sum())
    n = int(ndimage.label(dense, structure=np.ones((3, 3, 3)))[1]) if dense.any() else 0
    inner_hu = float(box[inside].mean()) if inside.any() else -850.0
    ratio = (float(box[dense].mean()) + 1000.0) / max(inner_hu + 1000.0, 50.0) if n else 0.0
    return std, frac, float(min(n, 8)), min(ratio, 5.0)


# 26 unit directions (the 3x3x3 neighbourhood), samples every 0.5 mm out to RAY_MAX_MM
_DIRS = np.asarray(
    [
        (a, b, c)
        for a in (-1, 0, 1)
        for b in (-1, 0, 1)
        for c in (-1, 0, 1)
        if (a, b, c) != (0, 0, 0)
    ],
    dtype=np.float64,
)
_DIRS /= np.linalg.norm(_DIRS, axis=1, keepdims=True)
RAY_MAX_MM = 15.0
_STEPS = np.arange(0.5, RAY_MAX_MM + 0.25, 0.5)


def _ray_features(
    hu: NDArray[np.float32],
    spacing: tuple[float, float, float],
    center: tuple[float, float, float],
) -> tuple[float, float, float]:
    """Rays from the centre in 26 directions, each ending where the attenuation falls below
    half-way between the centre's and the lung background (-850 HU). A nodule stops most
    rays at its radius and lets one or two out along an attached vessel; a vessel segment or
    bifurcation stops most at the vessel's (small) radius. Segmentation-independent.
    Returns (median ray length mm, fraction of rays longer than twice the median + 1 mm,
    longest / median)."""
    sp = np.asarray(spacing)
    c = np.asarray(center)
    half = np.ceil(RAY_MAX_MM / sp).astype(int) + 1
    ci = np.round(c).astype(int)
    lo = np.maximum(ci - half, 0)
    hi = np.minimum(ci + half + 1, hu.shape)
    box = hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    cb = c - lo
    k = np.clip(np.round(cb).astype(int), 0, np.asarray(box.shape) - 1)
    core = box[
        max(k[0] - 1, 0) : k[0] + 2, max(k[1] - 1, 0) : k[1] + 2, max(k[2] - 1, 0) : k[2] + 2
    ]
    level = (min(float(np.median(core)), 100.0) + HU_BACKGROUND) / 2.0
    pts = cb[None, None, :] + _DIRS[:, None, :] * _STEPS[None, :, None] / sp[None, None, :]
    vals = ndimage.map_coordinates(
        box, pts.reshape(-1, 3).T, order=1, mode="constant", cval=HU_BACKGROUND
    ).reshape(len(_DIRS), len(_STEPS))
    below = vals < level
    first = np.where(below.any(axis=1), below.argmax(axis=1), len(_STEPS) - 1)
    length = _STEPS[first]
    med = float(np.median(length))
    long_frac = float(np.mean(length > 2.0 * med + 1.0))
    return med, long_frac, float(length.max()) / max(med, 0.5)


class _PleuraDistance:
    """Distance (mm) to the edge of the lung mask, from distance transforms on a ~5 mm grid
    (a context feature, not a measurement). Every subsampling offset at each end of each
    axis is averaged and looked up by linear interpolation, so the value does not change
    when the volume is mirrored (a scan stored right-to-left gives the same features)."""

    def __init__(self, lung_mask: NDArray[np.bool_], spacing: tuple[float, float, float]):
        self.step = tuple(max(1, int(5.0 // s)) for s in spacing)
        sampling = [s * f for s, f in zip(spacing, self.step, strict=True)]
        ends = [sorted({0, (n - 1) % f}) for n, f in zip(lung_mask.shape, self.step, strict=True)]
        self.maps = [
            (
                (o0, o1, o2),
                ndimage.distance_transform_edt(
                    lung_mask[o0 :: self.step[0], o1 :: self.step[1], o2 :: self.step[2]],
                    sampling=sampling,
                ),
            )
            for o0 in ends[0]
            for o1 in ends[1]
            for o2 in ends[2]
        ]

    def at(self, center: tuple[int, int, int]) -> float:
        total = 0.0
        for offset, edt in self.maps:
            q = [[(c - o) / f] for c, o, f in zip(center, offset, self.step, strict=True)]
            total += float(ndimage.map_coordinates(edt, q, order=1, mode="nearest")[0])
        return total / len(self.maps)


@dataclass(frozen=True, slots=True)
class ClassicalDetector:
    """Scale-space candidates + Hessian vessel suppression + tree-ensemble FP reduction."""

    model: Scorer
    min_response: float = 45.0
    max_points: int = 300
    max_candidates: int = 200
    name: str = "classical-dog-hessian-gbt"
    version: str = "6"
    level0_sigmas: tuple[float, ...] = field(default=LEVEL0_SIGMAS)
    level1_sigmas: tuple[float, ...] = field(default=LEVEL1_SIGMAS)

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def candidate_points(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[Point]:
        """Scale-space maxima that are not clearly tubular or plate-like, strongest first."""
        found = ndimage.find_objects(lung_mask.astype(np.uint8))
        if not found or found[0] is None:
            return []
        pad = [math.ceil(2.5 * max(self.level1_sigmas) / s) for s in spacing_zyx]
        f1 = tuple(2 if s < 1.8 else 1 for s in spacing_zyx)
        # the crop starts on the coarse grid's blocks (a mask refined on this grid may start
        # one voxel earlier; the coarse pass must not change with that)
        bbox = tuple(
            slice(max(0, b.start - p) // f * f, min(n, b.stop + p))
            for b, p, n, f in zip(found[0], pad, hu.shape, f1, strict=True)
        )
        offset = tuple(b.start for b in bbox)
        crop = np.clip(hu[bbox], -1000.0, 100.0).astype(np.float32)
        # chest wall, mediastinum and the one-voxel partial-volume pleural rim read as lung
        mask = ndimage.binary_erosion(lung_mask[bbox])
        crop[~mask] = -850.0
        sp1 = (spacing_zyx[0] * f1[0], spacing_zyx[1] * f1[1], spacing_zyx[2] * f1[2])
        pts: list[Point] = []
        level0 = _level_points(
            crop,
            mask,
            spacing_zyx,
            self.level0_sigmas,
            self.min_response,
            self.max_points,
            per_scale=False,
        )
        for p, resp, a, g, rs in level0:
            pts.append(self._point(p, resp, a, g, rs, self.level0_sigmas, spacing_zyx, offset))
        coarse = _block_mean(crop, (f1[0], f1[1], f1[2]))
        cmask = _block_mean(mask.astype(np.float32), (f1[0], f1[1], f1[2])) > 0.5
        faint: list[Point] = []
        faint_ggo: list[bool] = []  # the faint point's own attenuation is sub-solid
        # second pass for ground glass: solid voxels (vessels, solid nodules) and their
        # partial-volume rim set to the lung background on the working grid, the rest capped
        # at -450 HU; a ground-glass nodule beside a vessel keeps its own maximum there
        dense = ndimage.binary_dilation(crop > np.float32(FAINT_SOLID_HU))
        sub = np.where(dense, np.float32(-850.0), np.minimum(crop, np.float32(-450.0)))
        del dense
        faint_img = _block_mean(sub, (f1[0], f1[1], f1[2]))
        del sub
        for image, sink in ((coarse, pts), (faint_img, faint)):
            level1 = _level_points(
                image, cmask, sp1, self.level1_sigmas, self.min_response * 0.6, self.max_points
            )
            for p, resp, a, g, rs in level1:
                pt = self._point(p, resp, a, g, rs, self.level1_sigmas, sp1, (0, 0, 0))
                # back to the working grid: the block's brightest voxel
                lo = [v * f for v, f in zip(p, f1, strict=True)]
                block = crop[tuple(slice(a0, a0 + f) for a0, f in zip(lo, f1, strict=True))]
                if block.size == 0:
                    continue
                q = np.unravel_index(int(np.argmax(block)), block.shape)
                c = tuple(int(a0 + qi + o) for a0, qi, o in zip(lo, q, offset, strict=True))
                if sink is faint:
                    faint_ggo.append(bool(coarse[p] <= GGO_CENTRE_HU))
                sink.append(
                    Point(
                        (c[0], c[1], c[2]), pt.response, pt.sigma_mm, pt.finer, pt.coarser, pt.eig
                    )
                )
        main = sorted((p for p in pts if _blob_like(p.eig)), key=lambda p: -_rank(p))
        # faint points centred on ground glass first; the rest (vessels and solid nodules with
        # their tops clipped) mostly repeat what the first pass found
        extra = [
            p
            for _, p in sorted(
                ((g, p) for g, p in zip(faint_ggo, faint, strict=True) if _blob_like(p.eig)),
                key=lambda t: (not t[0], -_rank(t[1])),
            )
        ]
        k0 = (2 * self.max_candidates) // 3
        k1 = self.max_candidates - k0
        return main[:k0] + extra[:k1] + main[k0:] + extra[k1:]

    @staticmethod
    def _point(
        p: tuple[int, int, int],
        resp: float,
        a: int,
        g: NDArray[np.float32],
        rs: list[float],
        sigmas: Sequence[float],
        spacing: tuple[float, float, float],
        offset: tuple[int, ...],
    ) -> Point:
        eig = _hessian_eigs(g, p, spacing)
        sig = math.sqrt(sigmas[a] * sigmas[a + 1])
        finer = rs[a - 1] / resp if a > 0 else 0.0
        coarser = rs[a + 1] / resp if a + 1 < len(rs) else 0.0
        c = (p[0] + offset[0], p[1] + offset[1], p[2] + offset[2])
        return Point(c, resp, sig, finer, coarser, eig)

    def pleural_bright_points(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> tuple[list[Point], NDArray[np.bool_]]:
        """Small calcified blobs on the pleura that the lung mask leaves out (the scale
        space reads everything outside the mask as lung, so it cannot see them), and the lung
        mask with those blobs added, to measure them in (not the wall around them)."""
        found = ndimage.find_objects(lung_mask.astype(np.uint8))
        if not found or found[0] is None:
            return [], lung_mask
        bbox = tuple(
            slice(max(0, b.start - 3), min(n, b.stop + 3))
            for b, n in zip(found[0], hu.shape, strict=True)
        )
        offset = np.asarray([b.start for b in bbox])
        labels, n = ndimage.label(hu[bbox] > np.float32(BRIGHT_HU))
        if n == 0:
            return [], lung_mask
        sp = np.asarray(spacing_zyx)
        voxel_mm3 = float(np.prod(sp))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        pts: list[Point] = []
        blobs: list[tuple[tuple[slice, ...], NDArray[np.bool_]]] = []
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None or sizes[i] * voxel_mm3 < BRIGHT_MIN_MM3:
                continue
            extent = np.asarray([s.stop - s.start for s in sl]) * sp
            if extent.max() > BRIGHT_MAX_MM:
                continue
            rlo = np.maximum(np.asarray([s.start for s in sl]) - 3, 0)  # in the crop
            rhi = np.minimum(np.asarray([s.stop for s in sl]) + 3, labels.shape)
            rel = tuple(slice(int(a), int(b)) for a, b in zip(rlo, rhi, strict=True))
            lo = rlo + offset
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, rhi + offset, strict=True))
            blob = labels[rel] == i
            lung = lung_mask[box]
            peak = np.unravel_index(int(np.argmax(np.where(blob, hu[box], -np.inf))), blob.shape)
            if ndimage.binary_erosion(lung)[peak]:
                continue  # inside the lung: the scale space finds it
            if not (ndimage.binary_dilation(blob, iterations=3) & lung).any():
                continue  # not on the lung (mediastinum, airway wall, bone)
            shell = ndimage.binary_dilation(blob, iterations=2) & ~blob
            if float(np.mean(hu[box][shell] < np.float32(-400.0))) < BRIGHT_LUNG_FRACTION:
                continue  # inside the wall: aerated lung on too little of its surface
            center = (int(peak[0] + lo[0]), int(peak[1] + lo[1]), int(peak[2] + lo[2]))
            pts.append(self._local_point(hu, spacing_zyx, center))
            blobs.append((box, blob))
        if not blobs:
            return [], lung_mask
        with_bright = lung_mask.copy()
        for box, blob in blobs:
            with_bright[box] |= blob
        return pts, with_bright

    def _local_point(
        self,
        hu: NDArray[np.float32],
        spacing_zyx: tuple[float, float, float],
        center: tuple[int, int, int],
    ) -> Point:
        """Scale-space response and Hessian at a point found outside the scale space: the
        level-0 scales on the same clipped image, in a box around it (wall not flattened)."""
        sigmas = self.level0_sigmas
        half = [math.ceil(3.0 * max(sigmas) / s) + 2 for s in spacing_zyx]
        lo = [max(0, c - h) for c, h in zip(center, half, strict=True)]
        hi = [min(n, c + h + 1) for c, n, h in zip(center, hu.shape, half, strict=True)]
        box = np.clip(hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], -1000.0, 100.0)
        gs = [
            ndimage.gaussian_filter(box, sigma=[s / sp for sp in spacing_zyx], truncate=3.0)
            for s in sigmas
        ]
        p = (center[0] - lo[0], center[1] - lo[1], center[2] - lo[2])
        rs = [
            float(gs[i][p] - gs[i + 1][p]) / (sigmas[i + 1] / sigmas[i] - 1.0)
            for i in range(len(sigmas) - 1)
        ]
        a = int(np.argmax(rs))
        return self._point(
            p, max(rs[a], 1.0), a, gs[a], rs, sigmas, spacing_zyx, (lo[0], lo[1], lo[2])
        )

    def features(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[tuple[Measurement, tuple[float, ...]]]:
        """Measured candidates with their feature vectors (see :data:`FEATURES`)."""
        out: list[tuple[Measurement, tuple[float, ...]]] = []
        taken: list[tuple[NDArray[np.float64], float, float]] = []  # centre, radius, diameter
        sp = np.asarray(spacing_zyx)
        pleura = _PleuraDistance(lung_mask, spacing_zyx)
        bright, with_bright = self.pleural_bright_points(hu, lung_mask, spacing_zyx)
        points = [(pt, with_bright) for pt in bright]
        points += [(pt, lung_mask) for pt in self.candidate_points(hu, lung_mask, spacing_zyx)]
        for pt, mask in points:
            center = pt.center
            c_mm = np.asarray(center) * sp
            radius = pt.sigma_mm * math.sqrt(3.0)
            inside = [(rq, dq) for q, rq, dq in taken if np.linalg.norm(c_mm - q) < rq]
            # a point inside an earlier measurement is the same object seen again, unless it
            # is at a finer scale than that measurement (a small nodule beside a vessel that
            # an earlier point on the vessel measured together with it): then it is measured
            # and kept if its own measurement is centred elsewhere
            recheck = bool(inside) and radius < min(rq for rq, _ in inside)
            if inside and not recheck:
                continue
            m = measure_nodule(hu, mask, spacing_zyx, center, radius)
            if m is not None and np.linalg.norm(
                (np.asarray(m.center_voxel[::-1]) - np.asarray(center)) * sp
            ) > max(radius, 3.0):  # segmentation drifted along a vessel: tighter box
                m = measure_nodule(hu, mask, spacing_zyx, center, radius * 0.5)
                if (
                    m is not None
                    and np.linalg.norm((np.asarray(m.center_voxel[::-1]) - np.asarray(center)) * sp)
                    > max(radius, 3.0)
                    and _intensity_peak(hu, center)
                ):  # still drifted, from a point that is a peak of its own (a small nodule
                    # whose segmentation leaks into an attached vessel): the candidate stays
                    # at its maximum, the classifier sees the leaked size. A point on the
                    # slope of a larger blob keeps the blob's measurement (a duplicate).
                    m = replace(
                        m, center_voxel=(float(center[2]), float(center[1]), float(center[0]))
                    )
            if m is None or m.voxels < 2:
                continue
            mz = np.asarray(m.center_voxel[::-1]) * sp
            if recheck and (
                m.mean_diameter_mm > RECHECK_SMALLER * min(dq for _, dq in inside)
                or any(
                    np.linalg.norm(mz - q) < max(DUPLICATE_MM, m.mean_diameter_mm / 4.0)
                    for q, _, _ in taken
                )
            ):
                continue  # the earlier measurement again, or no smaller object of its own
            taken.append((mz, max(2.0, min(m.mean_diameter_mm / 2.0, radius)), m.mean_diameter_mm))
            r_eq = max(0.5, m.mean_diameter_mm / 2.0)
            ci, cj, ck = m.center_voxel
            std, shell_frac, branches, vratio = _shell_features(
                hu, mask, spacing_zyx, (ck, cj, ci), r_eq
            )
            l1, l2, l3 = pt.eig
            box_vol = max(m.long_axis_mm * m.short_axis_mm * max(m.long_axis_mm, 1.0), 1e-3)
            feats = (
                math.log(max(pt.response, 1.0)),
                pt.sigma_mm,
                pt.finer,
                pt.coarser,
                abs(l1) / max(abs(l3), 1e-9) * (1.0 if l1 < 0 else -1.0),
                abs(l2) / max(abs(l3), 1e-9) * (1.0 if l2 < 0 else -1.0),
                math.log(max(-l3, 1e-3)) if l3 < 0 else -7.0,
                min(m.elongation, 10.0),
                m.border_fraction,
                math.log(max(m.mean_diameter_mm, 0.5)),
                min(m.peak_hu, 500.0) / 100.0,
                min(m.mean_hu, 500.0) / 100.0,
                std,
                min(m.mean_diameter_mm / (2.0 * radius), 5.0),
                min(m.volume_mm3 / (math.pi / 6.0 * box_vol), 3.0),
                min(pleura.at(center), 60.0),
                shell_frac,
                branches,
                vratio,
                *_ray_features(
                    hu, spacing_zyx, (float(center[0]), float(center[1]), float(center[2]))
                ),
            )
            out.append((m, feats))
            if len(out) >= self.max_candidates:
                break
        return out

    def detect(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[Candidate]:
        """Scored candidates, best first, after suppressing duplicates of the same nodule."""
        measured = self.features(hu, lung_mask, spacing_zyx)
        if not measured:
            return []
        scores = self.model.score_many(np.asarray([f for _, f in measured], dtype=np.float64))
        scored = [Candidate(m, float(s), f) for (m, f), s in zip(measured, scores, strict=True)]
        scored.sort(key=lambda c: (-c.score, c.measurement.center_voxel))
        kept: list[Candidate] = []
        sp = np.asarray(spacing_zyx[::-1])
        for cand in scored:
            p = np.asarray(cand.measurement.center_voxel) * sp
            if any(  # inside a better-scored nodule: the same nodule seen from its edge
                np.linalg.norm(p - np.asarray(k.measurement.center_voxel) * sp)
                < max(k.measurement.mean_diameter_mm / 2.0, 3.0)
                for k in kept
            ):
                continue
            kept.append(cand)
        return kept


def _intensity_peak(hu: NDArray[np.float32], center: tuple[int, int, int]) -> bool:
    """Whether ``center`` is the brightest voxel of its 3x3x3 neighbourhood after a light
    smoothing (0.7 voxel), i.e. a blob's own maximum rather than a point on a slope."""
    lo = [max(0, c - 3) for c in center]
    hi = [min(n, c + 4) for c, n in zip(center, hu.shape, strict=True)]
    box = ndimage.gaussian_filter(hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 0.7)
    c = [v - a for v, a in zip(center, lo, strict=True)]
    near = box[
        max(c[0] - 1, 0) : c[0] + 2, max(c[1] - 1, 0) : c[1] + 2, max(c[2] - 1, 0) : c[2] + 2
    ]
    return bool(box[c[0], c[1], c[2]] >= near.max() - 1e-3)


def _rank(p: Point) -> float:
    """Pre-ranking before measurement: response weighted by how round the Hessian is."""
    l1, _, l3 = p.eig
    return p.response * math.sqrt(min(max(abs(l1) / max(abs(l3), 1e-9), 0.05), 1.0))


def _blob_like(eig: tuple[float, float, float]) -> bool:
    """Not clearly a tube (l1 ~ 0 or > 0, l2, l3 < 0) or a plate (l2 >= 0). Loose on purpose:
    nodules touching a vessel or the pleura are still blob-like enough at their own scale;
    the classifier does the rest (``hess_l1_l3`` is one of its features)."""
    l1, l2, l3 = eig
    if l3 >= 0 or l2 >= 0 or l1 >= 0:
        return False
    return abs(l1) / abs(l3) > 0.06


def threshold_baseline(
    hu: NDArray[np.float32],
    lung_mask: NDArray[np.bool_],
    spacing_zyx: tuple[float, float, float],
    threshold_hu: float = -500.0,
) -> list[tuple[tuple[float, float, float], float]]:
    """Baseline for benchmarks: HU threshold + connected components, scored by compactness.

    Returns ``(center [col, row, slice], score)`` per component, best first.
    """
    labels, n = ndimage.label((hu > threshold_hu) & lung_mask)
    out: list[tuple[tuple[float, float, float], float]] = []
    if n == 0:
        return out
    voxel_mm3 = float(np.prod(spacing_zyx))
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        comp = labels[sl] == i
        vol = float(comp.sum()) * voxel_mm3
        if vol < 10.0:
            continue
        ext = [(s.stop - s.start) * sp for s, sp in zip(sl, spacing_zyx, strict=True)]
        fill = vol / max(float(np.prod(ext)), 1e-6)
        cz, cy, cx = (np.argwhere(comp).mean(axis=0) + [s.start for s in sl]).tolist()
        out.append(((cx, cy, cz), float(min(1.0, fill * 2.0))))
    out.sort(key=lambda t: -t[1])
    return out
