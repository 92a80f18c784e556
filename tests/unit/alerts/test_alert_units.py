"""Unit conversions from UCUM units to each analyte's canonical unit."""

from __future__ import annotations

import pytest

from medbrain.alerts import load_alert_knowledge

ANALYTES = load_alert_knowledge().analytes

CONVERSIONS = [
    ("creatinine", 1.0, "mg/dL", 88.4),
    ("creatinine", 0.3, "mg/dL", 26.52),
    ("creatinine", 4.0, "mg/dL", 353.6),
    ("creatinine", 0.1, "mmol/L", 100.0),
    ("glucose", 90, "mg/dL", 4.995),
    ("glucose", 1.0, "g/L", 5.551),
    ("urea", 30, "mg/dL", 4.995),
    ("urea_nitrogen", 14, "mg/dL", 4.998),
    ("calcium", 10, "mg/dL", 2.495),
    ("calcium", 5, "mEq/L", 2.5),
    ("hemoglobin", 12.5, "g/dL", 125.0),
    ("wbc", 8000, "/uL", 8.0),
    ("platelets", 250, "10*3/uL", 250.0),
    ("troponin_i", 0.04, "ng/mL", 40.0),
    ("lactate", 18, "mg/dL", 1.998),
    ("paco2", 5.3, "kPa", 39.75),
    ("temperature", 98.6, "[degF]", 37.0),
    ("temperature", 212, "[degF]", 100.0),
    ("weight", 154, "[lb_av]", 69.85),
    ("potassium", 4.0, "mEq/L", 4.0),
]


@pytest.mark.parametrize(("analyte", "value", "unit", "expected"), CONVERSIONS)
def test_unit_converts_to_canonical(analyte: str, value: float, unit: str, expected: float) -> None:
    rule = ANALYTES[analyte].units[unit]
    assert rule.to_canonical(value) == pytest.approx(expected, rel=1e-3)


def test_every_analyte_lists_its_canonical_unit_and_source() -> None:
    for analyte in ANALYTES.values():
        assert analyte.source
        if analyte.kind == "quantity":
            assert analyte.units[analyte.unit].to_canonical(1.0) == 1.0
