"""Culture-before-therapy and prophylaxis-timing arithmetic on hand-built episodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.rx import load_rx_knowledge
from medbrain.rx.batch import review_chunk, summarize
from medbrain.rx.culture_metrics import (
    ProphylaxisCase,
    TherapyEpisode,
    build_quality_rules,
    culture_submission,
    is_culture,
    load_quality_rules,
    prophylaxis_only,
    prophylaxis_timing,
    prophylaxis_timing_of,
)

RULES = load_quality_rules()
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _ep(key: str, dept: str, grades: set[str], *cultures: float) -> TherapyEpisode:
    """``cultures`` in hours relative to the first antimicrobial order (admitted 12 h before)."""
    return TherapyEpisode(
        key=key, department=dept, first_order_at=T0, grades=frozenset(grades),
        culture_times=tuple(T0 + timedelta(hours=h) for h in cultures),
        admit_at=T0 - timedelta(hours=12),
    )  # fmt: skip


def test_culture_codes_and_display_terms() -> None:
    assert is_culture("600-7", "Blood culture", RULES)
    assert is_culture("LOCAL-9", "痰培养+药敏", RULES)
    assert not is_culture("33959-8", "降钙素原", RULES)  # PCT is not a culture here
    assert not is_culture(None, None, RULES)


def test_rates_by_grade_group_count_only_samples_before_the_first_order() -> None:
    episodes = [
        _ep("a", "ICU", {"特殊", "限制"}, -2),  # cultured 2 h before
        _ep("b", "ICU", {"特殊"}, 3),  # only after the order: not counted
        _ep("c", "呼吸内科", {"限制"}, -40),  # 28 h before admission: outside the window
        _ep("d", "呼吸内科", {"非限制"}, -20),  # 8 h before admission (ED): counts
        _ep("e", "呼吸内科", {"非限制"}),
    ]
    report = culture_submission(episodes, RULES)
    groups = {g["group"]: g for g in report["groups"]}
    assert (groups["all"]["episodes"], groups["all"]["cultured"]) == (5, 2)
    assert groups["all"]["rate_pct"] == 40.0 and groups["all"]["meets_target"] is True  # ≥ 30
    assert (groups["限制"]["episodes"], groups["限制"]["cultured"]) == (2, 1)
    assert groups["限制"]["meets_target"] is True  # 50 % ≥ 50 %
    assert (groups["特殊"]["episodes"], groups["特殊"]["cultured"]) == (2, 1)
    assert groups["特殊"]["meets_target"] is False  # 50 % < 80 %
    depts = {d["department"]: d for d in report["by_department"]}
    assert depts["呼吸内科"]["rate_pct"] == pytest.approx(33.33)
    assert report["by_department"][0]["department"] == "呼吸内科"  # worst first
    assert "600-7" in report["codes"]


def test_empty_period_has_no_rate_and_no_verdict() -> None:
    groups = culture_submission([], RULES)["groups"]
    assert all(g["rate_pct"] is None and g["meets_target"] is None for g in groups)


def test_prophylaxis_only_diagnoses_leave_the_therapeutic_denominator() -> None:
    am = load_rx_knowledge(None).antimicrobial
    terms = (am.infection_terms, am.prophylaxis_terms)
    assert prophylaxis_only(["腹股沟疝", "围手术期预防用药"], *terms)
    assert not prophylaxis_only(["围手术期预防用药", "肺炎"], *terms)
    assert not prophylaxis_only(["肺炎"], *terms)


@pytest.mark.parametrize(
    ("drug", "minutes_before", "status"),
    [
        ("cefazolin", 45, "on_time"),
        ("cefazolin", 30, "on_time"),
        ("cefazolin", 90, "early"),
        ("cefazolin", 10, "late"),
        ("cefazolin", -5, "late"),  # after the incision
        ("vancomycin", 90, "on_time"),  # 1–2 h window for vancomycin
        ("vancomycin", 45, "late"),
    ],
)
def test_prophylaxis_timing_window(drug: str, minutes_before: float, status: str) -> None:
    incision = T0
    case = ProphylaxisCase("op", "普外科", incision, incision - timedelta(minutes=minutes_before),
                           drug)  # fmt: skip
    assert prophylaxis_timing_of(case, RULES) == (status, pytest.approx(minutes_before))


def test_prophylaxis_summary_counts_missing_doses() -> None:
    cases = [
        ProphylaxisCase("1", "普外科", T0, T0 - timedelta(minutes=40), "cefazolin"),
        ProphylaxisCase("2", "普外科", T0, None),
        ProphylaxisCase("3", "骨科", T0, T0 - timedelta(minutes=200), "cefuroxime"),
    ]
    report = prophylaxis_timing(cases, RULES)
    assert (report["operations"], report["on_time"], report["no_dose"], report["early"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert report["on_time_pct"] == pytest.approx(33.33)


def test_bad_rules_are_refused_with_the_key() -> None:
    with pytest.raises(KnowledgeError, match="window_minutes"):
        build_quality_rules(
            {
                "culture": {"loinc": ["600-7"], "targets_source": "x"},
                "surgical_prophylaxis": {"window_minutes": [60, 30], "source": "y"},
            }
        )
    with pytest.raises(KnowledgeError, match="targets_pct"):
        build_quality_rules(
            {
                "culture": {"loinc": ["600-7"], "targets_source": "x", "targets_pct": {"x": 1}},
                "surgical_prophylaxis": {"window_minutes": [30, 60], "source": "y"},
            }
        )


def _surgery(incision: str | None, *items: tuple[str, str | None]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "patient": {"age_years": 50, "sex": "male", "weight_kg": 70, "diagnoses": ["胆囊结石", "围手术期预防用药"]},
        "setting": "inpatient",
        "department": "普外科",
        "items": [
            {"drug": d, "dose": 2, "unit": "g", "route": "iv", "frequency": "st", "days": 1,
             **({"given_at": at} if at else {})}
            for d, at in items
        ],
    }  # fmt: skip
    if incision is not None:
        doc["surgery"] = {"incision_at": incision}
    return doc


def test_batch_review_times_prophylaxis_from_incision_and_given_at() -> None:
    kb = load_rx_knowledge(None)
    docs = [
        ("on", _surgery("2026-03-01T09:00:00+08:00", ("注射用头孢唑林钠", "2026-03-01T08:20:00+08:00"))),
        ("late", _surgery("2026-03-01T09:00:00Z", ("注射用头孢唑林钠", "2026-03-01T09:10:00Z"))),
        ("none", _surgery("2026-03-01T09:00:00Z", ("注射用头孢唑林钠", None))),
        ("no-surgery", _surgery(None, ("注射用头孢唑林钠", None))),
    ]  # fmt: skip
    rows = review_chunk(docs, kb)
    assert rows[0]["_prophylaxis"]["status"] == "on_time"
    assert rows[0]["_prophylaxis"]["minutes_before"] == 40.0
    assert "_prophylaxis" not in rows[3]
    timing = summarize(rows)["prophylaxis_timing"]
    assert (timing["operations"], timing["on_time"], timing["late"], timing["no_dose"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert "prophylaxis_timing" not in summarize(rows[3:])


def test_bad_incision_time_is_an_error_row_naming_the_field() -> None:
    kb = load_rx_knowledge(None)
    row = review_chunk([("x", _surgery("yesterday", ("注射用头孢唑林钠", None)))], kb)[0]
    assert row["verdict"] == "error" and "surgery.incision_at" in row["error"]
    row = review_chunk([("y", _surgery("2026-03-01T09:00:00Z", ("注射用头孢唑林钠", "soon")))], kb)[
        0
    ]
    assert row["verdict"] == "error" and "items[0].given_at" in row["error"]
