"""Stewardship knowledge stays honest and consistent: the culture LOINC codes, their names, the
codes the demo and the alerts use, the unverified targets flagged, and the prophylaxis duration
arithmetic over administered doses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml

from medbrain.alerts.knowledge import load_alert_knowledge
from medbrain.core.errors import KnowledgeError
from medbrain.rx import load_rx_knowledge
from medbrain.rx.culture_metrics import (
    Dose,
    ProphylaxisCase,
    build_quality_rules,
    has_infection_indication,
    is_culture,
    is_operation,
    load_quality_rules,
    prophylaxis_case_from_doses,
    prophylaxis_hours,
    prophylaxis_timing,
)
from medbrain.store.rx_stewardship import DEMO_CULTURES, DEMO_PROPHYLAXIS_PATTERNS

RULES = load_quality_rules()
INCISION = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
END = INCISION + timedelta(minutes=90)


def _yaml(name: str) -> dict[str, Any]:
    text = resources.files("medbrain.knowledge").joinpath("rx").joinpath(name).read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_every_culture_code_has_its_loinc_name_and_the_source_says_how_it_was_checked() -> None:
    culture = _yaml("stewardship_quality.yaml")["culture"]
    assert set(culture["loinc_display"]) == set(culture["loinc"]) == set(RULES.culture_codes)
    for code, name in culture["loinc_display"].items():
        assert "identified" in name and "ulture" in name, code
    assert "2026-11-23" in culture["codes_source"] and "loinc.org" in culture["codes_source"]


def test_demo_and_alert_culture_codes_are_counted_by_the_metrics() -> None:
    names = _yaml("stewardship_quality.yaml")["culture"]["loinc_display"]
    for code, display, zh in DEMO_CULTURES:
        assert code in RULES.culture_codes and names[code] == display
        assert is_culture(code, zh, RULES)
    blood = load_alert_knowledge().analytes["blood_culture"]
    assert blood.loinc and set(blood.loinc) <= RULES.culture_codes
    # a procalcitonin or smear is not a culture, by code or by name
    assert not is_culture("33959-8", "Procalcitonin", RULES)


def test_unverified_targets_are_flagged_for_review_and_shown() -> None:
    quality = _yaml("stewardship_quality.yaml")
    ddd = _yaml("ddd.yaml")
    assert quality["culture"]["targets_needs_review"] is True
    assert quality["surgical_prophylaxis"]["needs_review"] is True
    assert ddd["targets"]["needs_review"] is True
    for note in (quality["culture"]["note"], ddd["targets"]["note"]):
        assert "NOT verified" in note
    assert "NOT verified" in RULES.culture_note  # reaches the dashboard through the report
    assert RULES.prophylaxis_note and RULES.clean_max_hours == 24.0
    assert RULES.window == (30.0, 60.0) and RULES.long_window == (60.0, 120.0)


def test_operations_are_told_from_diagnostic_procedures_by_icd9cm3_code() -> None:
    assert is_operation("68.29", RULES) and is_operation("81.52", RULES)
    assert not is_operation("88.56", RULES)  # coronary angiography
    assert not is_operation(None, RULES) and not is_operation("", RULES)


def test_infection_diagnosis_makes_perioperative_antimicrobials_treatment() -> None:
    am = load_rx_knowledge(None).antimicrobial
    assert has_infection_indication(["急性化脓性阑尾炎"], am.infection_terms, am.prophylaxis_terms)
    assert not has_infection_indication(["子宫平滑肌瘤"], am.infection_terms, am.prophylaxis_terms)


def test_prophylaxis_course_from_doses_timing_and_duration() -> None:
    doses = [
        Dose(INCISION - timedelta(hours=30), "cefazolin"),  # an earlier course: not this one
        Dose(INCISION - timedelta(minutes=40), "cefazolin"),
        Dose(END + timedelta(hours=8), "cefazolin", given_end=END + timedelta(hours=8.5)),
    ]
    case = prophylaxis_case_from_doses("E/1", "妇产科", INCISION, END, doses, RULES)
    assert case is not None and case.first_dose_at == INCISION - timedelta(minutes=40)
    assert case.last_dose_at == END + timedelta(hours=8.5)
    assert prophylaxis_hours(case) == pytest.approx(8.5)
    assert prophylaxis_case_from_doses("E/2", "x", INCISION, END, doses[:1], RULES) is None

    long_course = ProphylaxisCase(
        "E/3", "骨科", INCISION, INCISION - timedelta(minutes=150), "cefazolin",
        end_at=None, last_dose_at=INCISION + timedelta(hours=48),
    )  # fmt: skip
    no_last = ProphylaxisCase("E/4", "骨科", INCISION, INCISION + timedelta(minutes=10))
    report = prophylaxis_timing([case, long_course, no_last], RULES)
    assert (report["on_time"], report["early"], report["late"]) == (1, 1, 1)
    assert report["duration"] == {
        "operations": 2, "over_limit": 1, "within_limit_pct": 50.0, "limit_hours": 24.0,
    }  # fmt: skip
    ortho = next(d for d in report["by_department"] if d["department"] == "骨科")
    assert (ortho["operations"], ortho["over_limit"]) == (2, 1)


def test_demo_patterns_cover_on_time_early_late_and_an_over_long_course() -> None:
    cases = [
        ProphylaxisCase(
            f"E/{n}",
            "d",
            INCISION,
            INCISION + timedelta(minutes=first),
            "cefazolin",
            end_at=END,
            last_dose_at=END + timedelta(hours=hours),
        )
        for n, (first, hours) in enumerate(DEMO_PROPHYLAXIS_PATTERNS)
    ]
    report = prophylaxis_timing(cases, RULES)
    assert (report["on_time"], report["early"], report["late"]) == (1, 1, 1)
    assert report["duration"]["over_limit"] == 1


def test_bad_duration_setting_is_a_knowledge_error() -> None:
    raw = {
        "culture": {"loinc": ["600-7"], "targets_source": "x"},
        "surgical_prophylaxis": {
            "window_minutes": [30, 60], "source": "x", "clean_max_duration_hours": 0,
        },
    }  # fmt: skip
    with pytest.raises(KnowledgeError, match="clean_max_duration_hours"):
        build_quality_rules(raw)
