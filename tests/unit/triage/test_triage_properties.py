"""Property checks: any plausible visit triages; worse vital signs never lower urgency."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from medbrain.triage import assess_document, default_knowledge

COMPLAINTS = ["胸痛", "感冒", "头痛", "腹痛", "咳嗽", "fever", "sore throat", "想咨询一下", "扭伤"]

vitals_strategy = st.fixed_dictionaries(
    {},
    optional={
        "hr": st.integers(0, 350),
        "sbp": st.integers(40, 300),
        "rr": st.integers(0, 120),
        "spo2": st.integers(0, 100),
        "temp_c": st.floats(10, 46, allow_nan=False),
        "gcs": st.integers(3, 15),
        "glucose_mmol_l": st.floats(0.1, 150, allow_nan=False),
        "pain_score": st.integers(0, 10),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    complaint=st.sampled_from(COMPLAINTS),
    age=st.one_of(st.none(), st.floats(0, 110, allow_nan=False)),
    vitals=vitals_strategy,
    lang=st.sampled_from(["zh", "en"]),
)
def test_any_plausible_visit_gets_a_complete_answer(
    complaint: str, age: float | None, vitals: dict[str, Any], lang: str
) -> None:
    visit: dict[str, Any] = {"complaint": complaint, "vitals": vitals}
    if age is not None:
        visit["age_years"] = age
    result = assess_document(visit, default_knowledge(), lang=lang).to_dict()
    assert result["level"] in (1, 2, 3, 4)
    assert result["reasons"]
    assert 0.0 <= result["confidence"] <= 1.0
    if result["level"] <= 3:
        assert result["care"] == "emergency"


@settings(max_examples=200, deadline=None)
@given(
    hr=st.integers(60, 99),
    worse_hr=st.integers(100, 350),
    spo2=st.integers(95, 100),
    worse_spo2=st.integers(0, 94),
)
def test_worse_adult_vital_signs_never_lower_urgency(
    hr: int, worse_hr: int, spo2: int, worse_spo2: int
) -> None:
    base = {"complaint": "咳嗽", "age_years": 40}
    normal = assess_document({**base, "vitals": {"hr": hr, "spo2": spo2}}, default_knowledge())
    worse = assess_document(
        {**base, "vitals": {"hr": worse_hr, "spo2": worse_spo2}}, default_knowledge()
    )
    assert worse.level <= normal.level
    assert worse.level <= 3
