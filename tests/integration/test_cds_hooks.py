"""CDS Hooks 2.0 services: discovery, order-sign/select, patient-view, feedback, errors, auth."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password
from medbrain.core.config import Settings
from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.interop import cds_hooks as cds
from medbrain.store import models as m

PASSWORD = "cds-test-password"
ROLES = ("doctor", "pharmacist", "admin", "nurse")


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Cds:
    client: TestClient
    factory: Any
    tokens: dict[str, str]

    def headers(self, role: str = "doctor") -> dict[str, str]:
        if role not in self.tokens:
            response = self.client.post(
                "/api/v1/auth/token", json={"username": f"cds_{role}", "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.tokens[role] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, path: str, body: Any, role: str = "doctor", **params: str) -> Any:
        return self.client.post(path, json=body, headers=self.headers(role), params=params)

    def audit(self, action_prefix: str) -> list[m.AuditEntry]:
        with self.factory() as session:
            rows = session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq)).all()
            return [r for r in rows if r.action.startswith(action_prefix)]


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str) -> Iterator[Cds]:
    app = create_app(Settings(home=tmp_path, database_url=sqlite_url))
    factory = app.state.session_factory
    with factory() as session, session.begin():
        for role in ROLES:
            session.add(
                m.User(
                    username=f"cds_{role}",
                    display_name=role,
                    role=role,
                    password_hash=_password_hash(),
                )
            )
    with TestClient(app) as client:
        yield Cds(client=client, factory=factory, tokens={})
    app.state.engine.dispose()


# --------------------------------------------------------------------------- builders


def med(rid: str, drug: str, dose: float, unit: str, per_day: int, days: int = 5) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p-cds"},
        "medicationCodeableConcept": {"text": drug},
        "dosageInstruction": [
            {
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "d"}},
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


PATIENT = {"resourceType": "Patient", "id": "p-cds", "gender": "male", "birthDate": "1958-03-01"}


def potassium(value: float, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "k-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "K"}]},
        "subject": {"reference": "Patient/p-cds"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {
            "value": value,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def order_sign(*orders: dict[str, Any], prefetch: Any = "default") -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {
            "userId": "Practitioner/1",
            "patientId": "p-cds",
            "draftOrders": bundle(*orders),
        },
    }
    if prefetch == "default":
        body["prefetch"] = {
            "patient": PATIENT,
            "conditions": bundle(),
            "allergies": bundle(),
            "observations": bundle(),
        }
    elif prefetch is not None:
        body["prefetch"] = prefetch
    return body


WARFARIN = med("mr-warfarin", "warfarin", 3, "mg", 1, 7)
IBUPROFEN = med("mr-ibuprofen", "ibuprofen", 400, "mg", 3, 5)
PARACETAMOL = med("mr-paracetamol", "paracetamol", 500, "mg", 3, 3)


# --------------------------------------------------------------------------- discovery


def test_discovery_lists_three_services_with_prefetch(api: Cds) -> None:
    response = api.client.get("/cds-services", headers=api.headers("doctor"))
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {sid: s["hook"] for sid, s in services.items()} == {
        "medbrain-order-sign": "order-sign",
        "medbrain-order-select": "order-select",
        "medbrain-patient-view": "patient-view",
    }
    for service in services.values():
        assert service["title"] and service["description"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "allergies" in services["medbrain-order-sign"]["prefetch"]


# --------------------------------------------------------------------------- order-sign


def test_order_sign_warfarin_ibuprofen_gives_interaction_card(api: Cds) -> None:
    response = api.post(
        "/cds-services/medbrain-order-sign", order_sign(WARFARIN, IBUPROFEN), lang="en"
    )
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    card = next(
        c
        for c in cards
        if c["extension"][cds.EXTENSION_KEY]["rule_id"] == "rx.interaction.warfarin-nsaid"
    )
    assert card["indicator"] in ("critical", "warning")
    assert 0 < len(card["summary"]) < 140
    assert "warfarin" in card["summary"]
    assert "FDA" in card["source"]["label"]
    assert card["source"]["topic"]["code"] == "rx.interaction.warfarin-nsaid"
    assert card["selectionBehavior"] == "at-most-one"
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action == {
        "type": "delete",
        "description": suggestion["label"],
        "resourceId": "MedicationRequest/mr-ibuprofen",
    }
    uuid.UUID(card["uuid"])
    uuid.UUID(suggestion["uuid"])
    assert {r["code"] for r in card["overrideReasons"]} >= {"benefit_outweighs_risk", "other"}
    assert all(r["display"] and r["system"] for r in card["overrideReasons"])
    [link] = card["links"]
    assert (
        link["type"] == "absolute"
        and link["url"].startswith("http")
        and link["url"].endswith("/inbox")
    )
    assert "“warfarin”" in card["detail"] and "FDA" in card["detail"]
    [entry] = api.audit("cds.order-sign")
    assert entry.who == "cds_doctor"
    assert entry.resource == "Patient/p-cds"
    assert card["uuid"] in {c["uuid"] for c in entry.detail["cards"]}
    assert entry.detail["verdict"] == "block"


def test_order_sign_clean_order_gives_no_cards(api: Cds) -> None:
    response = api.post(
        "/cds-services/medbrain-order-sign", order_sign(PARACETAMOL), role="pharmacist"
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}
    [entry] = api.audit("cds.order-sign")
    assert entry.detail["verdict"] == "pass" and entry.detail["cards"] == []


def test_order_sign_without_prefetch_reads_the_store(api: Cds) -> None:
    with api.factory() as session, session.begin():
        patient = m.Patient(
            fhir_id="p-cds", mrn="CDS-1", name="测试", sex="male", birth_date=date(1958, 3, 1)
        )
        session.add(patient)
        session.flush()
        store_id = patient.id
    body = order_sign(WARFARIN, IBUPROFEN, prefetch=None)
    response = api.post("/cds-services/medbrain-order-sign", body)
    assert response.status_code == 200, response.text
    [card] = [
        c
        for c in response.json()["cards"]
        if c["extension"][cds.EXTENSION_KEY]["category"] == "interaction"
    ]
    assert card["links"][0]["url"].endswith(f"/patients/{store_id}")
    [entry] = api.audit("cds.order-sign")
    assert set(entry.detail["store_filled"]) == {
        "patient",
        "conditions",
        "allergies",
        "observations",
    }


def test_order_sign_unknown_patient_without_prefetch_names_the_field(api: Cds) -> None:
    response = api.post("/cds-services/medbrain-order-sign", order_sign(WARFARIN, prefetch=None))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "prefetch.patient"


def test_order_select_shows_cards_for_the_selection(api: Cds) -> None:
    body = order_sign(WARFARIN, IBUPROFEN)
    body["hook"] = "order-select"
    body["context"]["selections"] = ["MedicationRequest/mr-warfarin"]
    response = api.post("/cds-services/medbrain-order-select", body)
    assert response.status_code == 200, response.text
    card = next(
        c
        for c in response.json()["cards"]
        if c["extension"][cds.EXTENSION_KEY]["category"] == "interaction"
    )
    # The newly selected order is the one the suggestion removes.
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/mr-warfarin"
    del body["context"]["selections"]
    response = api.post("/cds-services/medbrain-order-select", body)
    assert response.status_code == 422
    assert response.json()["field"] == "context.selections"


# --------------------------------------------------------------------------- patient-view


def test_patient_view_hyperkalaemia_gives_critical_card(api: Cds) -> None:
    taken = datetime.now(UTC) - timedelta(hours=1)
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-cds"},
        "prefetch": {"patient": PATIENT, "observations": bundle(potassium(6.8, taken))},
    }
    # A patient MedBrain does not store: the keys not prefetched are simply empty.
    response = api.post("/cds-services/medbrain-patient-view", body, lang="en")
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards and any(c["indicator"] == "critical" for c in cards)
    critical = next(c for c in cards if c["indicator"] == "critical")
    assert "potassium" in critical["summary"].lower()
    assert "Recommended tests" in critical["detail"] and "ECG" in critical["detail"]
    assert critical["source"]["label"]
    assert critical["links"][0]["type"] == "absolute"
    [entry] = api.audit("cds.patient-view")
    assert entry.detail["hookInstance"] == body["hookInstance"]


def test_patient_view_without_prefetch_reads_the_store(api: Cds) -> None:
    taken = datetime.now(UTC) - timedelta(hours=2)
    with api.factory() as session, session.begin():
        patient = m.Patient(
            fhir_id="p-cds", mrn="CDS-2", name="测试", sex="female", birth_date=date(1950, 1, 1)
        )
        session.add(patient)
        session.flush()
        session.add(
            m.Observation(
                patient_id=patient.id,
                code="2823-3",
                display="K",
                value_num=7.0,
                unit="mmol/L",
                effective_at=taken,
            )
        )
        store_id = patient.id
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-cds"},
    }
    response = api.post("/cds-services/medbrain-patient-view", body)
    assert response.status_code == 200, response.text
    critical = [c for c in response.json()["cards"] if c["indicator"] == "critical"]
    assert critical
    assert critical[0]["links"][0]["url"].endswith(f"/patients/{store_id}")
    [entry] = api.audit("cds.patient-view")
    assert "observations" in entry.detail["store_filled"]


def test_patient_view_normal_potassium_gives_no_cards(api: Cds) -> None:
    taken = datetime.now(UTC) - timedelta(hours=1)
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-cds"},
        "prefetch": {"patient": PATIENT, "observations": bundle(potassium(4.2, taken))},
    }
    response = api.post("/cds-services/medbrain-patient-view", body)
    assert response.status_code == 200, response.text
    assert response.json()["cards"] == []


def amyloid_prefetch(unit: str | None = "g/24h") -> dict[str, Any]:
    """HFpEF with LV hypertrophy, bilateral carpal tunnel syndrome and proteinuria."""
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"c-{n}",
            "code": {"text": text},
            "subject": {"reference": "Patient/p-cds"},
        }
        for n, text in enumerate(("射血分数保留的心力衰竭", "左心室肥厚", "双侧腕管综合征"))
    ]
    quantity: dict[str, Any] = {"value": 1.8}
    if unit is not None:
        quantity["unit"] = unit
    protein = {
        "resourceType": "Observation",
        "id": "up-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2889-4"}]},
        "subject": {"reference": "Patient/p-cds"},
        "effectiveDateTime": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
        "valueQuantity": quantity,
    }
    return {
        "patient": PATIENT,
        "conditions": bundle(*conditions),
        "observations": bundle(protein),
    }


def test_patient_view_suggests_a_rare_disease_the_record_points_to(api: Cds) -> None:
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-cds"},
        "prefetch": amyloid_prefetch(),
    }
    response = api.post("/cds-services/medbrain-patient-view", body, lang="en")
    assert response.status_code == 200, response.text
    cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    amyloid = cards["rare.cardiac-amyloidosis"]
    assert amyloid["indicator"] == "warning"
    assert amyloid["summary"].startswith("Consider Cardiac amyloidosis (not a diagnosis")
    assert amyloid["source"]["topic"]["display"] == "rare_disease"
    assert "immunofixation" in amyloid["detail"]  # the work-up: rule out AL first
    extension = amyloid["extension"][cds.EXTENSION_KEY]
    assert 0 < extension["confidence"] <= 1
    [entry] = api.audit("cds.patient-view")
    assert "rare.cardiac-amyloidosis" in str(entry.detail)


def test_patient_view_names_the_observation_the_rare_screen_cannot_read(api: Cds) -> None:
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-cds"},
        "prefetch": amyloid_prefetch(unit=None),
    }
    response = api.post("/cds-services/medbrain-patient-view", body)
    assert response.status_code == 422
    assert response.json()["field"] == "Observation/up-1"


# --------------------------------------------------------------------------- feedback


def test_feedback_accepted_and_overridden_are_audited(api: Cds) -> None:
    card_uuid, other_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "feedback": [
            {
                "card": card_uuid,
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
                "outcomeTimestamp": "2026-11-23T10:00:00Z",
            },
            {
                "card": other_uuid,
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"code": "already_monitored", "system": cds.OVERRIDE_REASON_SYSTEM},
                    "userComment": "INR checked daily",
                },
                "outcomeTimestamp": "2026-11-23T10:01:00Z",
            },
        ]
    }
    response = api.post("/cds-services/medbrain-order-sign/feedback", body, role="pharmacist")
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 2}
    [accepted] = api.audit("cds.feedback.accepted")
    [overridden] = api.audit("cds.feedback.overridden")
    assert accepted.resource == f"CDSCard/{card_uuid}" and accepted.role == "pharmacist"
    assert overridden.resource == f"CDSCard/{other_uuid}"
    assert overridden.detail["overrideReason"] == "already_monitored"
    assert overridden.detail["userComment"] == "INR checked daily"
    assert overridden.detail["service"] == "medbrain-order-sign"


def test_feedback_override_without_reason_is_refused(api: Cds) -> None:
    body = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden"}]}
    response = api.post("/cds-services/medbrain-order-sign/feedback", body)
    assert response.status_code == 422
    assert response.json()["field"] == "feedback[0].overrideReason"
    assert api.audit("cds.feedback") == []
    bad = {"feedback": [{"card": "x", "outcome": "ignored"}]}
    assert api.post("/cds-services/medbrain-order-sign/feedback", bad).json()["field"] == (
        "feedback[0].outcome"
    )
    assert api.post("/cds-services/nope/feedback", body).status_code == 404


# --------------------------------------------------------------------------- errors and auth


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("context"), "context"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b["context"].pop("draftOrders"), "context.draftOrders"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b.__setitem__("hook", "patient-view"), "hook"),
        (lambda b: b["context"].__setitem__("draftOrders", []), "context.draftOrders"),
        (
            lambda b: b["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][
                0
            ].pop("doseAndRate"),
            "context.draftOrders.entry[0].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value",
        ),
        (lambda b: b["prefetch"]["patient"].__setitem__("id", "other"), "prefetch.patient.id"),
    ],
)
def test_invalid_request_names_the_field(api: Cds, mutate: Any, field: str) -> None:
    body = order_sign(json_copy(WARFARIN))
    body["prefetch"]["patient"] = dict(PATIENT)
    mutate(body)
    response = api.post("/cds-services/medbrain-order-sign", body)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert field in response.json()["detail"]


def json_copy(value: dict[str, Any]) -> dict[str, Any]:
    import json

    copied: dict[str, Any] = json.loads(json.dumps(value))
    return copied


def test_unauthenticated_and_wrong_role(api: Cds) -> None:
    for path in ("/cds-services/medbrain-order-sign", "/cds-services/medbrain-patient-view"):
        response = api.client.post(path, json=order_sign(WARFARIN))
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
    assert api.client.get("/cds-services").status_code == 401
    assert api.client.post("/cds-services/medbrain-order-sign/feedback", json={}).status_code == 401
    response = api.post("/cds-services/medbrain-order-sign", order_sign(WARFARIN), role="nurse")
    assert response.status_code == 403


# --------------------------------------------------------------------------- pure mapping


def test_summary_is_cut_on_a_boundary() -> None:
    english = "word " * 60
    cut = cds.truncate(english)
    assert len(cut) < 140 and cut.endswith("word…")
    chinese = "华法林与布洛芬合用出血风险显著增加" * 20
    cut = cds.truncate(chinese)
    assert len(cut) == 139 and cut.endswith("…")
    assert cds.truncate("short") == "short"


def test_dose_finding_with_suggested_dose_becomes_an_update() -> None:
    finding = Finding(
        rule_id="rx.dose.single-max",
        category="dose",
        severity=Severity.WARNING,
        message="ibuprofen 1200 mg exceeds the single-dose maximum 800 mg",
        evidence=(Evidence(source="label"),),
        extra={"items": [0], "suggested_dose": {"value": 800, "unit": "mg"}},
    )
    options = cds.CardOptions(lang="en", draft_orders={0: IBUPROFEN})
    card = cds.finding_to_card(finding, options)
    [action] = card["suggestions"][0]["actions"]
    assert action["type"] == "update"
    assert (
        action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 800
    )
    assert IBUPROFEN["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 400
    assert "links" not in card
    info = Finding(rule_id="x", category="renal", severity=Severity.INFO, message="m")
    plain = cds.finding_to_card(info, options)
    assert plain["indicator"] == "info" and "suggestions" not in plain
    assert plain["source"]["label"] == "MedBrain"
