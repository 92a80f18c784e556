"""`medbrain alerts evaluate` as a subprocess: one JSON document, exit 2 naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.unit.alerts.bundles import build_bundle

SEED: dict[str, Any] = {
    "patient": {"sex": "male", "age": 68},
    "conditions": ["头痛"],
    "vitals": {"T": 37.9, "HR": 96},
    "obs": [["NEUT", 86, "%"], ["Na", 152, "mmol/L"], ["K", 6.8, "mmol/L"]],
}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "alerts", "evaluate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_cli_prints_one_json_document_with_alerts_and_scores(tmp_path: Path) -> None:
    result = _run(str(_write(tmp_path, build_bundle(SEED))), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert set(document) >= {"alerts", "scores"}
    assert set(document["scores"]) >= {"news2", "qsofa", "sirs"}
    rule_ids = {a["rule_id"] for a in document["alerts"]}
    assert {"cv.potassium", "pattern.headache_neutrophilia_hypernatraemia_elderly"} <= rule_ids
    for alert in document["alerts"]:
        assert {"recommended_tests", "differential", "suggestion", "evidence"} <= set(alert)
    assert "危急值" in document["alerts"][0]["message"]


def test_cli_reads_stdin_and_speaks_english() -> None:
    result = _run("-", "--json", "--lang", "en", stdin=json.dumps(build_bundle(SEED)))
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout)["alerts"][0]
    assert first["message"].startswith("Critical value: potassium 6.8 mmol/L")


def test_cli_now_option_and_default_are_deterministic(tmp_path: Path) -> None:
    path = str(_write(tmp_path, build_bundle(SEED)))
    one = _run(path, "--json")
    two = _run(path, "--json")
    assert one.stdout == two.stdout
    later = _run(path, "--json", "--now", "2024-05-05T12:00:00+08:00")
    assert json.loads(later.stdout)["alerts"] == []


def test_cli_invalid_value_exits_2_with_one_line_naming_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, build_bundle({"obs": [["K", 50, "mmol/L"]]}))
    result = _run(str(path), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "entry[1].resource.valueQuantity.value" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_missing_unit_exits_2(tmp_path: Path) -> None:
    result = _run(str(_write(tmp_path, build_bundle({"obs": [["Cr", 1.4]]}))), "--json")
    assert result.returncode == 2
    assert "entry[1].resource.valueQuantity.unit" in result.stderr


def test_cli_malformed_json_and_missing_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert _run(str(bad), "--json").returncode == 2
    missing = _run(str(tmp_path / "absent.json"), "--json")
    assert missing.returncode == 2 and "file not found" in missing.stderr


def test_cli_bad_now_exits_2(tmp_path: Path) -> None:
    result = _run(str(_write(tmp_path, build_bundle(SEED))), "--json", "--now", "soon")
    assert result.returncode == 2
    assert "now" in result.stderr


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "alerts"


def test_cli_seed_case_matches_golden_json() -> None:
    """Regenerate after an intended change with:
    medbrain alerts evaluate tests/fixtures/alerts/seed_headache_bundle.json --json"""
    result = _run(str(FIXTURES / "seed_headache_bundle.json"), "--json")
    assert result.returncode == 0, result.stderr
    expected = json.loads((FIXTURES / "seed_headache_expected.json").read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == expected


def test_cli_applies_hospital_overrides(tmp_path: Path) -> None:
    path = str(_write(tmp_path, build_bundle({"obs": [["K", 6.0, "mmol/L"]]})))
    default = json.loads(_run(path, "--json").stdout)
    assert "cv.potassium" not in {a["rule_id"] for a in default["alerts"]}
    result = _run(path, "--json", "--overrides", str(FIXTURES / "overrides_example.yaml"))
    assert result.returncode == 0, result.stderr
    alerts = json.loads(result.stdout)["alerts"]
    assert alerts[0]["rule_id"] == "cv.potassium"
    assert alerts[0]["evidence"][0]["source"].startswith("示例医院")


def test_cli_bad_overrides_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "o.yaml"
    bad.write_text("wards: {}\n", encoding="utf-8")
    path = str(_write(tmp_path, build_bundle({"obs": [["K", 4.0, "mmol/L"]]})))
    result = _run(path, "--json", "--overrides", str(bad))
    assert result.returncode == 2
    assert "unknown section" in result.stderr
