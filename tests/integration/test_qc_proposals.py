"""Mined rules end to end: the QC officer records manual findings, mining proposes the
recurring pattern with support and confidence, approving it makes a tested, enabled hospital
rule that every QC check then applies; rejecting needs a reason and is final; every step is
audited (issue 7 §6). Also: a hospital selects a scoring profile by its overrides file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.store import models as m
from medbrain.store.qc_models import QCNotice, QCRule, QCRuleProposal

ADMISSION = """入院记录
姓名:患者{i}  性别:男  年龄:56岁
入院时间:2024-03-05 08:00
记录时间:2024-03-05 10:00
主诉:咳嗽、咳痰3天。
现病史:患者3天前受凉后出现咳嗽、咳痰。
既往史:否认高血压病史。否认药物过敏史。
个人史:无吸烟饮酒史。
婚育史:已婚。
家族史:否认家族遗传病史。
体格检查:T 38.1℃ P 90次/分 BP 125/80mmHg,神志清{exam}。
专科情况:右下肺呼吸音低。
辅助检查:胸片示右下肺斑片影。
初步诊断:社区获得性肺炎
医师签名:李明
"""
WITH_HR = ",心率90次/分,律齐"
HR = {"note_kind": "admission", "section": "体格检查", "pattern": "missing_phrase"}


def _stays(session: Session, exams: list[str]) -> list[int]:
    """One inpatient stay per exam text, each with its admission note; encounter ids."""
    ids: list[int] = []
    for i, exam in enumerate(exams):
        patient = m.Patient(mrn=f"QCP{i:04d}", name=f"患者{i}", sex="male")
        session.add(patient)
        session.flush()
        encounter = m.Encounter(
            patient_id=patient.id,
            kind="inpatient",
            status="in-progress",
            department="呼吸内科",
            admit_time=datetime(2024, 3, 5, 0, 0, tzinfo=UTC),
        )
        session.add(encounter)
        session.flush()
        doc = m.Document(
            patient_id=patient.id, encounter_id=encounter.id, doc_type="admission", title="入院记录"
        )
        session.add(doc)
        session.flush()
        text = ADMISSION.format(i=i, exam=exam)
        session.add(
            m.DocumentVersion(
                document_id=doc.id,
                version=1,
                text=text,
                content_sha256=hashlib.sha256(text.encode()).hexdigest(),
                author="李明",
            )
        )
        ids.append(encounter.id)
    return ids


def _actions(session: Session) -> list[str]:
    return list(session.scalars(select(m.AuditEntry.action).order_by(m.AuditEntry.seq)))


def test_manual_findings_mine_approve_and_reject(client_and_tokens: Any) -> None:
    client, tokens, factory = client_and_tokens
    officer = {"Authorization": f"Bearer {tokens['qc_officer']}"}
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    with factory() as session, session.begin():
        # stays 0–3 lack the heart rate; 4–5 record it
        stays = _stays(session, ["", "", "", "", WITH_HR, WITH_HR])

    def manual(stay: int, headers: dict[str, str], **body: str) -> Any:
        return client.post(f"/api/v1/qc/encounters/{stay}/manual", json=body, headers=headers)

    for stay in stays[:3]:
        done = manual(stay, officer, **HR, element="心率")
        assert done.status_code == 200, done.text
        assert done.json()["kind"] == "manual" and done.json()["verdict"] == "confirmed"
    assert manual(stays[0], officer, **HR, element="心率").status_code == 409
    assert manual(stays[0], doctor, **HR, element="心率").status_code == 403
    bad = manual(stays[0], officer, **HR, element='x") or has("a')
    assert bad.status_code == 422 and bad.json()["field"] == "element"
    # a second pattern seen twice (rejected below), and one seen once (never proposed)
    for stay in stays[4:6]:
        assert manual(stay, officer, **HR, element="律齐").status_code == 200
    manual(
        stays[1], officer, note_kind="admission", section="主诉", pattern="bad_phrase", element="咳"
    )

    # another officer overrules one manual finding: only confirmed ones are mined
    with factory() as session:
        bad_phrase = session.scalars(
            select(QCNotice.id).where(QCNotice.kind == "manual").order_by(QCNotice.id.desc())
        ).first()
    overruled = client.post(
        f"/api/v1/qc/notices/{bad_phrase}/verdict",
        json={"verdict": "rejected", "reason": "主诉用词无误"},
        headers=officer,
    )
    assert overruled.status_code == 200, overruled.text
    mined = client.post("/api/v1/qc/proposals/mine", headers=officer)
    assert mined.status_code == 200, mined.text
    assert mined.json() == {"findings": 5, "records": 6, "proposed": 1, "updated": 0}
    # "律齐" is present in the stays it was reported for: the drafted condition never holds
    [proposal] = client.get("/api/v1/qc/proposals", headers=officer).json()["proposals"]
    assert proposal["element"] == "心率" and proposal["status"] == "proposed"
    assert (proposal["support"], proposal["fires"], proposal["hits"]) == (3, 4, 3)
    assert proposal["confidence"] == 0.75 and proposal["records"] == 6
    assert {e["stay"] for e in proposal["examples"]} == set(stays[:3])
    page = client.get("/qc/proposals", headers=officer)
    assert page.status_code == 200 and proposal["condition"].replace('"', "&#34;") in page.text
    assert client.get("/api/v1/qc/proposals", headers=doctor).status_code == 403

    body = {"documents": {"admission": ADMISSION.format(i=9, exam="")}}
    before = client.post("/api/v1/qc/check", json=body, headers=officer).json()
    approved = client.post(
        f"/api/v1/qc/proposals/{proposal['id']}/approve", json={"deduction": 2}, headers=officer
    )
    assert approved.status_code == 200, approved.text
    rule_id = approved.json()["rule_id"]
    assert rule_id == f"qc.local.mined-{proposal['id']}" and approved.json()["samples"] > 0
    after = client.post("/api/v1/qc/check", json=body, headers=officer).json()
    fired = [d for d in after["defects"] if d["rule_id"] == rule_id]
    assert not any(d["rule_id"] == rule_id for d in before["defects"])
    assert fired and fired[0]["deduction"] == 2 and "心率" in fired[0]["message"]
    clean = {"documents": {"admission": ADMISSION.format(i=9, exam=WITH_HR)}}
    checked = client.post("/api/v1/qc/check", json=clean, headers=officer).json()
    assert not any(d["rule_id"] == rule_id for d in checked["defects"])
    again = client.post(f"/api/v1/qc/proposals/{proposal['id']}/approve", headers=officer)
    assert again.status_code == 409

    # the "律齐" pattern, with a lower confidence threshold it would be a proposal; reject one
    with factory() as session, session.begin():
        session.add(
            QCRuleProposal(
                pattern_key="missing_phrase|admission|体格检查|神志",
                note_kind="admission",
                section="体格检查",
                pattern="missing_phrase",
                element="神志",
                category="content",
                condition='has("admission") and not contains(section("admission", "体格检查"), "神志")',
                examples=[],
            )
        )
    with factory() as session:
        other = session.scalars(
            select(QCRuleProposal.id).where(QCRuleProposal.element == "神志")
        ).one()
    url = f"/api/v1/qc/proposals/{other}/reject"
    assert client.post(url, json={"reason": " "}, headers=officer).status_code == 422
    assert client.post(url, json={"reason": "常规已记录"}, headers=officer).status_code == 200
    assert client.post(url, json={"reason": "again"}, headers=officer).status_code == 409

    with factory() as session:
        rule = session.scalars(select(QCRule).where(QCRule.rule_id == rule_id)).one()
        assert rule.enabled and rule.tested_version == rule.version == 1
        assert "支持 3 份病历" in rule.row["source"]
        rows = {p.element: p for p in session.scalars(select(QCRuleProposal))}
        assert rows["心率"].status == "approved" and rows["心率"].rule_version == 1
        assert rows["神志"].status == "rejected" and rows["神志"].reason == "常规已记录"
        manual_rows = list(session.scalars(select(QCNotice).where(QCNotice.kind == "manual")))
        assert len(manual_rows) == 6
        actions = _actions(session)
    assert actions.count("qc.manual.create") == 6
    for action in (
        "qc.proposal.mine",
        "qc.rule.create",
        "qc.rule.test",
        "qc.rule.enable",
        "qc.proposal.approve",
        "qc.proposal.reject",
    ):
        assert action in actions, action
    # mining again keeps decided proposals decided and proposes nothing new
    again_mined = client.post("/api/v1/qc/proposals/mine", headers=officer).json()
    assert again_mined["proposed"] == 0 and again_mined["updated"] == 0


def test_a_hospital_selects_a_scoring_profile_in_its_overrides_file(
    client_and_tokens: Any, tmp_path: Path
) -> None:
    client, tokens, _ = client_and_tokens
    officer = {"Authorization": f"Bearer {tokens['qc_officer']}"}
    body = {"documents": {"admission": ADMISSION.format(i=1, exam=WITH_HR)}}
    shipped = client.post("/api/v1/qc/check", json=body, headers=officer).json()
    assert "scoring_profile" not in shipped
    (tmp_path / "qc").mkdir()
    (tmp_path / "qc" / "overrides.yaml").write_text(
        "scoring:\n  profile: inpatient-evaluation-form-trial\n", encoding="utf-8"
    )
    selected = client.post("/api/v1/qc/check", json=body, headers=officer).json()
    assert selected["scoring_profile"] == "inpatient-evaluation-form-trial"
    page = client.get("/qc/dashboard", headers=officer)
    assert page.status_code == 200 and "住院病历质量评价表(试行)" in page.text
    (tmp_path / "qc" / "overrides.yaml").write_text("scoring: [broken\n", encoding="utf-8")
    broken = client.post("/api/v1/qc/check", json=body, headers=officer)
    assert broken.status_code == 500 and "overrides.yaml" in broken.text


def test_store_workflow_on_both_databases(session_factory: Any) -> None:
    from medbrain.qc import load_qc_knowledge
    from medbrain.store import qc_proposals as qp
    from medbrain.store import qc_workflow as wf

    now = datetime(2024, 3, 6, 4, 0, tzinfo=UTC)
    zone = wf.zone_of("Asia/Shanghai")
    officer = wf.Actor("qc", "qc_officer")
    kb = load_qc_knowledge()
    with session_factory() as session, session.begin():
        stays = _stays(session, ["", "", WITH_HR])
        for stay in stays[:2]:
            form = qp.ManualForm("admission", "体格检查", "missing_phrase", "心率")
            qp.record_manual(session, stay, form, officer, now, kb, zone)
        result = qp.mine_proposals(session, kb, officer, now, zone)
        assert (result.findings, result.records, result.proposed) == (2, 3, 1)
        [row] = qp.list_proposals(session, "proposed")
        assert (row.support, row.fires, row.hits, row.confidence) == (2, 2, 2, 1.0)
        assert [e["stay"] for e in row.examples] == stays[:2]
        approved, results = qp.approve_proposal(session, row.id, officer, now, kb)
        assert approved.status == "approved" and results
        knowledge = wf.effective_knowledge(session, kb)
        assert approved.rule_id in {r.rule_id for r in knowledge.rows}
