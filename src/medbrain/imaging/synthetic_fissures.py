"""Anatomically plausible pulmonary fissures for the synthetic chest CT, with lobe labels.

Used by :func:`medbrain.imaging.synthetic.generate_chest_ct` (``fissures=True``). Geometry in
the generator's frame: mm around the volume centre, ``(z, y, x)`` with z superior, y posterior,
x patient left (LPS).

- Oblique (major) fissure, both lungs: from high posteriorly (about the upper third of the lung
  height at the back) down to the diaphragm anteriorly, i.e. ``z = f(y, x)`` rising towards +y;
  the upper lobe lies above/anterior, the lower lobe below/posterior.
- Horizontal (minor) fissure, right lung only: nearly horizontal at about the hilum level,
  anterior to the oblique fissure, separating the right upper from the right middle lobe.
- Fissures are thin (one voxel, partial volume), faint (peak -720 to -600 HU over -850 HU
  parenchyma, less after blur and noise) and sometimes incomplete (a medial or anterior gap).

Everything derives from its own random stream (``seed``), so switching fissures on does not
change the rest of the phantom.

References
----------
Hansell DM et al. Fleischner Society glossary of terms for thoracic imaging. Radiology
2008;246(3):697-722 (fissure, lobe). Lassen B et al. Automatic segmentation of the pulmonary
lobes from chest CT scans based on fissures, vessels, and bronchi. IEEE TMI 2013;32(2):210-222
(fissure appearance; incomplete fissures are common).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")


@dataclass(frozen=True, slots=True)
class Surface:
    """``z = z0 + sy * (y - y0) + cy * (y - y0) ** 2 + sx * (x - x0)`` (mm, generator frame)."""

    z0: float
    y0: float
    x0: float
    sy: float
    cy: float
    sx: float

    def height(
        self, y: NDArray[np.float64] | float, x: NDArray[np.float64] | float
    ) -> NDArray[np.float64]:
        dy = np.asarray(y, dtype=np.float64) - self.y0
        return np.asarray(
            self.z0 + self.sy * dy + self.cy * dy**2 + self.sx * (np.asarray(x) - self.x0)
        )

    def signed_distance(
        self,
        z: NDArray[np.float64] | float,
        y: NDArray[np.float64] | float,
        x: NDArray[np.float64] | float,
    ) -> NDArray[np.float64]:
        """Approximate signed distance (mm), positive above the surface."""
        dy = np.asarray(y, dtype=np.float64) - self.y0
        gy = self.sy + 2 * self.cy * dy
        return np.asarray((np.asarray(z) - self.height(y, x)) / np.sqrt(1.0 + gy**2 + self.sx**2))


@dataclass(frozen=True, slots=True)
class FissureTruth:
    """Fissure surfaces of one phantom: oblique per side (0 right, 1 left), right horizontal."""

    oblique: tuple[Surface, Surface]
    horizontal: Surface
    lung_center_x: tuple[float, float]

    def lobe_at(self, z: float, y: float, x: float) -> str:
        """Ground-truth lobe of a point (mm, generator frame); side from x."""
        side = 0 if x < 0 else 1
        above_oblique = float(self.oblique[side].signed_distance(z, y, x)) > 0
        if side == 1:
            return "LUL" if above_oblique else "LLL"
        if not above_oblique:
            return "RLL"
        return "RUL" if float(self.horizontal.signed_distance(z, y, x)) > 0 else "RML"


def add_fissures(
    hu: NDArray[np.float32],
    lung: NDArray[np.bool_],
    spacing_zyx: tuple[float, float, float],
    lung_centers: list[NDArray[np.float64]],
    lung_semis: list[NDArray[np.float64]],
    seed: int,
) -> FissureTruth:
    """Draw the fissures into ``hu`` (inside ``lung`` only) and return their surfaces.

    ``lung_centers`` / ``lung_semis``: the right then left lung ellipsoid, ``(z, y, x)`` mm.
    """
    rng = np.random.default_rng([int(seed), 0xF155])
    nz, ny, nx = hu.shape
    sz, sy_, sx_ = spacing_zyx
    z = (np.arange(nz) - (nz - 1) / 2) * sz
    y = (np.arange(ny) - (ny - 1) / 2) * sy_
    x = (np.arange(nx) - (nx - 1) / 2) * sx_
    voxel = float(min(spacing_zyx))
    obliques: list[Surface] = []
    horizontal: Surface | None = None
    for side, (lc, ls) in enumerate(zip(lung_centers, lung_semis, strict=True)):
        cz, cy, cx = (float(v) for v in lc)
        az, ay, _ax = (float(v) for v in ls)
        oblique = Surface(
            z0=cz - rng.uniform(0.05, 0.25) * az,
            y0=cy,
            x0=cx,
            sy=rng.uniform(0.85, 1.4) * az / ay,
            cy=rng.uniform(-0.6, 0.6) / ay,
            sx=rng.uniform(-0.15, 0.15),
        )
        obliques.append(oblique)
        surfaces = [oblique]
        if side == 0:
            horizontal = Surface(
                z0=cz + rng.uniform(0.1, 0.3) * az,
                y0=cy,
                x0=cx,
                sy=rng.uniform(-0.1, 0.1),
                cy=0.0,
                sx=rng.uniform(-0.12, 0.12),
            )
            surfaces.append(horizontal)
        # this lung's voxels
        k = np.nonzero(np.abs(z - cz) <= az + voxel)[0]
        j = np.nonzero(np.abs(y - cy) <= ay + voxel)[0]
        i = np.nonzero(np.abs(x - cx) <= float(ls[2]) + voxel)[0]
        box = np.ix_(k, j, i)
        zz, yy, xx = np.meshgrid(z[k], y[j], x[i], indexing="ij")
        inside = lung[box]
        view = hu[box]
        for n, surf in enumerate(surfaces):
            d = surf.signed_distance(zz, yy, xx)
            # one voxel thick sheet with partial volume
            frac = np.clip(1.0 - np.abs(d) / voxel, 0.0, 1.0)
            peak = rng.uniform(-720.0, -600.0) if rng.uniform() < 0.7 else -760.0
            keep = inside.copy()
            if n == 1:  # horizontal: only anterior to (above) the oblique fissure
                keep &= oblique.signed_distance(zz, yy, xx) > 0
            if rng.uniform() < 0.4:  # incomplete: a gap across part of the fissure
                across = xx if rng.uniform() < 0.5 else yy
                lo_, hi_ = float(across[keep].min()), float(across[keep].max())
                span = hi_ - lo_
                width = rng.uniform(0.15, 0.35) * span
                start = lo_ + rng.uniform(0.0, span - width)
                keep &= ~((across >= start) & (across <= start + width))
            add = keep & (frac > 0)
            if not add.any():
                continue
            blended = view * (1 - frac) + peak * frac
            np.copyto(view, np.maximum(view, blended).astype(np.float32), where=add)
        hu[box] = view
    assert horizontal is not None
    return FissureTruth(
        oblique=(obliques[0], obliques[1]),
        horizontal=horizontal,
        lung_center_x=(float(lung_centers[0][2]), float(lung_centers[1][2])),
    )


def lobe_label_volume(
    truth: FissureTruth,
    lung: NDArray[np.bool_],
    spacing_zyx: tuple[float, float, float],
) -> NDArray[np.uint8]:
    """Lobe index per voxel (1..5 in :data:`LOBES` order, 0 outside the lung)."""
    nz, ny, nx = lung.shape
    z = ((np.arange(nz) - (nz - 1) / 2) * spacing_zyx[0])[:, None, None]
    y = ((np.arange(ny) - (ny - 1) / 2) * spacing_zyx[1])[None, :, None]
    x = ((np.arange(nx) - (nx - 1) / 2) * spacing_zyx[2])[None, None, :]
    out = np.zeros(lung.shape, dtype=np.uint8)
    right = np.broadcast_to(x < 0, lung.shape)
    above_r = truth.oblique[0].signed_distance(z, y, x) > 0
    above_l = truth.oblique[1].signed_distance(z, y, x) > 0
    above_h = truth.horizontal.signed_distance(z, y, x) > 0
    out[lung & right & ~above_r] = 3
    out[lung & right & above_r & above_h] = 1
    out[lung & right & above_r & ~above_h] = 2
    out[lung & ~right & above_l] = 4
    out[lung & ~right & ~above_l] = 5
    return out
