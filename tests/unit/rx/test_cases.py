"""The clinical case table: expected findings fire, clean prescriptions raise nothing."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.rx import load_rx_knowledge, review
from tests.unit.rx.casebook import load_cases, prescription_of

CASES = load_cases()
POSITIVE = [c for c in CASES if not c.get("clean")]
CLEAN = [c for c in CASES if c.get("clean")]


def _describe(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['category']}/{f['severity']}/{f['rule_id']} {f['drugs']}" for f in findings]


def test_case_table_is_large_enough_and_cited() -> None:
    assert len(POSITIVE) >= 150
    assert len(CLEAN) >= 50
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert all(c.get("src") for c in CASES)


@pytest.mark.parametrize("case", POSITIVE, ids=[c["id"] for c in POSITIVE])
def test_expected_findings_fire(case: dict[str, Any]) -> None:
    result = review(prescription_of(case), load_rx_knowledge()).to_dict()
    findings = result["findings"]
    for expected in case["expect"]:
        category, drugs = expected[0], sorted(expected[1])
        severity = expected[2] if len(expected) > 2 else None
        match = [
            f
            for f in findings
            if f["category"] == category
            and sorted(f["drugs"]) == drugs
            and (severity is None or f["severity"] == severity)
        ]
        assert match, f"{case['id']}: expected {expected} in {_describe(findings)}"


@pytest.mark.parametrize("case", CLEAN, ids=[c["id"] for c in CLEAN])
def test_clean_prescription_raises_nothing(case: dict[str, Any]) -> None:
    result = review(prescription_of(case), load_rx_knowledge()).to_dict()
    assert result["findings"] == [], f"{case['id']}: false alarms {_describe(result['findings'])}"
    assert result["verdict"] == "pass"
