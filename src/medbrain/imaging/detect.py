"""Nodule detection behind one :class:`Detector` interface; the classical CPU detector.

:class:`ClassicalDetector`: multi-scale scale-normalised 3D Laplacian-of-Gaussian blob
enhancement inside the lung mask, local maxima as candidates, Hessian eigenvalue blobness at
the selected scale (round nodules: three large negative eigenvalues; vessels: one near zero),
per-candidate segmentation, and a logistic false-positive classifier on shape, intensity and
context features whose weights live in ``knowledge/imaging/detector_classical.yaml``.

A learned detector (e.g. a MONAI bundle) implements the same :class:`Detector` protocol.

References
----------
Lindeberg T. Feature detection with automatic scale selection. IJCV 1998;30(2):79-116.
Li Q, Sone S, Doi K. Selective enhancement filters for nodules, vessels, and airway walls in
two- and three-dimensional CT scans. Med Phys 2003;30(8):2040-2051.
Frangi AF et al. Multiscale vessel enhancement filtering. MICCAI 1998:130-137.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medbrain.imaging.measure import Measurement, measure_nodule

FEATURES = (
    "log_response",
    "blobness",
    "elongation",
    "border_fraction",
    "log_diameter",
    "peak_hu",
    "mean_hu",
    "size_ratio",
)


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


@dataclass(frozen=True, slots=True)
class ClassifierWeights:
    """Second-order logistic model on standardised features.

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

    def score(self, features: tuple[float, ...]) -> float:
        f = np.asarray([features], dtype=np.float64)
        if self.base_mean:
            f = quadratic_expand((f - np.asarray(self.base_mean)) / np.asarray(self.base_std))
        z = self.bias + float(
            (((f - np.asarray(self.mean)) / np.asarray(self.std)) @ np.asarray(self.weights))[0]
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


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


def _log_stack(
    image: NDArray[np.float32],
    spacing_zyx: tuple[float, float, float],
    sigmas_mm: tuple[float, ...],
) -> tuple[NDArray[np.float32], NDArray[np.int8]]:
    best = np.full(image.shape, -np.inf, dtype=np.float32)
    arg = np.zeros(image.shape, dtype=np.int8)
    mean_sp = float(np.mean(spacing_zyx))
    for i, s in enumerate(sigmas_mm):
        sig = [s / sp for sp in spacing_zyx]
        norm = (s / mean_sp) ** 2  # derivatives are per voxel: normalise in voxel units
        response = (-norm * ndimage.gaussian_laplace(image, sigma=sig)).astype(np.float32)
        better = response > best
        best[better] = response[better]
        arg[better] = i
    return best, arg


def _blobness(
    image: NDArray[np.float32],
    center: tuple[int, int, int],
    sigma_mm: float,
    spacing_zyx: tuple[float, float, float],
) -> float:
    """|lambda_min| / |lambda_max| of the Hessian at ``center`` (1 = sphere, 0 = tube/plate)."""
    half = [math.ceil(3 * sigma_mm / s) + 2 for s in spacing_zyx]
    lo = [max(0, c - h) for c, h in zip(center, half, strict=True)]
    hi = [min(n, c + h + 1) for c, n, h in zip(center, image.shape, half, strict=True)]
    patch = image[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    if min(patch.shape) < 3:
        return 0.0
    sm = ndimage.gaussian_filter(patch, sigma=[sigma_mm / s for s in spacing_zyx])
    grads = np.gradient(sm, *spacing_zyx)
    c = tuple(v - a for v, a in zip(center, lo, strict=True))
    hess = np.empty((3, 3))
    for i in range(3):
        second = np.gradient(grads[i], *spacing_zyx)
        for j in range(3):
            hess[i, j] = second[j][c]
    ev = np.linalg.eigvalsh((hess + hess.T) / 2.0)
    if ev.max() >= 0:  # not a bright blob in every direction
        return 0.0
    mags = np.sort(np.abs(ev))
    return float(mags[0] / max(mags[-1], 1e-9))


@dataclass(frozen=True, slots=True)
class ClassicalDetector:
    """Multi-scale LoG candidates + Hessian blobness + logistic false-positive reduction."""

    weights: ClassifierWeights
    sigmas_mm: tuple[float, ...] = (1.0, 1.5, 2.25, 3.4, 5.0, 7.5)
    min_response: float = 60.0
    max_candidates: int = 150
    name: str = "classical-log-hessian"
    version: str = "1"

    def candidate_points(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[tuple[tuple[int, int, int], float, float]]:
        """Local maxima of the LoG stack: ``(center_zyx, response, sigma_mm)``, strongest first."""
        found = ndimage.find_objects(lung_mask.astype(np.uint8))
        if not found or found[0] is None:
            return []
        pad = [math.ceil(2 * max(self.sigmas_mm) / s) for s in spacing_zyx]
        bbox = tuple(
            slice(max(0, b.start - p), min(n, b.stop + p))
            for b, p, n in zip(found[0], pad, hu.shape, strict=True)
        )
        crop = np.clip(hu[bbox], -1000.0, 100.0).astype(np.float32)
        # chest wall, mediastinum and the one-voxel partial-volume pleural rim read as lung:
        # no edge and no bright shell at the pleura
        mask = ndimage.binary_erosion(lung_mask[bbox])
        crop[~mask] = -850.0
        best, arg = _log_stack(crop, spacing_zyx, self.sigmas_mm)
        footprint = [max(3, round(3.0 / s) | 1) for s in spacing_zyx]
        peaks = (best == ndimage.maximum_filter(best, size=footprint)) & mask
        peaks &= best > self.min_response
        idx = np.argwhere(peaks)
        if idx.size == 0:
            return []
        values = best[tuple(idx.T)]
        order = np.argsort(-values)[: self.max_candidates * 3]
        out = []
        for o in order:
            z, y, x = (int(v) for v in idx[o])
            sig = self.sigmas_mm[int(arg[z, y, x])]
            out.append(
                (
                    (z + bbox[0].start, y + bbox[1].start, x + bbox[2].start),
                    float(values[o]),
                    sig,
                )
            )
        return out

    def features(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[tuple[Measurement, tuple[float, ...]]]:
        """Measured candidates with their feature vectors (see :data:`FEATURES`)."""
        out: list[tuple[Measurement, tuple[float, ...]]] = []
        taken: list[tuple[NDArray[np.float64], float]] = []
        sp = np.asarray(spacing_zyx)
        # Hessian on the lung-only image, so the chest wall does not flatten juxtapleural blobs
        inner = ndimage.binary_erosion(lung_mask)
        masked = np.where(inner, np.clip(hu, -1000.0, 100.0), np.float32(-850.0)).astype(np.float32)
        for center, response, sigma in self.candidate_points(hu, lung_mask, spacing_zyx):
            c_mm = np.asarray(center) * sp
            if any(np.linalg.norm(c_mm - q) < rq for q, rq in taken):
                continue
            radius = sigma * math.sqrt(3.0)
            m = measure_nodule(hu, lung_mask, spacing_zyx, center, radius)
            if m is not None and np.linalg.norm(
                (np.asarray(m.center_voxel[::-1]) - np.asarray(center)) * sp
            ) > max(radius, 3.0):  # segmentation drifted along a vessel: tighter box
                m = measure_nodule(hu, lung_mask, spacing_zyx, center, radius * 0.5)
            if m is None or m.voxels < 2:
                continue
            blob = _blobness(masked, center, sigma, spacing_zyx)
            mz = np.asarray(m.center_voxel[::-1]) * sp
            taken.append((mz, max(2.0, min(m.mean_diameter_mm / 2.0, radius))))
            feats = (
                math.log(max(response, 1.0)),
                blob,
                min(m.elongation, 10.0),
                m.border_fraction,
                math.log(max(m.mean_diameter_mm, 0.5)),
                min(m.peak_hu, 500.0) / 100.0,
                min(m.mean_hu, 500.0) / 100.0,
                min(m.mean_diameter_mm / (2.0 * radius), 5.0),
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
        scored = [
            Candidate(m, self.weights.score(f), f)
            for m, f in self.features(hu, lung_mask, spacing_zyx)
        ]
        scored.sort(key=lambda c: (-c.score, c.measurement.center_voxel))
        kept: list[Candidate] = []
        sp = np.asarray(spacing_zyx[::-1])
        for cand in scored:
            p = np.asarray(cand.measurement.center_voxel) * sp
            if any(
                np.linalg.norm(p - np.asarray(k.measurement.center_voxel) * sp)
                < max(
                    min(k.measurement.mean_diameter_mm, cand.measurement.mean_diameter_mm) / 2.0,
                    3.0,
                )
                for k in kept
            ):
                continue
            kept.append(cand)
        return kept


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
