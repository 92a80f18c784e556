"""POST /api/v1/rx/review: roles, 422 naming the field, audit entry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.store.models import AuditEntry

BODY: dict[str, Any] = {
    "patient": {"age_years": 60, "sex": "male", "weight_kg": 70, "diagnoses": ["心房颤动", "腰痛"]},
    "items": [
        {"drug": "华法林钠片", "dose": 3, "unit": "mg", "route": "po", "frequency": "qd"},
        {"drug": "布洛芬缓释胶囊", "dose": 0.3, "unit": "g", "route": "po", "frequency": "bid"},
    ],
}


def _post(client: TestClient, token: str | None, body: Any, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/rx/review", json=body, headers=headers, params=params)


@pytest.mark.parametrize("role", ["doctor", "pharmacist", "admin"])
def test_reviewers_get_a_verdict_and_the_call_is_audited(
    client_and_tokens: tuple[TestClient, dict[str, str], Any], role: str
) -> None:
    client, tokens, factory = client_and_tokens
    response = _post(client, tokens[role], BODY, lang="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "block"
    assert body["findings"][0]["rule_id"] == "rx.interaction.warfarin-nsaid"
    assert "bleeding" in body["findings"][0]["message"]
    with factory() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "rx.review")).all()
    assert [(e.resource, e.detail["verdict"]) for e in entries] == [("Prescription/adhoc", "block")]


def test_nurse_forbidden_and_anonymous_unauthorised(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    assert _post(client, tokens["nurse"], BODY).status_code == 403
    assert _post(client, None, BODY).status_code == 401


def test_invalid_prescription_is_422_naming_the_field(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    bad = {**BODY, "items": [BODY["items"][0], {**BODY["items"][1], "unit": "spoonful"}]}
    response = _post(client, tokens["pharmacist"], bad)
    assert response.status_code == 422
    assert response.json()["field"] == "items[1].unit"
