"""``medbrain insurance group|check|evaluate``: one JSON document out, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medbrain.cli import app

FRONTPAGE = {
    "case_id": "CLI-1",
    "sex": "female",
    "age_years": 58,
    "admit_date": "2025-05-01",
    "discharge_date": "2025-05-06",
    "discharge_status": "1",
    "principal_diagnosis": "K80.101",
    "procedures": ["51.2300"],
}


def test_group_prints_one_json_document_with_path(tmp_path: Path) -> None:
    path = tmp_path / "fp.json"
    path.write_text(json.dumps(FRONTPAGE), encoding="utf-8")
    result = CliRunner().invoke(app, ["insurance", "group", str(path), "--json", "--lang", "en"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["drg"] == "HC29" and doc["path"][-1]["code"] == "HC29"


def test_check_with_overrides_disables_a_rule(tmp_path: Path) -> None:
    case = {**FRONTPAGE, "principal_diagnosis": "Z03.900", "procedures": []}
    path = tmp_path / "fp.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    default = CliRunner().invoke(app, ["insurance", "check", str(path), "--json"])
    assert default.exit_code == 0, default.output
    rules = {f["rule_id"] for f in json.loads(default.stdout)["findings"]}
    assert "ins.low-standard.observation-code" in rules
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "rules:\n  - {id: ins.low-standard.observation-code, enabled: false}\n", encoding="utf-8"
    )
    changed = CliRunner().invoke(
        app, ["insurance", "check", str(path), "--json", "--overrides", str(overrides)]
    )
    assert "ins.low-standard.observation-code" not in changed.stdout


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({**FRONTPAGE, "costs": {"drug": -5, "bed": "many"}}), encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["insurance", "group", str(path), "--json"])
    assert result.exit_code == 2
    assert "costs.bed" in result.stderr and result.stdout == ""
