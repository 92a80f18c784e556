"""The vignette table (vignettes.yaml): expected level, pathway, care and department."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from medbrain.triage import assess_document, default_knowledge

VIGNETTES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "vignettes.yaml").read_text(encoding="utf-8")
)
CONTRACT_KEYS = {
    "level",
    "level_name",
    "zone",
    "max_wait_minutes",
    "care",
    "department",
    "pathway",
    "red_flags",
    "reasons",
    "news2",
}


def test_there_are_at_least_100_vignettes_with_unique_ids() -> None:
    ids = [v["id"] for v in VIGNETTES]
    assert len(ids) >= 100
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_vignette_gets_expected_triage(vignette: dict[str, Any]) -> None:
    result = assess_document(vignette["visit"], default_knowledge()).to_dict()
    expect = vignette["expect"]
    stroke = result["pathway_detail"].get("stroke", {})
    got = {
        "level": result["level"],
        "pathway": result["pathway"],
        "care": result["care"],
        "department": result["department"]["code"],
        "green_channel": stroke.get("green_channel"),
        "within_thrombolysis": stroke.get("within_thrombolysis_window"),
    }
    assert {k: got[k] for k in expect} == expect, result["reasons"]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("vignette", VIGNETTES[:40], ids=[v["id"] for v in VIGNETTES[:40]])
def test_output_keeps_the_design_contract_in_both_languages(
    vignette: dict[str, Any], lang: str
) -> None:
    result = assess_document(vignette["visit"], default_knowledge(), lang=lang).to_dict()
    assert set(result) >= CONTRACT_KEYS
    assert result["level_name"] == ["Ⅰ级", "Ⅱ级", "Ⅲ级", "Ⅳ级"][result["level"] - 1]
    assert result["zone"] == {1: "red", 2: "red", 3: "yellow", 4: "green"}[result["level"]]
    assert result["care"] in ("emergency", "non_emergency", "self_care")
    assert set(result["department"]) == {"code", "name_zh", "name_en"}
    assert result["pathway"] in (None, "chest_pain", "stroke", "trauma", "sepsis")
    assert 0.0 <= result["confidence"] <= 1.0
    for reason in result["reasons"]:
        assert isinstance(reason, str) and reason
    # Every rule-based reason cites its rule id and source in brackets.
    cited = [r for r in result["reasons"] if "[" in r]
    assert len(cited) == len(result["rules"])
    for rule_id, reason in zip(result["rules"], cited, strict=True):
        assert f"[{rule_id}; " in reason


def test_same_visit_gives_identical_output() -> None:
    visit = VIGNETTES[0]["visit"]
    one = assess_document(visit, default_knowledge()).to_dict()
    two = assess_document(visit, default_knowledge()).to_dict()
    assert one == two


def test_english_reasons_are_english_and_chinese_reasons_chinese() -> None:
    visit = {"complaint": "胸痛2小时,伴大汗", "age_years": 56}
    zh = assess_document(visit, default_knowledge(), lang="zh").to_dict()
    en = assess_document(visit, default_knowledge(), lang="en").to_dict()
    assert "胸痛" in zh["red_flags"][0]
    assert en["red_flags"][0].startswith("Chest pain with cardiac features")
    assert en["level_title"] == "critical" and zh["level_title"] == "危重"
