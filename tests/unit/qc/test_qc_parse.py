"""Parsing Chinese inpatient records: encodings, dates, headings, notes, signatures, bad files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from medbrain.core.errors import InputError
from medbrain.qc.parse import (
    decode,
    fold,
    parse_document,
    parse_labs,
    parse_stamp,
    read_record_dir,
    record_from_mapping,
)


@pytest.mark.parametrize(
    ("text", "expected", "date_only"),
    [
        ("2024-03-05 14:30", datetime(2024, 3, 5, 14, 30), False),
        ("2024年3月5日14时30分", datetime(2024, 3, 5, 14, 30), False),
        ("2024年03月05日 14:30", datetime(2024, 3, 5, 14, 30), False),
        ("2024年3月5日14时", datetime(2024, 3, 5, 14, 0), False),
        ("2024年3月5日14点30分", datetime(2024, 3, 5, 14, 30), False),
        ("2024/3/5 9:05", datetime(2024, 3, 5, 9, 5), False),
        ("2024.3.5", datetime(2024, 3, 5), True),
        ("2024.03.05 08:00", datetime(2024, 3, 5, 8, 0), False),
        ("2024-03-05T14:30:00", datetime(2024, 3, 5, 14, 30), False),
        ("２０２４－０３－０５　１４：３０", datetime(2024, 3, 5, 14, 30), False),
        ("记录时间:2024年10月5日09時20分", datetime(2024, 10, 5, 9, 20), False),
    ],
)
def test_every_date_style_is_read(text: str, expected: datetime, date_only: bool) -> None:
    assert parse_stamp(text) == (expected, date_only)


@pytest.mark.parametrize("text", ["2024-13-05 10:00", "2024-02-30", "患者3天前", "血压120/80mmHg"])
def test_impossible_or_absent_dates_are_not_times(text: str) -> None:
    assert parse_stamp(text) is None


def test_folding_keeps_every_offset() -> None:
    text = "主诉：咳嗽３天，伴发热。"
    folded = fold(text)
    assert len(folded) == len(text)
    assert folded == "主诉:咳嗽3天,伴发热。"


@pytest.mark.parametrize(
    "heading",
    ["主诉:", "主诉：", "【主诉】", "一、主诉:", "1.主诉：", "(一)主诉:", "主诉 ", "主诉\n"],
)
def test_headings_with_or_without_colons_are_sections(heading: str) -> None:
    text = f"入院记录\n{heading}咳嗽3天。\n现病史:患者3天前咳嗽。\n"
    note = parse_document("admission", "a.txt", text).notes[0]
    section = note.section("主诉")
    assert section is not None
    assert text[section.body_start : section.end].strip() == "咳嗽3天。"
    assert note.section("现病史") is not None


def test_aliases_map_to_canonical_titles() -> None:
    text = "查体:T 36.5℃\n专科检查:右膝肿胀。\n月经及婚育史:初潮13岁。\n"
    note = parse_document("admission", "a.txt", text).notes[0]
    assert [s.title for s in note.sections] == ["体格检查", "专科情况", "月经史"]
    assert note.section("婚育史") is not None  # a combined heading counts for both


def test_sentences_that_start_with_a_heading_word_are_not_headings() -> None:
    text = "现病史:患者体检发现血糖升高,主诉乏力。\n"
    note = parse_document("admission", "a.txt", text).notes[0]
    assert [s.title for s in note.sections] == ["现病史"]


COURSE = """2024-03-05 15:30 首次病程记录
患者男,45岁。
病例特点:急性起病。
医师签名:李明
2024年3月6日9时00分
今日查房患者咳嗽减轻,继续观察。
李明
主治医师查房记录 2024-03-07 10:00
王强主治医师查房:同意目前诊断。
记录者:
2024-03-08 09:00 术后首次病程记录
手术顺利。
医师签名:李明
"""


def test_course_file_is_split_into_titled_dated_notes() -> None:
    doc = parse_document("course", "course.txt", COURSE)
    kinds = [(n.kind, n.time.when.day if n.time else None) for n in doc.notes]
    assert kinds == [("first_course", 5), ("daily", 6), ("senior_round", 7), ("post_op", 8)]
    first = doc.notes[0]
    assert first.section("病例特点") is not None


def test_signatures_signed_bare_and_blank() -> None:
    doc = parse_document("course", "course.txt", COURSE)
    names = [(n.doctor_signature.name if n.doctor_signature else None) for n in doc.notes]
    assert names == ["李明", "李明", "", "李明"]


def test_body_lines_mentioning_rounds_do_not_open_a_note() -> None:
    text = "2024-03-06 09:00\n今日查房见患者好转。\n上级医师查房后同意出院。\n李明\n"
    assert len(parse_document("course", "c.txt", text).notes) == 1


def test_lab_lines_are_read_with_flags() -> None:
    text = "2024-03-06 07:30 血钾 2.8 mmol/L ↓\n2024-03-06 07:30 白细胞 12.6 ×10^9/L ↑\n"
    doc = parse_document("labs", "labs.txt", text)
    labs = parse_labs(doc)
    assert [(lab.name, lab.value, lab.flag) for lab in labs] == [
        ("血钾", 2.8, "↓"),
        ("白细胞", 12.6, "↑"),
    ]
    assert text[labs[0].start : labs[0].end].startswith("血钾 2.8")


def test_gbk_and_utf8_are_detected_and_binary_refused() -> None:
    text = "主诉:咳嗽3天。"
    assert decode(text.encode("gbk")) == (text, "gbk")
    assert decode(text.encode("utf-8")) == (text, "utf-8")
    assert decode("\ufeff".encode() + text.encode("utf-8")) == (text, "utf-8")
    assert decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR") is None


def test_record_directory_lists_what_it_skips(tmp_path: Path) -> None:
    (tmp_path / "admission.txt").write_bytes("入院记录\n主诉:咳嗽3天。\n".encode("gbk"))
    (tmp_path / "course.txt").write_text("", encoding="utf-8")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4 \x00\x01")
    (tmp_path / "labs.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "meta.json").write_text(
        json.dumps({"sex": "女", "age_years": "41"}), encoding="utf-8"
    )
    record = read_record_dir(tmp_path)
    assert set(record.documents) == {"admission"}
    assert record.documents["admission"].encoding == "gbk"
    assert {(s.name, s.reason) for s in record.skipped} == {
        ("course.txt", "empty file"),
        ("scan.pdf", "unknown document type"),
        ("labs.txt", "binary or undecodable content"),
    }
    assert (record.meta.sex, record.meta.age_years) == ("female", 41)


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        read_record_dir(tmp_path / "nope")


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"admit_time": "yesterday"}, "admit_time"),
        ({"sex": "x"}, "sex"),
        ({"age_years": "old"}, "age_years"),
        ({"age_years": 300}, "age_years"),
    ],
)
def test_malformed_meta_names_the_field(meta: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        record_from_mapping({"documents": {"admission": "主诉:咳嗽3天"}, "meta": meta})
    assert info.value.field == field


def test_mapping_without_documents_is_refused() -> None:
    with pytest.raises(InputError) as info:
        record_from_mapping({"documents": {}})
    assert info.value.field == "documents"


def test_huge_document_is_skipped_not_crashed() -> None:
    body = {"documents": {"admission": "主诉:咳嗽3天。\n", "nursing": "护理记录。" * 400_001}}
    record = record_from_mapping(body)
    assert [s.name for s in record.skipped] == ["nursing"]
