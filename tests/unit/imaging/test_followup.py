"""Follow-up comparison: Lung-RADS growth (> 1.5 mm), new / resolved, volume doubling time."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.imaging.followup import compare, volume_doubling_days


def nod(i: int, x: float, mean: float, vol: float) -> dict[str, Any]:
    return {"id": i, "center_mm": [x, 0.0, 0.0], "mean_diameter_mm": mean, "volume_mm3": vol}


@pytest.mark.parametrize(
    ("before", "after", "status"),
    [(6.0, 7.6, "grown"), (6.0, 7.5, "stable"), (6.0, 4.4, "shrunk"), (6.0, 6.0, "stable")],
)
def test_growth_uses_the_lung_rads_1_5_mm_threshold(
    before: float, after: float, status: str
) -> None:
    [change] = compare([nod(1, 0.0, before, 100.0)], [nod(1, 2.0, after, 100.0)], 365)
    assert change.status == status


def test_new_and_resolved_nodules_are_reported() -> None:
    changes = compare([nod(1, 0.0, 6.0, 100.0)], [nod(1, 80.0, 5.0, 60.0)], 365)
    assert sorted(c.status for c in changes) == ["new", "resolved"]


def test_volume_doubling_time() -> None:
    assert volume_doubling_days(100.0, 200.0, 90) == pytest.approx(90.0)
    assert volume_doubling_days(100.0, 400.0, 180) == pytest.approx(90.0)
    assert volume_doubling_days(100.0, 90.0, 180) is None
