"""The hospital's guideline choice and Brock from the stored patient, through the worker,
the API, the study page and the signed report (issue 4). SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pydicom
import pydicom.uid
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medbrain.api.app import create_app
from medbrain.api.security import issue_token
from medbrain.core.config import Settings
from medbrain.core.errors import KnowledgeError
from medbrain.imaging.brock import BrockPatient, brock_for_nodules
from medbrain.imaging.guidelines import age_on
from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from medbrain.store.models import AuditEntry, Condition, ImagingStudy, Observation, Patient, User
from medbrain.store.radiology import ingest_instances, process_pending
from medbrain.store.radiology_models import CtAnalysis
from medbrain.store.radiology_risk import CtConfig, ct_config, study_date
from tests.integration.radiology._ingest_support import SHAPE, SPACING, write_series
from tests.support.world import password_hash_of

SEED = 21
MRN = f"SYN{SEED:06d}"  # the synthetic series' PatientID
API = "/api/v1/radiology/studies"


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct") / "s", seed=SEED)


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Iterator[tuple[Any, Settings]]:
    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        radiology_worker=False,
        series_settle_seconds=0,
    )
    yield create_app(settings), settings


def _token(factory: Any, role: str) -> str:
    with factory() as session, session.begin():
        user = User(
            username=f"u_{role}",
            display_name=role,
            role=role,
            password_hash=password_hash_of(role),
        )
        session.add(user)
        session.flush()
        return issue_token(session, user, "api", timedelta(hours=1), datetime.now(UTC)).token


def test_configured_guideline_and_brock_from_the_record(
    app_settings: tuple[Any, Settings], series_files: list[Path]
) -> None:
    app, settings = app_settings
    factory = app.state.session_factory
    (settings.home / "imaging").mkdir(parents=True, exist_ok=True)
    (settings.home / "imaging" / "overrides.yaml").write_text(
        "guideline: china2021\nrisk: low\n", encoding="utf-8"
    )
    birth = date(1958, 3, 1)
    with factory() as session, session.begin():
        patient = Patient(mrn=MRN, name="张三", sex="female", birth_date=birth)
        session.add(patient)
        session.flush()
        session.add(Condition(patient_id=patient.id, icd10_code="Z80.1", text="父亲肺癌"))
        session.add(
            Observation(
                patient_id=patient.id,
                category="imaging",
                code="medbrain-brock-emphysema",
                display="肺气肿",
                value_text="无",
                effective_at=datetime(2024, 1, 1, tzinfo=UTC),
            )
        )
    with factory() as session, session.begin():
        ingest = ingest_instances(session, settings, list(series_files), source="test")
    assert not ingest.failed
    assert process_pending(factory, settings) == ingest.job_ids  # the worker's path

    with factory() as session:
        analysis = session.scalars(select(CtAnalysis)).one()
        result = dict(analysis.result)
        study = session.scalars(select(ImagingStudy)).one()
        on = study_date(study, settings)
        ready = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "radiology.job.ready")
        ).one()
    assert result["guideline"] == "china2021" and result["guideline_source"] == "overrides"
    assert result["china"]["screening"]["rule_id"].startswith("china2021.")
    assert result["fleischner"]["risk"] == "low" and result["china"]["incidental"]["risk"] == "low"
    assert ready.detail["guideline"] == "china2021"
    nodules = result["nodules"]
    assert nodules, "the synthetic series has two 10-16 mm nodules"
    brock = result["brock"]
    age = age_on(birth, on)
    assert age is not None and brock["computable"] is True
    assert brock["patient"] == {
        "age_years": float(age),
        "sex": "female",
        "family_history_lung_cancer": True,
        "emphysema": False,
    }
    assert brock["evidence"]["family_history"].startswith("Condition/")
    assert brock["evidence"]["emphysema"].startswith("Observation/")
    expected = brock_for_nodules(nodules, BrockPatient(float(age), True, True, False))
    assert brock["nodules"] == expected["nodules"]
    impression = result["report"]["impression"]
    assert impression.startswith("印象(中国肺癌筛查与早诊早治指南2021")
    assert f"Brock(PanCan)恶性概率({age}岁,女,肺癌家族史:有,肺气肿:无)" in impression

    radiologist = {"Authorization": f"Bearer {_token(factory, 'radiologist')}"}
    url = f"{API}/{study.study_uid}"
    with TestClient(app) as client:
        viewer = client.get(f"{url}/viewer?lang=en", headers=radiologist).json()
        risk = viewer["review"]["risk"]
        assert risk["guideline"] == "china2021" and risk["guideline_source"] == "overrides"
        assert [r["key"] for r in risk["brock"]["nodules"]] == [f"e{n['id']}" for n in nodules]
        assert "age " in risk["brock_inputs"] and "emphysema: no" in risk["brock_inputs"]
        page = client.get(f"/radiology/studies/{study.study_uid}?lang=en", headers=radiologist)
        assert page.status_code == 200
        assert 'id="ct-risk"' in page.text and 'data-guideline="china2021"' in page.text
        assert (
            'data-computable="1"' in page.text and "family history of lung cancer: yes" in page.text
        )

        # reject one nodule and redraft in English: Brock follows the kept nodules
        first = f"e{nodules[0]['id']}"
        r = client.post(
            f"{url}/review/nodules/{first}", json={"decision": "rejected"}, headers=radiologist
        )
        assert r.status_code == 200, r.text
        kept_keys = [r["key"] for r in r.json()["review"]["risk"]["brock"]["nodules"]]
        assert first not in kept_keys and len(kept_keys) == len(nodules) - 1
        r = client.post(f"{url}/review/redraft", json={"language": "en"}, headers=radiologist)
        assert r.status_code == 200, r.text
        signed = client.post(f"{url}/review/sign", headers=radiologist).json()["review"]
        pdf = client.get(f"{url}/report.pdf?version=1", headers=radiologist)
        assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    text = signed["impression"]
    assert text.startswith("Impression (China lung cancer screening guideline 2021")
    if kept_keys:
        assert f"(age {age}, female, family history of lung cancer: yes, emphysema: no)" in text
    assert signed["lung_rads"]["guideline"] == "china2021"
    assert signed["lung_rads"]["brock"]["computable"] is True
    assert [r["key"] for r in signed["lung_rads"]["brock"]["nodules"]] == kept_keys


def test_unrecorded_inputs_are_named_not_guessed(tmp_path: Path, series_files: list[Path]) -> None:
    """SQLite only: a patient created from the DICOM header (no birth date, no sex) and no
    record of family history or emphysema; the environment's guideline applies."""
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        radiology_worker=False,
        series_settle_seconds=0,
        ct_guideline="fleischner",
    )
    app = create_app(settings)
    factory = app.state.session_factory
    with factory() as session, session.begin():
        assert not ingest_instances(session, settings, list(series_files), source="test").failed
    process_pending(factory, settings)
    with factory() as session:
        result = session.scalars(select(CtAnalysis)).one().result
    assert result["guideline"] == "fleischner" and result["guideline_source"] == "environment"
    assert "china" not in result
    brock = result["brock"]
    assert brock["computable"] is False and brock["nodules"] == []
    assert brock["missing"] == ["age", "sex", "family_history", "emphysema"]
    lines = result["report"]["impression"].split("\n")
    assert lines[0].startswith("如为偶发结节(非筛查),Fleischner 2017")
    assert (
        lines[-2]
        == "Brock(PanCan)恶性概率未计算:病历中缺少年龄(出生日期或检查日期)、性别、肺癌家族史、肺气肿。"
    )

    # the record is completed (EMR update + the radiologist's yes/no): Brock becomes computable
    with factory() as session, session.begin():
        study = session.scalars(select(ImagingStudy)).one()
        patient = session.get(Patient, study.patient_id)
        assert patient is not None
        patient.sex, patient.birth_date = "male", date(1950, 7, 1)
        uid = study.study_uid
    radiologist = {"Authorization": f"Bearer {_token(factory, 'radiologist')}"}
    url = f"{API}/{uid}"
    with TestClient(app) as client:
        before = client.get(f"{url}/viewer", headers=radiologist).json()["review"]["risk"]
        assert before["brock"]["missing"] == ["family_history", "emphysema"]  # live record
        empty = client.post(f"{url}/review/brock-inputs", json={}, headers=radiologist)
        assert empty.status_code == 422
        r = client.post(
            f"{url}/review/brock-inputs",
            json={"family_history": False, "emphysema": True},
            headers=radiologist,
        )
        assert r.status_code == 200, r.text
        brock = r.json()["review"]["risk"]["brock"]
        assert brock["computable"] is True and brock["missing"] == []
        assert brock["patient"]["family_history_lung_cancer"] is False
        assert brock["patient"]["emphysema"] is True
        assert brock["evidence"]["emphysema"].startswith("Observation/")
        form = client.post(
            f"/radiology/studies/{uid}/brock-inputs",
            data={"family_history": "yes", "emphysema": ""},
            headers=radiologist,
            follow_redirects=False,
        )
        assert form.status_code == 303
        page = client.get(f"/radiology/studies/{uid}?lang=en", headers=radiologist)
        assert "family history of lung cancer: yes, emphysema: yes" in page.text
        assert 'id="ct-brock-form"' in page.text
        bad = client.post(
            f"/radiology/studies/{uid}/brock-inputs",
            data={"family_history": "maybe"},
            headers=radiologist,
        )
        assert bad.status_code == 422
    with factory() as session:
        audits = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "radiology.brock.inputs")
        ).all()
        assert [a.detail.get("family_history") for a in audits] == [False, True]
        assert len(session.scalars(select(CtAnalysis)).all()) == 1  # the analysis is kept

    # a wrong value in the hospital's file is an error naming the file, not a silent default
    (settings.home / "imaging").mkdir(parents=True, exist_ok=True)
    (settings.home / "imaging" / "overrides.yaml").write_text("guideline: nccn\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"imaging/overrides.yaml: guideline must be one of"):
        ct_config(settings)
    hospital_file = settings.home / "imaging" / "overrides.yaml"
    before = hospital_file.stat().st_mtime_ns
    hospital_file.write_text("guideline: lungrads\n", encoding="utf-8")
    os.utime(hospital_file, ns=(before + 10**9, before + 10**9))  # coarse clocks: a new mtime
    assert ct_config(settings) == CtConfig("lungrads", "high", "overrides")  # re-read, no restart


def _prior_then_current(
    tmp_path: Path, series_files: list[Path], guideline: str
) -> tuple[Any, Any, dict[str, Any], str]:
    """SQLite only: a prior study of the same patient a year earlier (same anatomy, its stored
    nodules made 3 mm smaller), then the current one, both processed by the worker under
    ``guideline``; returns the app, its session factory, the current result and study UID."""
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        radiology_worker=False,
        series_settle_seconds=0,
        ct_guideline=guideline,
    )
    app = create_app(settings)
    factory = app.state.session_factory
    scan = generate_chest_ct(
        SEED, shape=SHAPE, spacing_mm=SPACING, n_nodules=2, diameter_range_mm=(10.0, 16.0)
    )  # the anatomy of ``series_files``, other UIDs
    prior_items = []
    for path in write_dicom_series(
        scan.series,
        tmp_path / "prior",
        seed=SEED + 1000,
        series_uid=pydicom.uid.generate_uid(entropy_srcs=["prior-series"]),
    ):
        ds = pydicom.dcmread(path)
        ds.PatientID = MRN
        ds.StudyDate = "20250101"
        prior_items.append(ds)
    current_items = []
    for path in series_files:
        ds = pydicom.dcmread(path)
        ds.StudyDate = "20260101"
        current_items.append(ds)
    with factory() as session, session.begin():
        assert not ingest_instances(session, settings, prior_items, source="test").failed
    process_pending(factory, settings)
    with factory() as session, session.begin():
        prior = session.scalars(select(CtAnalysis)).one()
        assert "followup" not in prior.result  # nothing before it
        if guideline == "china2021":
            assert prior.result["china"]["compared_with_prior"] is False
        smaller = [
            {**n, "mean_diameter_mm": round(n["mean_diameter_mm"] - 3.0, 1)}
            for n in prior.result["nodules"]
        ]
        assert smaller
        prior.result = {**prior.result, "nodules": smaller}
    with factory() as session, session.begin():
        assert not ingest_instances(session, settings, current_items, source="test").failed
    process_pending(factory, settings)
    with factory() as session:
        rows = session.scalars(select(CtAnalysis).order_by(CtAnalysis.id)).all()
        study = session.get(ImagingStudy, rows[-1].study_id)
        assert study is not None
        return app, factory, rows[-1].result, study.study_uid


def test_growth_since_the_prior_study_feeds_lung_rads_in_the_worker_and_the_review(
    tmp_path: Path, series_files: list[Path]
) -> None:
    """Under the default Lung-RADS rule set the worker compares with the stored prior as
    ``ct detect --prior`` does: grown solid nodules >= 8 mm are 4B (v2022 interval rows), the
    baseline category is kept beside it, and the review keeps growth when it regrades."""
    app, factory, current, uid = _prior_then_current(tmp_path, series_files, "lungrads")
    followup = current["followup"]
    assert followup["interval_days"] == 365
    assert followup["prior"]["source"] == "store" and followup["prior"]["study_date"]
    assert followup["counts"]["grown"] >= 1
    lr = current["lung_rads"]
    assert lr["category"] == "4B"
    assert lr["baseline_category"] in {"4A", "4B"}
    assert "前片" in current["report"]["findings"] or "2025" in current["report"]["findings"]
    radiologist = {"Authorization": f"Bearer {_token(factory, 'radiologist')}"}
    with TestClient(app) as client:
        review = client.get(f"{API}/{uid}/viewer", headers=radiologist).json()["review"]
        assert review["lung_rads"]["category"] == "4B"
        assert review["risk"]["lung_rads"] == "4B"
        redrafted = client.post(f"{API}/{uid}/review/redraft", headers=radiologist)
        assert redrafted.status_code == 200, redrafted.text
        review = redrafted.json()["review"]
    assert review["lung_rads"]["category"] == "4B"
    assert review["lung_rads"]["baseline_category"] == lr["baseline_category"]


def test_growth_since_the_prior_study_feeds_the_chinese_category(
    tmp_path: Path, series_files: list[Path]
) -> None:
    """The same comparison under china2021 feeds the Chinese category."""
    app, factory, current, uid = _prior_then_current(tmp_path, series_files, "china2021")
    china = current["china"]
    assert china["compared_with_prior"] is True
    assert china["screening"]["rule_id"] in {
        "china2021.followup.grown",
        "china2021.followup.solid_component_new_or_grown",
    }
    assert china["screening"]["level"] == "positive-high"
    assert china["screening"]["change"] in {"grown", "solid_grown"}
    assert current["report"]["impression"].startswith(
        "印象(中国肺癌筛查与早诊早治指南2021,与前片对比)"
    )
    radiologist = {"Authorization": f"Bearer {_token(factory, 'radiologist')}"}
    with TestClient(app) as client:  # the review recomputes it from the kept nodules
        risk = client.get(f"{API}/{uid}/viewer", headers=radiologist).json()["review"]["risk"]
    assert risk["china"]["screening"]["rule_id"] == china["screening"]["rule_id"]
