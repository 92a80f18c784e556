"""POST /api/v1/alerts/evaluate: roles, 422 naming the field, audit entry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.store.models import AuditEntry
from tests.unit.alerts.bundles import build_bundle

BUNDLE = build_bundle({"obs": [["K", 6.8, "mmol/L"]]})


def _post(client: TestClient, token: str | None, body: Any, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/alerts/evaluate", json=body, headers=headers, params=params)


@pytest.mark.parametrize("role", ["doctor", "nurse", "admin"])
def test_clinical_roles_get_alerts_and_the_call_is_audited(
    client_and_tokens: tuple[TestClient, dict[str, str], Any], role: str
) -> None:
    client, tokens, factory = client_and_tokens
    response = _post(client, tokens[role], BUNDLE, lang="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["alerts"][0]["rule_id"] == "cv.potassium"
    assert body["alerts"][0]["message"].startswith("Critical value")
    assert "news2" in body["scores"]
    with factory() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "alerts.evaluate")
        ).all()
    assert [(e.resource, e.detail) for e in entries] == [("Bundle/adhoc", {"count": 2})]


def test_pharmacist_is_forbidden_and_anonymous_is_unauthorised(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    assert _post(client, tokens["pharmacist"], BUNDLE).status_code == 403
    assert _post(client, None, BUNDLE).status_code == 401


def test_invalid_bundle_is_422_naming_the_field(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    bad = build_bundle({"obs": [["K", 50, "mmol/L"]]})
    response = _post(client, tokens["doctor"], bad)
    assert response.status_code == 422
    assert response.json()["field"] == "entry[1].resource.valueQuantity.value"
