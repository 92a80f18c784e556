"""Laboratory results → HPO phenotypes (table-driven, with near-miss negatives)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.rare import PhenotypeIndex, RareKnowledge, parse_case
from medbrain.rare.labs import (
    LabValue,
    default_lab_hpo,
    load_lab_hpo,
    parse_lab_hpo,
    phenotypes_from_labs,
    unmapped_codes,
)

TABLE = default_lab_hpo()


def _one(loinc: str, value: float, unit: str, sex: str | None = None) -> list[tuple[str, bool]]:
    found = phenotypes_from_labs([LabValue(loinc, value, unit)], TABLE, sex=sex)
    return [(p.hpo, p.excluded) for p in found]


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "sex", "expected"),
    [
        ("777-3", 45, "10*9/L", None, [("HP:0001873", False)]),  # thrombocytopenia
        ("777-3", 124.9, "10*9/L", None, [("HP:0001873", False)]),  # just below 125
        ("777-3", 125, "10*9/L", None, [("HP:0001873", True), ("HP:0001894", True)]),
        ("777-3", 600, "10*3/uL", None, [("HP:0001894", False)]),  # thrombocytosis
        ("2157-6", 2500, "U/L", "male", [("HP:0003236", False)]),  # high CK
        ("2157-6", 250, "U/L", "male", [("HP:0003236", True)]),  # normal for a man
        ("2157-6", 250, "U/L", "female", [("HP:0003236", False)]),  # high for a woman
        ("2157-6", 250, "U/L", None, [("HP:0003236", True)]),  # unknown sex: widest interval
        ("2823-3", 3.1, "mmol/L", None, [("HP:0002900", False)]),  # hypokalaemia
        ("2823-3", 5.9, "mEq/L", None, [("HP:0002153", False)]),  # hyperkalaemia
        ("2951-2", 150, "mmol/L", None, [("HP:0003228", False)]),  # hypernatraemia
        ("2951-2", 147, "mmol/L", None, [("HP:0002902", True), ("HP:0003228", True)]),
        ("718-7", 12.0, "g/dL", "male", [("HP:0001903", False)]),  # 120 g/L: anaemia (man)
        ("718-7", 12.0, "g/dL", "female", [("HP:0001903", True), ("HP:0001900", True)]),
        ("2160-0", 2.0, "mg/dL", "female", [("HP:0003259", False)]),  # 176.8 µmol/L
        ("2571-8", 2.0, "mmol/L", None, []),  # borderline TG: neither observed nor excluded
        ("6768-6", 20, "U/L", "male", [("HP:0003282", False)]),  # low ALP (hypophosphatasia)
    ],
)
def test_lab_value_maps_to_hpo(
    loinc: str, value: float, unit: str, sex: str | None, expected: list[tuple[str, bool]]
) -> None:
    assert _one(loinc, value, unit, sex) == expected


def test_any_abnormal_result_of_an_analyte_is_observed_and_normal_ones_do_not_exclude() -> None:
    labs = [LabValue("777-3", 200, "10*9/L"), LabValue("777-3", 60, "10*9/L", "Observation/2")]
    found = phenotypes_from_labs(labs, TABLE)
    assert [(p.hpo, p.excluded, p.resource) for p in found] == [
        ("HP:0001873", False, "Observation/2")
    ]
    assert found[0].low == 125 and "WS" in found[0].source


def test_value_without_unit_or_with_unknown_unit_is_refused() -> None:
    with pytest.raises(InputError, match=r"labs\[1\]\.unit"):
        phenotypes_from_labs([LabValue("999-9", 1, None), LabValue("777-3", 40, None)], TABLE)
    with pytest.raises(InputError, match="furlongs"):
        phenotypes_from_labs([LabValue("777-3", 40, "furlongs")], TABLE)


def test_unknown_codes_are_reported_not_mapped() -> None:
    labs = [LabValue("999-9", 1, "x"), LabValue("777-3", 40, "10*9/L")]
    assert unmapped_codes(labs, TABLE) == ["999-9"]


def test_every_row_has_a_source_and_its_terms_exist_in_hpo(index: PhenotypeIndex) -> None:
    for rule in TABLE.rules:
        assert rule.source
        for hpo in (rule.low_hpo, rule.high_hpo):
            if hpo is not None:
                assert int(hpo[3:]) in index.term_row, (rule.id, hpo)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"high_hpo": "HP:1"}, "HPO id"),
        ({"reference": {"low": 5, "high": 1}}, "below high"),
        ({"reference": {"male": {"high": 1}}}, "male and female"),
        ({"units": {"mg/dL": 1}}, "canonical unit"),
        ({"source": ""}, "needs source"),
    ],
)
def test_malformed_rows_are_refused_naming_the_row(row: dict[str, object], problem: str) -> None:
    base = {
        "id": "x",
        "zh": "x",
        "en": "x",
        "loinc": ["1-1"],
        "unit": "U/L",
        "units": {"U/L": 1},
        "reference": {"high": 10},
        "high_hpo": "HP:0003236",
        "source": "s",
    }
    with pytest.raises(KnowledgeError, match=problem):
        parse_lab_hpo({"rows": [{**base, **row}]}, "t.yaml")


def test_hospital_overrides_a_reference_interval(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(
        "rows:\n  - {id: lab.platelets, reference: {low: 100, high: 300}, source: 本院检验科}\n",
        encoding="utf-8",
    )
    table = load_lab_hpo(path)
    found = phenotypes_from_labs([LabValue("777-3", 110, "10*9/L")], table)
    assert next((p.hpo, p.excluded) for p in found) == ("HP:0001873", True)


def test_case_labs_become_phenotypes_in_the_ranking(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    case = parse_case(
        {
            "hpo": ["HP:0001635"],
            "labs": [
                {"loinc": "777-3", "value": 40, "unit": "10*9/L"},
                {"loinc": "2823-3", "value": 4.1, "unit": "mmol/L"},
            ],
        },
        index,
        knowledge,
    )
    assert 1873 in case.observed and 2900 in case.excluded and 2153 in case.excluded
    assert next(p.rule_id for p in case.lab_matches) == "lab.platelets"
    with pytest.raises(InputError, match=r"labs\[0\]\.value"):
        parse_case({"hpo": ["HP:0001635"], "labs": [{"loinc": "777-3"}]}, index, knowledge)
