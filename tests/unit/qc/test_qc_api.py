"""POST /api/v1/qc/check: roles, DESIGN.md §3 shape, 422 naming the field, audit entry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.store.models import AuditEntry
from tests.unit.qc.helpers import load_fixture, mutate


def _post(client: TestClient, token: str | None, body: Any, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/qc/check", json=body, headers=headers, params=params)


@pytest.mark.parametrize("role", ["doctor", "qc_officer", "admin"])
def test_allowed_roles_get_a_scored_report_and_the_call_is_audited(
    client_and_tokens: tuple[TestClient, dict[str, str], Any], role: str
) -> None:
    client, tokens, factory = client_and_tokens
    body = mutate(load_fixture("01_cap_clean"), "discharge", "性别:男", "性别:女")
    response = _post(client, tokens[role], {**body, "stage": "final"}, lang="en")
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["grade"] == "丙" and out["veto"] is True
    assert out["defects"][0]["rule_id"] == "qc.consistency.sex"
    assert out["defects"][0]["message"].startswith("Sex differs")
    with factory() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "qc.check")).all()
    assert [(e.resource, e.detail["score"]) for e in entries] == [("Record/adhoc", out["score"])]


def test_realtime_is_the_default_stage(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    body = {"documents": {"admission": load_fixture("01_cap_clean")["documents"]["admission"]}}
    out = _post(client, tokens["doctor"], body).json()
    assert out["stage"] == "realtime" and out["defects"] == []


def test_nurse_is_forbidden_and_anonymous_is_unauthorised(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    body = load_fixture("01_cap_clean")
    assert _post(client, tokens["nurse"], body).status_code == 403
    assert _post(client, None, body).status_code == 401


def test_bad_meta_is_422_naming_the_field(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    body = {"documents": {"admission": "主诉:咳嗽3天"}, "meta": {"sex": "unknown"}}
    response = _post(client, tokens["doctor"], body)
    assert response.status_code == 422
    assert response.json()["field"] == "sex"


def test_fhir_bundle_body_is_accepted(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    from tests.unit.qc.test_qc_fhir import _bundle

    client, tokens, _ = client_and_tokens
    response = _post(client, tokens["qc_officer"], {"bundle": _bundle(), "stage": "final"})
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["defects"] == [] and out["skipped"][0]["reason"] == "unknown document type"


def test_realtime_now_makes_overdue_notes_defects(
    client_and_tokens: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, _ = client_and_tokens
    body = {
        "documents": {"admission": load_fixture("01_cap_clean")["documents"]["admission"]},
        "meta": {"admit_time": "2024-03-05 10:20"},
    }
    early = _post(client, tokens["doctor"], {**body, "now": "2024-03-05 16:00"}).json()
    late = _post(client, tokens["doctor"], {**body, "now": "2024-03-05 19:00"}).json()
    assert early["defects"] == []
    assert [d["rule_id"] for d in late["defects"]] == ["qc.doc.first-course-missing"]
    assert _post(client, tokens["doctor"], {**body, "now": "later"}).status_code == 422
