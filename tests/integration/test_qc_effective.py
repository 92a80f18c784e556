"""One effective QC knowledge everywhere (shipped rules + hospital overrides + enabled hospital
rules), and the life of a justified notice whose defect a later version removes (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.interop.fhir.importer import import_bundle
from medbrain.qc import load_qc_knowledge
from medbrain.store import models as m
from medbrain.store import qc_workflow as wf
from medbrain.store.qc_models import QCNotice
from tests.integration.test_qc_workflow import ADMISSION, DOCTOR, KB, NOW, PAST, ZONE, bundle

OFFICER = wf.Actor("qc", "qc_officer")
LOCAL = "qc.local.fever-plan"
PAST_RULE = "qc.section.admission-past-history"


def _enable_local_rule(session: Session) -> None:
    form = wf.RuleForm(
        rule_id=LOCAL,
        when='contains(section("admission", "现病史"), "发热") and not has("senior_round")',
        message_zh="发热患者尚无上级医师查房",
        message_en="A febrile patient has no attending rounds yet",
        source="本院质控规定2024第3条",
    )
    wf.save_rule(session, form, OFFICER, NOW)
    samples = [("s", {"documents": {"admission": ADMISSION.format(past=PAST)}})]
    wf.try_rule(session, LOCAL, OFFICER, NOW, samples)
    wf.set_rule_enabled(session, LOCAL, True, OFFICER, NOW)


def _rules_of(report: dict[str, Any]) -> set[str]:
    return {d["rule_id"] for d in (*report["defects"], *report["needs_review"])}


def test_api_check_import_hook_and_record_page_use_hospital_rules_and_overrides(
    client_and_tokens: Any,
) -> None:
    client, tokens, factory = client_and_tokens
    officer = {"Authorization": f"Bearer {tokens['qc_officer']}"}
    body = {
        "documents": {"admission": ADMISSION.format(past="")},
        "meta": {"admit_time": "2024-03-05 08:00", "sex": "male", "age_years": 56},
    }
    before = client.post("/api/v1/qc/check", json=body, headers=officer).json()
    assert PAST_RULE in _rules_of(before) and LOCAL not in _rules_of(before)
    with factory() as session, session.begin():
        _enable_local_rule(session)
    # a hospital override switches a shipped rule off; the enabled local rule still counts
    client.app.state.qc_knowledge = load_qc_knowledge(  # type: ignore[attr-defined]
        {"rules": [{"rule_id": PAST_RULE, "enabled": False}]}
    )
    after = client.post("/api/v1/qc/check", json=body, headers=officer).json()
    assert LOCAL in _rules_of(after) and PAST_RULE not in _rules_of(after)

    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    response = client.post(
        "/fhir",
        content=json.dumps(bundle(ADMISSION.format(past=""))),
        headers={**doctor, "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    with factory() as session:
        rules = {n.rule_id for n in session.scalars(select(QCNotice))}
        encounter_id = session.scalars(select(m.Encounter.id)).one()
    assert LOCAL in rules and PAST_RULE not in rules
    page = client.get(f"/qc/encounters/{encounter_id}", headers=officer)
    assert page.status_code == 200 and LOCAL in page.text and PAST_RULE not in page.text


def test_cli_import_hook_uses_enabled_hospital_rules(tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from medbrain.cli import app
    from medbrain.core.config import Settings
    from medbrain.store.db import transaction
    from medbrain.store.instance import open_instance

    monkeypatch.setenv("MEDBRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("MEDBRAIN_DATABASE_URL", raising=False)
    instance = open_instance(Settings.from_env())
    try:
        with transaction(instance.session_factory) as session:
            _enable_local_rule(session)
    finally:
        instance.dispose()
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle(ADMISSION.format(past=PAST))), encoding="utf-8")
    done = CliRunner().invoke(app, ["import", str(path), "--json"])
    assert done.exit_code == 0, done.output
    instance = open_instance(Settings.from_env())
    try:
        with instance.session_factory() as session:
            rules = {n.rule_id for n in session.scalars(select(QCNotice))}
    finally:
        instance.dispose()
    assert LOCAL in rules


def test_effective_knowledge_is_idempotent(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        _enable_local_rule(session)
        once = wf.effective_knowledge(session, KB)
        twice = wf.effective_knowledge(session, once)
        ids = [r.rule_id for r in twice.rows]
        assert ids.count(LOCAL) == 1 and len(ids) == len(once.rows)


def test_a_justified_defect_that_a_later_version_removes_closes_as_fixed(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        result = import_bundle(session, bundle(ADMISSION.format(past="")), source="t")
        wf.recheck_after_import(
            session, result.document_encounter_ids, knowledge=KB, zone=ZONE, actor=DOCTOR, now=NOW
        )
        [notice] = [n for n in session.scalars(select(QCNotice)) if n.rule_id == PAST_RULE]
        wf.justify(session, notice.id, DOCTOR, "患者意识障碍,无法提供既往史", NOW)
        notice_id = notice.id
    with session_factory() as session, session.begin():
        result = import_bundle(session, bundle(ADMISSION.format(past=PAST)), source="t")
        [out] = wf.recheck_after_import(
            session, result.document_encounter_ids, knowledge=KB, zone=ZONE, actor=DOCTOR, now=NOW
        )
        assert out.closed >= 1
    with session_factory() as session:
        notice = session.get(QCNotice, notice_id)
        assert notice is not None and notice.status == "fixed" and notice.fixed_at is not None
        # the justification stays as history
        assert notice.justification == "患者意识障碍,无法提供既往史"
        assert notice.justified_by == DOCTOR.username and notice.justified_at is not None
