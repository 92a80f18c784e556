"""Workbench pages through TestClient on SQLite with the demo seed: triage, rx, QC, alerts,
note drafts and rare-disease ranking. Each page: right role sees the engine's output, wrong
role gets 403, invalid input shows the engine's message inline."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medbrain.api.app import create_app
from medbrain.core.config import Settings
from medbrain.demo.seed import DEMO_ACCOUNTS, seed_demo
from medbrain.store import models as m

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
HTMX = {"HX-Request": "true"}
PASSWORDS = {a.username: a.password for a in DEMO_ACCOUNTS}
DEMO_PATIENTS = 12


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    home: Path = tmp_path_factory.mktemp("workbench")
    built = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'medbrain.db'}"))
    with built.state.session_factory() as session, session.begin():
        seed_demo(session, patients=DEMO_PATIENTS)
    yield built
    built.state.engine.dispose()


def login(app: FastAPI, username: str) -> tuple[TestClient, str]:
    """A client logged in through the login form, and its session's CSRF token."""
    client = TestClient(app, follow_redirects=False)
    form = CSRF_FIELD.search(client.get("/login").text)
    assert form is not None
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": PASSWORDS[username],
            "csrf_token": form.group(1),
        },
    )
    assert response.status_code == 303, response.text
    token = CSRF_FIELD.search(client.get("/inbox").text)
    assert token is not None
    return client, token.group(1)


def audit_count(app: FastAPI, action: str) -> int:
    with app.state.session_factory() as session:
        statement = select(func.count()).select_from(m.AuditEntry)
        return int(session.scalar(statement.where(m.AuditEntry.action == action)) or 0)


def first_id(app: FastAPI, statement: object) -> int:
    with app.state.session_factory() as session:
        value = session.scalar(statement)  # type: ignore[call-overload]
        assert value is not None
        return int(value)


# -- triage ----------------------------------------------------------------------------------


def test_nurse_triages_chest_pain_example_to_level_two_with_chest_pain_pathway(
    app: FastAPI,
) -> None:
    client, csrf = login(app, "nurse")
    form = client.get("/triage", params={"example": "chest_pain"})
    assert form.status_code == 200
    assert "胸痛2小时,伴大汗" in form.text and 'data-example="stroke"' in form.text
    before = audit_count(app, "triage.assess")
    result = client.post(
        "/triage",
        data={
            "csrf_token": csrf,
            "complaint": "胸痛2小时,伴大汗",
            "age_years": "56",
            "sex": "male",
            "hr": "110",
            "sbp": "90",
            "rr": "24",
            "spo2": "93",
            "arrival": "walk-in",
            "onset_minutes": "120",
        },
    )
    assert result.status_code == 200
    level = re.search(r'id="triage-result" data-level="(\d)" data-zone="(\w+)"', result.text)
    assert level is not None and int(level.group(1)) <= 2 and level.group(2) == "red"
    assert "急诊医学科" in result.text and "chest_pain" in result.text
    assert "NEWS2" in result.text
    assert audit_count(app, "triage.assess") == before + 1


def test_triage_stroke_example_in_english_names_the_stroke_pathway(app: FastAPI) -> None:
    client, csrf = login(app, "doctor")
    fields = {
        "complaint": "突发左侧肢体无力、口角歪斜、言语不清1小时",
        "age_years": "67",
        "sbp": "178",
        "arrival": "ambulance",
        "onset_minutes": "60",
    }
    result = client.post("/triage?lang=en", data={"csrf_token": csrf, **fields})
    assert result.status_code == 200
    assert "stroke" in result.text and "Emergency medicine" in result.text


def test_impossible_vitals_show_the_engine_message_inline(app: FastAPI) -> None:
    client, csrf = login(app, "nurse")
    result = client.post("/triage", data={"csrf_token": csrf, "complaint": "头晕", "hr": "900"})
    assert result.status_code == 422
    assert 'role="alert"' in result.text and "vitals.hr" in result.text
    assert "physiologically impossible" in result.text
    assert "Traceback" not in result.text
    assert 'value="900"' in result.text  # the form keeps what was typed


def test_triage_without_csrf_token_is_refused(app: FastAPI) -> None:
    client, _ = login(app, "nurse")
    assert client.post("/triage", data={"complaint": "胸痛"}).status_code == 403


@pytest.mark.parametrize("role", ["pharmacist", "qc_officer", "patient"])
def test_triage_page_is_forbidden_to_other_roles(app: FastAPI, role: str) -> None:
    client, _ = login(app, role) if role != "patient" else (_patient_client(app), "")
    response = client.get("/triage")
    assert response.status_code == 403
    assert "您的角色无权执行此操作" in response.text


def _patient_client(app: FastAPI) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    form = CSRF_FIELD.search(client.get("/login").text)
    assert form is not None
    client.post(
        "/login",
        data={"username": "patient", "password": PASSWORDS["patient"], "csrf_token": form.group(1)},
    )
    return client


def test_anonymous_user_is_sent_to_login(app: FastAPI) -> None:
    response = TestClient(app, follow_redirects=False).get("/rx")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# -- prescriptions ---------------------------------------------------------------------------


def test_pharmacist_sees_stored_prescriptions_reviewed_most_severe_first(app: FastAPI) -> None:
    client, _ = login(app, "pharmacist")
    before = audit_count(app, "rx.worklist")
    page = client.get("/rx")
    assert page.status_code == 200
    verdicts = re.findall(
        r'class="card rx-encounter verdict-\w+" data-encounter-id="\d+" '
        r'data-verdict="(\w+)"',
        page.text,
    )
    assert verdicts, "the demo data has encounters with medication requests"
    rank = {"error": 3, "block": 2, "warn": 1, "pass": 0}
    assert [rank[v] for v in verdicts] == sorted((rank[v] for v in verdicts), reverse=True)
    assert re.search(r'href="/patients/\d+"', page.text)
    assert "阿莫西林胶囊" in page.text  # the free-form example is prefilled
    assert audit_count(app, "rx.worklist") == before + 1


def test_rx_worklist_for_one_patient(app: FastAPI) -> None:
    patient_id = first_id(app, select(m.MedicationRequest.patient_id).limit(1))
    client, _ = login(app, "doctor")
    page = client.get("/rx", params={"patient": patient_id})
    assert page.status_code == 200
    linked = set(re.findall(r'class="finding-patient" href="/patients/(\d+)"', page.text))
    assert linked == {str(patient_id)}


def test_free_form_prescription_review_shows_verdict_and_findings(app: FastAPI) -> None:
    client, csrf = login(app, "pharmacist")
    prescription = (
        '{"patient": {"age_years": 68, "sex": "male", "allergies": ["青霉素"]},'
        ' "items": [{"drug": "阿莫西林胶囊", "dose": 0.5, "unit": "g", "route": "po",'
        ' "frequency": "tid", "days": 5},'
        ' {"drug": "华法林钠片", "dose": 3, "unit": "mg", "route": "po", "frequency": "qd"},'
        ' {"drug": "布洛芬缓释胶囊", "dose": 0.3, "unit": "g", "route": "po",'
        ' "frequency": "bid"}]}'
    )
    result = client.post("/rx/review", data={"csrf_token": csrf, "prescription": prescription})
    assert result.status_code == 200
    assert 'id="rx-result"' in result.text and 'data-verdict="block"' in result.text
    assert "青霉素" in result.text and "华法林" in result.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "JSON"),
        ('{"items": [{"drug": "阿莫西林胶囊", "dose": -1, "unit": "g"}]}', "items[0]"),
    ],
)
def test_invalid_prescription_shows_the_problem_inline(
    app: FastAPI, text: str, expected: str
) -> None:
    client, csrf = login(app, "pharmacist")
    result = client.post("/rx/review", data={"csrf_token": csrf, "prescription": text})
    assert result.status_code == 422
    assert 'id="rx-error"' in result.text and expected in result.text
    assert "Traceback" not in result.text


def test_rx_page_is_forbidden_to_a_nurse(app: FastAPI) -> None:
    client, _ = login(app, "nurse")
    assert client.get("/rx").status_code == 403


# -- QC --------------------------------------------------------------------------------------


def test_qc_officer_sees_recent_inpatient_records_with_scores(app: FastAPI) -> None:
    client, _ = login(app, "qc_officer")
    page = client.get("/qc")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-encounter-id="(\d+)">', page.text)
    assert 0 < len(rows) <= 30
    assert re.search(r'class="score score-\w+">\d+(\.\d+)?<', page.text)


def test_qc_report_of_one_stay_quotes_its_defects(app: FastAPI) -> None:
    encounter_id = first_id(
        app, select(m.Encounter.id).where(m.Encounter.kind == "inpatient").limit(1)
    )
    client, _ = login(app, "qc_officer")
    before = audit_count(app, "qc.read")
    page = client.get(f"/qc/encounters/{encounter_id}")
    assert page.status_code == 200
    assert re.search(r'data-score="\d+(\.\d+)?"', page.text)
    assert "等级" in page.text and 'id="qc-defects"' in page.text and 'id="qc-review"' in page.text
    assert audit_count(app, "qc.read") == before + 1
    picked = client.get("/qc/go", params={"encounter": encounter_id})
    assert picked.status_code == 303
    assert picked.headers["location"] == f"/qc/encounters/{encounter_id}"


def test_qc_of_a_stay_without_documents_says_so(app: FastAPI) -> None:
    patient_id = first_id(app, select(m.Patient.id).limit(1))
    with app.state.session_factory() as session, session.begin():
        encounter = m.Encounter(patient_id=patient_id, kind="emergency", department="急诊科")
        session.add(encounter)
        session.flush()
        encounter_id = encounter.id
    client, _ = login(app, "qc_officer")
    page = client.get(f"/qc/encounters/{encounter_id}")
    assert page.status_code == 200
    assert 'role="alert"' in page.text and "没有可质控的病历文书" in page.text


def test_qc_of_an_unknown_encounter_is_404_page(app: FastAPI) -> None:
    client, _ = login(app, "qc_officer")
    page = client.get("/qc/encounters/999999")
    assert page.status_code == 404 and "<html" in page.text


def test_qc_is_forbidden_to_a_pharmacist(app: FastAPI) -> None:
    client, _ = login(app, "pharmacist")
    assert client.get("/qc").status_code == 403


# -- patient page: alerts and note drafts ----------------------------------------------------


def _patient_with_observations(app: FastAPI) -> int:
    return first_id(app, select(m.Observation.patient_id).order_by(m.Observation.id).limit(1))


def test_patient_page_loads_the_alerts_panel_and_note_buttons(app: FastAPI) -> None:
    patient_id = _patient_with_observations(app)
    client, _ = login(app, "doctor")
    page = client.get(f"/patients/{patient_id}")
    assert f'hx-get="/patients/{patient_id}/alerts-panel"' in page.text
    assert 'data-note-type="discharge"' in page.text
    nurse, _ = login(app, "nurse")
    nurse_page = nurse.get(f"/patients/{patient_id}").text
    assert "alerts-panel" in nurse_page and 'data-note-type="discharge"' not in nurse_page


def test_alerts_panel_shows_scores_from_the_patient_bundle(app: FastAPI) -> None:
    patient_id = _patient_with_observations(app)
    client, _ = login(app, "nurse")
    before = audit_count(app, "alerts.evaluate")
    panel = client.get(f"/patients/{patient_id}/alerts-panel", headers=HTMX)
    assert panel.status_code == 200
    assert "<html" not in panel.text and 'id="alerts-panel"' in panel.text
    assert "NEWS2" in panel.text
    assert audit_count(app, "alerts.evaluate") == before + 1
    full = client.get(f"/patients/{patient_id}/alerts-panel")
    assert "<html" in full.text


def test_alerts_panel_is_forbidden_to_a_pharmacist(app: FastAPI) -> None:
    client, _ = login(app, "pharmacist")
    patient_id = _patient_with_observations(app)
    assert client.get(f"/patients/{patient_id}/alerts-panel").status_code == 403


@pytest.mark.parametrize("note_type", ["admission", "progress", "discharge"])
def test_note_draft_cites_its_sources(app: FastAPI, note_type: str) -> None:
    patient_id = _patient_with_observations(app)
    client, _ = login(app, "doctor")
    draft = client.get(
        f"/patients/{patient_id}/note-draft", params={"type": note_type}, headers=HTMX
    )
    assert draft.status_code == 200
    assert f'data-note-type="{note_type}"' in draft.text
    assert re.search(r'class="cite mono">\[(Patient|Encounter|Observation)/', draft.text)


def test_unknown_note_type_is_shown_as_invalid_input(app: FastAPI) -> None:
    patient_id = _patient_with_observations(app)
    client, _ = login(app, "doctor")
    draft = client.get(f"/patients/{patient_id}/note-draft", params={"type": "poem"})
    assert draft.status_code == 422 and "must be one of" in draft.text


def test_note_draft_is_forbidden_to_a_nurse(app: FastAPI) -> None:
    client, _ = login(app, "nurse")
    patient_id = _patient_with_observations(app)
    assert client.get(f"/patients/{patient_id}/note-draft").status_code == 403


# -- rare diseases ---------------------------------------------------------------------------


def test_rare_ranking_from_chinese_text_lists_ten_candidates_with_workup(app: FastAPI) -> None:
    client, _ = login(app, "doctor")
    page = client.get("/rare", params={"example": "1"})
    assert page.status_code == 200
    assert page.text.count('class="candidate"') == 10
    assert "amyloidosis" in page.text and "HP:" in page.text
    assert "建议考虑" in page.text  # work-up


def test_rare_ranking_from_hpo_ids(app: FastAPI) -> None:
    client, _ = login(app, "admin")
    page = client.get("/rare", params={"hpo": "HP:0001635, HP:0001903", "lang": "en"})
    assert page.status_code == 200 and 'class="candidate"' in page.text
    # An OMIM disease and its Orphanet twin are listed once, under the OMIM id, the twin's
    # id beside it.
    assert 'data-disease-id="OMIM:301500"' in page.text  # Fabry disease
    assert 'data-disease-id="ORPHA:324"' not in page.text
    assert 'class="muted small equivalent-ids"' in page.text and "ORPHA:324" in page.text


def test_rare_suggests_features_to_look_for_and_each_answer_reranks(app: FastAPI) -> None:
    client, _ = login(app, "doctor")
    page = client.get("/rare", params={"hpo": "HP:0000957 HP:0000997", "lang": "en"})
    assert page.status_code == 200 and 'id="rare-suggested"' in page.text
    first = re.search(r'class="candidate" data-disease-id="([^"]+)"', page.text)
    assert first and first.group(1) == "OMIM:611431"  # Legius syndrome
    suggestion = re.search(
        r'class="suggestion" data-hpo="(HP:\d{7})".*?href="([^"]+)".*?href="([^"]+)"',
        page.text,
        re.S,
    )
    assert suggestion
    hpo, present_url, absent_url = (html.unescape(g) for g in suggestion.groups())
    present = client.get(present_url)
    assert present.status_code == 200
    assert f'value="HP:0000957 HP:0000997 {hpo}"' in present.text
    leader = re.search(r'class="candidate" data-disease-id="([^"]+)"', present.text)
    assert leader and leader.group(1) != "OMIM:611431"  # a feature Legius syndrome lacks
    absent = client.get(absent_url)
    assert (
        absent.status_code == 200
        and f'name="excluded" maxlength="2000" value="{hpo}"' in absent.text
    )
    again = re.search(r'class="candidate" data-disease-id="([^"]+)"', absent.text)
    assert again and again.group(1) == "OMIM:611431"


def test_the_doctors_inbox_shows_the_rare_disease_screen_of_the_demo_record(app: FastAPI) -> None:
    client, _ = login(app, "doctor")
    inbox = client.get("/inbox")
    assert inbox.status_code == 200
    card = re.search(
        r'<article class="card finding[^"]*"[^>]*>(?:(?!</article>).)*rare\.cardiac-amyloidosis'
        r"(?:(?!</article>).)*</article>",
        inbox.text,
        re.S,
    )
    assert card, "no cardiac amyloidosis card in the doctor's inbox"
    assert "考虑心脏淀粉样变" in card.group(0) and "DMR00001" in card.group(0)
    assert 'value="dismissed"' in card.group(0)  # decided like any finding


def test_rare_excluding_an_observed_feature_is_refused_inline(app: FastAPI) -> None:
    client, _ = login(app, "doctor")
    page = client.get(
        "/rare", params={"hpo": "HP:0000957 HP:0000997", "excluded": "HP:0000957", "lang": "en"}
    )
    assert page.status_code == 422 and 'role="alert"' in page.text
    assert "contradict" in page.text and "HP:0000957" in page.text
    unknown = client.get("/rare", params={"hpo": "HP:0000957", "excluded": "HP:9999999"})
    assert unknown.status_code == 422 and "HP:9999999" in unknown.text


def test_rare_bad_hpo_id_is_shown_inline(app: FastAPI) -> None:
    client, _ = login(app, "doctor")
    page = client.get("/rare", params={"hpo": "HP:12"})
    assert page.status_code == 422 and 'role="alert"' in page.text and "HP:12" in page.text


def test_rare_is_forbidden_to_a_nurse(app: FastAPI) -> None:
    client, _ = login(app, "nurse")
    assert client.get("/rare").status_code == 403


def test_navigation_shows_the_pages_of_each_role(app: FastAPI) -> None:
    nurse, _ = login(app, "nurse")
    nav = nurse.get("/inbox").text
    assert 'href="/triage"' in nav and 'href="/rx"' not in nav and 'href="/rare"' not in nav
    pharmacist, _ = login(app, "pharmacist")
    nav = pharmacist.get("/inbox").text
    assert 'href="/rx"' in nav and 'href="/triage"' not in nav
