"""Blind prescriptions (``tests/fixtures/rx/blind``): written before the engine was read.

The problem cases must each be found (an actionable finding of an expected kind naming the
expected drugs); the clean ones must raise no warning or critical finding (no alert fatigue).
Blind measurement before the knowledge fixes of 2026-11-23: 59/64 found, 4/50 false alarms;
the fixes were general (missing drugs, rules, a lab-conditioned interaction severity) and
never special-cased a case.
"""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.rx import load_rx_knowledge, review
from tests.unit.rx.blindbook import alarms, found, load, prescription_of

PROBLEMS = load("problems")
CLEAN = load("clean")


def _findings(case: dict[str, Any]) -> list[dict[str, Any]]:
    return list(review(prescription_of(case), load_rx_knowledge()).to_dict()["findings"])


def _describe(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['category']}/{f['severity']}/{f['rule_id']} {f['drugs']}" for f in findings]


def test_blind_set_is_large_cited_and_unique() -> None:
    assert len(PROBLEMS) >= 40
    assert len(CLEAN) >= 40
    ids = [c["id"] for c in PROBLEMS + CLEAN]
    assert len(ids) == len(set(ids))
    assert all(c.get("src") and c["expect"]["kinds"] and c["expect"]["drugs"] for c in PROBLEMS)
    assert all(c.get("why") for c in CLEAN)


def test_sensitivity_does_not_regress() -> None:
    missed = [c["id"] for c in PROBLEMS if not found(c, _findings(c))]
    assert len(PROBLEMS) - len(missed) >= 64, f"missed {missed}"


@pytest.mark.parametrize("case", PROBLEMS, ids=[c["id"] for c in PROBLEMS])
def test_problem_is_found(case: dict[str, Any]) -> None:
    findings = _findings(case)
    assert found(case, findings), (
        f"{case['id']}: expected {case['expect']} in {_describe(findings)}"
    )


@pytest.mark.parametrize("case", CLEAN, ids=[c["id"] for c in CLEAN])
def test_clean_prescription_raises_no_alarm(case: dict[str, Any]) -> None:
    result = review(prescription_of(case), load_rx_knowledge()).to_dict()
    assert alarms(result["findings"]) == [], f"{case['id']}: {_describe(result['findings'])}"
    assert result["verdict"] == "pass"


def _review(patient: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rx = {"patient": {"age_years": 62, "sex": "male", "weight_kg": 75, **patient}, "items": items}
    return list(review(rx, load_rx_knowledge()).to_dict()["findings"])


MRA_ARNI = [
    {"drug": "沙库巴曲缬沙坦钠片", "dose": 50, "unit": "mg", "route": "po", "frequency": "bid"},
    {"drug": "螺内酯片", "dose": 20, "unit": "mg", "route": "po", "frequency": "qd"},
]


@pytest.mark.parametrize(
    ("labs", "severity"),
    [
        ({"creatinine_umol_l": 90, "potassium_mmol_l": 4.2}, "info"),
        ({"creatinine_umol_l": 90, "potassium_mmol_l": 5.3}, "warning"),
        ({"creatinine_umol_l": 300, "potassium_mmol_l": 4.2}, "warning"),
        ({"creatinine_umol_l": 90}, "warning"),
    ],
)
def test_mra_with_raas_is_monitoring_advice_only_when_potassium_and_crcl_allow(
    labs: dict[str, float], severity: str
) -> None:
    findings = _review({"diagnoses": ["慢性心力衰竭"], "labs": labs}, MRA_ARNI)
    hits = [f for f in findings if f["rule_id"] == "rx.interaction.raas-potassium-sparing"]
    assert [f["severity"] for f in hits] == [severity]


@pytest.mark.parametrize(("dose", "fires"), [(50, False), (60, True)])
def test_weight_based_limit_allows_rounding_to_a_syringe(dose: float, fires: bool) -> None:
    item = {"drug": "依诺肝素钠注射液", "dose": dose, "unit": "mg", "route": "ih"}
    findings = _review(
        {"weight_kg": 48, "diagnoses": ["深静脉血栓形成"]}, [{**item, "frequency": "q12h"}]
    )
    assert any(f["rule_id"] == "rx.dose.weight-daily-max" for f in findings) is fires
