"""``seed_demo``: imports through the FHIR importer, accounts per role, findings per role, once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.security import ROLES, verify_password
from medbrain.demo.seed import DEMO_ACCOUNTS, seed_demo
from medbrain.store import models as m

PATIENTS = 7


def _count(session: Session, model: object) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def test_seed_runs_once_with_accounts_and_findings_for_every_role(
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
        assert counts["patient"] == PATIENTS
        roles = set(
            session.scalars(
                select(m.FindingRecord.target_role).where(m.FindingRecord.status == "open")
            )
        )
        assert roles == set(ROLES)
        assert all(r.startswith("demo.") for r in session.scalars(select(m.FindingRecord.rule_id)))
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
        own = session.scalar(
            select(m.FindingRecord).where(m.FindingRecord.target_role == "patient")
        )
        assert own is not None and own.patient_id == patient_user.patient_id
        cited = session.scalar(
            select(m.FindingRecord).where(m.FindingRecord.rule_id == "demo.alerts.potassium-high")
        )
        assert cited is not None and cited.subject is not None
        obs = session.scalar(
            select(m.Observation).where(m.Observation.fhir_id == cited.subject.split("/")[1])
        )
        assert obs is not None and f"{obs.value_num:g}" in cited.evidence[0]["quote"]
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
