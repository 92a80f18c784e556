"""Critical-value closed loop end to end: FHIR lab import → tracked alert → acknowledge →
handle → stats; an unacknowledged alert escalates; every step is audited. SQLite and
PostgreSQL (``database_url``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from medbrain.alerts import load_alert_knowledge
from medbrain.api.app import create_app
from medbrain.api.security import issue_token
from medbrain.audit.verify import verify
from medbrain.cli import app as cli_app
from medbrain.core.config import Settings
from medbrain.store import alert_tracking as store
from medbrain.store.alerts_models import TrackedAlert, TrackedAlertEvent
from medbrain.store.models import AuditEntry, User
from tests.support.accounts import make_tokens

ROLES = ("nurse", "doctor", "admin", "pharmacist")


def lab_bundle(
    potassium: float, *, obs_id: str = "obs-k-1", when: str = "2026-11-20T08:00:00+08:00"
) -> dict[str, Any]:
    """One inpatient with one serum potassium result (LOINC 2823-3)."""
    return {
        "resourceType": "Bundle",
        "id": f"labs-{obs_id}",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:pt-track-1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "pt-track-1",
                    "identifier": [{"system": "urn:mrn", "value": "TRK-0001"}],
                    "name": [{"text": "测试患者"}],
                    "gender": "female",
                    "birthDate": "1958-03-02",
                },
            },
            {
                "fullUrl": "urn:uuid:enc-track-1",
                "resource": {
                    "resourceType": "Encounter",
                    "id": "enc-track-1",
                    "status": "in-progress",
                    "class": {"code": "IMP"},
                    "subject": {"reference": "urn:uuid:pt-track-1"},
                    "serviceType": {"text": "心内科"},
                    "period": {"start": "2026-11-19T10:00:00+08:00"},
                },
            },
            {
                "fullUrl": f"urn:uuid:{obs_id}",
                "resource": {
                    "resourceType": "Observation",
                    "id": obs_id,
                    "status": "final",
                    "category": [{"coding": [{"code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
                    "subject": {"reference": "urn:uuid:pt-track-1"},
                    "effectiveDateTime": when,
                    "valueQuantity": {"value": potassium, "unit": "mmol/L"},
                },
            },
        ],
    }


@pytest.fixture
def app_client(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(home=tmp_path, database_url=database_url, alert_escalation_seconds=0)
    app = create_app(settings)
    tokens = make_tokens(app.state.session_factory, ROLES)
    with TestClient(app) as client:
        client.app_state = app.state  # type: ignore[attr-defined]
        yield client, tokens


def _auth(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def _import(client: TestClient, tokens: dict[str, str], bundle: dict[str, Any]) -> None:
    response = client.post(
        "/fhir",
        content=json.dumps(bundle),
        headers={**_auth(tokens, "doctor"), "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text


def test_imported_critical_potassium_is_tracked_acknowledged_handled_and_counted(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    _import(client, tokens, lab_bundle(7.1))
    listed = client.get("/api/v1/alerts/tracked", headers=_auth(tokens, "nurse")).json()
    alerts = listed["alerts"]
    # The critical value, and any other alert of critical severity, is tracked.
    assert "cv.potassium" in {a["rule_id"] for a in alerts}
    assert all(a["severity"] == "critical" for a in alerts)
    alert = next(a for a in alerts if a["rule_id"] == "cv.potassium")
    assert alert["status"] == "open" and alert["value"] == pytest.approx(7.1)
    assert alert["recipients"] == ["nurse", "doctor"]
    assert alert["department"] == "心内科"

    # Importing the same bundle again raises nothing new.
    _import(client, tokens, lab_bundle(7.1))
    again = client.get("/api/v1/alerts/tracked", headers=_auth(tokens, "nurse")).json()
    assert len(again["alerts"]) == len(alerts)

    ack = client.post(
        f"/api/v1/alerts/tracked/{alert['id']}/acknowledge", headers=_auth(tokens, "nurse")
    )
    assert ack.status_code == 200
    assert ack.json()["acknowledged_by"] == "u_nurse" and ack.json()["status"] == "acknowledged"
    twice = client.post(
        f"/api/v1/alerts/tracked/{alert['id']}/acknowledge", headers=_auth(tokens, "doctor")
    )
    assert twice.status_code == 409

    nurse_handles = client.post(
        f"/api/v1/alerts/tracked/{alert['id']}/handle",
        json={"action": "x"},
        headers=_auth(tokens, "nurse"),
    )
    assert nurse_handles.status_code == 403
    empty = client.post(
        f"/api/v1/alerts/tracked/{alert['id']}/handle",
        json={"action": "  "},
        headers=_auth(tokens, "doctor"),
    )
    assert empty.status_code == 422
    done = client.post(
        f"/api/v1/alerts/tracked/{alert['id']}/handle",
        json={"action": "复查血钾并予葡萄糖酸钙、胰岛素+葡萄糖"},
        headers=_auth(tokens, "doctor"),
    )
    assert done.status_code == 200 and done.json()["status"] == "handled"

    stats = client.get("/api/v1/alerts/stats", headers=_auth(tokens, "doctor")).json()
    cv = stats["critical_value"]
    assert cv["total"] == 1 and cv["handled_on_time"] == 1
    assert cv["handled_on_time_rate"] == 1.0 and cv["acknowledged_on_time_rate"] == 1.0
    assert (
        client.get("/api/v1/alerts/stats", headers=_auth(tokens, "pharmacist")).status_code == 403
    )

    detail = client.get(
        f"/api/v1/alerts/tracked/{alert['id']}", headers=_auth(tokens, "doctor")
    ).json()
    assert [e["kind"] for e in detail["events"]] == ["raised", "acknowledged", "handled"]

    factory = client.app_state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
        assert verify(session, None).ok
    for action in ("fhir.import", "alerts.track", "alert.acknowledge", "alert.handle"):
        assert action in actions


def test_normal_potassium_raises_no_tracked_alert(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    _import(client, tokens, lab_bundle(4.2))
    listed = client.get("/api/v1/alerts/tracked", headers=_auth(tokens, "nurse")).json()
    assert listed["alerts"] == []


def test_unacknowledged_alert_escalates_by_level_and_the_rate_counts_it_late(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    _import(client, tokens, lab_bundle(2.1, obs_id="obs-k-low"))
    factory = client.app_state.session_factory  # type: ignore[attr-defined]
    policy = store.policy_of(load_alert_knowledge(None))
    with factory() as session:
        row = session.scalars(
            select(TrackedAlert).where(TrackedAlert.category == "critical_value")
        ).one()
        raised = row.raised_at
    assert store.run_escalation(factory, policy, raised + timedelta(minutes=5)) == []
    first = store.run_escalation(factory, policy, raised + timedelta(minutes=11))
    assert {(e["level"], tuple(e["notify"])) for e in first} == {(1, ("senior_doctor",))}
    assert store.run_escalation(factory, policy, raised + timedelta(minutes=12)) == []
    second = store.run_escalation(factory, policy, raised + timedelta(minutes=31))
    assert {(e["level"], tuple(e["notify"])) for e in second} == {(2, ("department_head",))}

    escalated = client.get(
        "/api/v1/alerts/tracked", params={"escalated": "true"}, headers=_auth(tokens, "doctor")
    ).json()["alerts"]
    assert row.id in {a["id"] for a in escalated}
    assert next(a for a in escalated if a["id"] == row.id)["notified"] == [
        "nurse",
        "doctor",
        "senior_doctor",
        "department_head",
    ]

    with factory() as session, session.begin():
        store.handle(
            session,
            row.id,
            store.Actor("u_doctor", "doctor"),
            "补钾",
            raised + timedelta(minutes=40),
        )
    with factory() as session:
        stats = store.alert_stats(session, policy, raised + timedelta(hours=1))
        kinds = list(
            session.scalars(
                select(TrackedAlertEvent.kind)
                .where(TrackedAlertEvent.alert_id == row.id)
                .order_by(TrackedAlertEvent.id)
            )
        )
        escalations = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "alert.escalate")
        ).all()
    assert stats["critical_value"]["handled_on_time_rate"] == 0.0
    assert stats["critical_value"]["acknowledged_on_time_rate"] == 0.0
    assert kinds == ["raised", "escalated", "escalated", "acknowledged", "handled"]
    assert len(escalations) == 2 * len(first) and {e.who for e in escalations} == {"system"}


def test_cli_escalate_runs_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDBRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("MEDBRAIN_DATABASE_URL", raising=False)
    bundle = tmp_path / "labs.json"
    bundle.write_text(json.dumps(lab_bundle(7.4)), encoding="utf-8")
    runner = CliRunner()
    imported = runner.invoke(cli_app, ["import", str(bundle), "--json"])
    assert imported.exit_code == 0, imported.output
    later = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    result = runner.invoke(cli_app, ["alerts", "escalate", "--json", "--now", later])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert ("cv.potassium", 1) in {(e["rule_id"], e["level"]) for e in document["escalated"]}
    bad = runner.invoke(cli_app, ["alerts", "escalate", "--now", "yesterday"])
    assert bad.exit_code == 2


def test_rare_page_adds_the_patients_abnormal_labs_as_phenotypes(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    bundle = lab_bundle(2.9, obs_id="obs-k-rare")
    bundle["entry"][2]["resource"]["code"]["coding"][0]["code"] = "777-3"  # platelets
    bundle["entry"][2]["resource"]["valueQuantity"] = {"value": 40, "unit": "10*9/L"}
    _import(client, tokens, bundle)
    factory = client.app_state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        patient_id = session.scalars(select(TrackedAlert.patient_id)).first()
    assert patient_id is not None  # platelets 40 is a critical value too
    page = client.get(
        "/rare",
        params={"patient_id": patient_id, "hpo": "HP:0001635"},
        headers=_auth(tokens, "doctor"),
    )
    assert page.status_code == 200, page.text
    assert 'data-hpo="HP:0001873"' in page.text  # Thrombocytopenia, from the lab result
    with factory() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert "rare.patient_labs" in actions


def test_lifespan_loop_escalates_in_the_background(tmp_path: Path) -> None:
    import time

    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'loop.db'}", alert_escalation_seconds=1
    )
    app = create_app(settings)
    factory = app.state.session_factory
    with factory() as session, session.begin():
        user = User(username="u_doc", display_name="d", role="doctor", password_hash="x")
        session.add(user)
        session.flush()
        token = issue_token(session, user, "api", timedelta(hours=1), datetime.now(UTC)).token
    with TestClient(app) as client:
        _import(client, {"doctor": token}, lab_bundle(7.0))
        with factory() as session, session.begin():
            for row in session.scalars(select(TrackedAlert)):
                row.raised_at = datetime.now(UTC) - timedelta(minutes=15)
        deadline = time.monotonic() + 10
        levels: list[int] = []
        while time.monotonic() < deadline:
            with factory() as session:
                levels = list(session.scalars(select(TrackedAlert.level)))
            if levels and all(level == 1 for level in levels):
                break
            time.sleep(0.2)
    assert levels and all(level == 1 for level in levels)
