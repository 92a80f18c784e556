"""POST /api/v1/triage/assess: roles, 422 naming the field, audit entry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.store.models import AuditEntry

VISIT = {
    "age_years": 62,
    "sex": "male",
    "complaint": "突发胸痛,撕裂样,放射到后背",
    "vitals": {"hr": 84, "sbp": 132},
}


def _post(client: TestClient, token: str | None, body: Any, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/triage/assess", json=body, headers=headers, params=params)


@pytest.mark.parametrize("role", ["nurse", "doctor", "admin"])
def test_clinical_roles_get_triage_and_it_is_audited(
    client_and_tokens: tuple[TestClient, dict[str, str], Any], role: str
) -> None:
    client, tokens, factory = client_and_tokens
    response = _post(client, tokens[role], VISIT, lang="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["level"] == 2
    assert body["zone"] == "red"
    assert body["pathway"] == "chest_pain"
    assert body["red_flags"][0].startswith("Tearing chest pain")
    with factory() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "triage.assess")
        ).all()
    assert [(e.resource, e.detail["level"]) for e in entries] == [("Triage/adhoc", 2)]


def test_pharmacist_is_forbidden_and_anonymous_is_unauthorised(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    assert _post(client, tokens["pharmacist"], VISIT).status_code == 403
    assert _post(client, None, VISIT).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"complaint": "胸痛", "vitals": {"spo2": 150}}, "vitals.spo2"),
        ({"complaint": "胸痛", "vitals": {"temp_c": 60}}, "vitals.temp_c"),
        ({"complaint": "胸痛", "vitals": {"hr": -1}}, "vitals.hr"),
        ({"complaint": ""}, "complaint"),
    ],
)
def test_invalid_visit_is_422_problem_naming_the_field(
    client_and_tokens: tuple[TestClient, dict[str, str], Any], body: dict[str, Any], field: str
) -> None:
    client, tokens, factory = client_and_tokens
    response = _post(client, tokens["nurse"], body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    with factory() as session:
        assert (
            session.scalars(select(AuditEntry).where(AuditEntry.action == "triage.assess")).all()
            == []
        )


def test_nurse_override_requires_a_reason_and_is_audited(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, factory = client_and_tokens
    headers = {"Authorization": f"Bearer {tokens['nurse']}"}
    missing = client.post(
        "/api/v1/triage/decision", json={"visit": VISIT, "final_level": 1}, headers=headers
    )
    assert missing.status_code == 422
    assert missing.json()["field"] == "reason"
    changed = client.post(
        "/api/v1/triage/decision",
        json={"visit": VISIT, "final_level": 1, "reason": "面色苍白,大汗淋漓"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["level"] == 1 and body["max_wait_minutes"] == 0
    assert body["decision"] == {
        "action": "overridden",
        "suggested_level": 2,
        "final_level": 1,
        "reason": "面色苍白,大汗淋漓",
    }
    confirmed = client.post(
        "/api/v1/triage/decision", json={"visit": VISIT, "final_level": 2}, headers=headers
    )
    assert confirmed.status_code == 200
    with factory() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(["triage.override", "triage.confirm"]))
        ).all()
    assert [(e.action, e.detail["level"], e.detail["final_level"]) for e in entries] == [
        ("triage.override", 2, 1),
        ("triage.confirm", 2, 2),
    ]


def test_timeline_reports_door_to_ecg_and_names_bad_fields(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    headers = {"Authorization": f"Bearer {tokens['doctor']}"}
    body = {
        "pathway": "chest_pain",
        "door": "2026-11-23T08:00:00+08:00",
        "events": {"ecg": "2026-11-23T08:06:30+08:00"},
    }
    response = client.post("/api/v1/triage/timeline", json=body, headers=headers)
    assert response.status_code == 200, response.text
    ecg = response.json()["steps"][0]
    assert (ecg["step"], ecg["minutes_from_door"], ecg["met"]) == ("ecg", 6.5, True)
    bad = client.post(
        "/api/v1/triage/timeline",
        json={**body, "events": {"ecg": "yesterday"}},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "events.ecg"
