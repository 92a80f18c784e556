"""Chinese rule set, guideline selection, Brock block, and their CLI options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from medbrain.core.errors import InputError
from medbrain.imaging.brock import BrockInput, BrockPatient, brock_for_nodules, brock_probability
from medbrain.imaging.guidelines import apply_guideline, brock_patient, check_guideline
from medbrain.imaging.report import draft_report
from medbrain.imaging.risk import NoduleForRisk, china_2021, china_table, fleischner, lung_rads
from tests.unit.imaging.test_ct_cli import run


def nod(i: int, kind: str, d: float) -> NoduleForRisk:
    return NoduleForRisk(i, kind, d, None, math.floor(d + 0.5))


def test_every_chinese_row_cites_its_source_and_is_flagged_for_review() -> None:
    table = china_table()
    for part in ("screening", "incidental"):
        for row in table[part]:
            assert "2021" in row["source"] or "2018" in row["source"]
            assert row["needs_review"] is True  # not verified against the full text


@pytest.mark.parametrize(
    ("kind", "d", "rule"),
    [
        ("solid", 4.9, "china2021.screening.negative"),
        ("solid", 5.0, "china2021.screening.solid_5to15"),
        ("part-solid", 14.9, "china2021.screening.solid_5to15"),
        ("ground-glass", 7.9, "china2021.screening.negative"),
        ("ground-glass", 8.0, "china2021.screening.nonsolid_8to15"),
        ("ground-glass", 15.0, "china2021.screening.ge15"),
        ("solid", 22.0, "china2021.screening.ge15"),
        ("calcified", 9.0, "china2021.screening.negative"),
    ],
)
def test_screening_thresholds(kind: str, d: float, rule: str) -> None:
    assert china_2021([nod(1, kind, d)])["screening"]["rule_id"] == rule


@pytest.mark.parametrize(
    ("kind", "d", "rule"),
    [
        ("solid", 4.0, "china2018.incidental.solid_le4"),
        ("solid", 4.1, "china2018.incidental.solid_4to6"),
        ("solid", 6.0, "china2018.incidental.solid_4to6"),
        ("solid", 8.0, "china2018.incidental.solid_6to8"),
        ("solid", 8.1, "china2018.incidental.solid_gt8"),
        ("part-solid", 8.0, "china2018.incidental.partsolid_le8"),
        ("ground-glass", 5.0, "china2018.incidental.ggn_le5"),
        ("ground-glass", 5.5, "china2018.incidental.ggn_gt5"),
    ],
)
def test_incidental_thresholds(kind: str, d: float, rule: str) -> None:
    assert china_2021([nod(1, kind, d)])["incidental"]["rule_id"] == rule


def test_exam_level_choice_and_risk_text() -> None:
    nodules = [nod(1, "solid", 4.5), nod(2, "part-solid", 7.0), nod(3, "calcified", 12.0)]
    high = china_2021(nodules, "high", "en")
    low = china_2021(nodules, "low", "en")
    assert high["screening"]["driver_nodule"] == 2  # 7 mm part-solid is the positive one
    assert high["incidental"]["driver_nodule"] == 2  # part-solid outranks a 4.5 mm solid
    solid = [nod(1, "solid", 5.0)]
    assert (
        china_2021(solid, "high")["incidental"]["recommendation"]
        != (china_2021(solid, "low")["incidental"]["recommendation"])
    )
    assert low["incidental"]["risk"] == "low"
    none = china_2021([nod(1, "calcified", 6.0)], "high", "zh")
    assert none["incidental"]["rule_id"] is None
    assert none["screening"]["rule_id"] == "china2021.screening.negative"


def _contract_nodule(i: int, kind: str, d: float, lobe: str | None) -> dict[str, object]:
    return {
        "id": i,
        "center_voxel": [10, 10, 10],
        "long_axis_mm": d,
        "short_axis_mm": d,
        "mean_diameter_mm": d,
        "volume_mm3": math.pi / 6 * d**3,
        "type": kind,
        "solid_component_mm": None,
        "side": "right",
        "lobe": lobe,
        "location": "peripheral",
    }


def test_brock_block_uses_the_lobe_and_says_why_not() -> None:
    nodules = [
        _contract_nodule(1, "solid", 9.0, "RUL"),
        _contract_nodule(2, "ground-glass", 7.0, "RLL"),
        _contract_nodule(3, "solid", 6.0, None),
        _contract_nodule(4, "calcified", 5.0, "LUL"),
    ]
    patient = BrockPatient(64.0, True, True, False)
    block = brock_for_nodules(nodules, patient)
    rows = {r["id"]: r for r in block["nodules"]}
    expected = brock_probability(BrockInput(64.0, True, True, False, 9.0, "solid", 4, True))
    assert expected is not None and rows[1]["probability"] == round(expected, 4)
    assert rows[1]["upper_lobe"] is True and rows[2]["upper_lobe"] is False
    lower = brock_probability(BrockInput(64.0, True, True, False, 9.0, "solid", 4, False))
    assert lower is not None and lower < expected  # upper lobe raises the probability
    assert rows[3]["probability"] is None and rows[3]["reason"] == "lobe"
    assert rows[4]["probability"] is None and rows[4]["reason"] == "calcified"
    assert block["patient"]["sex"] == "female"


def test_brock_patient_needs_all_four_inputs() -> None:
    assert brock_patient(None, None, None, None) is None
    with pytest.raises(InputError, match="missing --family-history, --emphysema"):
        brock_patient(60, "male", None, None)
    with pytest.raises(InputError, match=r"18\.\.110"):
        brock_patient(12, "male", False, False)
    with pytest.raises(InputError, match="male or female"):
        brock_patient(60, "x", False, False)
    with pytest.raises(InputError, match="lungrads, fleischner, china2021"):
        check_guideline("nccn")


def _result(lang: str) -> dict[str, object]:
    nodules = [_contract_nodule(1, "solid", 9.0, "RUL"), _contract_nodule(2, "solid", 5.0, None)]
    fr = [nod(1, "solid", 9.0), nod(2, "solid", 5.0)]
    lr = lung_rads(fr, lang).to_dict()
    fl = fleischner(fr, "high", lang).to_dict()
    report = draft_report(nodules, lr, fl, 100, lang)
    return {"nodules": nodules, "lung_rads": lr, "fleischner": fl, "report": report}


def test_guideline_order_and_lines_in_the_impression() -> None:
    base = _result("en")
    plain = apply_guideline(base, guideline="lungrads", lang="en")
    assert plain["report"]["impression"] == base["report"]["impression"]  # type: ignore[index]
    assert "china" not in plain and "brock" not in plain
    fl = apply_guideline(base, guideline="fleischner", lang="en")
    lines = fl["report"]["impression"].split("\n")
    assert lines[0].startswith("If incidental (not screening), Fleischner 2017")
    assert lines[-1].startswith("Computer-aided draft")
    cn = apply_guideline(
        _result("zh"),
        guideline="china2021",
        lang="zh",
        patient=BrockPatient(70.0, False, False, True),
    )
    lines = cn["report"]["impression"].split("\n")
    assert lines[0].startswith("印象(中国肺癌筛查与早诊早治指南2021")
    assert "肺结节诊治中国专家共识2018" in lines[1]
    assert (
        lines[-2].startswith("Brock(PanCan)恶性概率") and "结节2未计算(肺叶未能确定)" in lines[-2]
    )
    assert cn["china"]["screening"]["rule_id"] == "china2021.screening.solid_5to15"
    assert cn["guideline"] == "china2021"


def test_cli_china_guideline_and_brock(dicom_dir: Path) -> None:
    proc = run(
        str(dicom_dir),
        "--json",
        "--lang",
        "en",
        "--guideline",
        "china2021",
        "--age",
        "66",
        "--sex",
        "male",
        "--no-family-history",
        "--emphysema",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["guideline"] == "china2021"
    assert out["china"]["screening"]["rule_id"].startswith("china2021.screening.")
    assert {r["id"] for r in out["brock"]["nodules"]} == {n["id"] for n in out["nodules"]}
    assert out["report"]["impression"].startswith("Impression (China lung cancer screening")
    for n in out["nodules"]:  # lobe or a reason, never a silent guess
        assert n["lobe"] in {"RUL", "RML", "RLL", "LUL", "LLL"} or "fissure" in n["lobe_reason"]
        assert n["lobe"] is None or n["lobe"][0] == n["side"][0].upper()
    assert {"right_oblique", "right_horizontal", "left_oblique"} <= set(out["fissures"])
    assert out["fissures"]["suppressed_on_fissure"] >= 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--guideline", "nccn"), "--guideline"),
        (("--age", "60"), "missing --sex"),
        (("--detector", "dl"), "needs a weights file"),
        (("--detector", "dl", "--weights", "/nonexistent/model.pt"), "weights file not found"),
    ],
)
def test_cli_bad_options_exit_2(dicom_dir: Path, args: tuple[str, ...], message: str) -> None:
    proc = run(str(dicom_dir), "--json", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
