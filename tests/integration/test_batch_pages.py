"""The /rx/batch and /qc/batch pages through TestClient on SQLite: roles, starting a run
(audited) that finishes in the background, progress polls that write no audit entry, the
summary page, the exports, 409 while a run of the kind is active, and a bad period refused
with nothing written."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password
from medbrain.core.config import Settings
from medbrain.demo.generator import DEFAULT_ANCHOR, generate_bundles
from medbrain.interop.fhir.importer import import_bundle
from medbrain.store import batch_runs as br
from medbrain.store import models as m
from medbrain.store.batch_models import BatchItem, BatchRun

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ROLES = {"pharmacist": "pharmacist", "qc": "qc_officer", "doctor": "doctor"}
PASSWORD = "batch-pages-pw-1"
PERIOD = {"from": "2022-01-01", "to": "2030-12-31"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    home: Path = tmp_path_factory.mktemp("batchpages")
    built = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'medbrain.db'}"))
    with built.state.session_factory() as session, session.begin():
        for bundle in generate_bundles(6, 5, anchor=DEFAULT_ANCHOR):
            import_bundle(session, bundle, source="test", now=DEFAULT_ANCHOR)
        for username, role in ROLES.items():
            session.add(
                m.User(
                    username=username,
                    display_name=username,
                    role=role,
                    password_hash=hash_password(PASSWORD),
                    active=True,
                )
            )
    yield built
    built.state.engine.dispose()


def login(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    form = CSRF_FIELD.search(client.get("/login").text)
    assert form is not None
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": form.group(1)}
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = CSRF_FIELD.search(page.text)
    assert token is not None
    return token.group(1)


def audit_count(app: FastAPI, action: str | None = None) -> int:
    with app.state.session_factory() as session:
        statement = select(func.count()).select_from(m.AuditEntry)
        if action is not None:
            statement = statement.where(m.AuditEntry.action == action)
        return int(session.scalar(statement) or 0)


def run_count(app: FastAPI) -> int:
    with app.state.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(BatchRun)) or 0)


def test_pages_are_for_the_pharmacist_and_the_qc_officer_only(app: FastAPI) -> None:
    doctor = login(app, "doctor")
    assert doctor.get("/rx/batch").status_code == 403
    assert doctor.get("/qc/batch").status_code == 403
    pharmacist = login(app, "pharmacist")
    assert pharmacist.get("/qc/batch").status_code == 403
    assert pharmacist.get("/rx/batch").status_code == 200
    assert TestClient(app, follow_redirects=False).get("/rx/batch").status_code == 303  # login


def test_a_started_run_finishes_in_the_background_and_polling_is_not_audited(
    app: FastAPI,
) -> None:
    client = login(app, "pharmacist")
    token = csrf_of(client, "/rx/batch")
    starts = audit_count(app, "batch.run.start")
    response = client.post("/rx/batch", data={**PERIOD, "engine": "single", "csrf_token": token})
    assert response.status_code == 303, response.text
    run_id = int(response.headers["location"].rsplit("/", 1)[-1])
    assert audit_count(app, "batch.run.start") == starts + 1

    before = audit_count(app)
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        fragment = client.get(f"/rx/batch/{run_id}/progress", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        status = re.search(r'data-status="(\w+)"', fragment.text).group(1)  # type: ignore[union-attr]
        if status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert status == "done"
    assert 'id="batch-open-summary"' in fragment.text and "hx-trigger" not in fragment.text
    for _ in range(3):
        assert client.get(f"/rx/batch/{run_id}/progress").status_code == 200
    assert audit_count(app) == before  # polls write no audit entry

    page = client.get(f"/rx/batch/{run_id}")
    assert page.status_code == 200
    assert 'id="batch-summary"' in page.text and "hx-trigger" not in page.text
    assert audit_count(app, "batch.run.read") == 1
    with app.state.session_factory() as session:
        run = br.get_run(session, run_id)
        items = list(br.stored_items(session, run_id))
        assert run.done == run.total == len(items) > 0
        assert f"<strong>{run.flagged}</strong>" in page.text

    exported = client.get(f"/rx/batch/{run_id}/export.csv")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(r["key"], r["verdict"]) for r in rows] == [(i.item_key, i.verdict) for i in items]
    book = load_workbook(io.BytesIO(client.get(f"/rx/batch/{run_id}/export.xlsx").content))
    assert book.sheetnames == ["items", "findings", "summary"]
    assert book["items"].max_row == len(items) + 1
    assert audit_count(app, "batch.run.export") == 2


def test_a_second_run_of_a_kind_is_409_while_one_is_active(app: FastAPI) -> None:
    with app.state.session_factory() as session, session.begin():
        active = br.start_run(
            session,
            kind="qc",
            first=br.parse_day(PERIOD["from"], "from"),
            last=br.parse_day(PERIOD["to"], "to"),
            who="someone",
            params={},
        ).id
    client = login(app, "qc")
    page = client.get("/qc/batch")
    assert 'id="batch-active"' in page.text
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    runs, starts = run_count(app), audit_count(app, "batch.run.start")
    refused = client.post("/qc/batch", data={**PERIOD, "engine": "single", "csrf_token": token})
    assert refused.status_code == 409
    assert (run_count(app), audit_count(app, "batch.run.start")) == (runs, starts)
    with app.state.session_factory() as session, session.begin():
        br.get_run(session, active).active_kind = None  # let the next test start one
        br.get_run(session, active).status = "failed"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"from": "2026-03-01", "to": "2026-03-02", "engine": "ray"}, "engine"),
    ],
)
def test_a_bad_form_is_422_naming_the_field_and_writes_nothing(
    app: FastAPI, form: dict[str, str], field: str
) -> None:
    client = login(app, "qc")
    token = csrf_of(client, "/qc/batch")
    runs, items = run_count(app), 0
    with app.state.session_factory() as session:
        items = int(session.scalar(select(func.count()).select_from(BatchItem)) or 0)
    response = client.post("/qc/batch", data={**form, "csrf_token": token})
    assert response.status_code == 422
    assert field in response.text
    assert run_count(app) == runs
    with app.state.session_factory() as session:
        assert int(session.scalar(select(func.count()).select_from(BatchItem)) or 0) == items


def test_a_failed_run_page_offers_resume_and_the_run_then_finishes(app: FastAPI) -> None:
    with app.state.session_factory() as session, session.begin():
        run = br.start_run(
            session,
            kind="qc",
            first=br.parse_day(PERIOD["from"], "from"),
            last=br.parse_day(PERIOD["to"], "to"),
            who="someone",
            params={"engine": "single", "lang": "zh"},
        )
        run.status, run.active_kind, run.error = "failed", None, "数据库连接中断"
        run_id = run.id
    client = login(app, "qc")
    page = client.get(f"/qc/batch/{run_id}")
    assert 'id="batch-resume"' in page.text and "数据库连接中断" in page.text
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    assert client.post(f"/qc/batch/{run_id}/resume").status_code == 403  # no CSRF token
    resumes = audit_count(app, "batch.run.resume")
    response = client.post(f"/qc/batch/{run_id}/resume", data={"csrf_token": token})
    assert response.status_code == 303, response.text
    assert response.headers["location"].endswith(f"/qc/batch/{run_id}")
    assert audit_count(app, "batch.run.resume") == resumes + 1

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app.state.session_factory() as session:
            status = br.get_run(session, run_id).status
        if status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert status == "done"
    done = client.get(f"/qc/batch/{run_id}")
    assert 'id="batch-summary"' in done.text and 'id="batch-resume"' not in done.text
    again = client.post(f"/qc/batch/{run_id}/resume", data={"csrf_token": token})
    assert again.status_code == 409 and "只有失败的运行可以继续" in again.text
    assert audit_count(app, "batch.run.resume") == resumes + 1
