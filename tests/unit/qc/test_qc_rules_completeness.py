"""required_document / required_section / diagnosis sections: positives and near misses."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.unit.qc.helpers import load_fixture, mutate, rule_ids, run

CAP = "01_cap_clean"
HERNIA = "02_hernia_clean"
FIBROID = "10_fibroid_clean"


@pytest.mark.parametrize(
    ("fixture", "doc", "old", "new", "rule"),
    [
        (CAP, "discharge", None, None, "qc.doc.discharge-missing"),
        (
            CAP,
            "course",
            "2024-03-05 14:30 首次病程记录",
            "2024-03-05 14:30 病程记录",
            "qc.doc.first-course-missing",
        ),
        (
            CAP,
            "course",
            "2024-03-06 09:40 主治医师查房记录",
            "2024-03-06 09:40 日常病程记录",
            "qc.doc.senior-round-missing",
        ),
        (HERNIA, "surgery", None, None, "qc.doc.surgery-record-missing"),
        (HERNIA, "course", "术后首次病程记录", "日常病程记录", "qc.doc.post-op-missing"),
        (CAP, "admission", "既往史:", "", "qc.section.admission-past-history"),
        (
            CAP,
            "admission",
            "家族史:父母已故(死因不详),否认家族性遗传病史。\n",
            "",
            "qc.section.admission-family-history",
        ),
        (CAP, "admission", "专科情况:", "", "qc.section.admission-specialty-exam"),
        (
            CAP,
            "admission",
            "婚育史:25岁结婚,育有1子1女,配偶及子女体健。",
            "婚育史:",
            "qc.section.admission-marital-history",
        ),
        (FIBROID, "admission", "五、月经史:", "", "qc.section.admission-menstrual-history"),
        (CAP, "discharge", "出院医嘱:", "", "qc.section.discharge-instructions"),
        (HERNIA, "surgery", "手术经过：", "", "qc.section.surgery-procedure"),
        (CAP, "course", "鉴别诊断:", "", "qc.diagnosis.first-course-differential"),
        (CAP, "course", "诊断依据:", "", "qc.diagnosis.first-course-basis"),
        (CAP, "discharge", "出院诊断:", "", "qc.diagnosis.discharge-final"),
        (CAP, "admission", "初步诊断:", "", "qc.diagnosis.admission-initial"),
    ],
)
def test_missing_part_is_a_defect_naming_it(
    fixture: str, doc: str, old: str | None, new: str | None, rule: str
) -> None:
    report = run(mutate(load_fixture(fixture), doc, old, new))
    found = [d for d in report.defects if d.rule_id == rule]
    assert found, [d.rule_id for d in report.defects]
    assert found[0].extra.get("missing") or found[0].evidence[-1].quote


@pytest.mark.parametrize(
    ("fixture", "doc", "old", "new", "rule"),
    [
        # a man needs no menstrual history; a man's record with none is clean
        (CAP, "admission", "婚育史:", "婚育史:", "qc.section.admission-menstrual-history"),
        # 初步诊断 written as 入院诊断 is accepted
        (CAP, "admission", "初步诊断:", "入院诊断:", "qc.diagnosis.admission-initial"),
        # a death note replaces the discharge summary
        (CAP, "discharge", None, None, "qc.doc.discharge-missing-if-death"),
        # combined heading 月经及婚育史 satisfies both
        (
            FIBROID,
            "admission",
            "五、月经史:",
            "五、月经及婚育史:",
            "qc.section.admission-menstrual-history",
        ),
    ],
)
def test_near_misses_are_not_defects(
    fixture: str, doc: str, old: str | None, new: str | None, rule: str
) -> None:
    body = mutate(load_fixture(fixture), doc, old, new)
    if rule.endswith("-if-death"):
        body["documents"]["death"] = (
            "死亡记录\n死亡时间:2024-03-11 20:00\n死亡原因:呼吸衰竭\n死亡诊断:重症肺炎\n医师签名:李明\n"
        )
        rule = "qc.doc.discharge-missing"
    assert rule not in rule_ids(run(body))


def test_realtime_does_not_require_what_is_not_yet_due() -> None:
    body = load_fixture(CAP)
    del body["documents"]["discharge"]
    body["meta"].pop("discharge_time")
    assert run(body, stage="realtime").defects == ()


def test_realtime_requires_the_first_progress_note_after_8_hours() -> None:
    body = {
        "documents": {"admission": load_fixture(CAP)["documents"]["admission"]},
        "meta": {"admit_time": "2024-03-05 10:20"},
    }
    early = run(body, stage="realtime")
    assert "qc.doc.first-course-missing" not in rule_ids(early)  # latest time 15:10: 4.8 h in
    late = run(body, stage="realtime", now=datetime(2024, 3, 5, 18, 30))
    assert "qc.doc.first-course-missing" in rule_ids(late)
