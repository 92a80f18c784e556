"""How real records are written, found by the blind set (tests/fixtures/qc/blind): run-on
sub-headings, operation time ranges, "停 病重" orders, non-drug allergens, named regimens,
coded 出院诊断 lists, per-procedure consents, a copied note's own patient, "无" as an answer,
rescue and consultation times in the narrative. Each case checks the variant is read and
that the defect is still found when it is really there."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.qc.parse import parse_document
from tests.unit.qc.helpers import FIXTURES, mutate, rule_ids, run
from tests.unit.qc.helpers import load_fixture as _load

BLIND = FIXTURES / "blind"


def blind(name: str) -> dict[str, Any]:
    return _load(name, BLIND)


def test_run_on_sub_headings_are_sections() -> None:
    text = (
        "2024-03-05 14:30 首次病程记录\n病例特点:1.老年男性。\n"
        "拟诊讨论:诊断依据:急性起病,影像支持。鉴别诊断:1.肺结核。2.肺癌。\n"
        "诊疗计划:抗感染。\n医师签名:李明\n"
    )
    note = parse_document("course", "course.txt", text).notes[0]
    basis, differential = note.section("诊断依据"), note.section("鉴别诊断")
    assert basis is not None and differential is not None
    assert text[basis.body_start : basis.end].startswith("急性起病")
    assert text[differential.body_start : differential.end].startswith("1.肺结核")
    # a sentence that merely mentions the words is no heading
    plain = parse_document(
        "course", "c.txt", "2024-03-05 14:30 首次病程记录\n病例特点:需做鉴别诊断\n"
    )
    assert plain.notes[0].section("鉴别诊断") is None


def test_a_first_course_note_without_differential_is_still_found() -> None:
    body = blind("b18_ckd_clean")
    assert "qc.diagnosis.first-course-differential" not in rule_ids(run(body))
    text = body["documents"]["course"]
    start = text.index("鉴别诊断:")
    cut = mutate(body, "course", text[start : text.index("诊疗计划", start)], "")
    assert "qc.diagnosis.first-course-differential" in rule_ids(run(cut))


def test_operation_end_is_read_from_a_time_range() -> None:
    body = blind("b30_hip_hemiarthroplasty_clean")  # 8时50分至10时20分, note at 11时00分
    assert "qc.time.post-op-immediate" not in rule_ids(run(body))
    late = mutate(body, "course", "2024年1月10日11时00分 术后", "2024年1月10日13时00分 术后")
    assert "qc.time.post-op-immediate" in rule_ids(run(late))


def test_stopping_serious_status_with_a_blank_in_the_order() -> None:
    body = blind("b07_stroke_no_family_late_round")  # "停 病重" on 03-13, then 3-day gaps
    assert "qc.time.progress-interval" not in rule_ids(run(body))
    still = mutate(body, "orders", "2024-03-13 09:10 长期医嘱 停 病重\n", "")
    assert "qc.time.progress-interval" in rule_ids(run(still))


def test_pollen_allergy_does_not_contradict_no_drug_allergy() -> None:
    body = blind("b29_asthma_meropenem_no_indication")
    assert "qc.consistency.allergy" not in rule_ids(run(body))
    drug = mutate(body, "admission", "对花粉、尘螨过敏", "对青霉素过敏")
    assert "qc.consistency.allergy" in rule_ids(run(drug))


def test_a_consents_risk_list_is_not_an_allergy_history() -> None:
    body = blind("b22_vf_rescue_note_late")  # consent lists 造影剂过敏 as a risk
    assert "qc.consistency.allergy" not in rule_ids(run(body))


def test_a_named_eradication_regimen_documents_its_antibiotics() -> None:
    body = blind("b36_gastritis_no_discharge_record")
    assert "qc.medication.antimicrobial-undocumented" not in rule_ids(run(body))
    silent = mutate(body, "course", "指示:予铋剂四联根除治疗,待病理。", "指示:待病理。")
    assert "qc.medication.antimicrobial-undocumented" in rule_ids(run(silent))


def test_coded_discharge_diagnoses_are_checked_like_a_front_page() -> None:
    body = blind("b37_pneumonia_invalid_icd")
    assert "qc.icd.code-invalid" in rule_ids(run(body))
    fixed = mutate(body, "discharge", "J19.9", "J18.9")
    assert not {d.category for d in run(fixed).defects}
    uncoded = blind("b18_ckd_clean")  # no codes: the front-page rules stay silent
    assert not any(r.startswith("qc.icd.") for r in rule_ids(run(uncoded)))


def test_principal_diagnosis_must_be_the_operated_condition() -> None:
    body = blind("b28_appendicitis_wrong_principal_dx")
    assert "qc.icd.principal-surgery" in rule_ids(run(body))
    swapped = mutate(
        mutate(body, "discharge", "主要诊断:高血压病2级 (I10)", "其他诊断:高血压病2级 (I10)"),
        "discharge",
        "其他诊断:急性坏疽性",
        "主要诊断:急性坏疽性",
    )
    assert "qc.icd.principal-surgery" not in rule_ids(run(swapped))


def test_each_invasive_procedure_needs_its_own_consent() -> None:
    assert "qc.consent.invasive-missing" in rule_ids(run(blind("b16_cirrhosis_discharge_late")))
    body = blind("b33_gbs_age_mismatch")  # 腰椎穿刺术 with its consent
    assert "qc.consent.invasive-missing" not in rule_ids(run(body))
    assert "qc.consent.invasive-missing" in rule_ids(run(mutate(body, "consent", None, None)))


def test_a_note_introducing_another_patient_is_a_copy() -> None:
    assert "qc.copy.other-patient" in rule_ids(run(blind("b34_chemo_note_from_other_patient")))
    assert "qc.copy.other-patient" not in rule_ids(run(blind("b01_stemi_pci_clean")))


@pytest.mark.parametrize(
    ("name", "section", "rule"),
    [
        ("b33_gbs_age_mismatch", "辅助检查:无。", None),
        ("b33_gbs_age_mismatch", "既往史:无。", "qc.section.admission-past-history"),
    ],
)
def test_none_is_an_answer_only_where_it_can_be_true(
    name: str, section: str, rule: str | None
) -> None:
    body = blind(name)
    text = body["documents"]["admission"]
    title = section.split(":")[0]
    start = text.index(f"{title}:")
    changed = mutate(body, "admission", text[start : text.index("\n", start)], section)
    ids = rule_ids(run(changed))
    if rule is None:
        assert not any(r.startswith("qc.section.") for r in ids)
    else:
        assert rule in ids


def test_a_newborns_past_history_may_be_none() -> None:
    assert not run(blind("b27_neonatal_jaundice_clean")).defects


def test_rescue_end_and_consultation_time_are_read_from_the_narrative() -> None:
    rescue = blind("b22_vf_rescue_note_late")  # rescue ends 02时50分, written 11:30
    assert "qc.time.rescue-6h" in rule_ids(run(rescue))
    prompt = mutate(
        rescue, "course", "2024年8月20日11时30分 抢救记录", "2024年8月20日07时30分 抢救记录"
    )
    assert "qc.time.rescue-6h" not in rule_ids(run(prompt))
    consult = blind("b24_pancreatitis_consult_late")  # requested 05-07 10:15, seen 05-10
    assert "qc.time.consult-48h" in rule_ids(run(consult))
    quick = mutate(consult, "consult", "会诊时间:2024年5月10日", "会诊时间:2024年5月8日")
    assert "qc.time.consult-48h" not in rule_ids(run(quick))


# ---------------------------------------------------------------------------------------------
# Found by the second blind set (tests/fixtures/qc/blind2)

BLIND2 = FIXTURES / "blind2"


def blind2(name: str) -> dict[str, Any]:
    return _load(name, BLIND2)


def _set(body: dict[str, Any], doc: str, text: str) -> dict[str, Any]:
    out = {"documents": dict(body["documents"]), "meta": dict(body["meta"])}
    out["documents"][doc] = text
    return out


def test_admission_sections_run_on_in_one_line_are_sections() -> None:
    record = blind2("c07")  # 主诉:…治疗现病史:…。既往史:…。个人史:… all on one line
    assert not run(record).defects
    note = parse_document("admission", "a.txt", record["documents"]["admission"]).notes[0]
    complaint, hpi = note.section("主诉"), note.section("现病史")
    assert complaint is not None and hpi is not None
    assert record["documents"]["admission"][complaint.body_start : complaint.end].endswith(
        "第3周期治疗"
    )
    # a sub-heading of its own section (个人史:出生史:…) and a short word inside text
    # (CT结论:, 入院查体:) open nothing new
    text = "入院记录\n主诉:发热3天\n个人史:出生史:足月顺产。入院查体:T 38℃。CT结论:肺炎。\n"
    sections = parse_document("admission", "a.txt", text).notes[0].sections
    assert [s.title for s in sections] == ["主诉", "个人史"]
    # the section really missing from the run-on line is still found
    gone = mutate(record, "admission", "家族史：父母健在，否认家族遗传病史。", "")
    assert "qc.section.admission-family-history" in rule_ids(run(gone))


def test_an_antibiotic_needs_an_indication_next_to_it_in_the_note() -> None:
    record = blind2("c21")  # "今日开始予左氧氟沙星0.5g qd静滴。" and no infection anywhere
    assert "qc.medication.antimicrobial-undocumented" in rule_ids(run(record))
    sentence = "今日开始予左氧氟沙星0.5g qd静滴。"
    denied = mutate(record, "course", sentence, "无感染证据，" + sentence)
    assert "qc.medication.antimicrobial-undocumented" in rule_ids(run(denied))
    indicated = mutate(record, "course", sentence, "尿培养示大肠埃希菌，考虑尿路感染，" + sentence)
    assert "qc.medication.antimicrobial-undocumented" not in rule_ids(run(indicated))


def test_a_drug_given_in_a_note_must_be_ordered() -> None:
    record = blind2("c08")  # "加用骨化三醇0.25μg qd", never ordered
    report = run(record)
    assert "qc.medication.given-not-ordered" in rule_ids(report)
    hit = next(d for d in report.defects if d.rule_id == "qc.medication.given-not-ordered")
    assert hit.extra["section"] == "骨化三醇"
    ordered = mutate(
        record, "orders", None, "\n2024-04-23 09:00 长期医嘱 骨化三醇胶丸 0.25μg po qd\n"
    )
    assert "qc.medication.given-not-ordered" not in rule_ids(run(ordered))
    advised = mutate(record, "course", "加用骨化三醇", "建议加用骨化三醇")
    assert "qc.medication.given-not-ordered" not in rule_ids(run(advised))


def test_the_laboratorys_own_marks_make_any_test_abnormal() -> None:
    record = blind2("c06")  # 中性粒细胞 0.3 ↓↓ 危急值, never discussed
    labs = [d for d in run(record).defects if d.rule_id == "qc.lab.abnormal-not-addressed"]
    assert any(d.extra["section"] == "中性粒细胞" for d in labs)
    # a test outside the list counts when doubly marked, not when singly
    marked = mutate(record, "labs", None, "\n2024-09-04 07:00 血氨 150 μmol/L ↑↑\n")
    assert any(d.extra["section"] == "血氨" for d in run(marked).defects)
    single = mutate(record, "labs", None, "\n2024-09-04 07:00 血氨 150 μmol/L ↑\n")
    assert not any(d.extra["section"] == "血氨" for d in run(single).defects)
    addressed = mutate(
        record, "course", "今日复查血常规待回报。", "中性粒细胞0.3×10^9/L,危急值,予升白。"
    )
    assert not any(d.extra["section"] == "中性粒细胞" for d in run(addressed).defects)


def test_dialysis_notes_address_a_dialysis_patients_creatinine() -> None:
    record = blind2("c08")  # creatinine 812/905 in maintenance dialysis
    assert not any(d.extra["section"] == "肌酐" for d in run(record).defects)
    course = record["documents"]["course"]
    for word in ("透析", "CKD5", "CKD 5期", "尿毒症", "终末期肾病", "CRRT"):
        course = course.replace(word, "对症治疗")
    silent = _set(record, "course", course)
    assert any(d.extra["section"] == "肌酐" for d in run(silent).defects)


def test_the_hpi_may_name_the_complaint_by_its_key_noun_or_a_synonym() -> None:
    for name in ("c15", "c16", "c27", "c29"):  # 昏迷/昏倒, 停经/末次月经, 血尿/尿潜血, 黄染
        assert "qc.content.hpi-matches-complaint" not in rule_ids(run(blind2(name))), name
    other = mutate(blind2("c29"), "admission", "主诉：皮肤黄染3天", "主诉：腹泻3天")
    assert "qc.content.hpi-matches-complaint" in rule_ids(run(other))


def test_the_laterality_message_names_both_places() -> None:
    report = run(blind2("c02"))
    hit = next(d for d in report.defects if d.rule_id == "qc.consistency.laterality")
    assert "手术记录(手术名称)" in hit.message and "手术记录(术前诊断)" in hit.message
