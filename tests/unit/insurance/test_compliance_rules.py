"""Each compliance family fires on a positive and stays silent on a near miss."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from medbrain.insurance.knowledge import load_rules
from medbrain.insurance.pipeline import analyse_documents, insurance_knowledge

CASE: dict[str, Any] = {
    "case_id": "A1",
    "patient_id": "P1",
    "department": "呼吸内科",
    "doctor": "王医生",
    "sex": "male",
    "age_years": 66,
    "admit_date": "2025-03-01",
    "discharge_date": "2025-03-08",
    "discharge_status": "1",
    "principal_diagnosis": "J18.900",
    "secondary_diagnoses": [],
    "claim_lines": [
        {
            "name": "血常规",
            "category": "lab",
            "date": "2025-03-02",
            "quantity": 1,
            "unit_price": 20,
            "order_id": "O1",
        },
        {
            "name": "胸部CT",
            "category": "exam",
            "date": "2025-03-02",
            "quantity": 1,
            "unit_price": 260,
            "order_id": "O2",
        },
        {
            "name": "床位费",
            "category": "bed",
            "date": "2025-03-01",
            "quantity": 7,
            "unit_price": 60,
            "order_id": "O3",
        },
        {
            "name": "静脉输液及基础药品",
            "category": "drug",
            "date": "2025-03-03",
            "quantity": 1,
            "unit_price": 3000,
            "order_id": "O4",
        },
    ],
    "orders": [
        {"order_id": "O1", "name": "血常规"},
        {"order_id": "O2", "name": "胸部CT"},
        {"order_id": "O3", "name": "床位费"},
        {"order_id": "O4", "name": "静脉输液及基础药品"},
    ],
    "labs": [{"name": "PaO2", "value": 55, "unit": "mmHg"}],
    "notes": {"course": "胸部CT示右下肺斑片影，诊断肺炎。"},
}


def _rules(documents: list[dict[str, Any]], overrides: dict[str, Any] | None = None) -> set[str]:
    results = analyse_documents(documents, insurance_knowledge(overrides))
    return {f.rule_id for f in results[-1].findings}


def _line(**fields: Any) -> dict[str, Any]:
    return {
        "category": "lab",
        "date": "2025-03-03",
        "quantity": 1,
        "unit_price": 30,
        "order_id": "O1",
        **fields,
    }


def test_clean_case_has_no_flags() -> None:
    assert _rules([CASE]) == set()


def _with(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(CASE)
    doc.update(changes)
    return doc


def _add_lines(*lines: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(CASE)
    doc["claim_lines"].extend(lines)
    return doc


POSITIVE_AND_NEAR_MISS = [
    # upcoding: MCC without evidence / with the blood gas that supports it
    (
        "ins.upcoding.sepsis",
        _with(secondary_diagnoses=["A41.900"]),
        _with(secondary_diagnoses=["A41.900"], labs=[{"name": "降钙素原", "value": 8.5}]),
    ),
    (
        "ins.upcoding.hypokalaemia",
        _with(secondary_diagnoses=["E87.600"]),
        _with(secondary_diagnoses=["E87.600"], labs=[{"name": "血钾", "value": 3.1}]),
    ),
    # excessive tests: 3 CBC in one day vs 2
    (
        "ins.excess.cbc",
        _add_lines(_line(name="血常规", quantity=2, date="2025-03-02")),
        _add_lines(_line(name="血常规", quantity=1, date="2025-03-02")),
    ),
    # unbundling: panel + component same day vs different days
    (
        "ins.unbundle.liver-panel",
        _add_lines(_line(name="肝功能"), _line(name="丙氨酸氨基转移酶")),
        _add_lines(_line(name="肝功能"), _line(name="丙氨酸氨基转移酶", date="2025-03-04")),
    ),
    # duplicate identical exam lines vs the same exam on another day
    (
        "ins.duplicate.identical-line",
        _add_lines(
            _line(name="胸部CT", category="exam", unit_price=260, date="2025-03-02", order_id="O2")
        ),
        _add_lines(
            _line(name="胸部CT", category="exam", unit_price=260, date="2025-03-06", order_id="O2")
        ),
    ),
    # bed days above LOS + 1
    (
        "ins.duplicate.bed-days",
        _add_lines(_line(name="床位费", category="bed", quantity=2, unit_price=60, order_id="O3")),
        _add_lines(_line(name="床位费", category="bed", quantity=1, unit_price=60, order_id="O3")),
    ),
    # billed without order vs with order
    (
        "ins.no-order.lab",
        _add_lines(_line(name="降钙素原", order_id=None)),
        _add_lines(_line(name="血常规", order_id=None)),
    ),
    # phantom: billed after discharge vs on discharge day
    (
        "ins.phantom.outside-stay",
        _add_lines(_line(name="磁共振", date="2025-03-10")),
        _add_lines(_line(name="血常规", date="2025-03-08")),
    ),
    # restricted drug: albumin with / without albumin < 30
    (
        "ins.restricted.albumin",
        _add_lines(_line(name="人血白蛋白", category="drug", unit_price=400)),
        _add_lines(_line(name="人血白蛋白", category="drug", unit_price=400))
        | {"labs": [{"name": "白蛋白", "value": 24}]},
    ),
    # low-standard: principal is an observation code
    (
        "ins.low-standard.observation-code",
        _with(principal_diagnosis="Z03.900"),
        _with(principal_diagnosis="J18.900"),
    ),
    # sex-specific code
    (
        "ins.mismatch.sex-specific-code",
        _with(secondary_diagnoses=["N40.x00"], sex="female"),
        _with(secondary_diagnoses=["N40.x00"]),
    ),
    # outpatient claim during the stay vs before it
    (
        "ins.shift.outpatient-during-stay",
        _with(
            outpatient_lines=[
                _line(name="头颅CT", category="exam", date="2025-03-04", unit_price=300)
            ]
        ),
        _with(
            outpatient_lines=[
                _line(name="头颅CT", category="exam", date="2025-02-01", unit_price=300)
            ]
        ),
    ),
    # data quality: negative amount vs zero
    (
        "ins.quality.amounts",
        _add_lines(_line(name="血常规", unit_price=-20)),
        _add_lines(_line(name="血常规", unit_price=0)),
    ),
    # principal diagnosis vs main operation: a surgical procedure of another system
    ("ins.mismatch.principal-vs-operation", _with(procedures=["51.2300"]), _with(procedures=[])),
]


@pytest.mark.parametrize(
    ("rule_id", "positive", "near_miss"),
    POSITIVE_AND_NEAR_MISS,
    ids=[p[0] for p in POSITIVE_AND_NEAR_MISS],
)
def test_rule_fires_on_positive_and_not_on_near_miss(
    rule_id: str, positive: dict[str, Any], near_miss: dict[str, Any]
) -> None:
    assert rule_id in _rules([positive])
    assert rule_id not in _rules([near_miss])


def _stay(case_id: str, admit: str, discharge: str, principal: str = "J18.900") -> dict[str, Any]:
    return _with(
        case_id=case_id, admit_date=admit, discharge_date=discharge, principal_diagnosis=principal
    )


def test_readmission_within_configured_days_is_split_admission() -> None:
    first = _stay("A0", "2025-02-10", "2025-02-20")
    assert "ins.split.same-diagnosis" in _rules(
        [first, _stay("A1", "2025-03-01", "2025-03-08")]
    )  # 9 days
    assert "ins.split.same-diagnosis" not in _rules(
        [first, _stay("A1", "2025-03-10", "2025-03-17")]
    )  # 18
    # a hospital that uses 7 days: the 9-day readmission no longer fires
    override = {"settings": {"readmission_days": 7}}
    assert "ins.split.same-diagnosis" not in _rules(
        [first, _stay("A1", "2025-03-01", "2025-03-08")], override
    )
    # planned chemotherapy readmissions are excluded
    chemo = [
        _stay("A0", "2025-02-10", "2025-02-20", "Z51.100"),
        _stay("A1", "2025-03-01", "2025-03-08", "Z51.100"),
    ]
    assert "ins.split.same-diagnosis" not in _rules(chemo)


def test_overlapping_claims_of_one_patient_are_duplicate() -> None:
    first = _stay("A0", "2025-03-01", "2025-03-08")
    assert "ins.duplicate.overlapping-stay" in _rules(
        [first, _stay("A1", "2025-03-01", "2025-03-08")]
    )


def test_hospital_disables_a_rule_and_changes_a_threshold() -> None:
    positive = _add_lines(_line(name="血常规", quantity=2, date="2025-03-02"))
    assert "ins.excess.cbc" in _rules([positive])
    assert "ins.excess.cbc" not in _rules(
        [positive], {"rules": [{"id": "ins.excess.cbc", "enabled": False}]}
    )
    relaxed = {"rules": [{"id": "ins.excess.cbc", "params": {"max_per_day": 5}}]}
    assert "ins.excess.cbc" not in _rules([positive], relaxed)


def test_every_rule_row_has_source_and_both_languages() -> None:
    rules = load_rules()["rules"]
    assert len(rules) >= 120
    from medbrain.insurance.compliance import FAMILIES

    for row in rules:
        assert row["source"] and row["zh"] and row["en"]
        assert row["family"] in FAMILIES, row["id"]


def test_finding_quotes_the_claim_line() -> None:
    results = analyse_documents(
        [_add_lines(_line(name="磁共振", date="2025-03-10"))], insurance_knowledge()
    )
    finding = next(f for f in results[0].findings if f.rule_id == "ins.phantom.outside-stay")
    quotes = [e.quote for e in finding.evidence if e.quote]
    assert any("2025-03-10 磁共振" in q for q in quotes)
