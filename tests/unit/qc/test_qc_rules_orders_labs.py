"""consent, lab_followup and medication rules: orders and results against the notes."""

from __future__ import annotations

import pytest

from tests.unit.qc.helpers import load_fixture, mutate, rule_ids, run

CAP = "01_cap_clean"
HERNIA = "02_hernia_clean"


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        (None, None, "qc.consent.surgery-missing"),
        ("患者签名：赵某某", "患者签名：", "qc.consent.surgery-unsigned"),
        (
            "签字时间：2024年04月09日16时20分",
            "签字时间：2024年04月10日09时00分",
            "qc.consent.surgery-after",
        ),
    ],
)
def test_surgical_consent_defects(old: str | None, new: str | None, rule: str) -> None:
    report = run(mutate(load_fixture(HERNIA), "consent", old, new))
    assert rule in {d.rule_id for d in report.defects if d.category == "consent"}


def test_missing_surgical_consent_is_a_veto() -> None:
    report = run(mutate(load_fixture(HERNIA), "consent", None, None))
    assert report.veto and report.grade == "丙"


def test_consent_signed_by_next_of_kin_the_day_before_passes() -> None:
    body = mutate(load_fixture(HERNIA), "consent", "患者签名：赵某某", "家属签名：赵小某")
    assert not {r for r in rule_ids(run(body)) if r.startswith("qc.consent.")}


def test_transfusion_order_needs_a_transfusion_consent() -> None:
    body = mutate(
        load_fixture(CAP), "orders", None, "2024-03-07 10:00 临时医嘱 输注去白细胞悬浮红细胞 2U\n"
    )
    assert "qc.consent.transfusion-missing" in rule_ids(run(body))
    consent = "输血治疗知情同意书\n患者签名:王某某\n签署时间:2024-03-07 09:30\n"
    assert "qc.consent.transfusion-missing" not in rule_ids(
        run(mutate(body, "consent", None, consent))
    )


@pytest.mark.parametrize(
    ("lab", "mentioned"),
    [
        ("2024-03-08 07:30 血钾 2.6 mmol/L ↓\n", False),
        ("2024-03-08 07:30 血钠 121 mmol/L ↓\n", False),
        ("2024-03-08 07:30 肌钙蛋白I 1.8 ng/ml 危急值\n", False),
        ("2024-03-08 07:30 血小板 35 ×10^9/L ↓\n", False),
        # near misses: mildly abnormal, or addressed in the 03-08 note
        ("2024-03-08 07:30 血钾 3.3 mmol/L ↓\n", True),
        ("2024-03-08 07:30 白细胞 12.1 ×10^9/L ↑\n", True),
    ],
)
def test_clearly_abnormal_lab_must_be_addressed(lab: str, mentioned: bool) -> None:
    body = mutate(load_fixture(CAP), "labs", None, lab)
    assert ("qc.lab.abnormal-not-addressed" in rule_ids(run(body))) is not mentioned


def test_abnormal_lab_addressed_in_the_next_note_passes() -> None:
    body = mutate(load_fixture(CAP), "labs", None, "2024-03-08 07:30 血钾 2.6 mmol/L ↓\n")
    body = mutate(body, "course", "食欲改善。", "食欲改善。今晨血钾2.6mmol/L,予口服补钾。")
    assert "qc.lab.abnormal-not-addressed" not in rule_ids(run(body))


def test_antibiotic_started_without_a_note_is_flagged() -> None:
    order = "2024-03-08 11:00 长期医嘱 注射用美罗培南 1g ivgtt q8h\n"
    report = run(mutate(load_fixture(CAP), "orders", None, order))
    hits = [d for d in report.defects if d.rule_id == "qc.medication.antimicrobial-undocumented"]
    assert hits and hits[0].evidence[-1].quote == order.strip()


def test_antibiotic_named_in_a_note_passes_and_stop_orders_are_ignored() -> None:
    body = mutate(
        load_fixture(CAP), "orders", None, "2024-03-08 11:00 长期医嘱 注射用美罗培南 1g ivgtt q8h\n"
    )
    body = mutate(body, "course", "抗感染治疗有效", "改用美罗培南抗感染,抗感染治疗有效")
    assert "qc.medication.antimicrobial-undocumented" not in rule_ids(run(body))
    stop = mutate(
        load_fixture(CAP), "orders", None, "2024-03-08 11:00 长期医嘱 停 注射用美罗培南\n"
    )
    assert "qc.medication.antimicrobial-undocumented" not in rule_ids(run(stop))
