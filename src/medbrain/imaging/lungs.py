"""Lung segmentation on a CT volume in HU: body, air, airway removal, pleural closing, sides.

Pure numpy/scipy functions on arrays indexed ``[slice, row, col]``; ``spacing_zyx`` is the
spacing in that order. Lobes come from fitted fissures in :mod:`medbrain.imaging.lobes`
(``lobe: null`` with a reason when unclear; issue 4: "never guess").

References
----------
Hu S, Hoffman EA, Reinhardt JM. Automatic lung segmentation for accurate quantitation of
volumetric X-ray CT images. IEEE Trans Med Imaging 2001;20(6):490-498 (threshold, airway
removal, left/right separation).
Armato SG, Sensakovic WF. Automated lung segmentation for thoracic CT: impact on computer-aided
diagnosis. Acad Radiol 2004;11(9):1011-1021 (rolling-ball closing to keep juxtapleural nodules).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medbrain.imaging.errors import NoLungsError

BoolArray = NDArray[np.bool_]
RIGHT, LEFT = 1, 2


@dataclass(frozen=True, slots=True)
class LungMasks:
    """Lung masks in the volume's ``[slice, row, col]`` grid.

    ``mask`` includes juxtapleural nodules (pleural closing); ``sides`` is 0 outside the
    lungs, 1 (:data:`RIGHT`) in the right lung and 2 (:data:`LEFT`) in the left lung.
    """

    mask: BoolArray
    sides: NDArray[np.uint8]
    body: BoolArray
    volume_ml: float


def body_mask(hu: NDArray[np.float32]) -> BoolArray:
    """Largest connected region denser than -500 HU, with each axial slice's holes filled."""
    dense = hu > -500.0
    labels, n = ndimage.label(dense)
    if n == 0:
        return np.zeros(hu.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    for k in range(body.shape[0]):
        body[k] = ndimage.binary_fill_holes(body[k])
    return np.asarray(body, dtype=bool)


def _closing_mm(
    mask: BoolArray, radius_mm: float, spacing_zyx: tuple[float, float, float]
) -> BoolArray:
    """Morphological closing with a ball of ``radius_mm`` via two distance transforms."""
    pad = [int(np.ceil(radius_mm / s)) + 1 for s in spacing_zyx]
    padded = np.pad(mask, [(p, p) for p in pad])
    outside = ndimage.distance_transform_edt(~padded, sampling=spacing_zyx)
    dilated = outside <= radius_mm
    inside = ndimage.distance_transform_edt(dilated, sampling=spacing_zyx)
    closed = inside > radius_mm
    inner = tuple(slice(p, p + s) for p, s in zip(pad, mask.shape, strict=True))
    return np.asarray(closed[inner], dtype=bool)


def refine_pleura(
    mask: BoolArray,
    hu: NDArray[np.float32],
    body: BoolArray,
    *,
    rim_voxels: int = 2,
    closing_voxels: int = 2,
    air_hu: float = -400.0,
) -> BoolArray:
    """Refine a lung mask segmented on a coarser grid along the pleura, on ``hu``'s grid.

    A mask repeated from a grid twice as coarse stops up to one coarse voxel short of the
    pleura, and the detector reads one more voxel as partial-volume rim, so a juxtapleural
    nodule that shows only 2-3 mm of itself in the lung fell outside. Within ``rim_voxels``
    outside the mask, aerated voxels (< ``air_hu``) are added back; then a small closing
    (``closing_voxels`` iterations of the 3x3x3 cube, a rolling ball of about that many
    voxels) puts the bumps those voxels leave along the pleura, i.e. the visible part of a
    juxtapleural nodule, back inside. Nothing is added outside the body or farther than
    ``rim_voxels + closing_voxels`` from the original mask.
    """
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return mask
    pad = rim_voxels + 2 * closing_voxels + 1
    box = tuple(
        slice(max(0, b.start - pad), min(n, b.stop + pad))
        for b, n in zip(found[0], mask.shape, strict=True)
    )
    m = mask[box]
    inside = body[box]
    cross = ndimage.generate_binary_structure(3, 1)
    cube = np.ones((3, 3, 3), dtype=bool)
    near = ndimage.binary_dilation(m, cross, iterations=rim_voxels) & inside
    grown = m | (near & (hu[box] < np.float32(air_hu)))
    band = ndimage.binary_dilation(m, cross, iterations=rim_voxels + closing_voxels) & inside
    out = mask.copy()
    if closing_voxels < 1:
        out[box] = grown
        return out
    closed = ndimage.binary_closing(grown, cube, iterations=closing_voxels, border_value=0)
    out[box] = m | (closed & band) | grown
    return out


def segment_lungs(
    hu: NDArray[np.float32],
    spacing_zyx: tuple[float, float, float],
    *,
    x_of_col: NDArray[np.float64] | None = None,
    closing_radius_mm: float = 10.0,
    min_volume_ml: float = 150.0,
) -> LungMasks:
    """Segment both lungs.

    Parameters
    ----------
    hu:
        Volume in HU, ``[slice, row, col]``.
    spacing_zyx:
        Spacing in mm, ``(slice, row, col)``.
    x_of_col:
        Patient x (LPS; +x is the patient's left) of each column; defaults to the column index
        (identity orientation).
    closing_radius_mm:
        Rolling-ball radius along the pleura: dents up to this radius (juxtapleural nodules)
        are closed back into the lung.

    Raises
    ------
    NoLungsError
        No aerated region of at least ``min_volume_ml`` inside the body.
    """
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    body = body_mask(hu)
    air = (hu < -400.0) & body
    # airway: very low attenuation tubes reaching the top of the scan near the midline
    airway_seed = ndimage.binary_opening(hu < -950.0) & body
    labels, n = ndimage.label(airway_seed)
    if n:
        top_labels = set(np.unique(labels[-max(2, hu.shape[0] // 10) :]).tolist()) - {0}
        airway = np.isin(labels, sorted(top_labels))
        airway = ndimage.binary_dilation(airway, iterations=1)
        air &= ~airway
    air = ndimage.binary_opening(air, iterations=1)
    labels, n = ndimage.label(air)
    if n == 0:
        raise NoLungsError("volume", "", "no aerated lung found; is this a chest CT?")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    keep = [int(i) for i in order[:2] if sizes[i] * voxel_ml >= min_volume_ml * 0.3]
    if not keep or sum(int(sizes[i]) for i in keep) * voxel_ml < min_volume_ml:
        raise NoLungsError(
            "volume", "", "no aerated lung volume found (need a chest CT covering the lungs)"
        )
    cols = x_of_col if x_of_col is not None else np.arange(hu.shape[2], dtype=np.float64)
    sides = np.zeros(hu.shape, dtype=np.uint8)
    mask = np.zeros(hu.shape, dtype=bool)
    parts: list[tuple[BoolArray, float]] = []
    if len(keep) == 2:
        for lab in keep:
            part = labels == lab
            parts.append((part, float(cols[np.nonzero(part.any(axis=(0, 1)))[0]].mean())))
    else:  # lungs touch: split at the body midline
        part = labels == keep[0]
        body_cols = np.nonzero(body.any(axis=(0, 1)))[0]
        mid = float(cols[body_cols].mean())
        left_cols = cols > mid
        parts.append((part & left_cols[None, None, :], mid + 1.0))
        parts.append((part & ~left_cols[None, None, :], mid - 1.0))
    midline = float(np.mean([p[1] for p in parts]))
    for part, x_mean in parts:
        if not part.any():
            continue
        filled = part.copy()
        for k in range(filled.shape[0]):
            if filled[k].any():
                filled[k] = ndimage.binary_fill_holes(filled[k])
        bbox = ndimage.find_objects(filled.astype(np.uint8))[0]
        closed = _closing_mm(filled[bbox], closing_radius_mm, spacing_zyx)
        region = np.zeros_like(filled)
        region[bbox] = closed
        region &= body
        region |= filled
        side = LEFT if x_mean > midline else RIGHT
        sides[region & (sides == 0)] = side
        mask |= region
    return LungMasks(mask=mask, sides=sides, body=body, volume_ml=float(mask.sum()) * voxel_ml)
