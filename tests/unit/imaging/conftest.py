"""Shared synthetic CT fixtures (small volumes: 128 x 128 x 96 at 2.5 mm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct, write_dicom_series


@pytest.fixture(scope="session")
def scan() -> SyntheticScan:
    return generate_chest_ct(7)


@pytest.fixture(scope="session")
def dicom_dir(scan: SyntheticScan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ct") / "series"
    write_dicom_series(scan.series, directory, seed=7, file_order_seed=11)
    return directory
