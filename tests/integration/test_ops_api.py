"""Operations API and pages on SQLite and PostgreSQL: cockpit, drill-down, beds, forecast,
consumables, roles, bad input, and deriving rows from the store's encounters (audited)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password, issue_token
from medbrain.core.config import Settings
from medbrain.ops import compute_cockpit, load_ops_knowledge
from medbrain.store import models as m
from medbrain.store.ops import load_monthly_table, load_table, seed_ops_demo
from medbrain.store.ops_models import OpsDepartmentDay
from tests.support.postgres import PostgresServer

END = date(2026, 11, 19)
ROLES = ("director", "doctor", "materials", "admin")


def _app(tmp_path: Path, database_url: str) -> tuple[TestClient, dict[str, str], Any]:
    app = create_app(Settings(home=tmp_path, database_url=database_url))
    factory = app.state.session_factory
    tokens = {}
    with factory() as session, session.begin():
        for role in ROLES:
            user = m.User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=hash_password("pw"),
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(
                session, user, "api", timedelta(hours=1), datetime.now(UTC)
            ).token
    return TestClient(app), tokens, factory


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def ops_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """One seeded instance per backend, shared by this module's tests (seeding takes seconds)."""
    home = tmp_path_factory.mktemp("ops")
    if request.param == "sqlite":
        database_url = f"sqlite:///{home / 'medbrain.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database_url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    client, tokens, factory = _app(home, database_url)
    with factory() as session, session.begin():
        seed_ops_demo(session, end=END, years=1, beds_scale=0.2)
    with client:
        yield client, tokens, factory


def _get(client: TestClient, token: str, url: str) -> Any:
    return client.get(url, headers={"Authorization": f"Bearer {token}"})


def test_cockpit_drill_down_trend_and_beds(ops_app: tuple[TestClient, dict[str, str], Any]) -> None:
    client, tokens, factory = ops_app
    director = tokens["director"]
    r = _get(client, director, "/api/v1/ops/cockpit?days=90")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["end"] == END.isoformat()
    assert body["start"] == (END - timedelta(days=89)).isoformat()
    tiles = {t["key"]: t for t in body["indicators"]}
    assert len(tiles) == 14
    with factory() as session:
        expected = session.scalar(
            select(func.sum(OpsDepartmentDay.outpatient_visits)).where(
                OpsDepartmentDay.day > END - timedelta(days=90), OpsDepartmentDay.day <= END
            )
        )
    assert tiles["outpatient_visits"]["value"] == expected
    forecast = tiles["forecast_accuracy"]["forecast"]
    assert forecast is not None and len(forecast["days"]) == 14 and len(forecast["ahead"]) == 14
    assert tiles["forecast_accuracy"]["value"] == pytest.approx(forecast["mape"], abs=0.06)

    # The month-aggregated query the cockpit uses gives exactly what the daily rows give.
    with factory() as session:
        start = END - timedelta(days=89)
        knowledge = load_ops_knowledge()
        daily = load_table(session, start - timedelta(days=90), END)
        monthly = load_monthly_table(session, start, END)
        assert len(monthly) < len(daily) / 10
        for dept in (None, "PEDI"):
            assert (
                compute_cockpit(monthly, knowledge, start, END, department=dept).to_dict()
                == compute_cockpit(daily, knowledge, start, END, department=dept).to_dict()
            )

    r = _get(client, director, "/api/v1/ops/indicators/outpatient_visits/departments?days=90")
    assert r.status_code == 200
    depts = r.json()["departments"]
    assert len(depts) == 20
    assert sum(d["value"] for d in depts) == expected  # departments add up to the hospital

    r = _get(client, director, "/api/v1/ops/indicators/alos/trend?department=PEDI&days=90")
    assert r.status_code == 200
    trend = r.json()
    assert trend["department_name"] == "儿科" and len(trend["points"]) >= 13

    r = _get(client, director, "/api/v1/ops/beds")
    wards = r.json()["departments"]
    assert {w["status"] for w in wards} <= {"over", "under", "ok"}
    assert any(w["code"] == "OBST" and w["status"] == "under" for w in wards)

    r = _get(client, director, "/api/v1/ops/forecast?department=CARD&horizon=5&model=ets")
    points = r.json()["forecasts"][0]["points"]
    assert len(points) == 5 and all(p["lo80"] <= p["mean"] <= p["hi80"] for p in points)

    r = _get(client, director, "/api/v1/ops/forecast/compare?department=PEDI")
    assert r.status_code == 200
    compare = r.json()
    assert compare["forecast"]["days"][-1] == END.isoformat()
    assert compare["value"] == pytest.approx(compare["forecast"]["mape"], abs=0.06)
    assert compare["status"] in ("ok", "warning")

    page = _get(client, director, "/ops")
    assert page.status_code == 200
    assert page.text.count("data-indicator=") == 14
    assert "/static/vendor/echarts/echarts.min.js" in page.text


def test_roles_bad_input_materials_and_derive(
    ops_app: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, tokens, factory = ops_app
    assert _get(client, tokens["doctor"], "/api/v1/ops/cockpit").status_code == 403
    assert _get(client, tokens["materials"], "/api/v1/ops/cockpit").status_code == 403
    director = tokens["director"]
    for url, status, field in (
        ("/api/v1/ops/cockpit?end=2030-01-01", 422, "end"),
        ("/api/v1/ops/cockpit?department=NOPE", 422, "department"),
        ("/api/v1/ops/cockpit?granularity=year", 422, "granularity"),
        ("/api/v1/ops/cockpit?days=0", 422, "days"),
        ("/api/v1/ops/consumables/expiry?horizons=30,x", 422, "horizons"),
        ("/api/v1/ops/consumables/expiry?horizons=-5", 422, "horizons"),
        ("/api/v1/ops/indicators/happiness/departments", 404, None),
    ):
        r = _get(client, director, url)
        assert r.status_code == status, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in r.text

    # A hospital's own targets: MEDBRAIN_HOME/ops.yaml, merged over the shipped definitions.
    overrides = client.app.state.settings.home / "ops.yaml"
    overrides.write_text("indicators:\n  - id: drug_share\n    target_high: 10\n", encoding="utf-8")
    try:
        tiles = {
            t["key"]: t for t in _get(client, director, "/api/v1/ops/cockpit").json()["indicators"]
        }
    finally:
        overrides.unlink()
    assert tiles["drug_share"]["target_high"] == 10 and tiles["drug_share"]["status"] == "warning"

    r = _get(client, tokens["materials"], "/api/v1/ops/consumables/expiry?horizons=30,7")
    assert r.status_code == 200
    expiring = r.json()["expiring"]
    assert expiring and all(w["expired"] or w["days_left"] <= 30 for w in expiring)
    assert [w["days_left"] for w in expiring] == sorted(w["days_left"] for w in expiring)
    reorder = _get(client, tokens["materials"], "/api/v1/ops/consumables/reorder").json()
    assert any(line["reorder"] for line in reorder["reorder"])
    page = _get(client, tokens["materials"], "/materials")
    assert page.status_code == 200 and 'id="materials-reorder"' in page.text

    # Deriving rows from encounters: an inpatient stay of 3 nights in a new department.
    with factory() as session, session.begin():
        patient = m.Patient(
            mrn="OPS1", name="测试", name_pinyin="ce shi", name_initials="cs", sex="male"
        )
        session.add(patient)
        session.flush()
        admit = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
        session.add(
            m.Encounter(
                patient_id=patient.id, kind="inpatient", department="心内科",
                admit_time=admit, discharge_time=admit + timedelta(days=3),
            )
        )  # fmt: skip
    assert (
        client.post(
            "/api/v1/ops/derive", headers={"Authorization": f"Bearer {director}"}
        ).status_code
        == 403
    )
    r = client.post("/api/v1/ops/derive", headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 4  # admit day, 2 more census nights, discharge day
    with factory() as session:
        rows = session.execute(
            select(OpsDepartmentDay.day, OpsDepartmentDay.admissions, OpsDepartmentDay.occupied_beds,
                   OpsDepartmentDay.discharges)
            .where(OpsDepartmentDay.source == "store", OpsDepartmentDay.dept_code == "CARD")
            .order_by(OpsDepartmentDay.day)
        ).all()  # fmt: skip
        actions = list(session.scalars(select(m.AuditEntry.action)))
    assert [tuple(r) for r in rows] == [
        (date(2026, 11, 21), 1, 1, 0),
        (date(2026, 11, 22), 0, 1, 0),
        (date(2026, 11, 23), 0, 1, 0),
        (date(2026, 11, 24), 0, 0, 1),
    ]
    assert "ops.derive" in actions


def test_empty_instance_answers_not_found_and_an_empty_page(tmp_path: Path) -> None:
    client, tokens, _factory = _app(tmp_path, f"sqlite:///{tmp_path / 'e.db'}")
    with client:
        r = _get(client, tokens["director"], "/api/v1/ops/cockpit")
        assert r.status_code == 404
        assert "demo seed" in r.json()["detail"]
        page = _get(client, tokens["director"], "/ops")
        assert page.status_code == 200 and 'id="ops-empty"' in page.text
