"""Pipeline geometry: results are in patient space, independent of the storage orientation."""

from __future__ import annotations

import numpy as np

from medbrain.imaging.io import CTSeries
from medbrain.imaging.pipeline import detect_series
from medbrain.imaging.synthetic import SyntheticScan


def test_left_right_and_lps_centres_survive_a_flipped_column_direction(scan: SyntheticScan) -> None:
    s = scan.series
    flipped = CTSeries(
        hu=np.ascontiguousarray(s.hu[:, :, ::-1]),
        spacing_mm=s.spacing_mm,
        origin_mm=(-s.origin_mm[0], *s.origin_mm[1:]),
        direction=((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        series_uid="flipped",
    )
    a = sorted((tuple(n["center_mm"]), n["side"]) for n in detect_series(s)["nodules"])
    b = sorted((tuple(n["center_mm"]), n["side"]) for n in detect_series(flipped)["nodules"])
    assert a == b
    for (x, _, _), side in a:
        assert side == ("left" if x > 0 else "right")  # LPS: +x is the patient's left
