"""Template drafts: structure, citations, nothing absent from the record, bad input, speed."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.notes import NOTE_TYPES, draft_note, read_note_record

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "notes" / "nstemi_bundle.json"


def bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def resource_refs(data: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in data["entry"]}


TITLES = {
    ("admission", "zh"): [
        "一般情况",
        "主诉",
        "现病史",
        "既往史",
        "过敏史",
        "体格检查",
        "辅助检查",
        "初步诊断",
        "诊疗计划",
    ],
    ("first_course", "zh"): ["病例特点", "拟诊讨论", "诊疗计划"],
    ("progress", "zh"): ["主观资料(S)", "客观资料(O)", "评估(A)", "计划(P)"],
    ("discharge", "zh"): ["入院情况", "诊疗经过", "出院诊断", "出院情况", "出院医嘱"],
    ("discharge", "en"): [
        "Condition on admission",
        "Hospital course",
        "Discharge diagnoses",
        "Condition on discharge",
        "Discharge instructions",
    ],
}


@pytest.mark.parametrize(("note_type", "lang"), list(TITLES))
def test_note_has_the_sections_of_its_type(note_type: str, lang: str) -> None:
    draft = draft_note(read_note_record(bundle()), note_type, lang)
    assert [s.title for s in draft.sections] == TITLES[(note_type, lang)]
    assert draft.to_dict()["generator"] == "template"


@pytest.mark.parametrize("note_type", NOTE_TYPES)
def test_every_sentence_with_a_fact_cites_resources_of_the_record(note_type: str) -> None:
    data = bundle()
    draft = draft_note(read_note_record(data), note_type)
    refs = resource_refs(data)
    for section in draft.sections:
        for sentence in section.sentences:
            if re.search(r"\d", sentence.text) or "记录中无" not in sentence.text:
                assert sentence.sources, f"{section.title}: {sentence.text!r} cites nothing"
            assert set(sentence.sources) <= refs


@pytest.mark.parametrize(
    ("note_type", "lang"), [(t, lang) for t in NOTE_TYPES for lang in ("zh", "en")]
)
def test_draft_states_no_number_absent_from_the_record(note_type: str, lang: str) -> None:
    data = bundle()
    record = read_note_record(data)
    text = json.dumps(draft_note(record, note_type, lang).to_dict(), ensure_ascii=False)
    source = json.dumps(data, ensure_ascii=False)
    derived = {str(record.age_years(record.encounter_start))}  # the only computed value
    for number in set(re.findall(r"\d+(?:\.\d+)?", text)) - derived:
        assert number in source, f"{number} is not in the record"


def test_known_facts_appear_with_their_values() -> None:
    draft = draft_note(read_note_record(bundle()), "admission")
    text = {s.title: s.text for s in draft.sections}
    assert "肌钙蛋白I 0.86 ng/mL(偏高)" in text["辅助检查"]
    assert "0.12" not in text["辅助检查"]  # a later result is not part of the admission note
    assert "血压 150/92 mmHg" in text["体格检查"]
    assert text["初步诊断"].splitlines() == ["1. 急性非ST段抬高型心肌梗死", "2. 高血压病3级"]
    assert "对青霉素过敏,表现为皮疹" in text["过敏史"]
    assert "高血压病3级(始于2014-06-01)" in text["既往史"]
    assert text["一般情况"].startswith("患者王建国,男,67岁。")


def test_first_course_record_uses_only_what_was_known_on_admission_day() -> None:
    draft = draft_note(read_note_record(bundle()), "first_course")
    text = {s.title: s for s in draft.sections}
    discussion = text["拟诊讨论"]
    assert (
        "急性非ST段抬高型心肌梗死的诊断依据:胸痛2小时,伴大汗；肌钙蛋白I 0.86 ng/mL(偏高)。"
        in discussion.text
    )
    assert "鉴别诊断需医师结合病情补充" in discussion.text  # not invented
    assert "0.12" not in json.dumps(draft.to_dict(), ensure_ascii=False)  # 03-06 result
    assert "PCI" not in text["诊疗计划"].text  # done on day 2
    basis = next(s for s in discussion.sentences if "诊断依据" in s.text)
    assert basis.sources == ("Condition/c1", "Encounter/e1", "Observation/l1")


def test_missing_information_is_flagged_not_invented() -> None:
    data = bundle()
    data["entry"] = [
        e
        for e in data["entry"]
        if e["resource"]["resourceType"] not in ("AllergyIntolerance", "Observation")
    ]
    draft = draft_note(read_note_record(data), "admission")
    text = {s.title: s for s in draft.sections}
    assert text["过敏史"].text == "记录中无过敏史信息,请医师核实。" and text["过敏史"].sources == []
    assert text["体格检查"].text.startswith("记录中无生命体征")
    assert "否认" not in json.dumps(draft.to_dict(), ensure_ascii=False)


def _without(kind: str) -> dict[str, Any]:
    data = bundle()
    data["entry"] = [e for e in data["entry"] if e["resource"]["resourceType"] != kind]
    return data


def _two_patients() -> dict[str, Any]:
    data = bundle()
    extra = copy.deepcopy(data["entry"][0])
    extra["resource"]["id"] = "p2"
    data["entry"].append(extra)
    return data


def _patched(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = bundle()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"resourceType": "Patient"}, "resourceType"),
        ({"resourceType": "Bundle"}, "entry"),
        (_without("Patient"), "entry"),
        (_two_patients(), "entry"),
        (_patched(("entry", 2, "resource", "id"), ""), "entry[2].resource.id"),
        (
            _patched(("entry", 0, "resource", "birthDate"), "1956-13-45"),
            "entry[0].resource.birthDate",
        ),
        (_patched(("entry", 3), {"resource": "x"}), "entry[3].resource"),
    ],
)
def test_bad_input_names_the_field(document: Any, field: str) -> None:
    with pytest.raises(InputError) as info:
        read_note_record(document, source="b.json")
    assert info.value.field == field and info.value.source == "b.json"


def test_bad_note_type_and_language_are_refused() -> None:
    record = read_note_record(bundle())
    with pytest.raises(InputError, match="weekly"):
        draft_note(record, "weekly")
    with pytest.raises(InputError, match="fr"):
        draft_note(record, "admission", "fr")


def test_template_draft_is_within_the_200_ms_contract() -> None:
    data = bundle()
    draft_note(read_note_record(data), "admission")  # load phrases once
    started = time.perf_counter()
    for _ in range(10):
        for note_type in NOTE_TYPES:
            draft_note(read_note_record(data), note_type)
    per_draft_ms = (time.perf_counter() - started) * 1000 / 30
    assert per_draft_ms <= 200


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "notes", "draft", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "MEDBRAIN_HOME": "/tmp/medbrain-notes-test"},
    )


def test_cli_prints_one_json_document_with_the_contract_fields() -> None:
    result = _cli(str(FIXTURE), "--type", "discharge", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["generator"] == "template" and "notice" not in document
    for section in document["sections"]:
        assert set(section) >= {"title", "text", "sources"}


def test_cli_invalid_input_exits_2_with_one_line() -> None:
    result = _cli(str(FIXTURE), "--type", "weekly", "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "--type" in result.stderr
