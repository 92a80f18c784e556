"""Engine behaviour: determinism, `now`, sorting, scores, eGFR and free-water maths."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from medbrain.alerts import evaluate_bundle, load_alert_knowledge
from medbrain.alerts.scores import egfr_ckd_epi_2021, free_water_deficit_l
from medbrain.core.errors import InputError
from tests.unit.alerts.bundles import build_bundle

KNOWLEDGE = load_alert_knowledge()
EGFR = KNOWLEDGE.rules["egfr"]

BUSY: dict[str, Any] = {
    "patient": {"sex": "male", "age": 68},
    "conditions": ["头痛", "社区获得性肺炎"],
    "meds": ["缬沙坦胶囊", "螺内酯片"],
    "vitals": {"RR": 24, "HR": 112, "T": 38.6, "SBP": 98},
    "obs": [
        ["K", 6.6, "mmol/L"],
        ["Na", 153, "mmol/L"],
        ["NEUT", 88, "%"],
        ["WBC", 14, "10*9/L"],
        ["Cr", 80, "umol/L", "40h"],
        ["Cr", 130, "umol/L"],
        ["Hb", 130, "g/L", "20h"],
        ["Hb", 104, "g/L"],
    ],
}


def test_output_is_deterministic_and_json_stable() -> None:
    first = json.dumps(evaluate_bundle(build_bundle(BUSY), KNOWLEDGE).to_dict(), sort_keys=True)
    second = json.dumps(evaluate_bundle(build_bundle(BUSY), KNOWLEDGE).to_dict(), sort_keys=True)
    assert first == second


def test_alerts_are_sorted_by_severity_then_rule_id() -> None:
    alerts = evaluate_bundle(build_bundle(BUSY), KNOWLEDGE).alerts
    keys = [(-a.severity.rank, a.rule_id) for a in alerts]
    assert keys == sorted(keys)
    assert {a.category for a in alerts} == {
        "critical_value",
        "sepsis",
        "early_warning",
        "aki",
        "electrolyte",
        "drug_lab",
        "trend",
    }


def test_now_defaults_to_the_latest_observation() -> None:
    report = evaluate_bundle(build_bundle(BUSY), KNOWLEDGE)
    assert report.now == datetime(2024, 5, 1, 4, 0, tzinfo=UTC)


def test_explicit_now_excludes_later_observations() -> None:
    early = datetime(2024, 4, 30, 17, 0, tzinfo=UTC)  # after the first Hb and creatinine only
    report = evaluate_bundle(build_bundle(BUSY), KNOWLEDGE, now=early)
    assert {a.rule_id for a in report.alerts} == set()


def test_naive_now_is_refused() -> None:
    with pytest.raises(InputError) as info:
        evaluate_bundle(build_bundle(BUSY), KNOWLEDGE, now=datetime(2024, 5, 1))
    assert info.value.field == "now"


def test_bundle_without_observations_needs_now() -> None:
    with pytest.raises(InputError) as info:
        evaluate_bundle(build_bundle({"patient": {"age": 40}}), KNOWLEDGE)
    assert info.value.field == "now"
    report = evaluate_bundle(
        build_bundle({"patient": {"age": 40}}), KNOWLEDGE, now=datetime(2024, 5, 1, tzinfo=UTC)
    )
    assert report.alerts == () and report.to_dict()["scores"]["news2"] is None


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], ""),
        ({"resourceType": "Patient"}, "resourceType"),
        ({"resourceType": "Bundle", "entry": {}}, "entry"),
        ({"resourceType": "Bundle", "entry": [1]}, "entry[0].resource"),
        ({"resourceType": "Bundle", "entry": [{"resource": {}}]}, "entry[0].resource.resourceType"),
    ],
)
def test_malformed_bundles_name_the_field(document: Any, field: str) -> None:
    with pytest.raises(InputError) as info:
        evaluate_bundle(document, KNOWLEDGE, source="x.json")
    assert info.value.field == field


def test_scores_report_the_data_points_used() -> None:
    details = evaluate_bundle(build_bundle(BUSY), KNOWLEDGE).to_dict()["score_details"]
    news2 = details["news2"]
    assert news2["total"] == sum(p["points"] for p in news2["parts"])
    assert {p["parameter"] for p in news2["parts"]} >= {"resp_rate", "heart_rate", "temperature"}
    assert all(p["resource"].startswith("Observation/") for p in news2["parts"] if "resource" in p)
    assert details["qsofa"]["total"] == 2
    assert details["sirs"]["total"] == 4


def test_evidence_quotes_the_input_exactly() -> None:
    case = {"obs": [["Cr", 1.2, "mg/dL", "24h"], ["Cr", 2.6, "mg/dL"]]}
    alert = evaluate_bundle(build_bundle(case), KNOWLEDGE).alerts[0]
    quotes = [e.quote for e in alert.evidence if e.resource]
    assert quotes == ["Cr 1.2 mg/dL", "Cr 2.6 mg/dL"]
    assert alert.extra["stage"] == 2
    assert alert.extra["unit"] == "umol/L"


def test_ckd_epi_2021_matches_the_published_worked_example() -> None:
    # 55-year-old woman, creatinine 0.9 mg/dL → about 76 mL/min/1.73 m² (NKF / Inker 2021).
    assert egfr_ckd_epi_2021(0.9 * 88.4, 55, "female", EGFR) == pytest.approx(76, abs=1)


def test_ckd_epi_2021_falls_with_creatinine_and_age() -> None:
    values = [egfr_ckd_epi_2021(c, 60, "male", EGFR) for c in (60, 90, 150, 300)]
    assert values == sorted(values, reverse=True)
    assert egfr_ckd_epi_2021(90, 80, "male", EGFR) < egfr_ckd_epi_2021(90, 40, "male", EGFR)


def test_free_water_deficit_formula() -> None:
    assert free_water_deficit_l(154, 70, 0.6, 140) == pytest.approx(4.2)


def test_comparator_is_quoted_and_its_bound_used() -> None:
    bundle = build_bundle({"obs": [["Glu", 33.3, "mmol/L"]]})
    bundle["entry"][1]["resource"]["valueQuantity"]["comparator"] = ">"
    alert = evaluate_bundle(bundle, KNOWLEDGE).alerts[0]
    assert alert.rule_id == "cv.glucose"
    assert alert.evidence[1].quote == "Glu >33.3 mmol/L"


def test_ucum_code_is_preferred_over_the_display_unit() -> None:
    bundle = build_bundle({"obs": [["Cr", 1.0, "mg/dL", "30h"], ["Cr", 2.0, "x"]]})
    quantity = bundle["entry"][2]["resource"]["valueQuantity"]
    quantity.update({"unit": "毫克/分升", "system": "http://unitsofmeasure.org", "code": "mg/dL"})
    alert = evaluate_bundle(bundle, KNOWLEDGE).alerts[0]
    assert alert.rule_id == "aki.kdigo" and alert.extra["stage"] == 2
    assert alert.evidence[-1].quote == "Cr 2.0 毫克/分升"
