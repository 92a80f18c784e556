"""CT imaging engine: load a chest CT, segment the lungs, detect and measure nodules, grade
Lung-RADS v2022 / Fleischner 2017 and draft a report (issue 4; DESIGN.md §3 ``ct detect``).

Conventions, named everywhere: arrays are indexed ``[slice, row, col]`` internally with slices
sorted by ascending patient z; ``*_voxel`` values are ``[col, row, slice]``; ``*_mm`` values are
DICOM patient coordinates (LPS, millimetres).
"""

from __future__ import annotations

from medbrain.imaging.io import CTSeries, load_series

__all__ = ["CTSeries", "load_series"]
