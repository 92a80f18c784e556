"""DDDs, DDDs per 100 patient-days, use rates and graded prescribing, on hand-computed data."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.rx import load_rx_knowledge, parse_prescription
from medbrain.rx.stewardship_metrics import (
    aud,
    build_ddd_table,
    item_ddds,
    load_ddd_table,
    summarize_prescriptions,
)

KB = load_rx_knowledge(None)
TABLE = load_ddd_table(KB)


def _item(drug: str, dose: float, unit: str, route: str, freq: str, days: int) -> Any:
    doc = {
        "patient": {"age_years": 50, "diagnoses": ["肺炎"]},
        "items": [{"drug": drug, "dose": dose, "unit": unit, "route": route, "frequency": freq,
                   "days": days}],
    }  # fmt: skip
    return parse_prescription(doc, KB).items[0]


@pytest.mark.parametrize(
    ("drug", "dose", "unit", "route", "freq", "days", "ddds"),
    [
        # ceftriaxone P DDD 2 g: 2 g × 1/day × 7 days = 14 g → 7 DDD
        ("注射用头孢曲松钠", 2, "g", "iv", "qd", 7, 7.0),
        # amoxicillin O DDD 1.5 g (2019): 0.5 g × 3 × 5 = 7.5 g → 5 DDD
        ("阿莫西林胶囊", 0.5, "g", "po", "tid", 5, 5.0),
        # levofloxacin P DDD 0.5 g: 0.5 g × 1 × 3 → 3 DDD
        ("左氧氟沙星注射液", 0.5, "g", "iv", "qd", 3, 3.0),
        # meropenem P DDD 3 g (2019): 1 g × 3 × 2 = 6 g → 2 DDD
        ("注射用美罗培南", 1, "g", "iv", "q8h", 2, 2.0),
        # benzylpenicillin P DDD 6 MU (3.6 g): 4 MU × 4 × 3 = 48 MU → 8 DDD
        ("注射用青霉素钠", 4000000, "IU", "iv", "q6h", 3, 8.0),
    ],
)
def test_item_ddds_are_amount_over_who_ddd(
    drug: str, dose: float, unit: str, route: str, freq: str, days: int, ddds: float
) -> None:
    assert item_ddds(_item(drug, dose, unit, route, freq, days), TABLE) == pytest.approx(ddds)


def test_route_without_a_ddd_and_non_antimicrobials_give_no_ddds() -> None:
    assert item_ddds(_item("阿司匹林肠溶片", 100, "mg", "po", "qd", 5), TABLE) is None
    assert not TABLE.is_antimicrobial(KB.drugs["aspirin"])
    assert TABLE.is_antimicrobial(KB.drugs["fluconazole"])  # antifungals count (第二条)
    assert not TABLE.is_antimicrobial(KB.drugs["oseltamivir"])  # antivirals do not


def test_aud_is_ddds_per_100_patient_days() -> None:
    assert aud(12.0, 30.0) == pytest.approx(40.0)
    assert aud(5.0, 0.0) is None


def _doc(setting: str, dept: str, items: list[dict[str, Any]], level: str | None = None) -> Any:
    doc: dict[str, Any] = {
        "patient": {"age_years": 50, "diagnoses": ["肺炎"]},
        "department": dept,
        "setting": setting,
        "items": items,
    }
    if level:
        doc["prescriber_level"] = level
    return parse_prescription(doc, KB)


CEFTRIAXONE = {"drug": "注射用头孢曲松钠", "dose": 2, "unit": "g", "route": "iv",
               "frequency": "qd", "days": 5}  # fmt: skip
MEROPENEM = {"drug": "注射用美罗培南", "dose": 1, "unit": "g", "route": "iv",
             "frequency": "q8h", "days": 3}  # fmt: skip
ASPIRIN = {"drug": "阿司匹林肠溶片", "dose": 100, "unit": "mg", "route": "po",
           "frequency": "qd", "days": 5}  # fmt: skip


def test_period_summary_by_department_drug_and_grade() -> None:
    rows = [
        ("e1", _doc("inpatient", "呼吸内科", [CEFTRIAXONE]), 10.0, "陈医生"),  # 5 DDD
        ("e2", _doc("inpatient", "呼吸内科", [ASPIRIN]), 10.0, "陈医生"),
        ("e3", _doc("inpatient", "ICU", [MEROPENEM], "住院医师"), 5.0, "王医生"),  # 3 DDD
        ("o1", _doc("outpatient", "急诊科", [MEROPENEM]), 0.0, "李医生"),
        ("o2", _doc("outpatient", "内科", [ASPIRIN]), 0.0, "李医生"),
        ("o3", _doc("outpatient", "内科", [ASPIRIN]), 0.0, "李医生"),
    ]
    report = summarize_prescriptions(rows, TABLE, KB)
    inpatient = report["inpatient"]
    assert inpatient["encounters"] == 3 and inpatient["with_antimicrobial"] == 2
    assert inpatient["use_rate_pct"] == pytest.approx(66.67)
    assert inpatient["patient_days"] == 25.0 and inpatient["ddds"] == 8.0
    assert inpatient["aud"] == pytest.approx(32.0)  # 8 × 100 / 25
    depts = {d["department"]: d for d in report["by_department"]}
    assert depts["呼吸内科"]["aud"] == pytest.approx(25.0)  # 5 × 100 / 20
    assert depts["ICU"]["aud"] == pytest.approx(60.0)  # 3 × 100 / 5
    assert report["by_department"][0]["department"] == "ICU"  # highest intensity first
    drugs = {d["drug_id"]: d for d in report["by_drug"]}
    assert drugs["ceftriaxone"]["share_pct"] == pytest.approx(62.5)
    assert report["outpatient"] == {"prescriptions": 3, "with_antimicrobial": 1,
                                    "rate_pct": pytest.approx(33.33)}  # fmt: skip
    graded = {(g["grade"], g["prescriber_level"]): g for g in report["graded"]}
    # meropenem is 特殊使用级: above a 住院医师's privilege, and never in an outpatient clinic
    assert graded[("特殊", "住院医师")] == {
        "grade": "特殊", "prescriber_level": "住院医师", "items": 1, "violations": 1
    }  # fmt: skip
    assert graded[("特殊", "?")]["violations"] == 1
    assert graded[("非限制", "?")]["violations"] == 0
    who = {p["prescriber"]: p for p in report["by_prescriber"]}
    assert who["王医生"]["特殊"] == 1 and who["王医生"]["violations"] == 1
    assert "陈医生" not in who  # only 非限制 drugs, no violation


def test_ddd_table_rows_are_validated() -> None:
    base = {"source": "WHO ATC/DDD Index 2024"}
    with pytest.raises(KnowledgeError, match="unknown drug"):
        build_ddd_table({**base, "ddd": {"no_such_drug": {"atc": "J01", "O": [1, "g"]}}}, KB)
    with pytest.raises(KnowledgeError, match="g\\|mg\\|MU"):
        build_ddd_table({**base, "ddd": {"amoxicillin": {"atc": "J01CA04", "O": [1, "kg"]}}}, KB)
    with pytest.raises(KnowledgeError, match="O or P"):
        build_ddd_table({**base, "ddd": {"amoxicillin": {"atc": "J01CA04"}}}, KB)


def test_every_shipped_ddd_row_matches_the_drug_atc_code() -> None:
    for drug_id, entry in TABLE.entries.items():
        assert KB.drugs[drug_id].atc == entry.atc, drug_id
        assert TABLE.is_antimicrobial(KB.drugs[drug_id])
