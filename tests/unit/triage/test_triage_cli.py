"""`medbrain triage assess` as a subprocess: one JSON document, exit 2 naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

VISIT = {
    "age_years": 56,
    "sex": "male",
    "complaint": "胸痛2小时,伴大汗",
    "vitals": {"hr": 110, "sbp": 90, "dbp": 60, "rr": 24, "spo2": 93, "temp_c": 36.8, "gcs": 15},
    "arrival": "walk-in",
    "pregnant": False,
    "onset_minutes": 120,
}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "triage", "assess", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "visit.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_cli_prints_one_json_document_in_the_design_shape(tmp_path: Path) -> None:
    result = _run(_write(tmp_path, VISIT), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    document = json.loads(result.stdout)
    assert document["level"] == 2
    assert document["level_name"] == "Ⅱ级"
    assert document["zone"] == "red"
    assert document["max_wait_minutes"] == 10
    assert document["care"] == "emergency"
    assert document["department"] == {
        "code": "20",
        "name_zh": "急诊医学科",
        "name_en": "Emergency medicine",
    }
    assert document["pathway"] == "chest_pain"
    assert isinstance(document["red_flags"], list) and document["red_flags"]
    assert isinstance(document["news2"], int)
    assert isinstance(document["seconds"], float)
    assert "胸痛" in document["reasons"][0]


def test_cli_reads_stdin_and_speaks_english() -> None:
    result = _run("-", "--json", "--lang", "en", stdin=json.dumps(VISIT))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["red_flags"][0].startswith("Chest pain with cardiac features")


def test_cli_human_readable_output(tmp_path: Path) -> None:
    result = _run(_write(tmp_path, VISIT), "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Triage level Ⅱ级 (critical), red zone, maximum wait 10 min")


def test_cli_impossible_vital_exits_2_with_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = {**VISIT, "vitals": {"spo2": 150}}
    result = _run(_write(tmp_path, bad), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "vitals.spo2" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_empty_complaint_exits_2() -> None:
    result = _run("-", "--json", stdin=json.dumps({"complaint": ""}))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "<stdin>: complaint: is empty; describe the chief complaint"
    ]


def test_cli_malformed_json_and_missing_file_exit_2(tmp_path: Path) -> None:
    assert _run("-", "--json", stdin="{not json").returncode == 2
    missing = _run(str(tmp_path / "nope.json"), "--json")
    assert missing.returncode == 2
    assert "file not found" in missing.stderr


def test_cli_overrides_file_changes_the_result(tmp_path: Path) -> None:
    overrides = tmp_path / "hospital.yaml"
    overrides.write_text(
        yaml.safe_dump({"levels": {"levels": [{"id": "level.2", "max_wait_minutes": 5}]}}),
        encoding="utf-8",
    )
    result = _run(_write(tmp_path, VISIT), "--json", "--overrides", str(overrides))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["max_wait_minutes"] == 5
