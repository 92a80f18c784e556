"""Small synthetic chest CT series for the ingestion tests (64x64x40 at 5 mm: fast)."""

from __future__ import annotations

from pathlib import Path

from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series

SHAPE = (40, 64, 64)
SPACING = (5.0, 5.0, 5.0)


def write_series(directory: Path, seed: int, *, modality: str = "CT") -> list[Path]:
    scan = generate_chest_ct(
        seed, shape=SHAPE, spacing_mm=SPACING, n_nodules=2, diameter_range_mm=(10.0, 16.0)
    )
    return write_dicom_series(scan.series, directory, seed=seed, modality=modality)
