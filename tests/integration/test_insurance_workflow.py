"""Insurance review through the real app on SQLite and PostgreSQL: API, queue, audited decisions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from medbrain.insurance.claims_generator import generate_claims
from medbrain.store.insurance_models import InsuranceCase, InsuranceFlag
from tests.integration.api.conftest import Site, build_site

FRONTPAGE: dict[str, Any] = {
    "case_id": "IT-1",
    "patient_id": "P1",
    "department": "呼吸内科",
    "doctor": "王医生",
    "sex": "male",
    "age_years": 70,
    "admit_date": "2025-03-01",
    "discharge_date": "2025-03-08",
    "discharge_status": "1",
    "principal_diagnosis": "J18.900",
    "secondary_diagnoses": ["J96.000"],
}


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    built = build_site(tmp_path, database_url)
    try:
        yield built
    finally:
        built.app.state.engine.dispose()


def _batch(count: int) -> list[dict[str, Any]]:
    return [c.document for c in generate_claims(count, 21, prevalence=0.2)]


def test_batch_is_stored_ranked_and_decisions_are_audited(site: Site) -> None:
    api = site.api("insurance_officer")
    stored = api.post("/api/v1/insurance/batch?store=true", json=_batch(40))
    assert stored.status_code == 200, stored.text
    assert stored.json()["stored"] == 40
    queue = api.get("/api/v1/insurance/cases").json()["cases"]
    assert queue and [c["risk"] for c in queue] == sorted((c["risk"] for c in queue), reverse=True)
    with site.session() as session:
        flag = session.scalars(select(InsuranceFlag).order_by(InsuranceFlag.id)).first()
        assert flag is not None
        flag_id = flag.id
    before = site.audit_count("insurance.dismissed", f"InsuranceFlag/{flag_id}")
    missing_reason = api.post(
        f"/api/v1/insurance/flags/{flag_id}/decision", json={"decision": "dismissed", "reason": " "}
    )
    assert missing_reason.status_code == 422 and "reason" in missing_reason.text
    done = api.post(
        f"/api/v1/insurance/flags/{flag_id}/decision",
        json={"decision": "dismissed", "reason": "病历有血气分析"},
    )
    assert done.status_code == 200 and done.json()["status"] == "dismissed"
    assert site.audit_count("insurance.dismissed", f"InsuranceFlag/{flag_id}") == before + 1
    again = api.post(
        f"/api/v1/insurance/flags/{flag_id}/decision", json={"decision": "confirmed", "reason": "x"}
    )
    assert again.status_code == 409
    with site.session() as session:
        reviewed = session.get(InsuranceFlag, flag_id)
        assert reviewed is not None
        case_id = reviewed.case.case_id
    resubmit = [d for d in _batch(40) if d["case_id"] == case_id]
    assert api.post("/api/v1/insurance/batch?store=true", json=resubmit).status_code == 409
    with site.session() as session:
        row = session.get(InsuranceFlag, flag_id)
        assert row is not None and (row.status, row.decided_by) == (
            "dismissed",
            "insurance_officer",
        )


def test_group_and_check_api_and_bad_input(site: Site) -> None:
    api = site.api("insurance_officer")
    grouped = api.post("/api/v1/insurance/group", json=FRONTPAGE).json()
    assert (grouped["drg"], grouped["severity"]) == ("ES31", "MCC")
    checked = api.post("/api/v1/insurance/check", json=FRONTPAGE).json()
    assert "ins.upcoding.respiratory-failure" in {f["rule_id"] for f in checked["findings"]}
    bad = api.post(
        "/api/v1/insurance/group",
        json={**FRONTPAGE, "discharge_date": "2025-02-01", "principal_diagnosis": "ZZZ"},
    )
    body = bad.json()
    assert bad.status_code == 200 and body["drg"] == "0000"
    assert {i["code"] for i in body["issues"]} >= {
        "discharge_before_admission",
        "principal_invalid",
    }
    shape = api.post("/api/v1/insurance/group", json={**FRONTPAGE, "age_years": "seventy"})
    assert shape.status_code == 422 and "age_years" in shape.text
    batch = api.post(
        "/api/v1/insurance/batch?store=true",
        json=[FRONTPAGE, {**FRONTPAGE, "costs": {"drug": "x"}}],
    )
    assert batch.status_code == 422 and "[1]" in batch.text
    with site.session() as session:  # nothing half-written
        assert session.scalars(select(InsuranceCase)).first() is None
    assert site.api("doctor").post("/api/v1/insurance/group", json=FRONTPAGE).status_code == 403


def test_officer_pages_show_evidence_and_record_dismissal(site: Site) -> None:
    site.api("insurance_officer").post("/api/v1/insurance/batch?store=true", json=_batch(30))
    client, csrf = site.browser("insurance_officer")
    queue = client.get("/insurance")
    assert queue.status_code == 200 and "按科室统计" in queue.text
    case_pk = re.search(r'href="/insurance/cases/(\d+)"', queue.text)
    assert case_pk is not None
    page = client.get(f"/insurance/cases/{case_pk.group(1)}")
    assert page.status_code == 200 and "<q>" in page.text and 'id="drg-path"' in page.text
    flag_id = re.search(r'id="flag-(\d+)"', page.text)
    assert flag_id is not None
    response = client.post(
        f"/insurance/flags/{flag_id.group(1)}/decision",
        data={"csrf_token": csrf, "decision": "dismissed", "reason": "已核实医嘱"},
    )
    assert response.status_code == 303
    assert "已核实医嘱" in client.get(f"/insurance/cases/{case_pk.group(1)}").text
    export = client.get("/insurance/export.csv")
    assert export.status_code == 200 and "已核实医嘱" in export.text
    forbidden, _ = site.browser("nurse")
    assert forbidden.get("/insurance").status_code == 403
