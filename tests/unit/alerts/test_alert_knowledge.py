"""Alert knowledge: provenance on every row, bilingual texts, hospital overrides by id."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from medbrain.alerts import evaluate_bundle, load_alert_knowledge
from medbrain.alerts.knowledge import deep_merge
from medbrain.core.errors import KnowledgeError
from tests.unit.alerts.bundles import build_bundle


def test_every_critical_value_row_cites_a_source() -> None:
    knowledge = load_alert_knowledge()
    rows = knowledge.critical["rows"]
    assert {r["analyte"] for r in rows} >= {
        "potassium",
        "sodium",
        "glucose",
        "hemoglobin",
        "platelets",
        "wbc",
        "inr",
        "ph",
        "paco2",
        "pao2",
        "troponin_i",
        "blood_culture",
    }
    assert all(r["source"] for r in rows)


def test_every_rule_row_cites_a_source_and_speaks_both_languages() -> None:
    rules = load_alert_knowledge().rules
    for section in ("sepsis", "electrolytes", "drug_lab", "trends", "patterns"):
        for row in rules[section]["rows"]:
            assert row["source"], row["id"]
            for key in ("message", "suggestion"):
                assert row[key]["zh"] and row[key]["en"], (row["id"], key)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_hospital_override_changes_a_critical_limit_by_id(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "critical_values:\n  rows:\n    - {id: cv.potassium, ge: 6.0, source: 本院危急值表 2026}\n",
    )
    knowledge = load_alert_knowledge(path)
    row = next(r for r in knowledge.critical["rows"] if r["id"] == "cv.potassium")
    assert row["ge"] == 6.0 and row["le"] == 2.8
    report = evaluate_bundle(build_bundle({"obs": [["K", 6.1, "mmol/L"]]}), knowledge)
    assert "cv.potassium" in {a.rule_id for a in report.alerts}
    cited = report.alerts[0].evidence[0].source
    assert cited == "本院危急值表 2026"


def test_hospital_override_can_disable_a_row(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "critical_values:\n  rows:\n    - {id: cv.troponin_i, enabled: false}\n"
    )
    knowledge = load_alert_knowledge(path)
    assert "cv.troponin_i" not in {r["id"] for r in knowledge.critical["rows"]}
    report = evaluate_bundle(build_bundle({"obs": [["cTnI", 2.0, "ng/mL"]]}), knowledge)
    assert report.alerts == ()


def test_hospital_override_adds_a_row_and_changes_settings(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "critical_values:\n"
        "  rows:\n"
        "    - {id: cv.lactate, version: 1, analyte: lactate, ge: 4.0, source: 本院 2026}\n"
        "rules:\n"
        "  settings: {suppression_window_hours: 8}\n",
    )
    knowledge = load_alert_knowledge(path)
    assert knowledge.settings["suppression_window_hours"] == 8
    report = evaluate_bundle(build_bundle({"obs": [["Lac", 4.5, "mmol/L"]]}), knowledge)
    assert [a.rule_id for a in report.alerts] == ["cv.lactate"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("wards: {}\n", "unknown section"),
        (
            "critical_values:\n  rows:\n    - {id: cv.x, version: 1, analyte: nope, gt: 1, source: s}\n",
            "nope",
        ),
        (
            "critical_values:\n  rows:\n    - {id: cv.y, version: 1, analyte: sodium, source: s}\n",
            "at least one",
        ),
        ("critical_values:\n  rows:\n    - {analyte: sodium}\n", "no id"),
        (
            "critical_values:\n  rows:\n    - {id: cv.z, analyte: sodium, gt: 1, source: s}\n",
            "version",
        ),
        (
            "rules:\n  trends:\n    rows:\n      - {id: trend.new, version: 1, analyte: hemoglobin, source: s,"
            " message: {zh: 只有中文}, suggestion: {zh: 复查, en: recheck}}\n",
            "zh and en",
        ),
        ("analytes:\n  analytes:\n    - {id: x}\n", "missing or malformed"),
        ("- just a list\n", "mapping"),
        ("critical_values: [\n", "not valid YAML"),
    ],
)
def test_bad_override_names_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(KnowledgeError) as info:
        load_alert_knowledge(_write(tmp_path, text))
    assert needle in str(info.value)


def test_missing_override_file_is_a_knowledge_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_alert_knowledge(tmp_path / "absent.yaml")


def test_deep_merge_does_not_mutate_its_inputs() -> None:
    base = {"rows": [{"id": "a", "x": 1, "nested": {"k": 1}}], "s": {"w": 1}}
    override = {"rows": [{"id": "a", "nested": {"j": 2}}, {"id": "b"}], "s": {"v": 2}}
    merged = deep_merge(base, override)
    assert merged == {
        "rows": [{"id": "a", "x": 1, "nested": {"k": 1, "j": 2}}, {"id": "b"}],
        "s": {"w": 1, "v": 2},
    }
    assert base == {"rows": [{"id": "a", "x": 1, "nested": {"k": 1}}], "s": {"w": 1}}


def test_hospital_local_lab_codes_map_to_analytes(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "analytes:\n"
        "  analytes:\n"
        "    - id: potassium\n"
        "      local_codes: [{system: 'http://lis.example-hospital.cn/item', code: K001}]\n",
    )
    bundle = build_bundle({"obs": [["K", 6.9, "mmol/L"]]})
    bundle["entry"][1]["resource"]["code"] = {
        "coding": [{"system": "http://lis.example-hospital.cn/item", "code": "K001"}],
        "text": "钾",
    }
    now = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    unmapped = evaluate_bundle(bundle, load_alert_knowledge(), now=now)
    assert unmapped.alerts == () and len(unmapped.ignored) == 1
    report = evaluate_bundle(bundle, load_alert_knowledge(path))
    assert "cv.potassium" in {a.rule_id for a in report.alerts}


def test_a_code_cannot_name_two_analytes(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "analytes:\n  analytes:\n    - {id: sodium, loinc: ['2951-2', '2823-3']}\n",
    )
    with pytest.raises(KnowledgeError, match="belongs to both"):
        load_alert_knowledge(path)
