"""deadline / note_frequency: limits from 《病历书写基本规范》第十八、二十二条."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.unit.qc.helpers import load_fixture, mutate, rule_ids, run

CAP = "01_cap_clean"
HERNIA = "02_hernia_clean"


@pytest.mark.parametrize(
    ("fixture", "doc", "old", "new", "rule"),
    [
        (
            CAP,
            "admission",
            "记录时间:2024年3月5日15时10分",
            "记录时间:2024年3月6日11时00分",
            "qc.time.admission-24h",
        ),
        (
            CAP,
            "course",
            "2024-03-05 14:30 首次病程记录",
            "2024-03-05 18:40 首次病程记录",
            "qc.time.first-course-8h",
        ),
        (
            CAP,
            "course",
            "2024-03-06 09:40 主治医师查房记录",
            "2024-03-07 11:00 主治医师查房记录",
            "qc.time.senior-round-48h",
        ),
        (
            CAP,
            "course",
            "2024-03-08 10:05 日常病程记录",
            "2024-03-10 08:05 日常病程记录",
            "qc.time.progress-interval",
        ),
        (
            CAP,
            "discharge",
            "记录时间:2024年3月12日11时00分",
            "记录时间:2024年3月13日10时00分",
            "qc.time.discharge-24h",
        ),
        (
            HERNIA,
            "surgery",
            "记录时间：2024年04月10日14时00分",
            "记录时间：2024年04月11日11时00分",
            "qc.time.surgery-24h",
        ),
        (
            HERNIA,
            "course",
            "2024年04月10日11时20分　术后首次病程记录",
            "2024年04月10日13时20分　术后首次病程记录",
            "qc.time.post-op-immediate",
        ),
    ],
)
def test_late_record_is_a_timeliness_defect(
    fixture: str, doc: str, old: str, new: str, rule: str
) -> None:
    report = run(mutate(load_fixture(fixture), doc, old, new))
    hits = [d for d in report.defects if d.rule_id == rule]
    assert hits, [d.rule_id for d in report.defects]
    assert hits[0].category == "timeliness"
    assert (hits[0].evidence[-1].quote or "?") in report_text(fixture, doc, old, new)


def report_text(fixture: str, doc: str, old: str, new: str) -> str:
    return str(mutate(load_fixture(fixture), doc, old, new)["documents"][doc])


@pytest.mark.parametrize(
    ("fixture", "doc", "old", "new", "rule"),
    [
        # exactly on the limit is in time
        (
            CAP,
            "admission",
            "记录时间:2024年3月5日15时10分",
            "记录时间:2024年3月6日10时20分",
            "qc.time.admission-24h",
        ),
        (
            CAP,
            "course",
            "2024-03-05 14:30 首次病程记录",
            "2024-03-05 18:20 首次病程记录",
            "qc.time.first-course-8h",
        ),
        # a date without a time of day gets the benefit of the doubt
        (
            CAP,
            "admission",
            "记录时间:2024年3月5日15时10分",
            "记录时间:2024.3.6",
            "qc.time.admission-24h",
        ),
        # three calendar days between notes is allowed for a stable patient
        (
            CAP,
            "course",
            "2024-03-10 09:20 日常病程记录",
            "2024-03-11 08:00 日常病程记录",
            "qc.time.progress-interval",
        ),
        # a later attending round does not matter once the first was in time
        (
            CAP,
            "course",
            None,
            "2024-03-11 18:00 主任医师查房记录\n同意出院。\n医师签名:李明\n",
            "qc.time.senior-round-48h",
        ),
    ],
)
def test_in_time_near_misses_pass(
    fixture: str, doc: str, old: str | None, new: str, rule: str
) -> None:
    assert rule not in rule_ids(run(mutate(load_fixture(fixture), doc, old, new)))


def test_critically_ill_patient_needs_a_note_every_day() -> None:
    body = mutate(load_fixture(CAP), "orders", None, "2024-03-06 10:00 长期医嘱 病危\n")
    hits = [d for d in run(body).defects if d.rule_id == "qc.time.progress-interval"]
    assert hits and "病危" in hits[0].message


def test_stopping_the_critical_status_restores_the_stable_interval() -> None:
    orders = "2024-03-05 12:00 长期医嘱 病危\n2024-03-06 08:00 长期医嘱 停病危\n"
    body = mutate(load_fixture(CAP), "orders", None, orders)
    assert "qc.time.progress-interval" not in rule_ids(run(body))


def test_urgent_consult_must_arrive_within_ten_minutes() -> None:
    consult = "会诊记录(急会诊)\n申请时间:2024-03-06 10:00\n到达时间:2024-03-06 10:{m}\n会诊意见:同意。\n记录时间:2024-03-06 10:40\n会诊医师:赵强\n"
    late = mutate(load_fixture(CAP), "consult", None, consult.format(m="25"))
    ok = mutate(load_fixture(CAP), "consult", None, consult.format(m="08"))
    assert "qc.time.consult-urgent-10min" in rule_ids(run(late))
    assert "qc.time.consult-urgent-10min" not in rule_ids(run(ok))
    assert "qc.time.consult-48h" not in rule_ids(run(late))


def test_routine_consult_within_48_hours() -> None:
    consult = "会诊记录\n申请时间:2024-03-06 10:00\n会诊意见:同意。\n记录时间:{t}\n会诊医师:赵强\n"
    assert "qc.time.consult-48h" in rule_ids(
        run(mutate(load_fixture(CAP), "consult", None, consult.format(t="2024-03-08 12:00")))
    )
    assert "qc.time.consult-48h" not in rule_ids(
        run(mutate(load_fixture(CAP), "consult", None, consult.format(t="2024-03-08 09:00")))
    )


def test_realtime_gap_counts_up_to_now() -> None:
    body = load_fixture(CAP)
    del body["documents"]["discharge"]
    del body["meta"]["discharge_time"]
    report = run(body, stage="realtime", now=datetime(2024, 3, 15, 9, 0))
    assert "qc.time.progress-interval" in rule_ids(report)
    assert "qc.time.progress-interval" not in rule_ids(
        run(body, stage="realtime", now=datetime(2024, 3, 13, 9, 0))
    )
