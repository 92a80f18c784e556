"""``medbrain qc check`` as a subprocess: DESIGN.md §3 contract, exit codes, stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.qc.helpers import HAND, load_fixture

MEDBRAIN = [sys.executable, "-m", "medbrain.cli"]


def _run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MEDBRAIN_HOME=str(cwd or Path.cwd()))
    return subprocess.run(
        [*MEDBRAIN, "qc", "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_json_output_has_the_contract_shape(tmp_path: Path) -> None:
    result = _run(str(HAND / "04_knee_wrong_side"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"score", "grade", "veto", "defects", "needs_review", "seconds"} <= set(out)
    assert out["grade"] in ("甲", "乙", "丙") and out["veto"] is True
    for defect in out["defects"]:
        assert {
            "rule_id",
            "category",
            "severity",
            "message",
            "suggestion",
            "evidence",
            "confidence",
            "needs_review",
            "document",
            "section",
            "deduction",
        } <= set(defect)
    assert result.stdout.count("\n") == 1


def test_english_and_realtime_stage(tmp_path: Path) -> None:
    result = _run(
        str(HAND / "12_realtime_open"),
        "--json",
        "--stage",
        "realtime",
        "--lang",
        "en",
        cwd=tmp_path,
    )
    out = json.loads(result.stdout)
    assert [d["rule_id"] for d in out["defects"]] == ["qc.doc.senior-round-missing"]
    assert out["defects"][0]["message"].startswith("The attending rounds note is missing")


def test_json_body_on_stdin(tmp_path: Path) -> None:
    result = _run(
        "-",
        "--json",
        stdin=json.dumps(load_fixture("01_cap_clean"), ensure_ascii=False),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["defects"] == []


def test_missing_directory_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "nope"), "--json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_stage_and_bad_meta_exit_2(tmp_path: Path) -> None:
    assert _run(str(HAND / "01_cap_clean"), "--stage", "later", cwd=tmp_path).returncode == 2
    record = tmp_path / "rec"
    record.mkdir()
    (record / "admission.txt").write_text("主诉:咳嗽3天。\n", encoding="utf-8")
    (record / "meta.json").write_text('{"admit_time": "soon"}', encoding="utf-8")
    result = _run(str(record), "--json", cwd=tmp_path)
    assert result.returncode == 2 and "admit_time" in result.stderr


def test_unknown_and_empty_files_are_listed_not_fatal(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    record.mkdir()
    (record / "admission.txt").write_bytes("入院记录\n主诉:咳嗽3天。\n".encode("gbk"))
    (record / "xray.dcm").write_bytes(b"DICM\x00\x00")
    (record / "course.txt").write_bytes(b"")
    result = _run(str(record), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    skipped = {s["file"]: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert skipped == {"course.txt": "empty file", "xray.dcm": "unknown document type"}


GOLDEN = HAND.parent / "golden"


def test_cli_output_matches_the_golden_json(tmp_path: Path) -> None:
    """The whole JSON document (but the timing) is stable; update the golden file on purpose."""
    for golden in sorted(GOLDEN.glob("*.json")):
        name, lang = golden.name.split(".")[:2]
        result = _run(str(HAND / name), "--json", "--lang", lang, cwd=tmp_path)
        out = json.loads(result.stdout)
        out.pop("seconds")
        assert out == json.loads(golden.read_text(encoding="utf-8")), golden.name


def test_overrides_reweight_and_bad_overrides_exit_2(tmp_path: Path) -> None:
    good = tmp_path / "qc.yaml"
    good.write_text(
        "rules:\n  - {rule_id: qc.consistency.laterality, deduction: 20}\n", encoding="utf-8"
    )
    result = _run(
        str(HAND / "04_knee_wrong_side"), "--json", "--overrides", str(good), cwd=tmp_path
    )
    assert json.loads(result.stdout)["score"] == 75.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {rule_id: qc.x, kind: nope}\n", encoding="utf-8")
    result = _run(str(HAND / "04_knee_wrong_side"), "--json", "--overrides", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and "qc.x" in result.stderr and result.stdout == ""
