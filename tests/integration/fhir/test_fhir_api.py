"""The /fhir facade: import by POST, $everything, metadata; roles, content types, audit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from sqlalchemy import func, select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password
from medbrain.core.config import Settings
from medbrain.store import models as m
from tests.support.fhir_bundles import (
    FIXTURE,
    FIXTURE_IMPORTED,
    PATIENT_ID,
    SECOND_PATIENT_ID,
    fixture_bundle,
    resource,
)

PASSWORD = "fhir-test-password"
ROLES = ("doctor", "nurse", "pharmacist", "admin", "patient")


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2 is slow on purpose: hash once per test run


@dataclass
class Fhir:
    client: TestClient
    factory: Any
    tokens: dict[str, str]

    def token(self, role: str) -> str:
        """Log in through POST /api/v1/auth/token, once per role and test."""
        if role not in self.tokens:
            response = self.client.post(
                "/api/v1/auth/token", json={"username": f"fhir_{role}", "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.tokens[role] = response.json()["access_token"]
        return self.tokens[role]

    def headers(
        self, role: str, content_type: str | None = "application/fhir+json"
    ) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token(role)}"}
        if content_type:
            out["Content-Type"] = content_type
        return out

    def count(self, model: Any) -> int:
        with self.factory() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def fhir(tmp_path: Path, database_url: str) -> Iterator[Fhir]:
    app = create_app(Settings(home=tmp_path, database_url=database_url))
    factory = app.state.session_factory
    with factory() as session, session.begin():
        for role in ROLES:
            session.add(
                m.User(
                    username=f"fhir_{role}",
                    display_name=role,
                    role=role,
                    password_hash=_password_hash(),
                )
            )
    with TestClient(app) as client:
        yield Fhir(client=client, factory=factory, tokens={})
    app.state.engine.dispose()


def _post(
    fhir: Fhir, role: str, body: bytes | str, content_type: str | None = "application/fhir+json"
) -> Any:
    return fhir.client.post("/fhir", content=body, headers=fhir.headers(role, content_type))


def _link_patient_account(fhir: Fhir, fhir_id: str) -> int:
    with fhir.factory() as session, session.begin():
        patient = session.scalar(select(m.Patient).where(m.Patient.fhir_id == fhir_id))
        user = session.scalar(select(m.User).where(m.User.username == "fhir_patient"))
        assert patient is not None and user is not None
        user.patient_id = patient.id
        return patient.id


@pytest.mark.parametrize("role", ["doctor", "admin"])
def test_doctor_and_admin_import_a_bundle_and_it_is_audited(fhir: Fhir, role: str) -> None:
    response = _post(fhir, role, FIXTURE.read_bytes())
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == FIXTURE_IMPORTED
    again = _post(fhir, role, FIXTURE.read_bytes(), "application/json; charset=utf-8")
    assert again.json()["unchanged"] == FIXTURE_IMPORTED
    with fhir.factory() as session:
        entries = session.scalars(
            select(m.AuditEntry).where(m.AuditEntry.action == "fhir.import")
        ).all()
    assert [(e.who, e.resource) for e in entries] == [
        (f"fhir_{role}", "Bundle/medbrain-fixture-synthea-1")
    ] * 2
    assert entries[0].detail["imported"]["Observation"] == 5


def test_concurrent_imports_of_one_new_patient_never_give_500(fhir: Fhir) -> None:
    """Racing imports of the same new patient: each is 200 or a retryable 409/503, and the
    patient exists once (a unique-constraint race is a conflict, not a server error)."""
    body = FIXTURE.read_bytes()
    headers = fhir.headers("doctor")
    barrier = threading.Barrier(6)

    def post_once() -> int:
        barrier.wait()
        return int(fhir.client.post("/fhir", content=body, headers=headers).status_code)

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: post_once(), range(6)))
    assert set(statuses) <= {200, 409, 503}, statuses
    assert 200 in statuses
    assert fhir.count(m.Patient) == 2  # the fixture holds two patients, each stored once


@pytest.mark.parametrize("role", ["nurse", "pharmacist", "patient"])
def test_other_roles_may_not_import(fhir: Fhir, role: str) -> None:
    assert _post(fhir, role, FIXTURE.read_bytes()).status_code == 403
    assert fhir.count(m.Patient) == 0


def test_anonymous_callers_get_401_everywhere(fhir: Fhir) -> None:
    assert (
        fhir.client.post(
            "/fhir", content=b"{}", headers={"Content-Type": "application/fhir+json"}
        ).status_code
        == 401
    )
    assert fhir.client.get("/fhir/metadata").status_code == 401
    assert fhir.client.get(f"/fhir/Patient/{PATIENT_ID}/$everything").status_code == 401


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/fhir+xml", None]
)
def test_wrong_content_type_is_415_problem(fhir: Fhir, content_type: str | None) -> None:
    response = _post(fhir, "doctor", FIXTURE.read_bytes(), content_type)
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "application/fhir+json" in response.json()["detail"]
    assert fhir.count(m.Patient) == 0


def test_malformed_json_is_400_with_position(fhir: Fhir) -> None:
    response = _post(fhir, "doctor", '{"resourceType": "Bundle", "entry": [')
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "line 1 column" in response.json()["detail"]


def test_invalid_bundle_is_422_naming_entry_and_field_and_writes_nothing(fhir: Fhir) -> None:
    bundle = fixture_bundle()
    resource(bundle, "Patient")["identifier"][2]["value"] = "110105195803120134"
    response = _post(fhir, "doctor", json.dumps(bundle, ensure_ascii=False))
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "entry[0].resource.identifier[2].value"
    assert "ISO 7064" in problem["detail"]
    assert fhir.count(m.Patient) == 0
    with fhir.factory() as session:
        assert (
            session.scalar(select(m.AuditEntry).where(m.AuditEntry.action == "fhir.import")) is None
        )


def test_unknown_resource_type_is_422(fhir: Fhir) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Foo"}}],
    }
    response = _post(fhir, "admin", json.dumps(bundle))
    assert response.status_code == 422
    assert response.json()["field"] == "entry[0].resource.resourceType"


def test_everything_returns_a_valid_fhir_bundle_and_is_audited_as_a_read(fhir: Fhir) -> None:
    assert _post(fhir, "admin", FIXTURE.read_bytes()).status_code == 200
    response = fhir.client.get(
        f"/fhir/Patient/{PATIENT_ID}/$everything", headers=fhir.headers("nurse", None)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["id"] == PATIENT_ID
    assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/Patient/{PATIENT_ID}")
    with fhir.factory() as session:
        reads = session.scalars(
            select(m.AuditEntry).where(m.AuditEntry.action == "patient.read")
        ).all()
    assert len(reads) == 1 and reads[0].who == "fhir_nurse"
    assert reads[0].detail["via"] == "fhir.$everything"


def test_patient_sees_only_their_own_everything(fhir: Fhir) -> None:
    assert _post(fhir, "admin", FIXTURE.read_bytes()).status_code == 200
    own_id = _link_patient_account(fhir, PATIENT_ID)
    own = fhir.client.get(
        f"/fhir/Patient/{PATIENT_ID}/$everything", headers=fhir.headers("patient", None)
    )
    assert own.status_code == 200
    by_store_id = fhir.client.get(
        f"/fhir/Patient/{own_id}/$everything", headers=fhir.headers("patient", None)
    )
    assert by_store_id.status_code == 404  # the id of a FHIR-imported patient is its FHIR id
    other = fhir.client.get(
        f"/fhir/Patient/{SECOND_PATIENT_ID}/$everything", headers=fhir.headers("patient", None)
    )
    missing = fhir.client.get(
        "/fhir/Patient/no-such-patient/$everything", headers=fhir.headers("patient", None)
    )
    assert other.status_code == missing.status_code == 404
    assert other.json()["title"] == missing.json()["title"]
    assert SECOND_PATIENT_ID in other.json()["detail"]


def test_metadata_is_a_capability_statement_behind_login(fhir: Fhir) -> None:
    response = fhir.client.get("/fhir/metadata", headers=fhir.headers("patient", None))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Observation", "DocumentReference"} <= types


def test_oversize_bundle_is_413_and_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}", max_upload_bytes=4096
    )
    app = create_app(settings)
    with app.state.session_factory() as session, session.begin():
        session.add(
            m.User(
                username="fhir_admin",
                display_name="admin",
                role="admin",
                password_hash=_password_hash(),
            )
        )
    with TestClient(app) as client:
        small = Fhir(client=client, factory=app.state.session_factory, tokens={})
        response = _post(small, "admin", FIXTURE.read_bytes())
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("application/problem+json")
        assert small.count(m.Patient) == 0
    app.state.engine.dispose()
