"""Surgical prophylaxis from imported FHIR MedicationAdministration times, on SQLite and
PostgreSQL: import (idempotent, refusals), which doses count, timing and duration on the
stewardship report and page, export through Patient/$everything."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.app import create_app
from medbrain.api.security import hash_password, issue_token
from medbrain.core.config import Settings
from medbrain.core.errors import InputError
from medbrain.interop.fhir.exporter import patient_everything
from medbrain.interop.fhir.importer import import_bundle
from medbrain.rx import load_rx_knowledge
from medbrain.store import models as m
from medbrain.store.med_admin_models import MedicationAdministration
from medbrain.store.rx_stewardship import stewardship_report

INCISION = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
END = INCISION + timedelta(minutes=90)


def iso(value: datetime) -> str:
    return value.isoformat()


def _dose(
    n: str, at: datetime, drug: str = "注射用头孢唑林钠", status: str = "completed", **extra: Any
) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "MedicationAdministration",
            "id": f"ma-{n}",
            "status": status,
            "medicationCodeableConcept": {"text": drug},
            "subject": {"reference": "Patient/p1"},
            "context": {"reference": "Encounter/e1"},
            "effectivePeriod": {"start": iso(at), "end": iso(at + timedelta(minutes=30))},
            "request": {"reference": "MedicationRequest/mr1"},
            "dosage": {"route": {"text": "静脉滴注"}, "dose": {"value": 2, "unit": "g"}},
            **extra,
        }
    }


def _bundle(extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    subject = {"reference": "Patient/p1"}
    enc = {"reference": "Encounter/e1"}
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female",
                      "birthDate": "1980-02-03", "name": [{"text": "周某"}],
                      "identifier": [{"system": "urn:mrn", "value": "PX001"}]}},
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "IMP"},
                      "subject": subject,
                      "serviceType": {"text": "妇产科"},
                      "period": {"start": iso(INCISION - timedelta(days=1)),
                                 "end": iso(INCISION + timedelta(days=4))}}},
        {"resource": {"resourceType": "Condition", "id": "c1", "subject": subject,
                      "encounter": enc, "code": {"text": "子宫平滑肌瘤"}}},
        {"resource": {"resourceType": "MedicationRequest", "id": "mr1", "status": "active",
                      "intent": "order", "subject": subject, "encounter": enc,
                      "medicationCodeableConcept": {"text": "注射用头孢唑林钠"},
                      "authoredOn": iso(INCISION - timedelta(hours=12))}},
        {"resource": {"resourceType": "Procedure", "id": "pr1", "status": "completed",
                      "subject": subject, "encounter": enc,
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm",
                                           "code": "68.29"}], "text": "腹腔镜子宫肌瘤剔除术"},
                      "performedPeriod": {"start": iso(INCISION), "end": iso(END)}}},
        _dose("1", INCISION - timedelta(minutes=40)),
        _dose("2", END + timedelta(hours=8)),
        _dose("3", END + timedelta(hours=30)),
        _dose("4", END + timedelta(hours=60), status="not-done"),  # never given: ignored
        _dose("5", INCISION - timedelta(minutes=50), drug="0.9%氯化钠注射液"),  # not antimicrobial
    ]  # fmt: skip
    return {"resourceType": "Bundle", "type": "collection", "entry": entries + (extra or [])}


def test_imported_doses_time_the_prophylaxis_and_reimport_changes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        result = import_bundle(session, _bundle(), source="t")
    assert result.imported["MedicationAdministration"] == 5
    with session_factory() as session, session.begin():
        again = import_bundle(session, _bundle(), source="t")
    assert again.unchanged["MedicationAdministration"] == 5 and not again.imported
    with session_factory() as session:
        first = session.scalar(
            select(MedicationAdministration).where(MedicationAdministration.fhir_id == "ma-1")
        )
        assert first is not None and first.encounter_id is not None
        assert first.given_at == INCISION - timedelta(minutes=40)
        assert (first.request_fhir_id, first.route, first.dose_value) == ("mr1", "静脉滴注", 2.0)
        report = stewardship_report(
            session, load_rx_knowledge(None), date(2026, 5, 1), date(2026, 5, 31)
        )
        exported = patient_everything(session, first.patient_id)
    proph = report["prophylaxis"]
    assert (proph["operations"], proph["on_time"], proph["late"]) == (1, 1, 0)
    # last given dose ends 30.5 h after the operation (the 60-h one was not done)
    assert proph["duration"] == {
        "operations": 1, "over_limit": 1, "within_limit_pct": 0.0, "limit_hours": 24.0,
    }  # fmt: skip
    types = [e["resource"]["resourceType"] for e in exported["entry"]]
    assert types.count("MedicationAdministration") == 5


def test_infection_stays_and_bad_administrations(session_factory: sessionmaker[Session]) -> None:
    infected = _bundle()
    infected["entry"][2]["resource"]["code"] = {"text": "急性化脓性阑尾炎"}
    with session_factory() as session, session.begin():
        import_bundle(session, infected, source="t")
    with session_factory() as session:
        report = stewardship_report(
            session, load_rx_knowledge(None), date(2026, 5, 1), date(2026, 5, 31)
        )
    assert report["prophylaxis"]["operations"] == 0  # treatment, not prophylaxis

    backwards = _dose("9", INCISION)
    backwards["resource"]["effectivePeriod"]["end"] = iso(INCISION - timedelta(minutes=5))
    with session_factory() as session, session.begin():
        before = session.scalar(select(func.count()).select_from(MedicationAdministration))
        with pytest.raises(InputError, match=r"effectivePeriod\.end"):
            import_bundle(session, _bundle([backwards]), source="t")
    with session_factory() as session:
        after = session.scalar(select(func.count()).select_from(MedicationAdministration))
    assert after == before  # nothing written

    episode = _dose("10", INCISION, context={"reference": "EpisodeOfCare/x1"})
    with session_factory() as session, session.begin():
        import_bundle(session, _bundle([episode]), source="t")
        row = session.scalar(
            select(MedicationAdministration).where(MedicationAdministration.fhir_id == "ma-10")
        )
        assert row is not None and row.encounter_id is None
        assert session.scalar(select(m.Patient.id).where(m.Patient.fhir_id == "p1")) is not None


def test_stewardship_page_shows_prophylaxis_timing_and_duration(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}"))
    with app.state.session_factory() as session, session.begin():
        import_bundle(session, _bundle(), source="t")
        user = m.User(
            username="u_ph", display_name="药师", role="pharmacist",
            password_hash=hash_password("pw-for-tests"),
        )  # fmt: skip
        session.add(user)
        session.flush()
        cookie = issue_token(session, user, "cookie", timedelta(hours=1), datetime.now(UTC))
    with TestClient(app) as client:
        client.cookies.set("medbrain_session", cookie.token)
        page = client.get("/rx/stewardship", params={"start": "2026-05-01", "end": "2026-05-31"})
    assert page.status_code == 200, page.text
    assert 'id="rx-stew-prophylaxis"' in page.text
    assert 'data-prophylaxis="all" data-on-time="1" data-early="0" data-late="0" data-over="1"' in (
        page.text
    )
    assert 'data-prophylaxis-department="妇产科"' in page.text
    assert "30–60" in page.text or "30~60" in page.text  # the window, from the knowledge file
