"""NEWS2 against the RCP 2017 Chart 1 bands, scale 2, oxygen and missing parameters."""

from __future__ import annotations

import pytest

from medbrain.triage import Vitals, default_knowledge, score_news2

TABLE = default_knowledge().news2
NORMAL = {"rr": 16, "spo2": 97, "sbp": 120, "hr": 70, "temp_c": 37.0, "consciousness": "A"}


def _points(param: str, **changes: object) -> int:
    values: dict[str, object] = {**NORMAL, **changes}
    score = score_news2(Vitals(**values), TABLE)  # type: ignore[arg-type]
    assert score is not None
    return dict(score.parts)[param]


@pytest.mark.parametrize(
    ("rr", "points"),
    [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (40, 3)],
)
def test_respiration_rate_bands(rr: int, points: int) -> None:
    assert _points("rr", rr=rr) == points


@pytest.mark.parametrize(
    ("spo2", "points"), [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
)
def test_spo2_scale_1_bands(spo2: int, points: int) -> None:
    assert _points("spo2", spo2=spo2) == points


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "points"),
    [
        (83, False, 3),
        (84, False, 2),
        (85, False, 2),
        (86, False, 1),
        (87, False, 1),
        (88, False, 0),
        (92, False, 0),
        (93, False, 0),
        (99, False, 0),
        (93, True, 1),
        (94, True, 1),
        (95, True, 2),
        (96, True, 2),
        (97, True, 3),
    ],
)
def test_spo2_scale_2_when_hypercapnic(spo2: int, on_oxygen: bool, points: int) -> None:
    vitals = Vitals(**{**NORMAL, "spo2": spo2, "on_oxygen": on_oxygen})  # type: ignore[arg-type]
    score = score_news2(vitals, TABLE, hypercapnic=True)
    assert score is not None and score.scale == 2
    assert dict(score.parts)["spo2"] == points


def test_supplemental_oxygen_scores_2() -> None:
    assert _points("air_or_oxygen", on_oxygen=True) == 2
    assert _points("air_or_oxygen") == 0


@pytest.mark.parametrize(
    ("sbp", "points"),
    [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_systolic_bands(sbp: int, points: int) -> None:
    assert _points("sbp", sbp=sbp) == points


@pytest.mark.parametrize(
    ("hr", "points"),
    [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
)
def test_pulse_bands(hr: int, points: int) -> None:
    assert _points("hr", hr=hr) == points


@pytest.mark.parametrize(
    ("temp", "points"),
    [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)],
)
def test_temperature_bands(temp: float, points: int) -> None:
    assert _points("temp_c", temp_c=temp) == points


@pytest.mark.parametrize(("letter", "points"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness_acvpu(letter: str, points: int) -> None:
    assert _points("consciousness", consciousness=letter) == points


def test_gcs_below_15_reads_as_not_alert_when_no_acvpu() -> None:
    score = score_news2(Vitals(gcs=14), TABLE)
    assert score is not None and dict(score.parts)["consciousness"] == 3


def test_total_and_single_red_and_missing_parameters() -> None:
    score = score_news2(Vitals(rr=26, spo2=93, sbp=105, hr=115, temp_c=38.5), TABLE)
    assert score is not None
    assert score.total == 3 + 2 + 1 + 2 + 1
    assert score.single_red == ("rr",)
    assert score.missing == ("consciousness",)


def test_no_measured_parameter_gives_no_score() -> None:
    assert score_news2(Vitals(), TABLE) is None


def test_news2_not_computed_for_children_or_pregnancy() -> None:
    from medbrain.triage import assess_document

    vitals = {"hr": 120, "rr": 30, "spo2": 97, "temp_c": 37.0}
    child = assess_document(
        {"complaint": "咳嗽", "age_years": 8, "vitals": vitals}, default_knowledge()
    )
    pregnant = assess_document(
        {"complaint": "咳嗽", "age_years": 30, "sex": "female", "pregnant": True, "vitals": vitals},
        default_knowledge(),
        lang="en",
    )
    assert child.news2 is None and any("16" in r for r in child.reasons)
    assert pregnant.news2 is None and any("pregnancy" in r for r in pregnant.reasons)
