"""``medbrain rare rank``: DESIGN.md §3 contract, array input, exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from medbrain.cli import app

FABRY = {"hpo": ["HP:0012534", "HP:0001014", "HP:0000966", "HP:0007957", "HP:0000093"]}
MARFAN = {"hpo": ["HP:0000098", "HP:0001166", "HP:0001083", "HP:0004942"]}


def test_subprocess_answers_an_array_in_order_with_one_json_document(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([FABRY, MARFAN, {"text": "少汗,血管角质瘤,蛋白尿"}]), "utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "medbrain.cli",
            "rare",
            "rank",
            str(path),
            "--json",
            "--top",
            "5",
            "--lang",
            "en",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [len(r["candidates"]) for r in out] == [5, 5, 5]
    assert out[0]["hpo_used"] == FABRY["hpo"] and out[1]["hpo_used"] == MARFAN["hpo"]
    assert {c["disease_id"] for c in out[0]["candidates"]} & {"OMIM:301500", "ORPHA:324"}
    for r in out:
        assert {"candidates", "hpo_used", "seconds"} <= set(r)


def test_stdin_single_case_default_top_is_20() -> None:
    result = CliRunner().invoke(app, ["rare", "rank", "-", "--json"], input=json.dumps(FABRY))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["candidates"]) == 20
    assert out["candidates"][0]["workup"][0].startswith("建议考虑")


def test_unknown_id_exits_2_with_one_line_naming_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([FABRY, {"hpo": ["HP:9999999"]}]), "utf-8")
    result = CliRunner().invoke(app, ["rare", "rank", str(path), "--json", "--lang", "en"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "[1].hpo" in lines[0]
    assert "HP:9999999" in lines[0] and "Traceback" not in result.stderr


def test_malformed_json_and_bad_lang_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", "utf-8")
    result = CliRunner().invoke(app, ["rare", "rank", str(path), "--json"])
    assert result.exit_code == 2 and "malformed JSON" in result.stderr
    result = CliRunner().invoke(app, ["rare", "rank", str(path), "--json", "--lang", "fr"])
    assert result.exit_code == 2 and "--lang" in result.stderr
