"""Lung-RADS v2022 interval rows (new / growing nodules) and the follow-up block's checks."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from medbrain.imaging.interval import StudyInfo, add_followup, interval_lung_rads
from medbrain.imaging.risk import NoduleForRisk, fleischner, lung_rads

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def nod(i: int, x: float, mean: float, kind: str = "solid", solid: float | None = None) -> Any:
    return {
        "id": i,
        "center_mm": [x, 0.0, 0.0],
        "center_voxel": [0, 0, 10],
        "long_axis_mm": mean,
        "short_axis_mm": mean,
        "mean_diameter_mm": mean,
        "volume_mm3": round(3.14159 / 6 * mean**3, 1),
        "type": kind,
        "solid_component_mm": solid,
        "side": "right",
        "lobe": None,
        "location": "peripheral",
        "score": 0.9,
    }


def result(nodules: list[dict[str, Any]]) -> dict[str, Any]:
    risk = [
        NoduleForRisk(
            n["id"],
            n["type"],
            n["mean_diameter_mm"],
            n["solid_component_mm"],
            round(n["mean_diameter_mm"]),
        )
        for n in nodules
    ]
    return {
        "series_uid": "1.2.3",
        "nodules": nodules,
        "lung_rads": lung_rads(risk, "en").to_dict(),
        "fleischner": fleischner(risk, "high", "en").to_dict(),
        "report": {},
    }


def follow(
    prior: list[dict[str, Any]],
    current: list[dict[str, Any]],
    days: float | None = 180,
    prior_info: StudyInfo | None = None,
) -> dict[str, Any]:
    return add_followup(
        result(current),
        {"nodules": prior},
        current_info=StudyInfo("a" * 16, date(2026, 3, 1), AXIAL),
        prior_info=prior_info,
        prior_source="result",
        slices=40,
        interval_days=days,
        lang="en",
    )


@pytest.mark.parametrize(
    ("before", "after", "category"),
    [
        (6.5, 7.9, "3"),  # +1.4 mm: not growth; 6-8 mm solid stays 3
        (6.0, 7.6, "4A"),  # growing < 8 mm
        (7.0, 9.0, "4B"),  # growing >= 8 mm (size alone: 4A)
    ],
)
def test_solid_growth_raises_the_category(before: float, after: float, category: str) -> None:
    out = follow([nod(1, 0.0, before)], [nod(1, 1.0, after)])
    assert out["lung_rads"]["category"] == category


@pytest.mark.parametrize(("size", "category"), [(3.5, "2"), (4.5, "3"), (6.5, "4A"), (8.5, "4B")])
def test_new_solid_nodule_rows(size: float, category: str) -> None:
    out = follow([], [nod(1, 0.0, size)])
    assert out["lung_rads"]["category"] == category
    assert out["followup"]["changes"][0]["status"] == "new"


def test_ground_glass_gaining_a_solid_component_is_4a_or_4b() -> None:
    small = follow([nod(1, 0.0, 12.0, "ground-glass")], [nod(1, 0.0, 12.0, "part-solid", 3.0)])
    big = follow([nod(1, 0.0, 12.0, "ground-glass")], [nod(1, 0.0, 12.0, "part-solid", 5.0)])
    assert (small["lung_rads"]["category"], big["lung_rads"]["category"]) == ("4A", "4B")


def test_growth_over_more_than_a_year_is_reported_but_not_graded() -> None:
    out = follow([nod(1, 0.0, 6.0)], [nod(1, 0.0, 7.6)], days=730)
    assert out["followup"]["changes"][0]["status"] == "grown"
    assert out["lung_rads"]["category"] == out["lung_rads"]["baseline_category"] == "3"
    assert [w["code"] for w in out["followup"]["warnings"]] == ["long_interval"]


def test_stable_nodule_keeps_baseline_and_dates_give_the_interval() -> None:
    prior_info = StudyInfo("a" * 16, date(2025, 9, 2), AXIAL)
    out = follow([nod(1, 0.0, 9.0)], [nod(1, 0.5, 9.0)], days=None, prior_info=prior_info)
    assert out["followup"]["interval_days"] == 180
    assert out["lung_rads"]["category"] == "4A" and out["followup"]["warnings"] == []


def test_unknown_or_reversed_interval_and_other_patient_warn() -> None:
    unknown = follow([nod(1, 0.0, 6.0)], [nod(1, 0.0, 9.0)], days=None)
    assert [w["code"] for w in unknown["followup"]["warnings"]] == ["interval_unknown"]
    assert unknown["followup"]["changes"][0]["volume_doubling_days"] is None
    later = StudyInfo("b" * 16, date(2026, 6, 1), (0.0, 1.0, 0.0, 1.0, 0.0, 0.0))
    odd = follow([nod(1, 0.0, 6.0)], [nod(1, 0.0, 6.0)], days=None, prior_info=later)
    assert [w["code"] for w in odd["followup"]["warnings"]] == [
        "patient_mismatch",
        "orientation_mismatch",
        "prior_not_earlier",
    ]


def test_interval_lung_rads_never_lowers_the_baseline() -> None:
    baseline = result([nod(1, 0.0, 16.0)])["lung_rads"]
    changes = [
        {"status": "new", "prior_id": None, "current_id": 2},
        {"status": "stable", "prior_id": 1, "current_id": 1},
    ]
    out = interval_lung_rads(
        baseline,
        changes,
        [nod(1, 0.0, 16.0)],
        [nod(1, 0.0, 16.0), nod(2, 50.0, 3.0)],
        growth_counts=True,
    )
    assert out["category"] == "4B" and out["rule_id"] == baseline["rule_id"]
