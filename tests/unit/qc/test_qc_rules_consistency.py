"""consistency: sex, age, allergy, diagnosis, laterality, dates across documents."""

from __future__ import annotations

import pytest

from tests.unit.qc.helpers import load_fixture, mutate, rule_ids, run

CAP = "01_cap_clean"
HERNIA = "02_hernia_clean"


@pytest.mark.parametrize(
    ("fixture", "doc", "old", "new", "rule", "quote"),
    [
        (CAP, "discharge", "性别:男", "性别:女", "qc.consistency.sex", "性别:女"),
        (CAP, "discharge", "年龄:68岁", "年龄:58岁", "qc.consistency.age", "年龄:58岁"),
        (
            CAP,
            "course",
            "食欲改善。",
            "食欲改善。追问病史,患者对青霉素过敏。",
            "qc.consistency.allergy",
            "患者对青霉素过敏",
        ),
        (
            CAP,
            "discharge",
            "入院诊断:\n1.社区获得性肺炎(非重症)",
            "入院诊断:\n1.急性胆囊炎",
            "qc.consistency.diagnosis",
            "急性胆囊炎",
        ),
        (
            HERNIA,
            "discharge",
            "出院诊断：1.右侧腹股沟斜疝",
            "出院诊断：1.左侧腹股沟斜疝",
            "qc.consistency.laterality",
            "左侧腹股沟",
        ),
        (
            HERNIA,
            "consent",
            "拟行手术：右侧腹股沟",
            "拟行手术：左侧腹股沟",
            "qc.consistency.laterality",
            "左侧腹股沟",
        ),
        (
            CAP,
            "discharge",
            "入院日期:2024年3月5日10时20分",
            "入院日期:2024年3月4日10时20分",
            "qc.consistency.admit-date",
            "2024年3月4日10时20分",
        ),
        (
            CAP,
            "discharge",
            "出院日期:2024年3月12日9时30分",
            "出院日期:2024年3月13日9时30分",
            "qc.consistency.discharge-date",
            "2024年3月13日9时30分",
        ),
        (
            HERNIA,
            "discharge",
            "于2024年04月10日在",
            "于2024年04月11日在",
            "qc.consistency.operation-date",
            "2024年04月11日",
        ),
    ],
)
def test_conflicting_facts_are_defects_quoting_the_odd_one(
    fixture: str, doc: str, old: str, new: str, rule: str, quote: str
) -> None:
    body = mutate(load_fixture(fixture), doc, old, new)
    hits = [d for d in run(body).defects if d.rule_id == rule]
    assert hits
    assert hits[0].category == "consistency"
    assert quote in (hits[0].evidence[-1].quote or "")
    span = hits[0].extra["span"]
    assert (
        body["documents"][hits[0].extra["document"]][span[0] : span[1]]
        == hits[0].evidence[-1].quote
    )


@pytest.mark.parametrize(
    ("fixture", "doc", "old", "new", "rule"),
    [
        # one year apart (birthday during the stay) is tolerated
        (CAP, "discharge", "年龄:68岁", "年龄:69岁", "qc.consistency.age"),
        # 过敏性鼻炎 is a disease, not a drug allergy
        (CAP, "course", "食欲改善。", "食欲改善。既往有过敏性鼻炎。", "qc.consistency.allergy"),
        # a negative statement repeated is consistent
        (CAP, "discharge", "出院情况:", "出院情况:无药物过敏史。", "qc.consistency.allergy"),
        # the discharge diagnosis may be refined
        (
            CAP,
            "discharge",
            "入院诊断:\n1.社区获得性肺炎(非重症)",
            "入院诊断:\n1.社区获得性肺炎",
            "qc.consistency.diagnosis",
        ),
        # the other side mentioned about another organ is not a conflict
        (
            HERNIA,
            "discharge",
            "出院情况：",
            "出院情况：左肺纹理增粗。",
            "qc.consistency.laterality",
        ),
        # the same day written differently
        (
            CAP,
            "discharge",
            "入院日期:2024年3月5日10时20分",
            "入院日期:2024-03-05",
            "qc.consistency.admit-date",
        ),
        # a later date followed by a procedure that is not the operation ("复查")
        (
            HERNIA,
            "discharge",
            "恢复顺利。",
            "恢复顺利。2024年04月12日复查切口愈合好。",
            "qc.consistency.operation-date",
        ),
    ],
)
def test_consistent_near_misses_pass(fixture: str, doc: str, old: str, new: str, rule: str) -> None:
    assert rule not in rule_ids(run(mutate(load_fixture(fixture), doc, old, new)))


def test_sex_conflict_is_a_veto() -> None:
    report = run(mutate(load_fixture(CAP), "discharge", "性别:男", "性别:女"))
    assert report.veto and report.grade == "丙"


def test_discharge_before_admission_is_a_defect_not_a_crash() -> None:
    body = load_fixture(CAP)
    body["meta"]["discharge_time"] = "2024-03-01 09:30"
    report = run(body)
    hits = [d for d in report.defects if d.rule_id == "qc.consistency.time-order"]
    assert hits and hits[0].extra["document"] == "meta"
    assert "qc.time.discharge-24h" not in rule_ids(report)  # the impossible time is not reused
