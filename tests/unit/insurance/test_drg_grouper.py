"""CHS-DRG 1.1 grouper on hand-built front pages: MDC, ADRG, CC/MCC, exclusion, ungroupable."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.insurance.drg import group
from medbrain.insurance.frontpage import parse_frontpage
from medbrain.insurance.knowledge import load_drg_tables

BASE: dict[str, Any] = {
    "case_id": "T1",
    "sex": "male",
    "age_years": 66,
    "admit_date": "2025-03-01",
    "discharge_date": "2025-03-08",
    "discharge_status": "1",
}


def _group(**fields: Any) -> Any:
    return group(parse_frontpage({**BASE, **fields}), load_drg_tables())


@pytest.mark.parametrize(
    ("fields", "drg", "mdc", "severity"),
    [
        ({"principal_diagnosis": "J18.900"}, "ES35", "MDCE", None),
        (
            {"principal_diagnosis": "J18.900", "secondary_diagnoses": ["J96.000"]},
            "ES31",
            "MDCE",
            "MCC",
        ),
        (
            {"principal_diagnosis": "J18.900", "secondary_diagnoses": ["E87.600"]},
            "ES33",
            "MDCE",
            "CC",
        ),
        ({"principal_diagnosis": "K80.101", "procedures": ["51.2300"]}, "HC29", "MDCH", None),
        ({"principal_diagnosis": "I63.900"}, "BR25", "MDCB", None),
        (
            {"principal_diagnosis": "O80.000", "sex": "female", "procedures": ["73.6x01"]},
            "OC19",
            "MDCO",
            None,
        ),
    ],
)
def test_front_page_groups_to_expected_drg(
    fields: dict[str, Any], drg: str, mdc: str, severity: str | None
) -> None:
    result = _group(**fields)
    assert (result.status, result.drg, result.mdc, result.severity) == (
        "grouped",
        drg,
        mdc,
        severity,
    )
    kinds = [s.kind for s in result.path]
    assert kinds[-1] == "drg" and kinds[-2] == "adrg" and "mdc" in kinds
    assert result.weight > 0


def test_complication_in_principal_exclusion_table_does_not_count() -> None:
    tables = load_drg_tables()
    principal = "J18.900"
    table = tables.exclusion[principal]
    excluded = next(c for c, t in tables.mcc.items() if t == table)
    result = _group(principal_diagnosis=principal, secondary_diagnoses=[excluded])
    assert result.drg == "ES35" and excluded in result.excluded
    assert any(step.kind == "cc" and step.code == excluded for step in result.path)


def test_neonate_groups_by_birth_weight_into_mdc_p() -> None:
    light = _group(principal_diagnosis="P07.200", age_years=0, age_days=3, birth_weight_g=1200)
    assert light.mdc == "MDCP" and light.adrg == "PS1"
    missing = _group(principal_diagnosis="P07.200", age_years=0, age_days=3)
    assert missing.status == "ungroupable" and any("体重" in r for r in missing.reasons)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "主要诊断缺失"),
        ({"principal_diagnosis": "J18.999x999"}, "主要诊断编码无效"),
        ({"principal_diagnosis": "J18.900", "sex": None}, "性别缺失"),
        ({"principal_diagnosis": "J18.900", "discharge_date": "2025-02-01"}, "早于入院日期"),
    ],
)
def test_invalid_front_page_is_ungroupable_with_reason(fields: dict[str, Any], reason: str) -> None:
    result = _group(**fields)
    assert result.status == "ungroupable" and result.drg == "0000"
    assert any(reason in r for r in result.reasons)


def test_unknown_secondary_code_is_listed_not_guessed() -> None:
    result = _group(principal_diagnosis="J18.900", secondary_diagnoses=["Q99.999x999"])
    assert result.drg == "ES35"
    assert [(i.code, i.params["code"]) for i in result.issues] == [
        ("diagnosis_unknown", "Q99.999x999")
    ]


def test_english_path_is_translated() -> None:
    result = group(
        parse_frontpage({**BASE, "principal_diagnosis": "J18.900"}), load_drg_tables(), lang="en"
    )
    assert result.path[0].text.startswith("principal diagnosis J18.900")


def test_shape_errors_raise_input_error_naming_field() -> None:
    from medbrain.core.errors import InputError

    with pytest.raises(InputError, match="age_years"):
        parse_frontpage({**BASE, "age_years": "old"})


def test_unrelated_operation_goes_to_ambiguous_group_when_enabled() -> None:
    # pneumonia with a laparoscopic cholecystectomy as main procedure
    fp = parse_frontpage({**BASE, "principal_diagnosis": "J18.900", "procedures": ["51.2300"]})
    tables = load_drg_tables()
    assert group(fp, tables).drg == "ES35"  # the shipped 1.1 tables: on to the medical ADRG
    ambiguous = group(fp, tables, ambiguous=True)
    assert (ambiguous.status, ambiguous.drg, ambiguous.mdc) == ("ambiguous", "EQY", "MDCE")
