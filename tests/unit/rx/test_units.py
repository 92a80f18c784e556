"""Dose text, unit conversion and frequency arithmetic (property tests with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbrain.rx import load_rx_knowledge, parse_prescription
from medbrain.rx.units import (
    COUNT,
    IU,
    MASS,
    UnitProblem,
    canonical_route,
    convert_amount,
    form_from_name,
    parse_dose,
    per_day,
)

KB = load_rx_knowledge()
VOCAB = KB.vocab
amounts = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(amounts)
def test_g_mg_ug_round_trip(value: float) -> None:
    grams = parse_dose(value, "g", VOCAB)
    mg = value * grams.factor
    micro = parse_dose(mg * 1000, "µg", VOCAB)
    assert micro.value * micro.factor == pytest.approx(mg, rel=1e-9)
    back = parse_dose(mg, "mg", VOCAB)
    assert back.value * back.factor / 1000 == pytest.approx(value, rel=1e-9)


@given(amounts)
def test_mass_converts_into_drug_units(value: float) -> None:
    assert convert_amount(value, MASS, KB.drugs["amoxicillin"]) == pytest.approx(value)
    assert convert_amount(value, MASS, KB.drugs["levothyroxine"]) == pytest.approx(value * 1000)
    assert convert_amount(value, IU, KB.drugs["amoxicillin"]) is None


@given(st.floats(min_value=1, max_value=10000, allow_nan=False))
def test_enoxaparin_iu_to_mg(iu: float) -> None:
    assert convert_amount(iu, IU, KB.drugs["enoxaparin"]) == pytest.approx(iu / 100)


@given(st.integers(min_value=1, max_value=20), st.sampled_from([10, 20, 40, 80]))
def test_tablets_convert_to_mg_by_strength(count: int, strength: int) -> None:
    rx = parse_prescription(
        {"items": [{"drug": f"阿托伐他汀钙片({strength}mg)", "dose": count, "unit": "片"}]}, KB
    )
    assert rx.items[0].dose_amount == pytest.approx(count * strength)


def test_one_tablet_without_spec_uses_the_only_strength() -> None:
    rx = parse_prescription({"items": [{"drug": "硝苯地平控释片", "dose": 1, "unit": "片"}]}, KB)
    assert rx.items[0].dose_amount == 30  # smallest controlled-release strength


def test_combination_product_counts_pieces() -> None:
    rx = parse_prescription({"items": [{"drug": "感冒灵颗粒", "dose": 1, "unit": "袋"}]}, KB)
    assert rx.items[0].dose_amount == 1
    assert rx.items[0].drug is not None
    assert rx.items[0].drug.components["paracetamol"] == 200


def test_suspension_ml_converts_by_concentration() -> None:
    rx = parse_prescription(
        {"items": [{"drug": "对乙酰氨基酚混悬液", "dose": 5, "unit": "ml"}]}, KB
    )
    assert rx.items[0].dose_amount == pytest.approx(160)


def test_wan_units_penicillin() -> None:
    rx = parse_prescription({"items": [{"drug": "注射用青霉素钠", "dose": 400, "unit": "万U"}]}, KB)
    assert rx.items[0].dose_amount == 4_000_000


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("0.5g", 0.5, "g"),
        ("500 mg", 500, "mg"),
        ("1-2片", 2, "片"),
        ("２ｇ", 2, "g"),
        ("100µg", 100, "μg"),
    ],
)
def test_dose_text(text: str, value: float, unit: str) -> None:
    parsed = parse_dose(text, None, VOCAB)
    assert (parsed.value, parsed.unit) == (value, unit)


def test_count_family() -> None:
    assert parse_dose(2, "粒", VOCAB).family == COUNT


@pytest.mark.parametrize(
    ("dose", "unit"),
    [(-1, "mg"), (0, "mg"), ("abc", "mg"), (1, "furlong"), (1, None), (True, "mg"), ("2-1g", None)],
)
def test_bad_doses_are_refused(dose: object, unit: object) -> None:
    with pytest.raises(UnitProblem):
        parse_dose(dose, unit, VOCAB)


@pytest.mark.parametrize(
    ("code", "times"),
    [
        ("qd", 1),
        ("BID", 2),
        ("t.i.d.", 3),
        ("q8h", 3),
        ("q6h", 4),
        ("qw", 1 / 7),
        ("一日3次", 3),
        ("每8小时1次", 3),
        ("3次/日", 3),
        ("qod", 0.5),
        ("prn", None),
    ],
)
def test_frequencies(code: str, times: float | None) -> None:
    _, per = per_day(code, VOCAB)
    assert per == (pytest.approx(times, rel=1e-3) if times is not None else None)


def test_unknown_frequency_is_refused() -> None:
    with pytest.raises(UnitProblem):
        per_day("sometimes", VOCAB)


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("po", "oral"),
        ("口服", "oral"),
        ("ivgtt", "iv"),
        ("静滴", "iv"),
        ("ih", "sc"),
        ("肌注", "im"),
    ],
)
def test_routes(text: str, route: str) -> None:
    assert canonical_route(text, VOCAB) == route


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("阿莫西林胶囊", "capsule"),
        ("注射用头孢曲松钠", "injection"),
        ("硝苯地平控释片", "cr_tablet"),
        ("布洛芬缓释胶囊", "sr_capsule"),
    ],
)
def test_form_from_name(name: str, form: str) -> None:
    assert form_from_name(name, VOCAB) == form
