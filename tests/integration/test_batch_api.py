"""The stored batch runs' JSON API (/api/v1/batch-runs) with bearer tokens on SQLite: a QC run
started by another system finishes in the background, its items page through in input order
exactly as stored (audited, because they name patients), roles, 409 while a run is active, and
a bad body refused with nothing written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.demo.generator import DEFAULT_ANCHOR, generate_bundles
from medbrain.interop.fhir.importer import import_bundle
from medbrain.store import batch_runs as br
from medbrain.store import models as m
from medbrain.store.batch_models import BatchRun

PERIOD = {"from": "2022-01-01", "to": "2030-12-31"}


@pytest.fixture
def api(
    client_and_tokens: tuple[TestClient, dict[str, str], sessionmaker[Session]],
) -> Iterator[tuple[TestClient, dict[str, str], sessionmaker[Session]]]:
    _, _, factory = client_and_tokens
    with factory() as session, session.begin():
        for bundle in generate_bundles(6, 5, anchor=DEFAULT_ANCHOR):
            import_bundle(session, bundle, source="test", now=DEFAULT_ANCHOR)
    yield client_and_tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _count(factory: sessionmaker[Session], model: Any, action: str | None = None) -> int:
    with factory() as session:
        statement = select(func.count()).select_from(model)
        if action is not None:
            statement = statement.where(m.AuditEntry.action == action)
        return int(session.scalar(statement) or 0)


def test_a_run_started_by_api_finishes_and_its_items_page_through_as_stored(
    api: tuple[TestClient, dict[str, str], sessionmaker[Session]],
) -> None:
    client, tokens, factory = api
    headers = _auth(tokens["qc_officer"])
    started = client.post(
        "/api/v1/batch-runs/qc", json={**PERIOD, "engine": "single"}, headers=headers
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert started.headers["location"] == f"/api/v1/batch-runs/qc/{run_id}"
    assert _count(factory, m.AuditEntry, "batch.run.start") == 1

    deadline, view = time.monotonic() + 60, started.json()
    while view["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        view = client.get(f"/api/v1/batch-runs/qc/{run_id}", headers=headers).json()
    assert view["status"] == "done", view
    assert view["done"] == view["total"] > 2
    assert view["summary"]["by_department"], view["summary"]
    listed = client.get("/api/v1/batch-runs/qc", headers=headers).json()["runs"]
    assert [run["id"] for run in listed] == [run_id]

    with factory() as session:
        stored = [(i.seq, i.item_key, i.verdict) for i in br.stored_items(session, run_id)]
    pages, offset = [], 0
    while offset is not None:
        page = client.get(
            f"/api/v1/batch-runs/qc/{run_id}/items",
            params={"offset": offset, "limit": 2},
            headers=headers,
        ).json()
        assert page["run"]["id"] == run_id
        pages.extend((i["seq"], i["key"], i["verdict"]) for i in page["items"])
        offset = page["next_offset"]
    assert pages == stored
    assert _count(factory, m.AuditEntry, "batch.run.items") == (len(stored) + 2) // 2

    flagged = client.get(
        f"/api/v1/batch-runs/qc/{run_id}/items",
        params={"flagged": "true", "limit": 1000},
        headers=headers,
    ).json()["items"]
    assert flagged and all(i["flagged"] and i["findings"] for i in flagged)
    assert len(flagged) == view["flagged"]


def test_roles_conflicts_and_bad_bodies_write_nothing(
    api: tuple[TestClient, dict[str, str], sessionmaker[Session]],
) -> None:
    client, tokens, factory = api
    doctor, pharmacist = _auth(tokens["doctor"]), _auth(tokens["pharmacist"])
    assert client.get("/api/v1/batch-runs/rx").status_code == 401
    assert client.get("/api/v1/batch-runs/rx", headers=doctor).status_code == 403
    assert client.post("/api/v1/batch-runs/qc", json=PERIOD, headers=pharmacist).status_code == 403
    assert client.get("/api/v1/batch-runs/ops", headers=pharmacist).status_code == 422

    for body, field in (
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({**PERIOD, "engine": "ray"}, "engine"),
        ({"to": "2026-03-01"}, "from"),
    ):
        refused = client.post("/api/v1/batch-runs/rx", json=body, headers=pharmacist)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    assert (
        client.post("/api/v1/batch-runs/rx", content=b"{not json", headers=pharmacist).status_code
        == 422
    )
    assert _count(factory, BatchRun) == 0

    with factory() as session, session.begin():
        br.start_run(
            session,
            kind="rx",
            first=br.parse_day(PERIOD["from"], "from"),
            last=br.parse_day(PERIOD["to"], "to"),
            who="someone",
            params={},
        )
    busy = client.post("/api/v1/batch-runs/rx", json=PERIOD, headers=pharmacist)
    assert busy.status_code == 409
    assert _count(factory, BatchRun) == 1
    assert _count(factory, m.AuditEntry, "batch.run.start") == 0
    missing = client.get("/api/v1/batch-runs/rx/999/items", headers=pharmacist)
    assert missing.status_code == 404


def test_a_failed_run_resumes_through_the_api_once_and_only_for_its_roles(
    api: tuple[TestClient, dict[str, str], sessionmaker[Session]],
) -> None:
    client, tokens, factory = api
    headers, pharmacist = _auth(tokens["qc_officer"]), _auth(tokens["pharmacist"])
    with factory() as session, session.begin():
        run = br.start_run(
            session,
            kind="qc",
            first=br.parse_day(PERIOD["from"], "from"),
            last=br.parse_day(PERIOD["to"], "to"),
            who="someone",
            params={"engine": "single", "lang": "en"},
        )
        run.status, run.active_kind, run.error = "failed", None, "worker process died"
        run_id = run.id
    url = f"/api/v1/batch-runs/qc/{run_id}/resume"
    assert client.post(url, headers=pharmacist).status_code == 403
    assert client.post("/api/v1/batch-runs/qc/999/resume", headers=headers).status_code == 404

    resumed = client.post(url, headers=headers)
    assert resumed.status_code == 202, resumed.text
    assert resumed.headers["location"] == f"/api/v1/batch-runs/qc/{run_id}"
    assert _count(factory, m.AuditEntry, "batch.run.resume") == 1
    deadline, view = time.monotonic() + 60, resumed.json()
    while view["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        view = client.get(f"/api/v1/batch-runs/qc/{run_id}", headers=headers).json()
    assert view["status"] == "done" and view["done"] == view["total"] > 2, view
    assert view["error"] is None

    again = client.post(url, headers=headers)
    assert again.status_code == 409, again.text
    assert _count(factory, m.AuditEntry, "batch.run.resume") == 1
