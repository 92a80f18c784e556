"""Load one CT series (a DICOM directory or a NIfTI file) into a :class:`CTSeries`.

One loader per input kind behind :func:`load_series`. Both produce Hounsfield units in an array
indexed ``[slice, row, col]`` with slices sorted by ascending patient z, and the geometry in
DICOM patient coordinates (LPS, mm).

References
----------
DICOM PS3.3 C.7.6.2 Image Plane Module: (0020,0032) Image Position (Patient),
(0020,0037) Image Orientation (Patient), (0028,0030) Pixel Spacing; slices are ordered by the
projection of Image Position (Patient) on the slice normal (row cosine x column cosine).
DICOM PS3.3 C.11.1 Modality LUT Module: HU = (0028,1053) Rescale Slope * stored value +
(0028,1052) Rescale Intercept.
NIfTI-1 header (qform/sform): world space is RAS+; LPS = diag(-1, -1, 1) * RAS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medbrain.imaging.errors import (
    MissingSlicesError,
    MixedSeriesError,
    NotCTError,
    SingleImageError,
    UnreadableImageError,
)

FloatArray = NDArray[np.float32]
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True, slots=True)
class CTSeries:
    """A CT volume in Hounsfield units with its patient-space geometry.

    Attributes
    ----------
    hu:
        float32 array indexed ``[slice, row, col]``; slices sorted by ascending patient z.
    spacing_mm:
        ``(col, row, slice)`` spacing in mm, i.e. (0028,0030) Pixel Spacing swapped to
        column-first plus the slice spacing from the positions.
    origin_mm:
        LPS position (mm) of the centre of voxel ``[col, row, slice] = [0, 0, 0]``.
    direction:
        3x3 matrix whose columns are the LPS unit vectors of increasing col, row and slice index.
    series_uid:
        (0020,000E) Series Instance UID, or ``nifti:<file name>`` for NIfTI input.
    source:
        The path it was loaded from (for messages).
    """

    hu: FloatArray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[tuple[float, float, float], ...]
    series_uid: str
    source: str = ""

    @property
    def shape_voxel(self) -> tuple[int, int, int]:
        """Size as ``(cols, rows, slices)``."""
        nz, ny, nx = self.hu.shape
        return int(nx), int(ny), int(nz)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing in array order ``(slice, row, col)``."""
        sx, sy, sz = self.spacing_mm
        return sz, sy, sx

    def voxel_to_mm(self, voxel: tuple[float, float, float]) -> tuple[float, float, float]:
        """Map ``[col, row, slice]`` (may be fractional) to LPS mm (PS3.3 C.7.6.2.1.1)."""
        d = np.asarray(self.direction, dtype=np.float64)
        v = np.asarray(voxel, dtype=np.float64) * np.asarray(self.spacing_mm)
        out = np.asarray(self.origin_mm) + d @ v
        return float(out[0]), float(out[1]), float(out[2])


def _rows3(matrix: NDArray[np.float64]) -> tuple[tuple[float, float, float], ...]:
    return tuple((float(r[0]), float(r[1]), float(r[2])) for r in matrix)


def load_series(path: str | Path) -> CTSeries:
    """Load a DICOM CT series directory or a ``.nii``/``.nii.gz`` file.

    Raises
    ------
    UnreadableImageError, NotCTError, SingleImageError, MixedSeriesError, MissingSlicesError
        Each an :class:`~medbrain.core.errors.InputError` naming the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise UnreadableImageError(str(p), "", "no such file or directory")
    if p.is_dir():
        return load_dicom_dir(p)
    if p.name.lower().endswith(NIFTI_SUFFIXES):
        return load_nifti(p)
    raise UnreadableImageError(
        str(p), "", "expected a directory of DICOM files or a .nii/.nii.gz file"
    )


def _read_dicom(file: Path, *, pixels: bool = False) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(file, stop_before_pixels=not pixels)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise UnreadableImageError(str(file), "", f"not a readable DICOM file ({exc})") from None


def _floats(ds: Any, keyword: str, count: int, file: Path) -> NDArray[np.float64]:
    value = ds.get(keyword)
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise UnreadableImageError(str(file), keyword, "missing or not numeric") from None
    if arr.shape != (count,):
        raise UnreadableImageError(str(file), keyword, f"expected {count} values")
    return arr


def load_dicom_dir(directory: Path) -> CTSeries:
    """Load every file of ``directory`` as one CT series (see module References)."""
    files = sorted(f for f in directory.iterdir() if f.is_file() and not f.name.startswith("."))
    files = [f for f in files if f.name.upper() != "DICOMDIR"]
    if not files:
        raise UnreadableImageError(str(directory), "", "directory holds no files")
    datasets = [(f, _read_dicom(f)) for f in files]
    for f, ds in datasets:
        modality = str(ds.get("Modality", "") or "")
        if modality != "CT":
            raise NotCTError(
                str(f), "Modality (0008,0060)", f"is {modality or 'missing'!s}, expected CT"
            )
    uids = {str(ds.get("SeriesInstanceUID", "")) for _, ds in datasets}
    if len(uids) > 1:
        raise MixedSeriesError(
            str(directory),
            "SeriesInstanceUID (0020,000E)",
            f"{len(uids)} different series in one folder; give one series per directory",
        )
    if len(datasets) == 1:
        f, ds = datasets[0]
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames <= 1:
            raise SingleImageError(
                str(f), "", "a single 2D image, not a CT volume (need a series of slices)"
            )
        raise UnreadableImageError(str(f), "NumberOfFrames", "multi-frame CT is not supported")
    f0, ds0 = datasets[0]
    iop0 = _floats(ds0, "ImageOrientationPatient", 6, f0)
    ps0 = _floats(ds0, "PixelSpacing", 2, f0)
    shape0 = (int(ds0.get("Rows", 0) or 0), int(ds0.get("Columns", 0) or 0))
    row_dir = iop0[:3] / np.linalg.norm(iop0[:3])  # direction of increasing column index
    col_dir = iop0[3:] / np.linalg.norm(iop0[3:])  # direction of increasing row index
    normal = np.cross(row_dir, col_dir)
    if normal[2] < 0:  # sort by ascending patient z (DESIGN.md §3)
        normal = -normal
    positions: list[tuple[float, Path, Any]] = []
    for f, ds in datasets:
        iop = _floats(ds, "ImageOrientationPatient", 6, f)
        if not np.allclose(iop, iop0, atol=1e-4):
            raise MixedSeriesError(str(f), "ImageOrientationPatient (0020,0037)", "differs")
        if not np.allclose(_floats(ds, "PixelSpacing", 2, f), ps0, atol=1e-4):
            raise MixedSeriesError(str(f), "PixelSpacing (0028,0030)", "differs")
        if (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)) != shape0:
            raise MixedSeriesError(str(f), "Rows/Columns", "image size differs")
        ipp = _floats(ds, "ImagePositionPatient", 3, f)
        positions.append((float(ipp @ normal), f, ds))
    positions.sort(key=lambda item: item[0])
    z = np.asarray([p for p, _, _ in positions])
    gaps = np.diff(z)
    if np.any(gaps < 1e-3):
        i = int(np.argmin(gaps))
        raise MixedSeriesError(
            str(positions[i + 1][1]),
            "ImagePositionPatient (0020,0032)",
            f"duplicate slice position {z[i + 1]:.2f} mm",
        )
    nominal = float(np.median(gaps))
    if np.any(gaps > 2.0 * nominal):
        i = int(np.argmax(gaps))
        raise MissingSlicesError(
            str(positions[i + 1][1]),
            "ImagePositionPatient (0020,0032)",
            f"gap of {gaps[i]:.2f} mm between slices at {z[i]:.2f} and {z[i + 1]:.2f} mm "
            f"(> 2 x {nominal:.2f} mm): missing slices",
        )
    volume = np.empty((len(positions), *shape0), dtype=np.float32)
    for k, (_, f, _header) in enumerate(positions):
        ds = _read_dicom(f, pixels=True)  # one slice's pixels in memory at a time
        try:
            raw = ds.pixel_array
        except (
            ValueError,
            RuntimeError,
            NotImplementedError,
            AttributeError,
            TypeError,
            KeyError,
            OSError,
            EOFError,
        ) as exc:  # what pixel decoders raise
            raise UnreadableImageError(
                str(f), "PixelData (7FE0,0010)", f"cannot decode pixel data ({exc})"
            ) from None
        if raw.shape != shape0:
            raise UnreadableImageError(str(f), "PixelData (7FE0,0010)", "unexpected shape")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        volume[k] = raw.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    first = _floats(positions[0][2], "ImagePositionPatient", 3, positions[0][1])
    direction = np.stack([row_dir, col_dir, normal], axis=1)
    return CTSeries(
        hu=volume,
        spacing_mm=(float(ps0[1]), float(ps0[0]), nominal),
        origin_mm=(float(first[0]), float(first[1]), float(first[2])),
        direction=_rows3(direction),
        series_uid=uids.pop(),
        source=str(directory),
    )


def load_nifti(file: Path) -> CTSeries:
    """Load a NIfTI CT volume; RAS world coordinates are converted to LPS (module References)."""
    import nibabel as nib

    try:
        image: Any = nib.load(str(file))
        data = np.asarray(image.get_fdata(dtype=np.float32), dtype=np.float32)
        affine = np.asarray(image.affine, dtype=np.float64)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as exc:
        raise UnreadableImageError(str(file), "", f"not a readable NIfTI file ({exc})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3 or min(data.shape) < 2:
        raise SingleImageError(str(file), "dim", f"shape {data.shape} is not a 3D volume")
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :4]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    direction = lps[:, :3] / spacing
    origin = lps[:, 3].copy()
    hu = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))  # [i,j,k] -> [slice,row,col]
    if direction[2, 2] < 0:  # keep slices in ascending z
        hu = np.ascontiguousarray(hu[::-1])
        origin = origin + direction[:, 2] * spacing[2] * (hu.shape[0] - 1)
        direction[:, 2] = -direction[:, 2]
    return CTSeries(
        hu=hu,
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=_rows3(direction),
        series_uid=f"nifti:{file.name}",
        source=str(file),
    )
