"""Patient assistant reports + navigation, where-to-go with live load, and the pre-consultation
reaching the doctor's note editor as cited facts; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password, issue_token
from medbrain.core.config import Settings
from medbrain.store.institution_models import InstitutionLoad
from medbrain.store.models import (
    AuditEntry,
    DocumentVersion,
    ImagingStudy,
    Observation,
    Patient,
    User,
)
from medbrain.store.radiology_models import CtAnalysis
from medbrain.store.radiology_review_models import RadiologyReport
from medbrain.triage.where import institutions_with

ROLES = ("doctor", "patient", "admin", "nurse")
ALL_DAY = {"open": "00:00", "close": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]}
C001 = {"lat": 31.2000, "lon": 121.4700}


class World:
    def __init__(
        self,
        client: TestClient,
        factory: Any,
        tokens: dict[str, str],
        csrf: dict[str, str],
        patient_id: int,
    ) -> None:
        self.client, self.factory, self.tokens = client, factory, tokens
        self.csrf, self.patient_id = csrf, patient_id

    def api(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def login(self, role: str) -> None:
        self.client.cookies.set("medbrain_session", self.tokens[f"{role}_cookie"])

    def actions(self) -> list[tuple[str, str, dict[str, Any]]]:
        with self.factory() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            return [(r.action, r.resource, r.detail) for r in rows]


def _obs(
    pid: int,
    code: str,
    display: str,
    value: float,
    unit: str,
    low: float | None,
    high: float | None,
    days_ago: int = 1,
) -> Observation:
    return Observation(
        patient_id=pid,
        code=code,
        display=display,
        value_num=value,
        unit=unit,
        ref_low=low,
        ref_high=high,
        category="laboratory",
        effective_at=datetime.now(UTC) - timedelta(days=days_ago),
    )


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    app = create_app(Settings(home=tmp_path, database_url=database_url))
    codes = ("H001", "H002", "C001", "H003")
    app.state.institutions = institutions_with(
        {"institutions": [{"code": c, "hours": ALL_DAY} for c in codes]}
    )
    factory = app.state.session_factory
    tokens: dict[str, str] = {}
    csrf: dict[str, str] = {}
    now = datetime.now(UTC)
    with factory() as session, session.begin():
        patient = Patient(mrn="PH0001", name="测试患者", sex="female", birth_date=date(1980, 3, 1))
        other = Patient(mrn="PH0002", name="别人", sex="male", birth_date=date(1970, 1, 1))
        session.add_all([patient, other])
        session.flush()
        pid = patient.id
        session.add_all(
            [
                _obs(pid, "2823-3", "Potassium", 6.6, "mmol/L", 3.5, 5.3),
                _obs(pid, "2823-3", "Potassium", 4.0, "mmol/L", 3.5, 5.3, days_ago=30),  # older
                _obs(pid, "1742-6", "ALT", 48, "U/L", 7, 40),
                _obs(pid, "2951-2", "Sodium", 140, "mmol/L", 137, 147),
                _obs(other.id, "718-7", "Hemoglobin", 60, "g/L", 130, 175),
            ]
        )
        for role in ROLES:
            user = User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=hash_password("pw-for-tests"),
                patient_id=pid if role == "patient" else None,
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(session, user, "api", timedelta(hours=1), now).token
            cookie = issue_token(session, user, "cookie", timedelta(hours=1), now)
            tokens[f"{role}_cookie"] = cookie.token
            csrf[role] = cookie.session.csrf_token
    with TestClient(app) as client:
        yield World(client, factory, tokens, csrf, pid)


def test_own_lab_results_explained_and_navigation_answered(world: World) -> None:
    c = world.client
    world.login("patient")
    page = c.get("/portal/reports")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'id="report-explain"' in text and 'data-emergency="true"' in text
    assert "血钾" in text and "高于上限 25%" in text and "请立即联系医生/急诊" in text
    assert "丙氨酸氨基转移酶" in text and "高于上限 20%" in text  # 48 vs 40
    assert "血钠" not in text and "血红蛋白" not in text  # normal value; another patient's
    assert text.index("血钾") < text.index("丙氨酸")  # the emergency comes first
    assistant = c.get("/portal/assistant", params={"q": "抽血在几楼?"})
    assert assistant.status_code == 200
    assert "检验科(抽血)" in assistant.text and "2楼西侧" in assistant.text
    assert 'id="report-explain"' in assistant.text
    english = c.get("/portal/assistant", params={"q": "where is the pharmacy", "lang": "en"})
    assert "Outpatient pharmacy" in english.text or "门诊药房" in english.text
    world.login("doctor")
    assert c.get("/portal/reports").status_code == 403
    reads = [d for a, r, d in world.actions() if a == "assistant.reports"]
    assert reads == [{"explained": 2, "emergency": True, "imaging": 0}]


def test_live_load_update_is_admin_only_audited_and_changes_the_ranking(world: World) -> None:
    c = world.client
    first = c.post(
        "/api/v1/ed/where-to-go", json={**C001, "department": "07"}, headers=world.api("patient")
    )
    assert first.status_code == 200, first.text
    assert first.json()["recommendations"][0]["code"] == "C001"
    assert "暂无实时排队数据" in first.json()["recommendations"][0]["reason"]
    body = {"queue_length": 60, "free_beds": 0}
    assert (
        c.put(
            "/api/v1/ed/institutions/C001/load", json=body, headers=world.api("nurse")
        ).status_code
        == 403
    )
    assert (
        c.put(
            "/api/v1/ed/institutions/NOPE/load", json=body, headers=world.api("admin")
        ).status_code
        == 404
    )
    bad = c.put(
        "/api/v1/ed/institutions/C001/load", json={"queue_length": -1}, headers=world.api("admin")
    )
    assert bad.status_code == 422 and "queue_length" in bad.text
    ok = c.put("/api/v1/ed/institutions/C001/load", json=body, headers=world.api("admin"))
    assert ok.status_code == 200 and ok.json()["queue_length"] == 60
    again = c.put(
        "/api/v1/ed/institutions/H002/load",
        json={"queue_length": 2, "free_beds": 4},
        headers=world.api("admin"),
    )
    assert again.status_code == 200
    with world.factory() as session:
        rows = {r.code: r for r in session.scalars(select(InstitutionLoad))}
        assert rows["C001"].queue_length == 60 and rows["C001"].updated_by == "u_admin"
    audited = [(r, d) for a, r, d in world.actions() if a == "institution.load.update"]
    assert audited[0] == ("Institution/C001", {"queue_length": 60, "free_beds": 0})
    second = c.post(
        "/api/v1/ed/where-to-go", json={**C001, "department": "07"}, headers=world.api("patient")
    ).json()
    ranked = [r["code"] for r in second["recommendations"]]
    assert ranked[0] != "C001"
    # tearing chest pain: red flag → EDs only, the one with free beds first, never the clinic
    visit = {"age_years": 60, "sex": "male", "complaint": "突发撕裂样胸痛放射到背部"}
    red = c.post(
        "/api/v1/ed/where-to-go", json={**C001, "visit": visit}, headers=world.api("patient")
    ).json()
    assert red["emergency"] is True and red["department"] == "20"
    assert red["recommendations"][0]["code"] == "H002"
    assert "C001" not in [r["code"] for r in red["recommendations"]]
    for bad_body, field in (
        ({"lat": 95, "lon": 0, "department": "07"}, "lat"),
        ({**C001, "department": "99"}, "department"),
    ):
        refused = c.post("/api/v1/ed/where-to-go", json=bad_body, headers=world.api("patient"))
        assert refused.status_code == 422 and field in refused.text


def test_preconsultation_recommends_places_and_becomes_cited_note_facts(world: World) -> None:
    c = world.client
    world.login("patient")
    sent = c.post(
        "/portal/preconsult",
        data={
            "csrf_token": world.csrf["patient"],
            "complaint": "咳嗽3天,有痰",
            "onset": "d1_7",
            "history.allergies": "青霉素过敏",
            "lat": "31.2",
            "lon": "121.47",
        },
    )
    assert sent.status_code == 200, sent.text
    assert 'id="where-to-go"' in sent.text and "推荐就诊机构" in sent.text
    assert 'data-emergency="false"' in sent.text and "理由" in sent.text
    bad = c.post(
        "/portal/preconsult",
        data={"csrf_token": world.csrf["patient"], "complaint": "咳嗽", "lat": "abc", "lon": "1"},
    )
    assert bad.status_code == 422 and "lat" in bad.text
    world.login("doctor")
    editor = c.get(f"/patients/{world.patient_id}/notes/new", params={"type": "admission"})
    assert editor.status_code == 200
    assert 'data-ref="Preconsultation/' in editor.text and "青霉素过敏" in editor.text
    ref = editor.text.split('data-ref="Preconsultation/')[1].split('"')[0]
    signed = c.post(
        f"/patients/{world.patient_id}/notes",
        data={
            "csrf_token": world.csrf["doctor"],
            "type": "admission",
            "text": "现病史:咳嗽3天。",
            "citations": f"Preconsultation/{ref}",
        },
        follow_redirects=False,
    )
    assert signed.status_code in (200, 303), signed.text
    with world.factory() as session:
        assert session.scalars(select(DocumentVersion)).first() is not None
    forged = c.post(
        f"/patients/{world.patient_id}/notes",
        data={
            "csrf_token": world.csrf["doctor"],
            "type": "admission",
            "text": "x",
            "citations": "Preconsultation/999999",
        },
    )
    assert forged.status_code == 422


def test_hospital_navigation_file_overrides_the_demo_directory(world: World) -> None:
    """A hospital edits ``MEDBRAIN_HOME/triage/navigation.yaml``; no code, no restart."""
    home = world.client.app.state.settings.home  # type: ignore[attr-defined]
    (home / "triage").mkdir()
    (home / "triage" / "navigation.yaml").write_text(
        "places:\n  - id: laboratory\n    floor: {zh: 6楼北侧, en: 6th floor, north side}\n",
        encoding="utf-8",
    )
    world.login("patient")
    answer = world.client.get("/portal/assistant", params={"q": "抽血在几楼?"})
    assert "6楼北侧" in answer.text and "2楼西侧" not in answer.text
    (home / "triage" / "navigation.yaml").write_text("places: [1, 2", encoding="utf-8")
    broken = world.client.get("/portal/assistant", params={"q": "抽血在几楼?"})
    assert broken.status_code == 500 and "navigation.yaml" in broken.text  # names the file


def test_only_signed_chest_ct_reports_are_explained_to_the_patient(world: World) -> None:
    with world.factory() as session, session.begin():
        studies = []
        for n, status in enumerate(("signed", "draft")):
            study = ImagingStudy(
                study_uid=f"1.2.826.0.1.3680043.10.{n}",
                patient_id=world.patient_id,
                modality="CT",
                started_at=datetime(2026, 3, 1 + n, tzinfo=UTC),
            )
            session.add(study)
            session.flush()
            analysis = CtAnalysis(
                study_id=study.id, series_uid=f"1.2.3.{n}", detector_version="test", result={}
            )
            session.add(analysis)
            session.flush()
            session.add(
                RadiologyReport(
                    study_id=study.id,
                    analysis_id=analysis.id,
                    version=1,
                    status=status,
                    lung_rads={"category": "4A" if status == "signed" else "4B"},
                    nodules=[
                        {"mean_diameter_mm": 9.2, "decision": "accepted"},
                        {"mean_diameter_mm": 21.0, "decision": "rejected"},  # not counted
                    ],
                    created_by="r",
                    updated_by="r",
                    signed_by="r" if status == "signed" else None,
                    signed_at=datetime(2026, 3, 2, tzinfo=UTC) if status == "signed" else None,
                )
            )
            studies.append(study.study_uid)
    world.login("patient")
    page = world.client.get("/portal/reports")
    assert page.status_code == 200
    assert 'id="imaging-explain"' in page.text
    assert (
        f'data-study="{studies[0]}"' in page.text and f'data-study="{studies[1]}"' not in page.text
    )
    assert 'data-category="4A"' in page.text and "3个月后复查低剂量CT" in page.text
    assert "1 个肺结节,最大约 9.2 毫米" in page.text  # the rejected 21 mm one is not counted
    assert "不是诊断" in page.text
    english = world.client.get("/portal/reports", params={"lang": "en"})
    assert "Low-dose CT in 3 months" in english.text
