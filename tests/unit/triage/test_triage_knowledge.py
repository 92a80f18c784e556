"""Knowledge files: provenance on every row, bilingual texts, hospital overrides by id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from medbrain.core.errors import KnowledgeError
from medbrain.triage import assess_document, default_knowledge, load_triage_knowledge
from medbrain.triage.knowledge import FILES, _shipped_text

TACHY_110 = {"complaint": "咳嗽", "age_years": 40, "vitals": {"hr": 110}}


def _rows(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "id" in node:
            out.append(node)
        for value in node.values():
            out.extend(_rows(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_rows(value))
    return out


@pytest.mark.parametrize("stem", FILES)
def test_every_rule_row_has_id_version_and_source(stem: str) -> None:
    data = yaml.safe_load(_shipped_text(stem))
    rows = _rows(data)
    assert rows
    for row in rows:
        assert row.get("source"), f"{stem}: {row['id']} has no source"
        assert row.get("version"), f"{stem}: {row['id']} has no version"


def test_every_source_key_used_is_defined() -> None:
    knowledge = default_knowledge()
    for stem in FILES:
        for row in _rows(yaml.safe_load(_shipped_text(stem))):
            source = str(row["source"])
            assert source in knowledge.sources, f"{row['id']}: unknown source {source}"


def test_every_text_has_both_languages() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "zh" in node and isinstance(node.get("zh"), str):
                assert isinstance(node.get("en"), str), where
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    for stem in FILES:
        walk(yaml.safe_load(_shipped_text(stem)), stem)


def test_hospital_override_changes_a_threshold_by_rule_id() -> None:
    assert assess_document(TACHY_110, default_knowledge()).level == 3
    knowledge = load_triage_knowledge(
        overrides={"vitals": {"objective": [{"id": "obj.hr.l3", "any": [{"between": [120, 150]}]}]}}
    )
    assert assess_document(TACHY_110, knowledge).level == 4


def test_override_file_changes_max_wait_and_can_disable_a_row(tmp_path: Path) -> None:
    path = tmp_path / "hospital.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "levels": {
                    "levels": [{"id": "level.4", "max_wait_minutes": 120, "source": "medbrain"}]
                },
                "complaints": {"rows": [{"id": "c.cold", "enabled": False}]},
            }
        ),
        encoding="utf-8",
    )
    knowledge = load_triage_knowledge(path)
    result = assess_document({"complaint": "感冒", "age_years": 30}, knowledge)
    assert result.max_wait_minutes == 120
    assert "c.cold" not in [c.rule_id for c in result.criteria]


def test_override_adds_a_new_complaint_row() -> None:
    row = {
        "id": "c.hospital.hand_foot_mouth",
        "version": "1",
        "level": 3,
        "department": "07",
        "patterns": {"zh": ["手足口"], "en": ["hand,? foot and mouth"]},
        "source": "本院儿科流行季分诊规则 2026",
        "text": {"zh": "疑似手足口病", "en": "Suspected hand, foot and mouth disease"},
    }
    knowledge = load_triage_knowledge(overrides={"complaints": {"rows": [row]}})
    result = assess_document({"complaint": "孩子手足口", "age_years": 3}, knowledge)
    assert result.level == 3
    assert any("本院儿科流行季分诊规则 2026" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"complaints": {"rows": [{"id": "c.cold", "level": 7}]}}, "c.cold"),
        ({"complaints": {"rows": [{"id": "c.cold", "patterns": {"zh": ["("]}}]}}, "invalid regex"),
        ({"complaints": {"rows": [{"id": "c.cold", "department": "99"}]}}, "unknown department"),
        (
            {"vitals": {"objective": [{"id": "obj.hr.l1", "any": [{"between": [9, 1]}]}]}},
            "obj.hr.l1",
        ),
        ({"nonsense": {}}, "unknown section"),
        ({"complaints": {"rows": [{"level": 2}]}}, "has no id"),
    ],
)
def test_bad_override_fails_naming_the_row(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(KnowledgeError, match=message):
        load_triage_knowledge(overrides=overrides)


def test_department_codes_follow_the_catalogue() -> None:
    departments = default_knowledge().departments
    assert departments["20"].name_zh == "急诊医学科"
    assert departments["07"].name_zh == "儿科"
    assert departments["05.02"].name_zh == "产科专业"
    assert departments["05.01"].female_only is True


def test_levels_zones_and_waits() -> None:
    levels = default_knowledge().levels
    assert [(levels[i].zone, levels[i].max_wait_minutes) for i in (1, 2, 3, 4)] == [
        ("red", 0),
        ("red", 10),
        ("yellow", 30),
        ("green", 60),
    ]


def test_news2_override_with_a_gap_is_refused() -> None:
    gap = {"vitals": {"news2": {"hr": [[None, 40, 3], [45, None, 0]]}}}
    with pytest.raises(KnowledgeError, match="news2 has no band for 41"):
        load_triage_knowledge(overrides=gap)


def test_paediatric_bands_must_cover_every_month() -> None:
    gap = {"vitals": {"paediatric": {"bands": [{"id": "paed.band.1-2y", "months": [13, 24]}]}}}
    with pytest.raises(KnowledgeError, match="month 12"):
        load_triage_knowledge(overrides=gap)
