"""Source-instance order, nodule masks and key slices.

Voxel order is DESIGN.md §3's ``[column, row, slice]`` with slices sorted by ascending z; the
source instances are put in the same order by projecting (0020,0032) Image Position (Patient)
on the slice normal from (0020,0037) Image Orientation (Patient) (PS3.3 C.7.6.2.1.1).

The SEG mask of a nodule is **bbox-constrained thresholding**: the voxels of the ellipsoid
inscribed in the nodule's ``bbox_voxel`` whose attenuation is at least
:data:`MASK_THRESHOLD_HU` (the ground-glass level, so ground-glass nodules are kept); when no
voxel passes (a box drawn by hand on air), the whole inscribed ellipsoid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

MASK_THRESHOLD_HU = -750.0
"""Lower HU bound of nodule tissue in the mask (ground-glass opacities lie around −750…−300)."""


def slice_order(datasets: Sequence[Any]) -> list[Any]:
    """``datasets`` sorted by position along the slice normal (ascending z for axial LPS)."""

    def key(ds: Any) -> float:
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
        normal = np.cross(iop[:3], iop[3:])
        if normal[2] < 0:
            normal = -normal
        return float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))

    return sorted(datasets, key=key)


def clamp_bbox(
    bbox: Sequence[Sequence[int]], shape_zyx: tuple[int, int, int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``[[i0, j0, k0], [i1, j1, k1]]`` (inclusive) clipped to the volume."""
    nz, ny, nx = shape_zyx
    limits = (nx, ny, nz)
    lo = tuple(min(max(int(bbox[0][a]), 0), limits[a] - 1) for a in range(3))
    hi = tuple(min(max(int(bbox[1][a]), lo[a]), limits[a] - 1) for a in range(3))
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


def nodule_mask(hu: NDArray[Any], nodule: dict[str, Any]) -> NDArray[np.bool_]:
    """Boolean mask ``[slice, row, col]`` of one nodule (see the module docstring)."""
    shape = (int(hu.shape[0]), int(hu.shape[1]), int(hu.shape[2]))
    (i0, j0, k0), (i1, j1, k1) = clamp_bbox(nodule["bbox_voxel"], shape)
    kk, jj, ii = np.ogrid[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1]
    ci, cj, ck = (i0 + i1) / 2, (j0 + j1) / 2, (k0 + k1) / 2
    ri, rj, rk = (i1 - i0 + 1) / 2, (j1 - j0 + 1) / 2, (k1 - k0 + 1) / 2
    inside = ((ii - ci) / ri) ** 2 + ((jj - cj) / rj) ** 2 + ((kk - ck) / rk) ** 2 <= 1.0
    box = hu[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1]
    tissue = inside & (box >= MASK_THRESHOLD_HU)
    chosen = tissue if tissue.any() else inside
    mask = np.zeros(shape, dtype=bool)
    mask[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1] = chosen
    return mask


def key_slice(nodule: dict[str, Any], slices: int) -> int:
    """The slice through the nodule's centre (clipped to the volume)."""
    return min(max(round(float(nodule["center_voxel"][2])), 0), max(slices - 1, 0))


def window(hu: NDArray[Any], width: float = 1500.0, level: float = -600.0) -> NDArray[np.uint8]:
    """Window/level to 8-bit grey (lung window W1500/L−600 by default)."""
    lo = level - width / 2
    scaled = (hu.astype(np.float32) - lo) * (255.0 / width)
    out: NDArray[np.uint8] = np.clip(scaled, 0, 255).astype(np.uint8)
    return out


TYPE2_STUDY_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
"""Type 2 Patient/General Study attributes (PS3.3 C.7.1.1, C.7.2.1) that derived objects copy;
some modalities (and our synthetic series) leave them out, so they are added empty."""


def with_study_attributes(datasets: Sequence[Any]) -> list[Any]:
    """Copies of ``datasets`` with missing type 2 study attributes present and empty."""
    out = []
    for ds in datasets:
        copy = ds.copy()
        for keyword in TYPE2_STUDY_ATTRIBUTES:
            if keyword not in copy:
                setattr(copy, keyword, "")
        out.append(copy)
    return out
