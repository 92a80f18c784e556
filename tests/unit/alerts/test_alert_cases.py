"""Data-driven alert cases from tests/fixtures/alerts/cases.yaml (synthetic bundles)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from medbrain.alerts import CATEGORIES, AlertKnowledge, evaluate_bundle, load_alert_knowledge
from medbrain.core.errors import InputError
from tests.unit.alerts.bundles import build_bundle, load_cases

CASES = load_cases()
GOOD = [c for c in CASES if "error" not in c]
BAD = [c for c in CASES if "error" in c]


@cache
def knowledge() -> AlertKnowledge:
    return load_alert_knowledge()


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [f"{c['group']}-{c['id']}" for c in cases]


def test_fixture_has_at_least_100_cases_with_normals() -> None:
    assert len(CASES) >= 100
    assert sum(1 for c in GOOD if c["expect"] == {}) >= 20
    assert len({c["id"] for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", GOOD, ids=_ids(GOOD))
def test_case_raises_exactly_the_expected_alerts(case: dict[str, Any]) -> None:
    report = evaluate_bundle(build_bundle(case), knowledge(), lang="zh", source=case["id"])
    got = {f.rule_id: f.severity.value for f in report.alerts}
    assert got == case["expect"]
    out = report.to_dict()
    for name, expected in (case.get("scores") or {}).items():
        assert out["scores"][name] == expected, name
    for rule_id, fields in (case.get("details") or {}).items():
        alert = next(a for a in out["alerts"] if a["rule_id"] == rule_id)
        for key, expected in fields.items():
            assert alert[key] == pytest.approx(expected, abs=0.01), key
    if "ignored" in case:
        assert len(out["ignored"]) == case["ignored"]
    for alert in out["alerts"]:
        assert alert["category"] in CATEGORIES
        assert alert["evidence"][0]["source"], "every alert cites its rule's source"
        assert any(e.get("resource") and e.get("quote") for e in alert["evidence"])
        assert isinstance(alert["recommended_tests"], list)
        assert all({"diagnosis", "reason"} <= set(d) for d in alert["differential"])


@pytest.mark.parametrize("case", GOOD, ids=_ids(GOOD))
def test_case_gives_the_same_alerts_in_english(case: dict[str, Any]) -> None:
    zh = evaluate_bundle(build_bundle(case), knowledge(), lang="zh")
    en = evaluate_bundle(build_bundle(case), knowledge(), lang="en")
    assert [f.rule_id for f in en.alerts] == [f.rule_id for f in zh.alerts]
    for finding in en.alerts:
        assert finding.message and finding.suggestion
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in finding.suggestion), finding.rule_id


@pytest.mark.parametrize("case", BAD, ids=_ids(BAD))
def test_bad_input_is_refused_naming_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(InputError) as info:
        evaluate_bundle(build_bundle(case), knowledge(), source="case.json")
    assert info.value.field == case["error"]
    assert info.value.source == "case.json"
    assert str(info.value).startswith(f"case.json: {case['error']}: ")
