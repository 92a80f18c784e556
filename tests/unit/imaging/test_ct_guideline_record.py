"""Brock from a patient record (missing inputs named, never guessed) and growth in the
Chinese rule set (issue 4: guideline and Brock outside the CLI)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from medbrain.imaging.brock import BrockInput, BrockPatient, brock_probability
from medbrain.imaging.guidelines import age_on, apply_guideline, brock_from_record
from medbrain.imaging.report import draft_report
from medbrain.imaging.risk import NoduleChange, NoduleForRisk, china_2021, fleischner, lung_rads


def _nodule(i: int, kind: str, d: float, lobe: str | None = "RUL", **extra: Any) -> dict[str, Any]:
    return {
        "id": i,
        "center_mm": [10.0 * i, 0.0, 0.0],
        "center_voxel": [10, 10, 10],
        "long_axis_mm": d,
        "short_axis_mm": d,
        "mean_diameter_mm": d,
        "volume_mm3": round(math.pi / 6 * d**3, 1),
        "type": kind,
        "solid_component_mm": extra.pop("solid", None),
        "side": "right",
        "lobe": lobe,
        "location": "peripheral",
        "score": 0.9,
        **extra,
    }


def _result(nodules: list[dict[str, Any]], lang: str = "en") -> dict[str, Any]:
    fr = [
        NoduleForRisk(
            n["id"],
            n["type"],
            n["mean_diameter_mm"],
            n["solid_component_mm"],
            round(n["mean_diameter_mm"]),
        )
        for n in nodules
    ]
    lr = lung_rads(fr, lang).to_dict()
    fl = fleischner(fr, "high", lang).to_dict()
    return {
        "nodules": nodules,
        "lung_rads": lr,
        "fleischner": fl,
        "report": draft_report(nodules, lr, fl, 100, lang),
    }


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(1960, 5, 10), date(2024, 5, 9), 63),
        (date(1960, 5, 10), date(2024, 5, 10), 64),
        (date(1960, 2, 29), date(2023, 2, 28), 62),
        (None, date(2024, 1, 1), None),
        (date(1960, 1, 1), None, None),
        (date(2030, 1, 1), date(2024, 1, 1), None),
    ],
)
def test_age_at_the_study_date(birth: date | None, on: date | None, age: int | None) -> None:
    assert age_on(birth, on) == age


def test_brock_from_record_names_every_missing_input() -> None:
    patient, missing = brock_from_record(64, "female", True, False)
    assert patient == BrockPatient(64.0, True, True, False) and missing == []
    assert brock_from_record(None, None, None, None) == (
        None,
        ["age", "sex", "family_history", "emphysema"],
    )
    assert brock_from_record(70, "male", None, True) == (None, ["family_history"])
    assert brock_from_record(12, "unknown", False, False) == (None, ["age", "sex"])


def test_missing_inputs_give_a_not_computable_block_and_line() -> None:
    base = _result([_nodule(1, "solid", 9.0)])
    out = apply_guideline(
        base,
        lang="en",
        brock_missing=["family_history", "emphysema"],
        brock_known={"age_years": 66, "sex": "male"},
    )
    block = out["brock"]
    assert block["computable"] is False and block["nodules"] == []
    assert block["missing"] == ["family_history", "emphysema"]
    assert block["patient"] == {
        "age_years": 66,
        "sex": "male",
        "family_history_lung_cancer": None,
        "emphysema": None,
    }
    lines = out["report"]["impression"].split("\n")
    assert lines[-2] == (
        "Brock (PanCan) probability not computed: the record lacks family history of lung "
        "cancer, emphysema."
    )
    assert lines[-1].startswith("Computer-aided draft")
    zh = apply_guideline(
        _result([_nodule(1, "solid", 9.0)], "zh"), lang="zh", brock_missing=["age"]
    )
    assert "Brock(PanCan)恶性概率未计算:病历中缺少年龄" in zh["report"]["impression"]
    empty = apply_guideline(_result([]), lang="en", brock_missing=["age"])
    assert empty["brock"]["computable"] is False
    assert "Brock" not in empty["report"]["impression"]  # nothing to estimate, no line


def test_computed_brock_line_states_its_inputs() -> None:
    out = apply_guideline(
        _result([_nodule(1, "solid", 9.0)]),
        lang="en",
        patient=BrockPatient(64.0, True, True, False),
    )
    expected = brock_probability(BrockInput(64.0, True, True, False, 9.0, "solid", 1, True))
    assert expected is not None
    assert out["brock"]["computable"] is True
    assert out["brock"]["nodules"][0]["probability"] == round(expected, 4)
    line = out["report"]["impression"].split("\n")[-2]
    assert line == (
        "Brock (PanCan) probability of malignancy (age 64, female, family history of lung "
        f"cancer: yes, emphysema: no): nodule 1 {100 * round(expected, 4):.1f}%."
    )


def _followup(
    prior: list[dict[str, Any]], changes: list[tuple[str, int | None, int | None, float | None]]
) -> dict[str, Any]:
    return {
        "prior": {"nodules": prior},
        "changes": [
            {"status": s, "prior_id": p, "current_id": c, "diameter_change_mm": d}
            for s, p, c, d in changes
        ],
    }


def test_growth_feeds_the_chinese_screening_category() -> None:
    # 7 mm solid: baseline "5-14 mm, 3 months"; grown by 2.4 mm -> MDT (positive-high)
    current = [_nodule(1, "solid", 7.0)]
    grown = {
        **_result(current),
        "followup": _followup([_nodule(1, "solid", 4.6)], [("grown", 1, 1, 2.4)]),
    }
    out = apply_guideline(grown, guideline="china2021", lang="en")
    s = out["china"]["screening"]
    assert (s["rule_id"], s["level"], s["change"], s["driver_nodule"]) == (
        "china2021.followup.grown",
        "positive-high",
        "grown",
        1,
    )
    assert out["china"]["compared_with_prior"] is True
    assert out["report"]["impression"].startswith(
        "Impression (China lung cancer screening guideline 2021, compared with the prior), driven by "
        "nodule 1: "
        "Existing nodule has grown"
    )
    # 1.6 mm is growth for Lung-RADS (> 1.5 mm) but below this rule set's 2 mm: size row
    small = {
        **_result(current),
        "followup": _followup([_nodule(1, "solid", 5.4)], [("grown", 1, 1, 1.6)]),
    }
    s = apply_guideline(small, guideline="china2021", lang="en")["china"]["screening"]
    assert (s["rule_id"], s["change"]) == ("china2021.screening.solid_5to15", None)
    # no prior: the baseline reading, flagged as such
    base = apply_guideline(_result(current), guideline="china2021", lang="en")["china"]
    assert base["compared_with_prior"] is False
    assert base["screening"]["rule_id"] == "china2021.screening.solid_5to15"


def test_new_solid_component_and_new_nodules() -> None:
    part = [_nodule(1, "part-solid", 9.0, solid=3.0)]
    was_ggn = {
        **_result(part),
        "followup": _followup([_nodule(1, "ground-glass", 8.5)], [("stable", 1, 1, 0.5)]),
    }
    s = apply_guideline(was_ggn, guideline="china2021", lang="en")["china"]["screening"]
    assert s["rule_id"] == "china2021.followup.solid_component_new_or_grown"
    # a stable part-solid nodule whose solid part also stayed put keeps its size row
    steady = {
        **_result(part),
        "followup": _followup([_nodule(1, "part-solid", 9.0, solid=2.5)], [("stable", 1, 1, 0.0)]),
    }
    s = apply_guideline(steady, guideline="china2021", lang="en")["china"]["screening"]
    assert s["rule_id"] == "china2021.screening.solid_5to15"
    new = [_nodule(1, "solid", 6.0), _nodule(2, "solid", 4.0)]
    fresh = {
        **_result(new),
        "followup": _followup([], [("new", None, 1, None), ("new", None, 2, None)]),
    }
    s = apply_guideline(fresh, guideline="china2021", lang="en")["china"]["screening"]
    assert (s["rule_id"], s["driver_nodule"]) == ("china2021.followup.new_solid_ge5", 1)
    only_small = {**_result([new[1]]), "followup": _followup([], [("new", None, 2, None)])}
    s = apply_guideline(only_small, guideline="china2021", lang="en")["china"]["screening"]
    assert s["rule_id"] == "china2021.screening.negative"


def test_a_growth_row_never_lowers_the_size_row() -> None:
    # 16 mm grown nodule: size row (>= 15 mm) and growth row are both positive-high
    n = NoduleForRisk(1, "solid", 16.0, None, 16)
    out = china_2021([n], changes={1: NoduleChange("grown", 3.0, None, "solid")})
    assert out["screening"]["level"] == "positive-high"
    # a negative 3 mm nodule that grew by 2 mm is escalated by its change
    tiny = NoduleForRisk(1, "solid", 4.5, None, 5)
    out = china_2021([tiny], changes={1: NoduleChange("grown", 2.0, None, "solid")})
    assert out["screening"]["rule_id"] == "china2021.followup.grown"


def test_signed_pdf_rows_show_guideline_and_brock_inputs() -> None:
    from medbrain.radiology.outputs.pdf import _risk_rows

    out = apply_guideline(
        _result([_nodule(1, "solid", 9.0)]),
        guideline="china2021",
        lang="en",
        patient=BrockPatient(64.0, False, False, True),
    )
    (row,) = _risk_rows({"category": "4A", "guideline": "china2021", "brock": out["brock"]}, "en")
    assert row[1] == "China screening guideline 2021 / Chinese expert consensus 2018"
    assert row[3].startswith(
        "Brock (PanCan) probability of malignancy (age 64, male, family history of lung cancer: "
        "no, emphysema: yes): nodule 1 "
    )
    missing = apply_guideline(_result([_nodule(1, "solid", 9.0)]), lang="zh", brock_missing=["sex"])
    (row,) = _risk_rows({"guideline": "lungrads", "brock": missing["brock"]}, "zh")
    assert row[1].startswith("Lung-RADS v2022") and row[3].endswith("病历中缺少性别。")
    assert _risk_rows({"category": "2"}, "en") == []  # signed before guidelines were recorded


def test_followup_rows_and_growth_cite_sources_and_stay_flagged() -> None:
    from medbrain.imaging.risk import china_table

    table = china_table()
    assert table["growth"]["needs_review"] is True and "Bankier" in table["growth"]["source"]
    for row in table["followup"]:
        assert "年度筛查" in row["source"] and row["needs_review"] is True


def test_cli_reads_the_hospital_guideline_file(dicom_dir: Path, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "imaging").mkdir()
    hospital = tmp_path / "imaging" / "overrides.yaml"
    env = {**os.environ, "MEDBRAIN_HOME": str(tmp_path), "MEDBRAIN_CT_GUIDELINE": "fleischner"}
    command = [sys.executable, "-m", "medbrain.cli", "ct", "detect", str(dicom_dir), "--json"]
    hospital.write_text("guideline: nccn\n", encoding="utf-8")
    bad = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "overrides.yaml" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout == ""
    hospital.write_text("guideline: china2021\n", encoding="utf-8")  # wins over the env var
    good = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["guideline"] == "china2021"
