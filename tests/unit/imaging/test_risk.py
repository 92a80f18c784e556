"""Lung-RADS v2022 and Fleischner 2017 rows, table-driven (positives and boundary near-misses)."""

from __future__ import annotations

import pytest

from medbrain.imaging.risk import NoduleForRisk, fleischner, lung_rads


def nodule(kind: str, mm: float, solid: float | None = None, i: int = 1) -> NoduleForRisk:
    return NoduleForRisk(i, kind, mm, solid, int(mm + 0.5))


@pytest.mark.parametrize(
    ("kind", "mm", "solid", "category"),
    [
        ("solid", 5.9, None, "2"),
        ("solid", 6.0, None, "3"),
        ("solid", 7.9, None, "3"),
        ("solid", 8.0, None, "4A"),
        ("solid", 14.9, None, "4A"),
        ("solid", 15.0, None, "4B"),
        ("part-solid", 5.9, 3.0, "2"),
        ("part-solid", 6.0, 5.9, "3"),
        ("part-solid", 10.0, 6.0, "4A"),
        ("part-solid", 12.0, 7.9, "4A"),
        ("part-solid", 12.0, 8.0, "4B"),
        ("ground-glass", 29.9, None, "2"),
        ("ground-glass", 30.0, None, "3"),
        ("calcified", 12.0, None, "1"),
    ],
)
def test_lung_rads_v2022_baseline_rows(
    kind: str, mm: float, solid: float | None, category: str
) -> None:
    assert lung_rads([nodule(kind, mm, solid)]).category == category


def test_lung_rads_no_nodule_is_category_1_and_exam_takes_the_worst() -> None:
    assert lung_rads([]).category == "1"
    result = lung_rads([nodule("solid", 5.0, i=1), nodule("solid", 9.0, i=2)], lang="en")
    assert (result.category, result.driver_nodule) == ("4A", 2)
    assert result.management.startswith("3-month LDCT")
    assert "Lung-RADS v2022" in result.source


@pytest.mark.parametrize(
    ("nodules", "risk", "rule", "starts"),
    [
        ([nodule("solid", 5.0)], "low", "fleischner.solid.single.lt6", "No routine follow-up"),
        ([nodule("solid", 5.0)], "high", "fleischner.solid.single.lt6", "Optional CT at 12 months"),
        ([nodule("solid", 7.0)], "low", "fleischner.solid.single.6to8", "CT at 6-12 months"),
        ([nodule("solid", 8.4)], "low", "fleischner.solid.single.6to8", "CT at 6-12 months"),
        ([nodule("solid", 8.6)], "low", "fleischner.solid.single.gt8", "Consider CT at 3 months"),
        (
            [nodule("solid", 7.0), nodule("solid", 4.0, i=2)],
            "high",
            "fleischner.solid.multiple.6to8",
            "CT at 3-6 months",
        ),
        (
            [nodule("ground-glass", 5.0)],
            "high",
            "fleischner.ggn.single.lt6",
            "No routine follow-up",
        ),
        ([nodule("ground-glass", 7.0)], "low", "fleischner.ggn.single.ge6", "CT at 6-12 months"),
        (
            [nodule("part-solid", 9.0, 4.0)],
            "low",
            "fleischner.partsolid.single.ge6",
            "CT at 3-6 months",
        ),
        (
            [nodule("ground-glass", 4.0), nodule("ground-glass", 5.0, i=2)],
            "low",
            "fleischner.subsolid.multiple.lt6",
            "CT at 3-6 months",
        ),
    ],
)
def test_fleischner_2017_rows(
    nodules: list[NoduleForRisk], risk: str, rule: str, starts: str
) -> None:
    result = fleischner(nodules, risk=risk, lang="en")
    assert result.rule_id == rule
    assert result.recommendation.startswith(starts)


def test_fleischner_ignores_calcified_nodules() -> None:
    assert fleischner([nodule("calcified", 9.0)], lang="en").category == "none"
