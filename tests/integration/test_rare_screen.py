"""Rare-disease screen end to end: a FHIR import with new lab results → the patient's record
(diagnoses + labs) is screened → the doctor's inbox holds the suggestion, once; the doctor
decides; audited. SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.api.app import create_app
from medbrain.core.config import Settings
from medbrain.store.models import AuditEntry, FindingRecord
from tests.support.accounts import make_tokens

ROLES = ("doctor", "nurse")


def record_bundle(
    protein_g_per_day: float, *, obs_id: str = "up-1", unit: str | None = "g/24h"
) -> dict[str, Any]:
    """One inpatient with HFpEF, LV hypertrophy, bilateral carpal tunnel syndrome and a 24-h
    urine protein result (LOINC 2889-4)."""
    quantity: dict[str, Any] = {"value": protein_g_per_day}
    if unit is not None:
        quantity["unit"] = unit
    conditions = [
        {
            "fullUrl": f"urn:uuid:cond-rare-{n}",
            "resource": {
                "resourceType": "Condition",
                "id": f"cond-rare-{n}",
                "code": {"text": text},
                "subject": {"reference": "urn:uuid:pt-rare-1"},
            },
        }
        for n, text in enumerate(("射血分数保留的心力衰竭", "左心室肥厚", "双侧腕管综合征"))
    ]
    return {
        "resourceType": "Bundle",
        "id": f"rare-{obs_id}",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:pt-rare-1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "pt-rare-1",
                    "identifier": [{"system": "urn:mrn", "value": "RARE-0001"}],
                    "name": [{"text": "筛查患者"}],
                    "gender": "male",
                    "birthDate": "1950-05-02",
                },
            },
            *conditions,
            {
                "fullUrl": f"urn:uuid:{obs_id}",
                "resource": {
                    "resourceType": "Observation",
                    "id": obs_id,
                    "status": "final",
                    "category": [{"coding": [{"code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2889-4"}]},
                    "subject": {"reference": "urn:uuid:pt-rare-1"},
                    "effectiveDateTime": "2026-11-20T08:00:00+08:00",
                    "valueQuantity": quantity,
                },
            },
        ],
    }


@pytest.fixture
def app_client(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(Settings(home=tmp_path, database_url=database_url))
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


def _rare_rows(client: TestClient) -> list[FindingRecord]:
    with client.app_state.session_factory() as session:  # type: ignore[attr-defined]
        return list(
            session.scalars(
                select(FindingRecord)
                .where(FindingRecord.engine == "rare")
                .order_by(FindingRecord.id)
            )
        )


def _audit(client: TestClient, action: str) -> list[AuditEntry]:
    with client.app_state.session_factory() as session:  # type: ignore[attr-defined]
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def test_imported_labs_screen_the_record_into_the_doctors_inbox_once(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    _import(client, tokens, record_bundle(1.8))
    rows = _rare_rows(client)
    amyloid = [r for r in rows if r.rule_id == "rare.cardiac-amyloidosis"]
    assert len(amyloid) == 1
    row = amyloid[0]
    assert row.target_role == "doctor" and row.status == "open"
    assert row.category == "rare_disease" and "非诊断" in row.message
    cited = [e.get("resource") for e in row.evidence if e.get("resource")]
    assert cited == ["Observation/up-1"]  # the lab-derived red flag
    assert row.extra["candidates"][0]["rank"] <= 5
    [screen] = _audit(client, "rare.screen")
    assert screen.detail["raised"] == [r.id for r in rows]

    # the doctor's inbox shows it; the nurse's does not
    inbox = client.get("/api/v1/findings", headers=_auth(tokens, "doctor")).json()
    assert row.id in [f["id"] for f in inbox["items"]]
    nurse = client.get("/api/v1/findings", headers=_auth(tokens, "nurse")).json()
    assert row.id not in [f["id"] for f in nurse["items"]]

    # dismissed with a reason, it is not raised again by the next result
    decided = client.post(
        f"/api/v1/findings/{row.id}/decision",
        json={"status": "dismissed", "reason": "已行骨闪烁显像阴性"},
        headers=_auth(tokens, "doctor"),
    )
    assert decided.status_code == 200, decided.text
    _import(client, tokens, record_bundle(2.4, obs_id="up-2"))
    assert [r.id for r in _rare_rows(client)] == [r.id for r in rows]
    assert len(_audit(client, "rare.screen")) == 2


def test_a_normal_result_raises_nothing(app_client: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_client
    bundle = record_bundle(0.08)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Condition"]
    _import(client, tokens, bundle)
    assert _rare_rows(client) == []


def test_a_result_the_screen_cannot_read_is_reported_and_the_import_stands(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    _import(client, tokens, record_bundle(1.8, unit="furlongs"))
    assert _rare_rows(client) == []
    [screen] = _audit(client, "rare.screen")
    [(patient, problem)] = screen.detail["skipped"].items()
    assert patient.startswith("Patient/") and "labs[0].unit" in problem


def test_the_rare_page_for_the_patient_reads_the_same_record(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    _import(client, tokens, record_bundle(1.8))
    [row] = [r for r in _rare_rows(client) if r.rule_id == "rare.cardiac-amyloidosis"]
    page = client.get(
        "/rare",
        params={"patient_id": row.patient_id, "text": "腰椎管狭窄", "lang": "en"},
        headers=_auth(tokens, "doctor"),
    )
    assert page.status_code == 200, page.text
    used = page.text.split('id="rare-result"')[1].split("</p>")[0]
    # the diagnoses (carpal tunnel), the lab (proteinuria) and the typed text (lumbar stenosis)
    for hpo in ("HP:0012185", "HP:0000093", "HP:0004610"):
        assert hpo in used
    assert "Cardiac amyloidosis" in page.text  # the rule pack, as in the inbox
