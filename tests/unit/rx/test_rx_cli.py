"""``medbrain rx review`` through a real subprocess (DESIGN.md §3 contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PRESCRIPTION: dict[str, Any] = {
    "patient": {
        "age_years": 68,
        "sex": "male",
        "weight_kg": 60,
        "height_cm": 170,
        "pregnant": False,
        "lactating": False,
        "allergies": ["青霉素"],
        "diagnoses": ["社区获得性肺炎"],
        "labs": {"creatinine_umol_l": 180, "alt_u_l": 40},
    },
    "department": "呼吸内科",
    "prescriber_level": "主治医师",
    "items": [
        {
            "drug": "阿莫西林胶囊",
            "dose": 0.5,
            "unit": "g",
            "route": "po",
            "frequency": "tid",
            "days": 5,
            "quantity": 30,
        }
    ],
}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "rx", "review", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_design_example_blocks_on_penicillin_allergy(tmp_path: Path) -> None:
    path = tmp_path / "rx.json"
    path.write_text(json.dumps(PRESCRIPTION, ensure_ascii=False), encoding="utf-8")
    done = _run(str(path), "--json", "--lang", "en")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {"verdict", "findings", "seconds"}
    assert document["verdict"] == "block"
    assert document["findings"][0]["category"] == "allergy"
    assert document["findings"][0]["drugs"] == ["阿莫西林胶囊"]
    assert done.stdout.count("\n") == 1


def test_stdin_and_default_language_zh() -> None:
    done = _run("-", "--json", stdin=json.dumps(PRESCRIPTION, ensure_ascii=False))
    assert done.returncode == 0
    assert "过敏" in json.loads(done.stdout)["findings"][0]["message"]


def test_invalid_input_exits_2_with_one_line_naming_the_field() -> None:
    bad = {**PRESCRIPTION, "items": [{**PRESCRIPTION["items"][0], "dose": -1}]}
    done = _run("-", "--json", stdin=json.dumps(bad, ensure_ascii=False))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "items[0].dose" in done.stderr and "Traceback" not in done.stderr


def test_impossible_age_and_malformed_json_exit_2(tmp_path: Path) -> None:
    done = _run("-", "--json", stdin=json.dumps({**PRESCRIPTION, "patient": {"age_years": 250}}))
    assert done.returncode == 2 and "patient.age_years" in done.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    done = _run(str(broken), "--json")
    assert done.returncode == 2 and "broken.json" in done.stderr
    done = _run(str(tmp_path / "missing.json"), "--json")
    assert done.returncode == 2 and "file not found" in done.stderr


def test_bad_lang_exits_2() -> None:
    done = _run("-", "--json", "--lang", "fr", stdin=json.dumps(PRESCRIPTION))
    assert done.returncode == 2


def test_hospital_overrides_change_the_verdict(tmp_path: Path) -> None:
    overrides = tmp_path / "hospital.yaml"
    overrides.write_text(
        "policy:\n  disabled_rules: ['rx.allergy.*', 'rx.renal.*']\n", encoding="utf-8"
    )
    done = _run(
        "-",
        "--json",
        "--overrides",
        str(overrides),
        stdin=json.dumps(PRESCRIPTION, ensure_ascii=False),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "pass"
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "interactions:\n  - {id: warfarin-nsaid, severity: deadly}\n", encoding="utf-8"
    )
    done = _run(
        "-",
        "--json",
        "--overrides",
        str(broken),
        stdin=json.dumps(PRESCRIPTION, ensure_ascii=False),
    )
    assert done.returncode == 2
    assert "rx/interactions.yaml: interactions[warfarin-nsaid].severity" in done.stderr


def test_cli_output_matches_golden_json() -> None:
    golden = Path(__file__).with_name("golden")
    source = golden / "design_example.input.json"
    for lang in ("zh", "en"):
        done = _run(str(source), "--json", "--lang", lang)
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        document.pop("seconds")
        expected = json.loads((golden / f"design_example.{lang}.json").read_text(encoding="utf-8"))
        assert document == expected
