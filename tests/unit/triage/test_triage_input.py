"""Bad input is refused naming the field; unknown fields are reported, not dropped."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.triage import assess_document, default_knowledge


def _error(document: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        assess_document(document, default_knowledge(), source="visit.json")
    return caught.value


@pytest.mark.parametrize(
    ("vitals", "field"),
    [
        ({"spo2": 150}, "vitals.spo2"),
        ({"spo2": 101}, "vitals.spo2"),
        ({"temp_c": 60}, "vitals.temp_c"),
        ({"temp_c": 5}, "vitals.temp_c"),
        ({"hr": -5}, "vitals.hr"),
        ({"hr": 400}, "vitals.hr"),
        ({"sbp": -1}, "vitals.sbp"),
        ({"sbp": 500}, "vitals.sbp"),
        ({"rr": -2}, "vitals.rr"),
        ({"gcs": 2}, "vitals.gcs"),
        ({"gcs": 16}, "vitals.gcs"),
        ({"gcs": 14.5}, "vitals.gcs"),
        ({"glucose_mmol_l": 0}, "vitals.glucose_mmol_l"),
        ({"pain_score": 11}, "vitals.pain_score"),
        ({"potassium_mmol_l": 40}, "vitals.potassium_mmol_l"),
        ({"hr": "fast"}, "vitals.hr"),
        ({"hr": True}, "vitals.hr"),
        ({"sbp": 80, "dbp": 95}, "vitals.dbp"),
        ({"consciousness": "X"}, "vitals.consciousness"),
        ({"on_oxygen": "yes"}, "vitals.on_oxygen"),
    ],
)
def test_impossible_vital_is_refused_naming_the_field(vitals: dict[str, Any], field: str) -> None:
    error = _error({"complaint": "胸痛", "vitals": vitals})
    assert error.field == field
    assert error.source == "visit.json"
    assert field in str(error)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"complaint": ""}, "complaint"),
        ({"complaint": "   "}, "complaint"),
        ({}, "complaint"),
        ({"complaint": 42}, "complaint"),
        ({"complaint": "胸痛", "age_years": -1}, "age_years"),
        ({"complaint": "胸痛", "age_years": 200}, "age_years"),
        ({"complaint": "胸痛", "sex": "robot"}, "sex"),
        ({"complaint": "胸痛", "arrival": "helicopter"}, "arrival"),
        ({"complaint": "胸痛", "pregnant": "yes"}, "pregnant"),
        ({"complaint": "胸痛", "sex": "male", "pregnant": True}, "pregnant"),
        ({"complaint": "胸痛", "onset_minutes": -10}, "onset_minutes"),
        ({"complaint": "胸痛", "vitals": [1, 2]}, "vitals"),
    ],
)
def test_invalid_visit_field_is_named(document: dict[str, Any], field: str) -> None:
    assert _error(document).field == field


def test_empty_complaint_error_is_clear() -> None:
    assert "empty" in str(_error({"complaint": " "}))


def test_a_visit_must_be_an_object() -> None:
    assert "object" in str(_error(["胸痛"]))


def test_unknown_fields_are_reported_not_dropped() -> None:
    result = assess_document(
        {"complaint": "感冒", "colour": "blue", "vitals": {"hr": 80, "bp": "120/80"}},
        default_knowledge(),
    ).to_dict()
    assert result["ignored_fields"] == ["colour", "vitals.bp"]


def test_boundary_values_are_accepted() -> None:
    result = assess_document(
        {"complaint": "胸痛", "vitals": {"spo2": 100, "hr": 0, "gcs": 3, "temp_c": 46}},
        default_knowledge(),
    )
    assert result.level == 1


def test_sex_accepts_chinese_and_single_letter_aliases() -> None:
    knowledge = default_knowledge()
    for raw, expected in (("女", "05.01"), ("F", "05.01"), ("男", "04.04"), ("M", "04.04")):
        result = assess_document({"complaint": "外阴瘙痒", "sex": raw, "age_years": 30}, knowledge)
        assert result.department.code == expected
