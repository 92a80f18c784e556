"""copy_paste (shingle resemblance) and signature rules."""

from __future__ import annotations

import pytest

from tests.unit.qc.helpers import load_fixture, mutate, rule_ids, run

CAP = "01_cap_clean"
NOTE_0308 = "患者体温较前下降,昨日最高37.6℃,咳嗽减轻,痰量减少,转为白色。食欲改善。查体:右下肺湿啰音减少。痰培养回报:肺炎链球菌,对头孢呋辛敏感。抗感染治疗有效,继续目前方案,监测血压,今日血压132/80mmHg。"
NOTE_0310 = "患者已连续48小时体温正常,偶有咳嗽,无咳痰。复查血常规:WBC 7.8×10^9/L,CRP 12mg/L,较前明显好转。拟明日复查胸部CT,评估病灶吸收情况后考虑出院。与患者及家属沟通,表示理解。"


@pytest.mark.parametrize(
    "copy",
    [
        NOTE_0308,
        NOTE_0308.replace("37.6℃", "37.2℃"),
        NOTE_0308.replace("132/80mmHg", "128/76mmHg").replace("昨日", "前日"),
    ],
)
def test_copied_progress_note_is_flagged(copy: str) -> None:
    body = mutate(load_fixture(CAP), "course", NOTE_0310, copy)
    hits = [d for d in run(body).defects if d.rule_id == "qc.copy.progress-notes"]
    assert len(hits) == 1
    assert hits[0].evidence[-1].quote == "2024-03-10 09:20"
    assert "2024-03-08 10:05" in hits[0].message


def test_similar_but_rewritten_note_is_not_copy_paste() -> None:
    rewritten = "患者体温正常2天,咳嗽明显减轻,痰少色白。查体:右下肺仍可闻及少许湿啰音。继续头孢呋辛抗感染,复查血常规及CRP,评估后考虑出院。"
    body = mutate(load_fixture(CAP), "course", NOTE_0310, rewritten)
    assert "qc.copy.progress-notes" not in rule_ids(run(body))


@pytest.mark.parametrize(
    ("doc", "old", "new", "rule"),
    [
        ("admission", "医师签名:李明", "医师签名:", "qc.sign.admission"),
        (
            "admission",
            "                                                    医师签名:李明\n",
            "",
            "qc.sign.admission",
        ),
        (
            "course",
            NOTE_0310 + "\n                                                    医师签名:李明",
            NOTE_0310,
            "qc.sign.progress-notes",
        ),
        ("discharge", "医师签名:李明", "医师签名:  ", "qc.sign.discharge"),
    ],
)
def test_unsigned_documents(doc: str, old: str, new: str, rule: str) -> None:
    hits = [d for d in run(mutate(load_fixture(CAP), doc, old, new)).defects if d.rule_id == rule]
    assert len(hits) == 1 and hits[0].category == "signature"


@pytest.mark.parametrize(
    "signature",
    [
        "医师签名:李明",
        "医师签名：李明",
        "记录者:李明",
        "李明",
        "住院医师:李明/主治医师:张建国",
        "医师签名:李明/张建国",
    ],
)
def test_signature_styles_are_accepted(signature: str) -> None:
    body = mutate(load_fixture(CAP), "admission", "医师签名:李明", signature)
    assert "qc.sign.admission" not in rule_ids(run(body))


def test_another_patients_name_is_copy_paste_from_another_record() -> None:
    body = mutate(load_fixture(CAP), "discharge", "姓名:王某某", "姓名:刘某某")
    report = run(body)
    hits = [d for d in report.defects if d.rule_id == "qc.copy.other-patient"]
    assert hits and hits[0].category == "copy_paste" and report.veto
    assert hits[0].evidence[-1].quote == "姓名:刘某某"


def test_same_name_with_different_spacing_is_not_another_patient() -> None:
    body = mutate(load_fixture(CAP), "discharge", "姓名:王某某", "姓名: 王某某")
    assert "qc.copy.other-patient" not in rule_ids(run(body))
