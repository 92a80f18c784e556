"""ICD-10 checks on the front page: code validity and principal-diagnosis selection."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.qc import check_record, load_qc_knowledge
from medbrain.qc.icd10 import code_problem, load_icd_knowledge, normalize
from medbrain.qc.parse import record_from_mapping

KB = load_qc_knowledge()
ICD = load_icd_knowledge()
DISCHARGE = (
    "出院记录\n入院时间:2024-03-01 08:00\n出院时间:2024-03-05 09:00\n出院诊断:肺炎\n医师签名:李明\n"
)


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("J18.9", None),
        ("J18.900", None),  # national extension
        ("I10.x00x002", None),  # 'x' placeholder: I10 has no subcategory
        ("K35.800x001", None),
        ("ｊ１８．９", None),  # full-width, lower case
        ("J18", "unspecific"),  # J18 has subcategories
        ("J18.x00", "unspecific"),
        ("J18.7", "unknown_subcategory"),
        ("U99.9", "unknown_category"),
        ("J189", "format"),
        ("18.9", "format"),
        ("J18.9x1", "format"),
    ],
)
def test_code_validity(code: str, problem: str | None) -> None:
    assert code_problem(code, ICD) == problem


def test_normalize_keeps_the_extension_lower_case() -> None:
    assert normalize(" i10.X00X002 ") == "I10.x00x002"


def _front(diagnoses: list[dict[str, Any]], **meta: Any) -> dict[str, list[str]]:
    body = {
        "documents": {"discharge": DISCHARGE},
        "meta": {
            "admit_time": "2024-03-01 08:00",
            "discharge_time": "2024-03-05 09:00",
            "front_page": {"diagnoses": diagnoses},
            **meta,
        },
    }
    report = check_record(record_from_mapping(body, "t", KB.vocabulary), KB, stage="final")
    out: dict[str, list[str]] = {}
    for f in (*report.defects, *report.needs_review):
        if f.rule_id.startswith("qc.icd."):
            out.setdefault(f.rule_id, []).append(f.evidence[-1].quote or "")
    return out


def test_a_correct_front_page_raises_no_icd_defect() -> None:
    found = _front(
        [
            {"code": "J18.900", "name": "肺炎", "principal": True},
            {"code": "I10.x00x002", "name": "高血压2级"},
        ],
        sex="male",
        age_years=60,
    )
    assert found == {}


def test_a_symptom_code_as_principal_with_a_definite_diagnosis_is_a_defect() -> None:
    found = _front(
        [
            {"code": "R50.900", "name": "发热", "principal": True},
            {"code": "J18.900", "name": "肺炎"},
        ]
    )
    assert found["qc.icd.principal-symptom"] == ["R50.900 发热"]
    # a symptom alone (nothing definite found) is allowed as principal
    assert "qc.icd.principal-symptom" not in _front([{"code": "R50.900", "name": "发热"}])


def test_external_cause_as_principal_is_a_defect() -> None:
    found = _front([{"code": "W19.x00", "name": "跌倒"}, {"code": "S72.000", "name": "股骨颈骨折"}])
    assert found["qc.icd.principal-external"] == ["W19.x00 跌倒"]


def test_sex_specific_code_for_the_other_sex_is_a_defect() -> None:
    found = _front([{"code": "N40.x00", "name": "前列腺增生"}], sex="female")
    assert found["qc.icd.sex-specific"] == ["N40.x00 前列腺增生"]
    assert "qc.icd.sex-specific" not in _front(
        [{"code": "N40.x00", "name": "前列腺增生"}], sex="male"
    )
    found = _front([{"code": "O80.000", "name": "单胎顺产"}], sex="male")
    assert found["qc.icd.sex-specific"] == ["O80.000 单胎顺产"]


def test_invalid_missing_and_unspecific_codes_are_reported() -> None:
    found = _front(
        [
            {"code": "J18.900", "name": "肺炎", "principal": True},
            {"code": "X1234", "name": "乱码"},
            {"code": "", "name": "糖尿病"},
            {"code": "E11", "name": "2型糖尿病"},
        ]
    )
    assert found["qc.icd.code-invalid"] == ["X1234 乱码"]
    assert found["qc.icd.code-missing"] == ["糖尿病"]
    assert found["qc.icd.code-unspecific"] == ["E11 2型糖尿病"]


def test_an_empty_front_page_lacks_the_principal_diagnosis() -> None:
    assert "qc.icd.principal-missing" in _front([])


def test_age_limited_codes_go_to_review() -> None:
    found = _front([{"code": "P07.300", "name": "早产儿"}], age_years=40)
    assert found["qc.icd.age-specific"] == ["P07.300 早产儿"]


def test_records_without_a_front_page_are_not_checked() -> None:
    body = {"documents": {"discharge": DISCHARGE}, "meta": {}}
    report = check_record(record_from_mapping(body, "t", KB.vocabulary), KB, stage="final")
    assert not [f for f in report.defects if f.rule_id.startswith("qc.icd.")]
