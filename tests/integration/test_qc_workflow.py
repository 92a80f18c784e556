"""The QC closed loop over a real database (SQLite and PostgreSQL): import → notice → fix →
closed; justify; in-stay deadline scan; dashboard; hospital rules; the API and CLI paths."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit.verify import verify
from medbrain.interop.fhir.importer import import_bundle
from medbrain.qc import load_qc_knowledge
from medbrain.store import models as m
from medbrain.store import qc_workflow as wf
from medbrain.store.qc_models import QCNotice, QCRun

KB = load_qc_knowledge()
ZONE = wf.zone_of("Asia/Shanghai")
DOCTOR = wf.Actor("dr_li", "doctor")
NOW = datetime(2024, 3, 6, 4, 0, tzinfo=UTC)  # 2024-03-06 12:00 in Shanghai

ADMISSION = """入院记录
姓名:张伟  性别:男  年龄:56岁  科室:呼吸内科
入院时间:2024-03-05 08:00
记录时间:2024-03-05 10:00
主诉:咳嗽、咳痰3天。
现病史:患者3天前受凉后出现咳嗽、咳痰,为白色黏痰,伴发热,最高38.5℃。
{past}个人史:无吸烟饮酒史。
婚育史:已婚,育有1子。
家族史:否认家族遗传病史。
体格检查:T 38.1℃ P 90次/分 R 20次/分 BP 125/80mmHg,右下肺可闻及湿啰音。
专科情况:右下肺呼吸音低。
辅助检查:胸片示右下肺斑片影。
初步诊断:社区获得性肺炎
医师签名:李明
"""
PAST = "既往史:否认高血压、糖尿病病史。否认药物、食物过敏史。\n"
FIRST_COURSE = """首次病程记录
2024-03-05 11:00
病例特点:男性,56岁,咳嗽咳痰3天伴发热。
诊断依据:受凉后咳嗽咳痰,发热,右下肺湿啰音,胸片右下肺斑片影。
鉴别诊断:肺结核:无低热盗汗,暂不支持。
诊疗计划:抗感染、化痰治疗,复查血常规。
医师签名:李明
"""


def _doc(doc_id: str, title: str, text: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{doc_id}",
        "resource": {
            "resourceType": "DocumentReference",
            "id": doc_id,
            "status": "current",
            "type": {"text": title},
            "description": title,
            "subject": {"reference": "Patient/qc-p1"},
            "context": {"encounter": [{"reference": "Encounter/qc-e1"}]},
            "author": [{"display": "李明"}],
            "date": "2024-03-05T10:00:00+08:00",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(text.encode()).decode(),
                    }
                }
            ],
        },
    }


def bundle(admission: str, *, with_course: bool = True, with_stay: bool = True) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    if with_stay:
        entries += [
            {
                "fullUrl": "urn:uuid:qc-p1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "qc-p1",
                    "identifier": [{"system": "urn:mrn", "value": "QC0001"}],
                    "name": [{"text": "张伟"}],
                    "gender": "male",
                    "birthDate": "1968-01-02",
                },
            },
            {
                "fullUrl": "urn:uuid:qc-e1",
                "resource": {
                    "resourceType": "Encounter",
                    "id": "qc-e1",
                    "status": "in-progress",
                    "class": {"code": "IMP"},
                    "serviceType": {"text": "呼吸内科"},
                    "subject": {"reference": "Patient/qc-p1"},
                    "period": {"start": "2024-03-05T08:00:00+08:00"},
                },
            },
        ]
    entries.append(_doc("qc-d1", "入院记录", admission))
    if with_course:
        entries.append(_doc("qc-d2", "首次病程记录", FIRST_COURSE))
    return {"resourceType": "Bundle", "id": "qc-b", "type": "collection", "entry": entries}


def _import(session: Session, document: dict[str, Any]) -> list[wf.RecheckResult]:
    result = import_bundle(session, document, source="t")
    return wf.recheck_after_import(
        session, result.document_encounter_ids, knowledge=KB, zone=ZONE, actor=DOCTOR, now=NOW
    )


def _notices(session: Session, rule_id: str | None = None) -> list[QCNotice]:
    rows = list(session.scalars(select(QCNotice).order_by(QCNotice.id)))
    return [n for n in rows if rule_id is None or n.rule_id == rule_id]


def test_imported_defect_becomes_a_notice_and_a_fixed_version_closes_it(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        session.add(m.User(username="dr_li", display_name="李明", role="doctor", password_hash="x"))
    with session_factory() as session, session.begin():
        results = _import(session, bundle(ADMISSION.format(past="")))
        assert len(results) == 1 and results[0].opened >= 1
        [notice] = _notices(session, "qc.section.admission-past-history")
        assert notice.status == "open" and notice.kind == "defect"
        assert notice.responsible == "李明" and notice.responsible_user == "dr_li"
        assert notice.department == "呼吸内科"
        assert "既往史" in notice.message
        assert any("第十九条" in (e.get("source") or "") for e in notice.evidence)
        others_open = {n.rule_id for n in _notices(session) if n.status == "open"}
    # a later version of the same document, with the section written, closes the notice
    later = datetime(2024, 3, 6, 5, 0, tzinfo=UTC)
    with session_factory() as session, session.begin():
        result = import_bundle(session, bundle(ADMISSION.format(past=PAST)), source="t")
        assert result.document_encounter_ids  # the new version is reported to the hook
        wf.recheck_after_import(
            session, result.document_encounter_ids, knowledge=KB, zone=ZONE, actor=DOCTOR, now=later
        )
    with session_factory() as session:
        [notice] = _notices(session, "qc.section.admission-past-history")
        assert notice.status == "fixed" and notice.fixed_at == later
        still = {n.rule_id for n in _notices(session) if n.status == "open"}
        assert still == others_open - {"qc.section.admission-past-history"}
        runs = list(session.scalars(select(QCRun).order_by(QCRun.id)))
        assert [r.trigger for r in runs] == ["import", "import"]
        assert runs[1].score > runs[0].score
        actions = [
            e.action for e in session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq))
        ]
        assert actions.count("qc.recheck") == 2
        assert verify(session, None).ok


def test_unchanged_reimport_rechecks_nothing_and_justify_is_audited(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        _import(session, bundle(ADMISSION.format(past="")))
    with session_factory() as session, session.begin():
        assert _import(session, bundle(ADMISSION.format(past=""))) == []
        notice = _notices(session, "qc.section.admission-past-history")[0]
        wf.justify(session, notice.id, DOCTOR, "患者无法提供既往史(意识障碍),已注明", NOW)
        notice_id = notice.id
    with session_factory() as session, session.begin():
        from medbrain.core.errors import ConflictError, InputError

        with pytest.raises(ConflictError):
            wf.justify(session, notice_id, DOCTOR, "again", NOW)
        with pytest.raises(InputError):
            wf.reopen(session, notice_id, wf.Actor("qc", "qc_officer"), "  ", NOW)
        wf.reopen(session, notice_id, wf.Actor("qc", "qc_officer"), "理由不充分", NOW)
        assert session.get(QCNotice, notice_id).status == "open"  # type: ignore[union-attr]
        actions = [
            e.action for e in session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq))
        ]
        assert "qc.notice.justify" in actions and "qc.notice.reopen" in actions


def test_scan_opens_due_and_overdue_notices_and_closes_them_when_written(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        import_bundle(session, bundle(ADMISSION.format(past=PAST), with_course=False), source="t")
    # 8 h after admission at 08:00 (+08:00) → first course due 16:00 local = 08:00 UTC
    soon = datetime(2024, 3, 5, 6, 30, tzinfo=UTC)  # 14:30 local: 1.5 h left
    with session_factory() as session, session.begin():
        result = wf.scan_in_stay(session, knowledge=KB, now=soon, zone=ZONE)
        assert result.encounters == 1 and result.due_soon == 1 and result.overdue == 0
        [notice] = _notices(session, "qc.time.first-course-8h")
        assert notice.due_status == "due_soon" and notice.kind == "deadline"
        assert notice.due_at == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
        assert wf.notice_state(notice, soon) == "open"
    late = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    with session_factory() as session, session.begin():
        result = wf.scan_in_stay(session, knowledge=KB, now=late, zone=ZONE)
        assert result.overdue == 1 and result.opened == 0  # the same notice, now overdue
        [notice] = _notices(session, "qc.time.first-course-8h")
        assert notice.due_status == "overdue" and wf.notice_state(notice, late) == "overdue"
        assert wf.status_counts(session, late)["overdue"] == 1
    with session_factory() as session, session.begin():
        import_bundle(session, bundle(ADMISSION.format(past=PAST)), source="t")
        result = wf.scan_in_stay(session, knowledge=KB, now=late, zone=ZONE)
        assert result.closed == 1
        [notice] = _notices(session, "qc.time.first-course-8h")
        assert notice.status == "fixed"


def test_dashboard_rates_and_hospital_rule_lifecycle(
    session_factory: sessionmaker[Session],
) -> None:
    officer = wf.Actor("qc", "qc_officer")
    with session_factory() as session, session.begin():
        _import(session, bundle(ADMISSION.format(past="")))
        stats = wf.dashboard(
            session, since=datetime(2024, 3, 1, tzinfo=UTC), until=datetime(2024, 3, 8, tzinfo=UTC)
        )
        assert stats["records"] == 1 and stats["defect_rate"] == 1.0
        assert stats["by_department"][0]["name"] == "呼吸内科"
        assert stats["by_doctor"][0]["name"] == "李明"
        assert any(r["rule_id"] == "qc.section.admission-past-history" for r in stats["by_rule"])
        assert sum(b["records"] for b in stats["trend"]) == 1
        form = wf.RuleForm(
            rule_id="qc.local.fever-plan",
            when='contains(section("admission", "现病史"), "发热") and not has("senior_round")',
            category="content",
            severity="warning",
            deduction=1,
            message_zh="发热患者尚无上级医师查房",
            message_en="A febrile patient has no attending rounds yet",
            source="本院质控规定2024第3条",
        )
        wf.save_rule(session, form, officer, NOW)
        from medbrain.core.errors import ConflictError

        with pytest.raises(ConflictError):  # not tested yet
            wf.set_rule_enabled(session, "qc.local.fever-plan", True, officer, NOW)
        samples = [("mine", {"documents": {"admission": ADMISSION.format(past=PAST)}})]
        _rule, results = wf.try_rule(session, "qc.local.fever-plan", officer, NOW, samples)
        assert results[0].fired and results[0].quotes[0].startswith("患者3天前")
        wf.set_rule_enabled(session, "qc.local.fever-plan", True, officer, NOW)
        encounter_id = session.scalars(select(m.Encounter.id)).one()
        out = wf.recheck_encounter(
            session,
            encounter_id,
            knowledge=wf.effective_knowledge(session, KB),
            now=NOW,
            zone=ZONE,
            actor=officer,
            trigger="page",
        )
        assert out.opened == 1
        assert _notices(session, "qc.local.fever-plan")[0].status == "open"
        # an edit bumps the version and switches the rule off until it is tested again
        wf.save_rule(session, dataclasses.replace(form, deduction=2), officer, NOW)
        assert not wf.list_rules(session)[0].enabled


def test_api_import_path_runs_qc_and_lists_notices(client_and_tokens: Any) -> None:
    client, tokens, _factory = client_and_tokens
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    response = client.post(
        "/fhir",
        content=json.dumps(bundle(ADMISSION.format(past=""))),
        headers={**doctor, "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    officer = {"Authorization": f"Bearer {tokens['qc_officer']}"}
    listed = client.get("/api/v1/qc/notices", headers=officer).json()["notices"]
    rules = {n["rule_id"]: n for n in listed}
    notice = rules["qc.section.admission-past-history"]
    assert notice["state"] == "open" and notice["responsible"] == "李明"
    response = client.post(
        f"/api/v1/qc/notices/{notice['id']}/justify", json={"reason": ""}, headers=doctor
    )
    assert response.status_code == 422
    response = client.post(
        f"/api/v1/qc/notices/{notice['id']}/justify", json={"reason": "已口头核实"}, headers=doctor
    )
    assert response.status_code == 200 and response.json()["status"] == "justified"
    assert client.post("/api/v1/qc/scan", headers=doctor).status_code == 403
    scan = client.post("/api/v1/qc/scan", headers=officer).json()
    assert scan["encounters"] == 1

    # the note-save path: signing a new version of the admission note re-checks the stay
    with _factory() as session:
        patient_id = session.scalars(select(m.Patient.id)).one()
        document_id = session.scalar(select(m.Document.id).where(m.Document.fhir_id == "qc-d1"))
    response = client.post(
        f"/api/v1/patients/{patient_id}/notes",
        json={"type": "admission", "text": ADMISSION.format(past=PAST), "document_id": document_id},
        headers=doctor,
    )
    assert response.status_code == 201, response.text
    listed = client.get("/api/v1/qc/notices", headers=officer).json()["notices"]
    states = {n["rule_id"]: n["state"] for n in listed}
    # the new version has the history: the justified notice closes as fixed
    assert states["qc.section.admission-past-history"] == "fixed"
    with _factory() as session:
        runs = list(session.scalars(select(QCRun).order_by(QCRun.id)))
        assert len(runs) == 2  # the import and the signed note each re-checked the stay
        assert runs[1].by_rule.get("qc.section.admission-past-history") is None
        assert runs[0].by_rule.get("qc.section.admission-past-history") == 1


def test_cli_scan_prints_json(tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from medbrain.cli import app

    monkeypatch.setenv("MEDBRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("MEDBRAIN_DATABASE_URL", raising=False)
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps(bundle(ADMISSION.format(past=PAST), with_course=False)), encoding="utf-8"
    )
    runner = CliRunner()
    done = runner.invoke(app, ["import", str(path), "--json"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["qc", "scan", "--json", "--now", "2024-03-05T17:00+08:00"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["overdue"] == 1 and out["items"][0]["rule_id"] == "qc.time.first-course-8h"
    bad = runner.invoke(app, ["qc", "scan", "--now", "tomorrow"])
    assert bad.exit_code == 2 and "--now" in bad.stderr and "Traceback" not in bad.output


def test_pages_show_notices_dashboard_and_rules_by_role(client_and_tokens: Any) -> None:
    client, tokens, factory = client_and_tokens
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    officer = {"Authorization": f"Bearer {tokens['qc_officer']}"}
    client.post(
        "/fhir",
        content=json.dumps(bundle(ADMISSION.format(past=""))),
        headers={**doctor, "Content-Type": "application/fhir+json"},
    )
    with factory() as session:
        encounter_id = session.scalars(select(m.Encounter.id)).one()
        notice_id = _notices(session, "qc.section.admission-past-history")[0].id
    page = client.get("/qc/notices", headers=officer)
    assert page.status_code == 200
    assert f'data-notice-id="{notice_id}"' in page.text and 'data-status="open"' in page.text
    # the doctor account of the fixture did not write the note: not in its own list
    assert f'data-notice-id="{notice_id}"' not in client.get("/qc/notices", headers=doctor).text
    done = client.post(
        f"/qc/notices/{notice_id}/justify",
        data={"reason": "已核实"},
        headers=officer,
        follow_redirects=False,
    )
    assert done.status_code == 303
    record = client.get(f"/qc/encounters/{encounter_id}", headers=officer).text
    assert 'id="qc-notices-stay"' in record and 'data-state="justified"' in record
    dashboard = client.get("/qc/dashboard?days=3650", headers=officer)
    assert dashboard.status_code == 200 and "呼吸内科" in dashboard.text
    assert f"/qc/encounters/{encounter_id}" in dashboard.text
    assert client.get("/qc/dashboard", headers=doctor).status_code == 403
    rules = client.post(
        "/qc/rules/validate",
        data={
            "rule_id": "qc.local.x",
            "when": "has('admission') and (",
            "message_zh": "x",
            "message_en": "x",
            "source": "s",
        },
        headers=officer,
    )
    assert rules.status_code == 422 and 'data-position="23"' in rules.text


def test_the_app_lifespan_runs_the_scan_loop(tmp_path: Path) -> None:
    import time

    from fastapi.testclient import TestClient

    from medbrain.api.app import create_app
    from medbrain.core.config import Settings

    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}", qc_schedule_seconds=1
    )
    app = create_app(settings)

    def scans() -> int:
        with app.state.session_factory() as session:
            rows = session.scalars(select(m.AuditEntry).where(m.AuditEntry.action == "qc.scan"))
            return len(list(rows))

    with TestClient(app):
        deadline = time.monotonic() + 20
        while scans() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert scans() >= 1
    app.state.engine.dispose()
