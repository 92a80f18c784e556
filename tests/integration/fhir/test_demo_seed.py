"""``seed_demo``: imports through the FHIR importer, accounts per role, engine findings, once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.alerts import load_alert_knowledge
from medbrain.api.security import verify_password
from medbrain.demo.seed import DEMO_ACCOUNTS, seed_demo
from medbrain.store import models as m

PATIENTS = 20  # the smallest demo world with a current hyperkalaemia patient
CLINICAL_ROLES = {"doctor", "nurse", "pharmacist", "qc_officer"}
RESOURCE_MODELS: dict[str, Any] = {
    "Patient": m.Patient,
    "Encounter": m.Encounter,
    "Observation": m.Observation,
    "MedicationRequest": m.MedicationRequest,
    "Condition": m.Condition,
    "DocumentReference": m.Document,
}


def _count(session: Session, model: object) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def _resolve(session: Session, reference: str) -> Any:
    kind, _, fhir_id = reference.partition("/")
    model = RESOURCE_MODELS[kind]
    return session.scalar(select(model).where(model.fhir_id == fhir_id))


def test_seed_runs_once_with_accounts_and_engine_findings(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        first = seed_demo(session, patients=PATIENTS)
    assert first.seeded
    assert first.imported["Patient"] == PATIENTS
    assert set(first.users) == {a.username for a in DEMO_ACCOUNTS}
    with session_factory() as session:
        counts = {
            model.__tablename__: _count(session, model)
            for model in (m.Patient, m.Observation, m.Document, m.FindingRecord, m.User)
        }
        assert counts["patient"] == PATIENTS + 1  # and the rare-disease screen's record
        rows = list(session.scalars(select(m.FindingRecord)))
        assert len(rows) == first.findings == counts["finding"]
        stored = Counter(f"{r.engine}/{r.target_role}" for r in rows)
        assert {k: v for k, v in first.finding_counts.items() if not k.endswith("skipped")} == (
            dict(stored)
        )
        # Every clinical role's inbox holds genuine engine output, nothing hand-made.
        open_roles = {r.target_role for r in rows if r.status == "open"}
        assert open_roles >= CLINICAL_ROLES
        assert {r.engine for r in rows} == {"alerts", "rx", "qc", "rare"}
        assert not any(r.rule_id.startswith("demo.") for r in rows)
        assert all(r.extra.get("demo") is True and r.patient_id is not None for r in rows)
        assert {r.engine for r in rows if r.target_role == "pharmacist"} == {"rx"}
        assert {r.engine for r in rows if r.target_role == "qc_officer"} == {"qc"}
        assert all(r.rule_id.startswith("rx.") for r in rows if r.engine == "rx")
        assert all(r.rule_id.startswith("qc.") for r in rows if r.engine == "qc")

        # A seeded hyperkalaemia patient: the alerts engine's rule, citing the potassium result.
        knowledge = load_alert_knowledge(None)
        assert "electrolyte.hyperkalaemia" in str(knowledge.rules)
        hyper = [
            r
            for r in rows
            if r.engine == "alerts"
            and r.target_role == "doctor"
            and r.rule_id == "electrolyte.hyperkalaemia"
        ]
        assert hyper
        for row in hyper:
            assert row.subject is not None
            patient = _resolve(session, row.subject)
            assert isinstance(patient, m.Patient) and patient.id == row.patient_id
            cited = [e["resource"] for e in row.evidence if e.get("resource")]
            potassium = [_resolve(session, ref) for ref in cited if ref.startswith("Observation/")]
            assert potassium and all(o is not None for o in potassium)
            assert any(
                o.code == "2823-3" and o.patient_id == row.patient_id and o.value_num >= 5.0
                for o in potassium
            )
        # The rare-disease screen flags its demo record, and only it: none of the generated
        # ward patients (common diseases) raises a rule pack.
        rare = [r for r in rows if r.engine == "rare"]
        assert {r.rule_id for r in rare} >= {"rare.cardiac-amyloidosis"}
        flagged = {session.get(m.Patient, r.patient_id).mrn for r in rare}  # type: ignore[union-attr]
        assert flagged == {"DMR00001"}
        assert all(r.target_role == "doctor" and r.category == "rare_disease" for r in rare)

        # Bedside-relevant alerts also reach the nurse.
        nurse = [r for r in rows if r.target_role == "nurse"]
        assert nurse and all(r.engine == "alerts" for r in nurse)
        assert {(r.rule_id, r.patient_id) for r in nurse} <= {
            (r.rule_id, r.patient_id) for r in rows if r.target_role == "doctor"
        }

        # Findings cite real seeded resources of their own patient.
        for row in rows:
            assert row.subject is not None
            subject = _resolve(session, row.subject)
            assert subject is not None
            if row.engine in ("alerts", "rare"):
                assert row.subject.startswith("Patient/") and subject.id == row.patient_id
                for evidence in row.evidence:
                    if evidence.get("resource"):
                        target = _resolve(session, evidence["resource"])
                        assert target is not None and target.patient_id == row.patient_id
            else:
                assert isinstance(subject, m.Encounter)
                assert subject.id == row.encounter_id and subject.patient_id == row.patient_id
        for row in rows:
            if row.engine == "qc":
                encounter = session.get(m.Encounter, row.encounter_id)
                assert encounter is not None and encounter.kind == "inpatient"
                assert encounter.discharge_time is not None

        for account in DEMO_ACCOUNTS:
            user = session.scalar(select(m.User).where(m.User.username == account.username))
            assert user is not None and user.role == account.role
            assert verify_password(user.password_hash, account.password)
        patient_user = session.scalar(select(m.User).where(m.User.role == "patient"))
        assert patient_user is not None and patient_user.patient_id is not None
        assert (
            session.scalar(select(m.Patient.mrn).where(m.Patient.id == patient_user.patient_id))
            == "DM000001"
        )
        audit = session.scalar(select(m.AuditEntry).where(m.AuditEntry.action == "demo.seed"))
        assert audit is not None

    with session_factory() as session, session.begin():
        second = seed_demo(session, patients=PATIENTS)
    assert not second.seeded
    with session_factory() as session:
        assert {
            model.__tablename__: _count(session, model)
            for model in (m.Patient, m.Observation, m.Document, m.FindingRecord, m.User)
        } == counts


def test_demo_seed_command_is_idempotent(tmp_path: Path, sqlite_url: str) -> None:
    env = {**os.environ, "MEDBRAIN_HOME": str(tmp_path), "MEDBRAIN_DATABASE_URL": sqlite_url}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "medbrain.cli", "demo", "seed", "--patients", "3", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )

    first, second = run(), run()
    assert first.returncode == 0, first.stderr
    assert '"seeded": true' in first.stdout and '"seeded": false' in second.stdout
