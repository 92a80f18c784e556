import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge

BASE = {"rules": [{"id": "a", "limit": 1, "source": "s"}, {"id": "b", "limit": 2}], "x": {"y": 1}}


def test_rows_merge_by_id_and_new_rows_append() -> None:
    merged = deep_merge(BASE, {"rules": [{"id": "a", "limit": 5}, {"id": "c", "limit": 3}]})
    assert merged["rules"] == [
        {"id": "a", "limit": 5, "source": "s"},
        {"id": "b", "limit": 2},
        {"id": "c", "limit": 3},
    ]
    assert BASE["rules"][0]["limit"] == 1  # base not mutated


def test_enabled_false_removes_a_row() -> None:
    merged = deep_merge(BASE, {"rules": [{"id": "b", "enabled": False}]})
    assert [r["id"] for r in merged["rules"]] == ["a"]


def test_custom_key_and_row_without_key_is_refused() -> None:
    base = {"rules": [{"rule_id": "q1", "w": 1}]}
    assert deep_merge(base, {"rules": [{"rule_id": "q1", "w": 2}]}, "rule_id")["rules"] == [
        {"rule_id": "q1", "w": 2}
    ]
    with pytest.raises(KnowledgeError, match="has no rule_id"):
        deep_merge(base, {"rules": [{"w": 3}]}, "rule_id")


def test_scalars_and_mappings_are_replaced_or_merged() -> None:
    assert deep_merge(BASE, {"x": {"z": 2}})["x"] == {"y": 1, "z": 2}
    assert deep_merge(BASE, {"x": 3})["x"] == 3
