"""The nurse confirms or overrides a suggested level; a changed level needs a reason."""

from __future__ import annotations

import pytest

from medbrain.core.errors import InputError
from medbrain.triage import apply_decision, assess_document, default_knowledge

CHEST = {"complaint": "胸痛伴大汗", "age_years": 60}
COLD = {"complaint": "感冒流鼻涕", "age_years": 30}


def test_confirming_keeps_the_level_and_records_it() -> None:
    suggested = assess_document(CHEST, default_knowledge())
    decided = apply_decision(suggested, default_knowledge(), 2)
    assert decided.level == 2
    assert decided.decision == {"action": "confirmed", "suggested_level": 2, "final_level": 2}
    assert decided.reasons[-1] == "分诊护士确认级别 Ⅱ级"


def test_override_without_reason_is_refused_naming_reason() -> None:
    suggested = assess_document(CHEST, default_knowledge())
    with pytest.raises(InputError) as caught:
        apply_decision(suggested, default_knowledge(), 3, "  ")
    assert caught.value.field == "reason"


@pytest.mark.parametrize("level", [0, 5, "2", True, None])
def test_final_level_must_be_1_to_4(level: object) -> None:
    suggested = assess_document(CHEST, default_knowledge())
    with pytest.raises(InputError) as caught:
        apply_decision(suggested, default_knowledge(), level, "x")
    assert caught.value.field == "final_level"


def test_upgrading_a_minor_complaint_sends_it_to_the_emergency_department() -> None:
    suggested = assess_document(COLD, default_knowledge())
    assert suggested.care == "self_care"
    decided = apply_decision(suggested, default_knowledge(), 2, "looks unwell", lang="en")
    assert (decided.level, decided.zone, decided.care) == (2, "red", "emergency")
    assert decided.department.code == "20"
    assert (
        decided.reasons[-1]
        == "Triage nurse changed the level from Ⅳ级 to Ⅱ级; reason: looks unwell"
    )


def test_downgrading_to_level_4_is_non_emergency_with_the_specialty() -> None:
    suggested = assess_document(CHEST, default_knowledge())
    decided = apply_decision(suggested, default_knowledge(), 4, "复查心电图及肌钙蛋白正常")
    assert decided.care == "non_emergency"
    assert decided.department.code == "03.04"
    assert decided.zone == "green"
