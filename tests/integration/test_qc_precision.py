"""Per-rule precision from the QC officer's confirm / false-positive verdicts (issue 7)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.errors import ConflictError, InputError
from medbrain.interop.fhir.importer import import_bundle
from medbrain.store import models as m
from medbrain.store import qc_workflow as wf
from medbrain.store.qc_models import QCNotice
from tests.integration.test_qc_workflow import ADMISSION, DOCTOR, KB, NOW, PAST, ZONE, bundle

OFFICER = wf.Actor("qc", "qc_officer")
# two defects of two rules: no past history, no family history
TWO_DEFECTS = bundle(ADMISSION.format(past="").replace("家族史:否认家族遗传病史。\n", ""))


def _defects(session: Session) -> list[QCNotice]:
    return list(
        session.scalars(select(QCNotice).where(QCNotice.kind == "defect").order_by(QCNotice.id))
    )


def test_verdicts_give_per_rule_precision_and_are_audited(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        result = import_bundle(session, TWO_DEFECTS, source="t")
        wf.recheck_after_import(
            session, result.document_encounter_ids, knowledge=KB, zone=ZONE, actor=DOCTOR, now=NOW
        )
        notices = _defects(session)
        first = notices[0]
        second = next(n for n in notices if n.rule_id != first.rule_id)
        with pytest.raises(InputError):
            wf.decide(session, first.id, OFFICER, "rejected", "  ", NOW)
        with pytest.raises(InputError):
            wf.decide(session, first.id, OFFICER, "maybe", "x", NOW)
        wf.decide(session, first.id, OFFICER, "confirmed", "确属缺陷", NOW)
        wf.decide(session, second.id, OFFICER, "rejected", "模板用语,不是缺陷", NOW)
        # a later decision replaces the earlier one
        wf.decide(session, first.id, OFFICER, "rejected", "复核后为误报", NOW)
        rows = {r["rule_id"]: r for r in wf.rule_precision(session, threshold=0.8)}
        assert rows[first.rule_id] == {
            "rule_id": first.rule_id,
            "confirmed": 0,
            "rejected": 1,
            "decided": 1,
            "precision": 0.0,
            "low": True,
        }
        wf.decide(session, second.id, OFFICER, "confirmed", "再次核实属实", NOW)
        rows = {r["rule_id"]: r for r in wf.rule_precision(session, threshold=0.8)}
        assert rows[second.rule_id]["precision"] == 1.0 and not rows[second.rule_id]["low"]
        # the period filter counts verdicts by when they were made
        assert wf.rule_precision(session, threshold=0.8, since=NOW + timedelta(seconds=1)) == []
        stats = wf.dashboard(
            session,
            since=datetime(2024, 3, 1, tzinfo=UTC),
            until=datetime(2024, 3, 8, tzinfo=UTC),
            precision_threshold=0.5,
        )
        assert stats["precision_threshold"] == 0.5
        assert {r["rule_id"] for r in stats["precision"]} == set(rows)
        audit = [
            e.detail
            for e in session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq))
            if e.action == "qc.notice.verdict"
        ]
        assert [d["verdict"] for d in audit] == ["confirmed", "rejected", "rejected", "confirmed"]
        assert audit[2]["previous"] == "confirmed" and audit[2]["reason"] == "复核后为误报"


def test_a_deadline_notice_takes_no_verdict(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        import_bundle(session, bundle(ADMISSION.format(past=PAST), with_course=False), source="t")
        wf.scan_in_stay(
            session, knowledge=KB, now=datetime(2024, 3, 5, 9, 0, tzinfo=UTC), zone=ZONE
        )
        deadline = session.scalars(select(QCNotice).where(QCNotice.kind == "deadline")).first()
        assert deadline is not None
        with pytest.raises(ConflictError):
            wf.decide(session, deadline.id, OFFICER, "confirmed", "x", NOW)


def test_api_page_and_dashboard_highlight_low_precision_rules(client_and_tokens: Any) -> None:
    client, tokens, factory = client_and_tokens
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    officer = {"Authorization": f"Bearer {tokens['qc_officer']}"}
    response = client.post(
        "/fhir",
        content=json.dumps(TWO_DEFECTS),
        headers={**doctor, "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    with factory() as session:
        notices = [(n.id, n.rule_id) for n in _defects(session)]
    bad_id, bad_rule = notices[0]
    good_id, good_rule = next(n for n in notices if n[1] != bad_rule)
    url = f"/api/v1/qc/notices/{bad_id}/verdict"
    assert (
        client.post(url, json={"verdict": "rejected", "reason": "x"}, headers=doctor).status_code
        == 403
    )
    missing = client.post(url, json={"verdict": "rejected", "reason": ""}, headers=officer)
    assert missing.status_code == 422
    done = client.post(url, json={"verdict": "rejected", "reason": "误报"}, headers=officer)
    assert done.status_code == 200 and done.json()["verdict"] == "rejected"
    # the page form (what the officer's button posts)
    page = client.get("/qc/notices", headers=officer).text
    assert f'action="/qc/notices/{good_id}/verdict"' in page
    posted = client.post(
        f"/qc/notices/{good_id}/verdict",
        data={"verdict": "confirmed", "reason": "属实"},
        headers=officer,
        follow_redirects=False,
    )
    assert posted.status_code == 303
    listed = client.get("/api/v1/qc/precision", headers=officer).json()
    by_rule = {r["rule_id"]: r for r in listed["rules"]}
    assert listed["threshold"] == 0.8
    assert by_rule[bad_rule]["low"] and by_rule[bad_rule]["precision"] == 0.0
    assert by_rule[good_rule] == {
        "rule_id": good_rule,
        "confirmed": 1,
        "rejected": 0,
        "decided": 1,
        "precision": 1.0,
        "low": False,
    }
    dashboard = client.get("/qc/dashboard?days=3650", headers=officer).text

    def low(rule: str, text: str) -> str:
        found = re.search(rf'data-rule="{re.escape(rule)}" data-low="(\w+)"', text)
        assert found is not None
        return found.group(1)

    assert low(bad_rule, dashboard) == "true" and low(good_rule, dashboard) == "false"
    # the threshold is configurable: at 0 nothing is low
    lenient = client.get("/qc/dashboard?days=3650&precision_below=0", headers=officer).text
    assert low(bad_rule, lenient) == "false"
