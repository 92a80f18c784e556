"""``/api/v1/findings``: role inboxes, decisions, their audit, and bad request bodies."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from medbrain.api.security import CLINICAL_ROLES
from medbrain.store.models import AuditEntry, FindingRecord
from tests.integration.api.conftest import Site


def _status_of(site: Site, finding_id: int) -> str:
    with site.session() as session:
        row = session.get(FindingRecord, finding_id)
        assert row is not None
        return row.status


def _decision_entries(site: Site, finding_id: int) -> list[AuditEntry]:
    with site.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.resource == f"Finding/{finding_id}",
                    AuditEntry.action.like("finding.%"),
                    AuditEntry.action != "finding.list",
                )
            ).all()
        )


@pytest.mark.parametrize("role", [r for r in CLINICAL_ROLES if r != "admin"])
def test_inbox_holds_only_the_callers_role(shared_site: Site, role: str) -> None:
    body = shared_site.api(role).get("/api/v1/findings").json()
    assert body["status"] == "open"
    assert [f["id"] for f in body["items"]] == [shared_site.world.findings[role]]
    assert {f["target_role"] for f in body["items"]} == {role}


def test_admin_inbox_holds_every_role(shared_site: Site) -> None:
    body = shared_site.api("admin").get("/api/v1/findings").json()
    assert {f["target_role"] for f in body["items"]} == set(CLINICAL_ROLES)
    assert body["items"][0]["severity"] == "critical"  # most severe first


def test_inbox_status_filter_is_validated(shared_site: Site) -> None:
    response = shared_site.api("doctor").get("/api/v1/findings", params={"status": "bogus"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("status:")


@pytest.mark.parametrize("role", ["doctor", "nurse", "qc_officer", "radiologist", "patient"])
def test_deciding_another_roles_finding_is_forbidden(shared_site: Site, role: str) -> None:
    finding_id = shared_site.world.findings["pharmacist"]
    response = shared_site.api(role).post(
        f"/api/v1/findings/{finding_id}/decision", json={"status": "accepted"}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert _status_of(shared_site, finding_id) == "open"


def test_accept_is_recorded_and_audited(site: Site) -> None:
    finding_id = site.world.findings["pharmacist"]
    response = site.api("pharmacist").post(
        f"/api/v1/findings/{finding_id}/decision", json={"status": "accepted"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["decided_by"], body["decided_role"]) == (
        "accepted",
        "pharmacist",
        "pharmacist",
    )
    [entry] = _decision_entries(site, finding_id)
    assert (entry.action, entry.who, entry.role) == ("finding.accepted", "pharmacist", "pharmacist")
    assert entry.detail["rule_id"] == "test.pharmacist.example"


def test_override_needs_a_reason_and_keeps_it(site: Site) -> None:
    finding_id = site.world.findings["doctor"]
    client = site.api("doctor")
    url = f"/api/v1/findings/{finding_id}/decision"
    for reason in (None, "", "   "):
        refused = client.post(url, json={"status": "overridden", "reason": reason})
        assert refused.status_code == 422
        assert refused.json()["field"] == "reason"
    assert _status_of(site, finding_id) == "open"
    assert _decision_entries(site, finding_id) == []
    accepted = client.post(url, json={"status": "overridden", "reason": "已评估出血风险,短期合用"})
    assert accepted.status_code == 200
    assert accepted.json()["decision_reason"] == "已评估出血风险,短期合用"
    [entry] = _decision_entries(site, finding_id)
    assert entry.detail["reason"] == "已评估出血风险,短期合用"


def test_second_decision_is_a_conflict(site: Site) -> None:
    finding_id = site.world.findings["nurse"]
    client = site.api("nurse")
    url = f"/api/v1/findings/{finding_id}/decision"
    assert client.post(url, json={"status": "dismissed"}).status_code == 200
    again = client.post(url, json={"status": "accepted"})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert _status_of(site, finding_id) == "dismissed"
    assert len(_decision_entries(site, finding_id)) == 1


def test_admin_may_decide_any_inbox(site: Site) -> None:
    finding_id = site.world.findings["radiologist"]
    response = site.api("admin").post(
        f"/api/v1/findings/{finding_id}/decision", json={"status": "dismissed"}
    )
    assert response.status_code == 200
    assert response.json()["decided_role"] == "admin"


def test_unknown_finding_is_404(shared_site: Site) -> None:
    response = shared_site.api("admin").post(
        "/api/v1/findings/987654/decision", json={"status": "accepted"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "open"}, "status"),
        ({"status": "maybe"}, "status"),
        ({}, "status"),
        ({"status": "accepted", "extra": 1}, "extra"),
        ({"status": "overridden", "reason": "x" * 2001}, "reason"),
        ([], "body"),
    ],
)
def test_invalid_decisions_name_the_field(shared_site: Site, body: object, field: str) -> None:
    finding_id = shared_site.world.findings["qc_officer"]
    response = shared_site.api("qc_officer").post(
        f"/api/v1/findings/{finding_id}/decision", json=body
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}")
    assert _status_of(shared_site, finding_id) == "open"


def test_malformed_json_is_a_clear_problem(shared_site: Site) -> None:
    finding_id = shared_site.world.findings["qc_officer"]
    response = shared_site.api("qc_officer").post(
        f"/api/v1/findings/{finding_id}/decision?lang=en",
        content=b'{"status": "accepted",',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"].startswith("Malformed JSON:")
    assert "position" in response.json()["detail"]
    assert _status_of(shared_site, finding_id) == "open"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_wrong_content_type_is_415(shared_site: Site, content_type: str | None) -> None:
    finding_id = shared_site.world.findings["qc_officer"]
    client = shared_site.api("qc_officer")
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(
        f"/api/v1/findings/{finding_id}/decision?lang=en",
        content=b'{"status": "accepted"}' if content_type else None,
        headers=headers,
    )
    assert response.status_code == 415, response.text
    assert "expected application/json" in response.json()["detail"]
    assert _status_of(shared_site, finding_id) == "open"


def test_fhir_json_content_type_is_accepted(site: Site) -> None:
    finding_id = site.world.findings["qc_officer"]
    response = site.api("qc_officer").post(
        f"/api/v1/findings/{finding_id}/decision",
        content=b'{"status": "dismissed"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.fixture
def site_overrides() -> dict[str, object]:
    return {"max_upload_bytes": 4096}


def test_oversize_body_is_413_and_nothing_written(site: Site) -> None:
    finding_id = site.world.findings["doctor"]
    response = site.api("doctor").post(
        f"/api/v1/findings/{finding_id}/decision",
        json={"status": "overridden", "reason": "x" * 10_000},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert _status_of(site, finding_id) == "open"


def test_bearer_token_needs_no_csrf_token(site: Site) -> None:
    finding_id = site.world.findings["doctor"]
    client = site.api("doctor")
    client.cookies.clear()
    response = client.post(f"/api/v1/findings/{finding_id}/decision", json={"status": "accepted"})
    assert response.status_code == 200


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_cookie_session_without_the_right_csrf_token_is_403_and_writes_nothing(
    site: Site, csrf: str | None
) -> None:
    finding_id = site.world.findings["doctor"]
    client, _token = site.browser("doctor")
    before = site.audit_count()
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    response = client.post(
        f"/api/v1/findings/{finding_id}/decision", json={"status": "accepted"}, headers=headers
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert _status_of(site, finding_id) == "open"
    assert site.audit_count() == before


def test_cookie_session_with_csrf_header_may_decide(site: Site) -> None:
    finding_id = site.world.findings["doctor"]
    client, token = site.browser("doctor")
    response = client.post(
        f"/api/v1/findings/{finding_id}/decision",
        json={"status": "accepted"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
