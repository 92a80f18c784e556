"""ED board API on SQLite and PostgreSQL: pathway time stamps stored and reported, refusals,
re-triage, audit; and the patient's pre-consultation reaching the doctor's patient page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password, issue_token
from medbrain.audit.verify import verify
from medbrain.core.config import Settings
from medbrain.store.models import AuditEntry, Patient, User
from medbrain.store.triage_models import EdEvent, EdVisit, PreConsultation

ROLES = ("nurse", "doctor", "patient")


class World:
    def __init__(
        self,
        client: TestClient,
        factory: Any,
        tokens: dict[str, str],
        csrf: dict[str, str],
        patient_id: int,
    ) -> None:
        self.client = client
        self.factory = factory
        self.tokens = tokens
        self.csrf = csrf
        self.patient_id = patient_id

    def api(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def actions(self) -> list[tuple[str, str, dict[str, Any]]]:
        with self.factory() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            return [(r.action, r.resource, r.detail) for r in rows]


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    app = create_app(Settings(home=tmp_path, database_url=database_url))
    factory = app.state.session_factory
    tokens: dict[str, str] = {}
    csrf: dict[str, str] = {}
    now = datetime.now(UTC)
    with factory() as session, session.begin():
        patient = Patient(
            mrn="ED0001", name="测试患者", sex="female", birth_date=datetime(1990, 5, 1).date()
        )
        session.add(patient)
        session.flush()
        patient_id = patient.id
        for role in ROLES:
            user = User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=hash_password("pw-for-tests"),
                patient_id=patient_id if role == "patient" else None,
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(session, user, "api", timedelta(hours=1), now).token
            cookie = issue_token(session, user, "cookie", timedelta(hours=1), now)
            tokens[f"{role}_cookie"] = cookie.token
            csrf[role] = cookie.session.csrf_token
    with TestClient(app) as client:
        yield World(client, factory, tokens, csrf, patient_id)


def iso(value: datetime) -> str:
    return value.isoformat()


CHEST = {
    "age_years": 58,
    "sex": "male",
    "complaint": "胸痛1小时,伴大汗",
    "vitals": {"hr": 104, "sbp": 110, "rr": 18, "spo2": 97, "temp_c": 36.7, "gcs": 15},
}


def test_pathway_time_stamps_are_stored_reported_and_audited(world: World) -> None:
    c, nurse = world.client, world.api("nurse")
    door = datetime.now(UTC) - timedelta(minutes=20)
    created = c.post(
        "/api/v1/ed/visits",
        json={
            "visit": CHEST,
            "label": "床3",
            "door_at": iso(door),
            "triage_at": iso(door + timedelta(minutes=1)),
            "patient_id": world.patient_id,
        },
        headers=nurse,
    )
    assert created.status_code == 201, created.text
    row = created.json()
    visit_id = row["visit_id"]
    assert (row["level"], row["zone"], row["pathway"]) == (2, "red", "chest_pain")
    assert row["overdue"] is True  # Ⅱ级: 19 min waited > 10 min, not seen yet
    ecg_at = door + timedelta(minutes=8)
    step = c.post(
        f"/api/v1/ed/visits/{visit_id}/steps",
        json={"step": "ecg", "at": iso(ecg_at)},
        headers=nurse,
    )
    assert step.status_code == 201, step.text
    again = c.post(f"/api/v1/ed/visits/{visit_id}/steps", json={"step": "ecg"}, headers=nurse)
    assert again.status_code == 409 and again.json()["field"] == "step"
    seen = c.post(
        f"/api/v1/ed/visits/{visit_id}/steps",
        json={"step": "doctor", "at": iso(door + timedelta(minutes=9))},
        headers=world.api("doctor"),
    )
    assert seen.json()["status"] == "seen" and seen.json()["overdue"] is False

    timeline = c.get(f"/api/v1/ed/visits/{visit_id}/timeline", headers=nurse).json()
    ecg = next(s for s in timeline["steps"] if s["step"] == "ecg")
    assert (ecg["minutes_from_door"], ecg["target_minutes"], ecg["met"]) == (8.0, 10, True)
    assert datetime.fromisoformat(ecg["at"]) == ecg_at

    board = c.get("/api/v1/ed/board", headers=nurse).json()
    assert board["load"]["active"] == 1 and board["load"]["by_zone"]["red"] == 1
    assert board["rows"][0]["breaches"] == []

    done = c.post(
        f"/api/v1/ed/visits/{visit_id}/steps",
        json={"step": "disposition", "disposition": "admitted"},
        headers=nurse,
    )
    assert done.json()["status"] == "departed" and done.json()["disposition"] == "admitted"
    with world.factory() as session:
        stored = session.get(EdVisit, visit_id)
        assert stored is not None and stored.door_at == door.replace(microsecond=door.microsecond)
        steps = sorted(e.step for e in session.scalars(select(EdEvent)).all())
        assert steps == ["disposition", "doctor", "ecg", "triage"]
        assert verify(session, None).ok
    actions = [a for a, _r, _d in world.actions()]
    assert actions.count("ed.visit.create") == 1
    assert actions.count("ed.step.record") == 3
    assert "ed.board.read" in actions and "ed.visit.read" in actions
    create = next(d for a, _r, d in world.actions() if a == "ed.visit.create")
    assert create["level"] == 2 and create["decision"] == "confirmed"


def test_bad_steps_and_times_are_refused_without_writing(world: World) -> None:
    c, nurse = world.client, world.api("nurse")
    door = datetime.now(UTC) - timedelta(minutes=5)
    visit_id = c.post(
        "/api/v1/ed/visits", json={"visit": CHEST, "door_at": iso(door)}, headers=nurse
    ).json()["visit_id"]
    url = f"/api/v1/ed/visits/{visit_id}/steps"
    cases = [
        ({"step": "teleport"}, "step"),
        ({"step": "door"}, "step"),
        ({"step": "ecg", "at": iso(door - timedelta(minutes=1))}, "at"),
        ({"step": "ecg", "at": "2026-11-23T08:00:00"}, "at"),
        ({"step": "ecg", "at": iso(datetime.now(UTC) + timedelta(hours=1))}, "at"),
        ({"step": "disposition"}, "disposition"),
        ({"step": "disposition", "disposition": "moon"}, "disposition"),
        ({"step": "ecg", "disposition": "home"}, "disposition"),
    ]
    for body, field in cases:
        response = c.post(url, json=body, headers=nurse)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, body
    assert c.post(url, json={"step": "ecg"}, headers=world.api("patient")).status_code == 403
    assert (
        c.post("/api/v1/ed/visits/999999/steps", json={"step": "ecg"}, headers=nurse).status_code
        == 404
    )
    bad_visit = c.post(
        "/api/v1/ed/visits", json={"visit": {**CHEST, "vitals": {"spo2": 150}}}, headers=nurse
    )
    assert bad_visit.status_code == 422 and bad_visit.json()["field"] == "vitals.spo2"
    override = c.post("/api/v1/ed/visits", json={"visit": CHEST, "final_level": 4}, headers=nurse)
    assert override.status_code == 422 and override.json()["field"] == "reason"
    with world.factory() as session:
        assert [e.step for e in session.scalars(select(EdEvent)).all()] == ["triage"]
        assert len(session.scalars(select(EdVisit)).all()) == 1


def test_worse_vitals_prompt_retriage_and_the_nurses_new_level_is_audited(world: World) -> None:
    c, nurse = world.client, world.api("nurse")
    throat = {
        "age_years": 30,
        "sex": "female",
        "complaint": "咽痛2天",
        "vitals": {"hr": 78, "sbp": 118, "rr": 16, "spo2": 99, "temp_c": 36.9, "gcs": 15},
    }
    row = c.post("/api/v1/ed/visits", json={"visit": throat}, headers=nurse).json()
    assert (row["level"], row["retriage"]) == (4, [])
    worse = c.post(
        f"/api/v1/ed/visits/{row['visit_id']}/vitals",
        json={"vitals": {"hr": 135, "sbp": 85, "rr": 30, "spo2": 86, "temp_c": 39.5, "gcs": 15}},
        headers=nurse,
    )
    assert worse.status_code == 201, worse.text
    assert worse.json()["retriage"], "worse vitals must prompt re-triage"
    no_reason = c.post(
        f"/api/v1/ed/visits/{row['visit_id']}/retriage", json={"final_level": 2}, headers=nurse
    )
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    done = c.post(
        f"/api/v1/ed/visits/{row['visit_id']}/retriage",
        json={"final_level": 2, "reason": "复测血氧 86%"},
        headers=nurse,
    ).json()
    assert (done["level"], done["zone"], done["max_wait_minutes"], done["retriage"]) == (
        2,
        "red",
        10,
        [],
    )
    entry = next(d for a, _r, d in world.actions() if a == "ed.retriage")
    assert entry["from"] == 4 and entry["to"] == 2 and entry["reason"] == "复测血氧 86%"


def test_patient_preconsultation_reaches_the_doctors_patient_page(world: World) -> None:
    c = world.client
    c.cookies.set("medbrain_session", world.tokens["patient_cookie"])
    form = c.get("/portal/preconsult")
    assert form.status_code == 200 and 'name="red_flags"' in form.text
    sent = c.post(
        "/portal/preconsult",
        data={
            "csrf_token": world.csrf["patient"],
            "complaint": "牙疼",
            "onset": "d1_7",
            "severity": "4",
            "red_flags": ["rf.chest_pain"],
            "history.medicines": "阿司匹林",
        },
    )
    assert sent.status_code == 200, sent.text
    assert 'data-go-ed="true"' in sent.text and "请立即前往急诊" in sent.text
    forged = c.post("/portal/preconsult", data={"complaint": "牙疼"})
    assert forged.status_code == 403
    empty = c.post(
        "/portal/preconsult", data={"csrf_token": world.csrf["patient"], "complaint": " "}
    )
    assert empty.status_code == 422 and "complaint" in empty.text
    assert c.get("/ed").status_code == 403  # patients never see the board
    assert c.get(f"/patients/{world.patient_id}/preconsult-panel").status_code == 403
    c.cookies.set("medbrain_session", world.tokens["doctor_cookie"])
    panel = c.get(f"/patients/{world.patient_id}/preconsult-panel")
    assert panel.status_code == 200
    assert "牙疼" in panel.text and "阿司匹林" in panel.text and "患者预问诊自述" in panel.text
    with world.factory() as session:
        rows = session.scalars(select(PreConsultation)).all()
        assert len(rows) == 1 and rows[0].go_to_ed is True and rows[0].department_code == "20"
    actions = [a for a, _r, _d in world.actions()]
    assert actions.count("preconsult.submit") == 1 and "preconsult.read" in actions
