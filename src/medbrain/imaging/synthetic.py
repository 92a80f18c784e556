"""Seeded synthetic chest CT with known nodules, for tests and benchmarks (never real patients).

The phantom has air outside the body, subcutaneous fat, chest wall, a mediastinum, two lungs
at about -850 HU, trachea and main bronchi, branching vessel trees whose calibre tapers, noise
and partial-volume blur, and nodules of known size (3-30 mm) and type (solid, part-solid,
ground-glass, calcified) placed central, peripheral, juxtapleural or juxtavascular.

Geometry: arrays are ``[slice, row, col]``; the identity direction makes col = +x (patient
left), row = +y (posterior), slice = +z (superior), i.e. LPS, slices in ascending z.

References
----------
Typical attenuation: lung parenchyma -900 to -800 HU, ground-glass -750 to -300 HU, soft
tissue 20-60 HU, calcification > 200 HU (Hansell et al., Fleischner Society glossary of terms
for thoracic imaging, Radiology 2008;246:697-722).
DICOM PS3.3 A.3 CT Image IOD; C.7.6.2 Image Plane; C.11.1 Modality LUT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from medbrain.imaging.io import CTSeries
from medbrain.imaging.synthetic_fissures import FissureTruth, add_fissures

FloatArray = NDArray[np.float32]
NODULE_TYPES = ("solid", "part-solid", "ground-glass", "calcified")
PLACEMENTS = ("central", "peripheral", "juxtapleural", "juxtavascular")
HU_LUNG = -850.0
HU_SOFT = 40.0
HU_FAT = -100.0
HU_AIR = -1000.0


@dataclass(frozen=True, slots=True)
class NoduleTruth:
    """Ground truth of one generated nodule.

    ``diameter_mm`` is the mean of the long and short axis on the axial slice through the
    centre (the Lung-RADS v2022 mean diameter of the ellipsoid), ``axes_mm`` the full axis
    lengths along x, y, z; ``placement`` is how it was placed, ``location`` what the contract
    should report (juxtavascular nodules are ``peripheral`` or ``central``).
    """

    center_mm: tuple[float, float, float]
    center_voxel: tuple[float, float, float]
    diameter_mm: float
    axes_mm: tuple[float, float, float]
    type: str
    solid_component_mm: float | None
    placement: str
    location: str
    side: str
    lobe: str | None = None  # with fissures=True (synthetic_fissures)


@dataclass(frozen=True, slots=True)
class SyntheticScan:
    """A generated scan: the volume as a :class:`CTSeries` plus its ground truth."""

    series: CTSeries
    nodules: tuple[NoduleTruth, ...]
    lung_mask: NDArray[np.bool_]
    seed: int
    fissures: FissureTruth | None = None  # with fissures=True


def _grid(
    shape: tuple[int, int, int], spacing_zyx: tuple[float, float, float]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    nz, ny, nx = shape
    sz, sy, sx = spacing_zyx
    z = ((np.arange(nz, dtype=np.float32) - (nz - 1) / 2) * sz)[:, None, None]
    y = ((np.arange(ny, dtype=np.float32) - (ny - 1) / 2) * sy)[None, :, None]
    x = ((np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * sx)[None, None, :]
    return z, y, x


def _draw_capsule(
    hu: FloatArray,
    spacing_zyx: tuple[float, float, float],
    center_zyx: NDArray[np.float64],
    p0: NDArray[np.float64],
    p1: NDArray[np.float64],
    radius_mm: float,
    value: float,
) -> None:
    """Blend an anti-aliased capsule (segment p0-p1, mm around the volume centre) into ``hu``."""
    sp = np.asarray(spacing_zyx)
    lo = np.minimum(p0, p1) - radius_mm - 1.5 * sp
    hi = np.maximum(p0, p1) + radius_mm + 1.5 * sp
    ilo = np.maximum(np.floor(lo / sp + center_zyx).astype(int), 0)
    ihi = np.minimum(np.ceil(hi / sp + center_zyx).astype(int) + 1, hu.shape)
    if np.any(ihi <= ilo):
        return
    zz, yy, xx = np.meshgrid(
        *(((np.arange(ilo[a], ihi[a]) - center_zyx[a]) * sp[a]) for a in range(3)),
        indexing="ij",
    )
    pts = np.stack([zz, yy, xx], axis=-1)
    seg = p1 - p0
    length2 = float(seg @ seg) or 1e-9
    t = np.clip(((pts - p0) @ seg) / length2, 0.0, 1.0)
    dist = np.linalg.norm(pts - (p0 + t[..., None] * seg), axis=-1)
    frac = np.clip(radius_mm + 0.5 * float(sp.min()) - dist, 0.0, float(sp.min())) / float(sp.min())
    view = hu[ilo[0] : ihi[0], ilo[1] : ihi[1], ilo[2] : ihi[2]]
    blended = view * (1 - frac) + value * frac
    np.copyto(view, np.maximum(view, blended).astype(np.float32), where=frac > 0)


def _draw_ellipsoid(
    hu: FloatArray,
    spacing_zyx: tuple[float, float, float],
    center_zyx: NDArray[np.float64],
    c_mm: NDArray[np.float64],
    semi_zyx: NDArray[np.float64],
    value: float,
    overwrite: bool,
) -> None:
    sp = np.asarray(spacing_zyx)
    ilo = np.maximum(np.floor((c_mm - semi_zyx) / sp + center_zyx).astype(int) - 2, 0)
    ihi = np.minimum(np.ceil((c_mm + semi_zyx) / sp + center_zyx).astype(int) + 3, hu.shape)
    if np.any(ihi <= ilo):
        return
    # supersample 3x per axis for partial-volume fractions
    offsets = (np.arange(3) - 1) / 3.0
    frac = np.zeros(tuple(int(v) for v in ihi - ilo), dtype=np.float32)
    axes = [(np.arange(ilo[a], ihi[a]) - center_zyx[a]) * sp[a] - c_mm[a] for a in range(3)]
    for oz in offsets:
        for oy in offsets:
            for ox in offsets:
                r2 = (
                    ((axes[0] + oz * sp[0]) / semi_zyx[0])[:, None, None] ** 2
                    + ((axes[1] + oy * sp[1]) / semi_zyx[1])[None, :, None] ** 2
                    + ((axes[2] + ox * sp[2]) / semi_zyx[2])[None, None, :] ** 2
                )
                frac += (r2 <= 1.0).astype(np.float32)
    frac /= 27.0
    view = hu[ilo[0] : ihi[0], ilo[1] : ihi[1], ilo[2] : ihi[2]]
    blended = view * (1 - frac) + value * frac
    if overwrite:
        np.copyto(view, blended.astype(np.float32), where=frac > 0)
    else:
        np.copyto(view, np.maximum(view, blended).astype(np.float32), where=frac > 0)


def _random_direction(
    rng: np.random.Generator, around: NDArray[np.float64], spread_deg: float
) -> NDArray[np.float64]:
    around = around / np.linalg.norm(around)
    while True:
        v = rng.normal(size=3)
        v -= (v @ around) * around
        if np.linalg.norm(v) > 1e-6:
            break
    v /= np.linalg.norm(v)
    angle = math.radians(rng.uniform(0.4, 1.0) * spread_deg)
    out = math.cos(angle) * around + math.sin(angle) * v
    return out / np.linalg.norm(out)


def _lung_distance_mm(
    lung: NDArray[np.bool_], spacing_zyx: tuple[float, float, float]
) -> FloatArray:
    """Distance (mm) from each lung voxel to the pleura, for placing nodules.

    Exact on small volumes; on fine grids (> 4 M voxels) computed on a grid about 2 mm
    coarse and repeated back (placement needs millimetres, not sub-voxel precision).
    """
    if lung.size <= 4_000_000:
        exact = ndimage.distance_transform_edt(lung, sampling=spacing_zyx)
        return np.asarray(exact, dtype=np.float32)
    f = tuple(max(1, int(2.0 // s)) for s in spacing_zyx)
    coarse = lung[:: f[0], :: f[1], :: f[2]]
    sp = tuple(s * k for s, k in zip(spacing_zyx, f, strict=True))
    d = ndimage.distance_transform_edt(coarse, sampling=sp).astype(np.float32)
    for axis, k in enumerate(f):
        d = np.repeat(d, k, axis=axis)
    d = d[: lung.shape[0], : lung.shape[1], : lung.shape[2]]
    return np.where(lung, d, np.float32(0.0)).astype(np.float32)


def generate_chest_ct(
    seed: int,
    shape: tuple[int, int, int] = (96, 128, 128),
    spacing_mm: tuple[float, float, float] = (2.5, 2.5, 2.5),
    n_nodules: int = 6,
    diameter_range_mm: tuple[float, float] = (4.0, 20.0),
    types: tuple[str, ...] = NODULE_TYPES,
    placements: tuple[str, ...] = PLACEMENTS,
    noise_hu: float = 20.0,
    fissures: bool = False,
    size_factors: Sequence[float] = (),
) -> SyntheticScan:
    """Generate one synthetic chest CT.

    Parameters
    ----------
    seed:
        Everything (anatomy, vessels, nodules, noise) derives from it.
    shape:
        ``(slices, rows, cols)``.
    spacing_mm:
        ``(col, row, slice)`` spacing, as :attr:`CTSeries.spacing_mm`.
    n_nodules, diameter_range_mm, types, placements:
        How many nodules, their mean-diameter range (log-uniform) and allowed kinds.
    fissures:
        Draw oblique (both lungs) and horizontal (right) fissures and label each nodule's
        ``lobe`` (:mod:`medbrain.imaging.synthetic_fissures`; off by default so existing seeds
        keep their images).
    size_factors:
        Multiply nodule *i*'s size by ``size_factors[i]`` after its place is chosen: the same
        seed then gives the same anatomy, positions, densities and noise with grown or shrunk
        nodules — a follow-up study of the same patient. The truth gives the new size.
    """
    rng = np.random.default_rng(seed)
    sx, sy, sz = spacing_mm
    spacing_zyx = (sz, sy, sx)
    nz, ny, nx = shape
    center = np.asarray([(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2])
    fov_x, fov_y, fov_z = nx * sx, ny * sy, nz * sz
    z, y, x = _grid(shape, spacing_zyx)

    body_ax = 0.44 * fov_x * rng.uniform(0.95, 1.0)
    body_ay = 0.33 * fov_y * rng.uniform(0.92, 1.0)
    body_r2 = (x / body_ax) ** 2 + (y / body_ay) ** 2
    fat_r2 = (x / (body_ax - 10)) ** 2 + (y / (body_ay - 10)) ** 2
    hu = np.full(shape, HU_AIR, dtype=np.float32)
    hu[np.broadcast_to(body_r2 <= 1.0, shape)] = HU_FAT
    hu[np.broadcast_to(fat_r2 <= 1.0, shape)] = HU_SOFT

    # lungs: two ellipsoids separated by the mediastinum; right lung at -x (patient right)
    lung = np.zeros(shape, dtype=bool)
    lung_centers: list[NDArray[np.float64]] = []
    lung_semis: list[NDArray[np.float64]] = []
    for sign in (-1.0, 1.0):
        ax_ = 0.165 * fov_x * rng.uniform(0.95, 1.02)
        wall = rng.uniform(13.0, 18.0)
        cx = sign * (body_ax - wall - ax_)
        cy = 0.0
        cz = 0.04 * fov_z
        ay_ = body_ay * math.sqrt(max(0.2, 1.0 - (cx / body_ax) ** 2)) - wall - 4.0
        az_ = 0.46 * fov_z * rng.uniform(0.95, 1.0)
        inside = ((x - cx) / ax_) ** 2 + ((y - cy) / ay_) ** 2 + ((z - cz) / az_) ** 2 <= 1.0
        lung |= inside
        lung_centers.append(np.asarray([cz, cy, cx]))
        lung_semis.append(np.asarray([az_, ay_, ax_]))
    texture = ndimage.gaussian_filter(
        rng.normal(size=tuple(max(4, s // 8) for s in shape)).astype(np.float32), 1.0
    )
    texture = ndimage.zoom(
        texture, [s / t for s, t in zip(shape, texture.shape, strict=True)], order=1
    )
    hu[lung] = HU_LUNG + 60.0 * texture[lung] / max(float(np.abs(texture).max()), 1e-6) * 0.5
    # oblique + horizontal fissures and lobe truth (own random stream; synthetic_fissures.py)
    fissure_truth = (
        add_fissures(hu, lung, spacing_zyx, lung_centers, lung_semis, seed) if fissures else None
    )

    # airway: trachea down the midline, carina, main bronchi towards each hilum
    carina = np.asarray([0.12 * fov_z, -0.02 * fov_y, 0.0])
    top = np.asarray([(nz - 1) / 2 * sz + 5, -0.05 * fov_y, 0.0])
    segments: list[tuple[NDArray[np.float64], NDArray[np.float64], float]] = [(top, carina, 8.0)]
    hila: list[NDArray[np.float64]] = []
    for lc, ls in zip(lung_centers, lung_semis, strict=True):
        hilum = np.asarray([lc[0] + 0.05 * fov_z, lc[1], lc[2] - np.sign(lc[2]) * 0.6 * ls[2]])
        hila.append(hilum)
        segments.append((carina, hilum, 5.5))
    air_frac = np.zeros(shape, dtype=np.float32)
    for p0, p1, r in segments:
        _draw_capsule(air_frac, spacing_zyx, center, p0, p1, r, 1.0)
    hu = (hu * (1.0 - air_frac) + HU_AIR * air_frac).astype(np.float32)
    del air_frac

    # vessel trees: from each hilum, tapering by generation
    vessels = np.full(shape, -2000.0, dtype=np.float32)
    for hilum, lc in zip(hila, lung_centers, strict=True):
        lateral = np.asarray([0.0, 0.0, np.sign(lc[2])])
        stack: list[tuple[NDArray[np.float64], NDArray[np.float64], float, float, int]] = []
        for k in range(4):
            base = (
                lateral
                + np.asarray([(-1.0) ** k * 0.9 * (k < 2), 0.0, 0.0])
                + np.asarray([0.0, 0.5 * ((-1.0) ** (k // 2)), 0.0])
            )
            start = hilum + np.asarray([0.0, 0.0, np.sign(lc[2]) * 4.0])
            stack.append(
                (
                    start,
                    _random_direction(rng, base, 25.0),
                    4.2 * rng.uniform(0.85, 1.1),
                    0.16 * fov_x * rng.uniform(0.8, 1.1),
                    0,
                )
            )
        while stack:
            p0, d, r, length, gen = stack.pop()
            p1 = p0 + d * length
            _draw_capsule(vessels, spacing_zyx, center, p0, p1, r, HU_SOFT)
            if gen < 5 and r > 0.6:
                for _ in range(2):
                    stack.append(
                        (
                            p1,
                            _random_direction(rng, d, 40.0),
                            r * rng.uniform(0.68, 0.8),
                            length * rng.uniform(0.65, 0.85),
                            gen + 1,
                        )
                    )
    vessel_in_lung = lung & (vessels > hu)
    hu[vessel_in_lung] = vessels[vessel_in_lung]

    # nodules
    edt = _lung_distance_mm(lung, spacing_zyx)
    truths: list[NoduleTruth] = []
    taken: list[tuple[NDArray[np.float64], float]] = []
    vessel_pts = np.argwhere(vessel_in_lung & (vessels >= HU_SOFT - 1) & (edt > 8.0))
    lmin, lmax = math.log(diameter_range_mm[0]), math.log(diameter_range_mm[1])
    kinds = [str(types[i]) for i in rng.permutation(len(types))]
    places = [str(placements[i]) for i in rng.permutation(len(placements))]
    for n in range(n_nodules):
        kind = kinds[n] if n < len(kinds) else str(rng.choice(list(types)))
        placement = places[n] if n < len(places) else str(rng.choice(list(placements)))
        if kind == "calcified":
            diameter = float(math.exp(rng.uniform(lmin, min(lmax, math.log(10.0)))))
        else:
            diameter = float(math.exp(rng.uniform(lmin, lmax)))
        if kind == "part-solid":
            diameter = max(diameter, 8.0)
        if placement == "juxtapleural" and kind == "ground-glass":
            placement = "peripheral"
        ratio = rng.uniform(0.85, 1.0)
        semi = np.asarray(
            [diameter / 2 * rng.uniform(0.9, 1.05), diameter / 2 * ratio, diameter / 2 / ratio]
        )
        semi[1:] *= (diameter / 2) / ((semi[1] + semi[2]) / 2)  # keep mean axial diameter exact
        r = float(max(semi))
        c_vox = None
        for _attempt in range(200):
            if placement == "juxtapleural":
                cand = np.argwhere((edt > 0.25 * r) & (edt < 0.55 * r + 0.5 * sx))
            elif placement == "juxtavascular" and len(vessel_pts):
                v = vessel_pts[rng.integers(len(vessel_pts))]
                d = _random_direction(rng, np.asarray([0.0, 1.0, 0.0]), 90.0)
                vr = 2.5
                c_try = v + d * (r + vr) / np.asarray(spacing_zyx)
                cand = np.asarray([np.round(c_try).astype(int)])
            elif placement == "central":
                hl = hila[rng.integers(2)]
                hv = hl / np.asarray(spacing_zyx) + center
                off = rng.normal(size=3) * 30.0 / np.asarray(spacing_zyx)
                cand = np.asarray([np.round(hv + off).astype(int)])
            else:
                cand = np.argwhere(edt > r + 4.0)
            if len(cand) == 0:
                break
            pick = cand[rng.integers(len(cand))]
            if np.any(pick < 0) or np.any(pick >= np.asarray(shape)):
                continue
            if placement != "juxtapleural" and edt[tuple(pick)] < r + 3.0:
                continue
            pick_mm = (pick - center) * np.asarray(spacing_zyx)
            if any(np.linalg.norm(pick_mm - q) < r + rq + 8.0 for q, rq in taken):
                continue
            margin = r / np.asarray(spacing_zyx) + 2
            if np.any(pick < margin) or np.any(pick >= np.asarray(shape) - margin):
                continue
            c_vox = pick.astype(np.float64) + rng.uniform(-0.4, 0.4, size=3)
            break
        if c_vox is None:
            continue
        c_mm = (c_vox - center) * np.asarray(spacing_zyx)
        taken.append((c_mm, r))
        if n < len(size_factors):  # after placement, so later nodules keep their places
            diameter, semi = diameter * size_factors[n], semi * size_factors[n]
        solid_mm: float | None = None
        if kind == "solid":
            _draw_ellipsoid(hu, spacing_zyx, center, c_mm, semi, float(rng.uniform(10, 50)), True)
        elif kind == "calcified":
            _draw_ellipsoid(hu, spacing_zyx, center, c_mm, semi, float(rng.uniform(350, 700)), True)
        elif kind == "ground-glass":
            _draw_ellipsoid(
                hu, spacing_zyx, center, c_mm, semi, float(rng.uniform(-650, -500)), False
            )
        else:
            _draw_ellipsoid(
                hu, spacing_zyx, center, c_mm, semi, float(rng.uniform(-650, -520)), False
            )
            frac = rng.uniform(0.35, 0.6)
            solid_mm = round(float(diameter * frac), 1)
            _draw_ellipsoid(
                hu, spacing_zyx, center, c_mm, semi * frac, float(rng.uniform(10, 50)), True
            )
        side = "left" if c_mm[2] > 0 else "right"
        if placement == "juxtapleural":
            location = "juxtapleural"
        elif placement == "central":
            location = "central"
        else:
            location = "peripheral"
        truths.append(
            NoduleTruth(
                center_mm=(float(c_mm[2]), float(c_mm[1]), float(c_mm[0])),
                center_voxel=(float(c_vox[2]), float(c_vox[1]), float(c_vox[0])),
                diameter_mm=round(diameter, 2),
                axes_mm=(float(2 * semi[2]), float(2 * semi[1]), float(2 * semi[0])),
                type=kind,
                solid_component_mm=solid_mm,
                placement=placement,
                location=location,
                side=side,
            )
        )

    # partial-volume blur and noise
    sigma_mm = 0.6
    hu = ndimage.gaussian_filter(hu, sigma=[sigma_mm / s for s in spacing_zyx]).astype(np.float32)
    hu += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)
    np.clip(hu, -1024.0, 3071.0, out=hu)
    origin = (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz)
    uid = _uid(seed, "series")
    series = CTSeries(
        hu=hu,
        spacing_mm=(float(sx), float(sy), float(sz)),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        series_uid=uid,
        source=f"synthetic:{seed}",
    )
    if fissure_truth is not None:  # ground-truth lobe of each nodule centre
        truths = [
            replace(t, lobe=fissure_truth.lobe_at(t.center_mm[2], t.center_mm[1], t.center_mm[0]))
            for t in truths
        ]
    return SyntheticScan(
        series=series, nodules=tuple(truths), lung_mask=lung, seed=seed, fissures=fissure_truth
    )


def _uid(seed: int, what: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["medbrain-synthetic", str(seed), what]))


def write_dicom_series(
    series: CTSeries,
    directory: Path,
    *,
    seed: int = 0,
    modality: str = "CT",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    series_uid: str | None = None,
    file_order_seed: int | None = None,
) -> list[Path]:
    """Write ``series`` as a CT Image Storage series, one file per slice (PS3.3 A.3).

    File names are shuffled when ``file_order_seed`` is given, so loaders must sort by
    (0020,0032) Image Position (Patient) projected on the slice normal, not by name.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

    directory.mkdir(parents=True, exist_ok=True)
    uid: str = series_uid or series.series_uid
    study_uid = _uid(seed, "study")
    frame_uid = _uid(seed, "frame")
    nz, ny, nx = series.hu.shape
    d = np.asarray(series.direction)
    order = list(range(nz))
    if file_order_seed is not None:
        np.random.default_rng(file_order_seed).shuffle(order)
    paths: list[Path] = []
    for k in range(nz):
        ds = Dataset()
        meta = FileMetaDataset()
        sop_uid = _uid(seed, f"{uid}-{k}")
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = modality
        ds.PatientName = "SYNTHETIC^PHANTOM"
        ds.PatientID = f"SYN{seed:06d}"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ipp = np.asarray(series.voxel_to_mm((0.0, 0.0, float(k))))
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
        ds.PixelSpacing = [f"{series.spacing_mm[1]:.6f}", f"{series.spacing_mm[0]:.6f}"]
        ds.SliceThickness = f"{series.spacing_mm[2]:.4f}"
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleSlope = f"{rescale_slope:g}"
        ds.RescaleIntercept = f"{rescale_intercept:g}"
        ds.RescaleType = "HU"
        stored = np.round((series.hu[k] - rescale_intercept) / rescale_slope)
        ds.PixelData = np.clip(stored, 0, 65535).astype("<u2").tobytes()
        path = directory / f"IM{order[k]:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_nifti(series: CTSeries, path: Path) -> None:
    """Write ``series`` as NIfTI-1 (RAS+ world, i.e. LPS with x and y negated)."""
    import nibabel as nib

    d = np.asarray(series.direction) * np.asarray(series.spacing_mm)
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ d
    affine[:3, 3] = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(series.origin_mm)
    data = np.transpose(series.hu, (2, 1, 0)).astype(np.int16)
    image: Any = nib.Nifti1Image(data, affine)  # type: ignore[no-untyped-call]
    nib.save(image, str(path))


def sphere_phantom(
    diameter_mm: float,
    spacing_mm: tuple[float, float, float] = (0.7, 0.7, 1.25),
    value_hu: float = 30.0,
    *,
    solid_diameter_mm: float = 0.0,
    noise_hu: float = 15.0,
    seed: int = 0,
) -> tuple[FloatArray, NDArray[np.bool_], tuple[int, int, int]]:
    """A lung-background block (-850 HU) with one sphere at its centre, blurred and noisy.

    Returns ``(hu [slice, row, col], lung mask, centre [slice, row, col])``; with
    ``solid_diameter_mm`` a solid (30 HU) core is added, making a part-solid nodule.
    """
    rng = np.random.default_rng(seed)
    sx, sy, sz = spacing_mm
    spacing_zyx = (sz, sy, sx)
    extent = diameter_mm + 24.0
    shape = tuple(math.ceil(extent / s) | 1 for s in spacing_zyx)
    hu = np.full(shape, HU_LUNG, dtype=np.float32)
    center = np.asarray([(n - 1) / 2 for n in shape])
    offset = rng.uniform(-0.3, 0.3, size=3) * np.asarray(spacing_zyx)
    semi = np.full(3, diameter_mm / 2.0)
    _draw_ellipsoid(hu, spacing_zyx, center, offset, semi, value_hu, True)
    if solid_diameter_mm > 0:
        _draw_ellipsoid(
            hu, spacing_zyx, center, offset, np.full(3, solid_diameter_mm / 2), 30.0, True
        )
    hu = ndimage.gaussian_filter(hu, sigma=[0.6 / s for s in spacing_zyx]).astype(np.float32)
    hu += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)
    c = (int(shape[0] // 2), int(shape[1] // 2), int(shape[2] // 2))
    return hu, np.ones(shape, dtype=bool), c
