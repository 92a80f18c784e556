"""In-stay deadlines with a fixed clock: due soon, overdue, and closed once written."""

from __future__ import annotations

from datetime import datetime

import pytest

from medbrain.qc import load_qc_knowledge
from medbrain.qc.parse import record_from_mapping
from medbrain.qc.scheduler import due_items

KB = load_qc_knowledge()
ADMISSION = "入院记录\n入院时间:2024-03-05 08:00\n主诉:发热3天\n医师签名:李明\n"
FIRST_COURSE = "首次病程记录\n2024-03-05 12:00\n病例特点:发热。\n医师签名:李明\n"


def _items(now: str, documents: dict[str, str], **meta: object) -> dict[str, tuple[str, float]]:
    meta = {"admit_time": "2024-03-05 08:00", **meta}
    record = record_from_mapping({"documents": documents, "meta": meta}, "t", KB.vocabulary)
    return {
        d.rule_id: (d.status, d.hours_left)
        for d in due_items(record, KB, datetime.fromisoformat(now))
    }


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2024-03-05 09:00", None),  # 7 h left, outside the 2 h window (8 h / 4)
        ("2024-03-05 14:00", ("due_soon", 2.0)),
        ("2024-03-05 15:59", ("due_soon", 0.02)),
        ("2024-03-05 16:00", ("due_soon", 0.0)),
        ("2024-03-05 16:01", ("overdue", -0.02)),
        ("2024-03-06 08:00", ("overdue", -16.0)),
    ],
)
def test_first_progress_note_is_due_8_hours_after_admission(
    now: str, expected: tuple[str, float] | None
) -> None:
    items = _items(now, {"admission": ADMISSION})
    assert items.get("qc.time.first-course-8h") == expected


def test_a_written_note_is_no_longer_due() -> None:
    items = _items("2024-03-06 08:00", {"admission": ADMISSION, "course": FIRST_COURSE})
    assert "qc.time.first-course-8h" not in items


def test_admission_note_is_due_24_hours_after_admission_with_a_4_hour_window() -> None:
    course_only = {"course": FIRST_COURSE}
    assert "qc.time.admission-24h" not in _items("2024-03-06 03:59", course_only)
    assert _items("2024-03-06 04:00", course_only)["qc.time.admission-24h"] == ("due_soon", 4.0)
    assert _items("2024-03-06 09:00", course_only)["qc.time.admission-24h"] == ("overdue", -1.0)


def test_attending_rounds_are_due_48_hours_after_admission() -> None:
    docs = {"admission": ADMISSION, "course": FIRST_COURSE}
    assert _items("2024-03-07 05:00", docs)["qc.time.senior-round-48h"] == ("due_soon", 3.0)
    assert _items("2024-03-07 09:00", docs)["qc.time.senior-round-48h"] == ("overdue", -1.0)


def test_discharge_summary_is_due_24_hours_after_discharge() -> None:
    docs = {"admission": ADMISSION, "course": FIRST_COURSE}
    items = _items("2024-03-10 11:00", docs, discharge_time="2024-03-09 10:00")
    assert items["qc.time.discharge-24h"] == ("overdue", -1.0)
    items = _items("2024-03-09 12:00", docs, discharge_time="2024-03-09 10:00")
    assert "qc.time.discharge-24h" not in items


def test_post_operative_note_is_due_right_after_surgery() -> None:
    surgery = (
        "手术记录\n手术开始时间:2024-03-06 09:00\n手术结束时间:2024-03-06 11:00\n"
        "手术经过:顺利。\n术者签名:李明\n"
    )
    docs = {"admission": ADMISSION, "course": FIRST_COURSE, "surgery": surgery}
    items = _items("2024-03-06 12:45", docs)
    assert items["qc.time.post-op-immediate"] == ("due_soon", 0.25)  # 2 h limit, 30 min window
    assert "qc.time.surgery-24h" not in items  # the operative note exists
    assert _items("2024-03-06 13:30", docs)["qc.time.post-op-immediate"] == ("overdue", -0.5)


def test_progress_notes_of_a_critically_ill_patient_are_due_daily() -> None:
    course = FIRST_COURSE + "\n日常病程记录\n2024-03-06 09:00\n病情平稳。\n医师签名:李明\n"
    orders = "2024-03-05 09:00 病危\n"
    docs = {"admission": ADMISSION, "course": course, "orders": orders}
    # last note 03-06; critical → one calendar day → due by the end of 03-07
    items = _items("2024-03-07 21:00", docs)
    assert items["qc.time.progress-interval"] == ("due_soon", 3.0)
    items = _items("2024-03-08 01:00", docs)
    assert items["qc.time.progress-interval"] == ("overdue", -1.0)
    stable = {"admission": ADMISSION, "course": course}
    assert "qc.time.progress-interval" not in _items("2024-03-08 01:00", stable)


def test_the_warning_window_is_configurable_per_rule() -> None:
    kb = load_qc_knowledge(
        {"rules": [{"rule_id": "qc.time.first-course-8h", "params": {"warn_hours": 6}}]}
    )
    record = record_from_mapping(
        {"documents": {"admission": ADMISSION}, "meta": {"admit_time": "2024-03-05 08:00"}},
        "t",
        kb.vocabulary,
    )
    items = {d.rule_id: d for d in due_items(record, kb, datetime(2024, 3, 5, 10, 30))}
    assert items["qc.time.first-course-8h"].status == "due_soon"
    assert "5.5" in items["qc.time.first-course-8h"].message
