"""Draft report: deterministic, zh and en, names side, image number, size, type and category."""

from __future__ import annotations

from typing import Any

from medbrain.imaging.report import draft_report, templates

NODULE: dict[str, Any] = {
    "id": 1,
    "center_voxel": [40, 50, 29],
    "long_axis_mm": 8.1,
    "short_axis_mm": 6.9,
    "mean_diameter_mm": 7.5,
    "volume_mm3": 221.0,
    "type": "solid",
    "solid_component_mm": None,
    "side": "right",
    "lobe": None,
    "location": "peripheral",
}
LR = {"category": "3", "driver_nodule": 1, "management": "6-month LDCT"}
FL = {"risk": "high", "recommendation": "CT at 6-12 months, then CT at 18-24 months"}


def test_every_template_has_zh_and_en() -> None:
    assert all(set(v) >= {"zh", "en"} for v in templates().values())


def test_english_report_names_side_image_size_type_and_category() -> None:
    report = draft_report([NODULE], LR, FL, slices=96, lang="en")
    assert (
        "Right lung, image 30 of 96: solid nodule, 8.1 x 6.9 mm (mean diameter 7.5 mm)"
        in report["findings"]
    )
    assert "Lung-RADS v2022 category 3" in report["impression"]
    assert report["language"] == "en"


def test_chinese_report_is_default_style_and_deterministic() -> None:
    a = draft_report([NODULE], LR, FL, slices=96, lang="zh")
    assert a == draft_report([NODULE], LR, FL, slices=96, lang="zh")
    assert "右肺" in a["findings"] and "实性" in a["findings"]
    assert "Lung-RADS v2022 3类" in a["impression"]


def test_no_nodules_report() -> None:
    report = draft_report(
        [], {"category": "1", "driver_nodule": None, "management": "x"}, FL, 10, "en"
    )
    assert report["findings"] == "No pulmonary nodule is identified."
