"""Demo chest CTs: the prior study is signed, only the current one awaits review."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.config import Settings
from medbrain.demo.generator import demo_mrn
from medbrain.demo.radiology_seed import DEMO_CTS, _uid, seed_radiology_demo
from medbrain.store import migrate
from medbrain.store import radiology as store
from medbrain.store import radiology_review as review
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import Patient


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], str]]:
    """Seeding is backend-neutral (the review tests cover PostgreSQL): SQLite only."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    try:
        yield make_session_factory(engine), url
    finally:
        engine.dispose()


def test_demo_prior_study_is_signed_and_the_current_awaits_review(
    tmp_path: Path, sqlite_factory: tuple[sessionmaker[Session], str]
) -> None:
    session_factory, url = sqlite_factory
    settings = Settings(home=tmp_path / "home", database_url=url)
    with session_factory() as session, session.begin():  # only the patient with a prior
        session.add(
            Patient(
                mrn=demo_mrn(1),
                name="演示",
                name_pinyin="yan shi",
                sex="male",
                birth_date=date(1958, 6, 1),
            )
        )
    with session_factory() as session, session.begin():
        assert seed_radiology_demo(session, settings) == 2
    prior, current = (_uid(ct.uid_seed, "study") for ct in DEMO_CTS if ct.patient_index == 1)
    with session_factory() as session:
        rows = {r.study_uid: r for r in store.worklist(session)}
        assert set(rows) == {prior, current}
        assert (rows[prior].status, rows[current].status) == ("signed", "ready")
        assert next(iter(rows)) == current  # awaiting review comes first
        ctx = review.load_context(session, prior)
        report = review.latest_report(session, ctx.study.id)
        assert report is not None and report.status == "signed"
        assert report.signed_by == "radiologist" and report.signed_at is not None
        assert report.signed_at.year == ctx.study.started_at.year  # dated with the study
        assert rows[prior].lung_rads == report.lung_rads["category"]
        assert review.latest_report(session, rows[current].study_id) is None
        assert session.scalar(select(Patient.id).where(Patient.mrn == demo_mrn(2))) is None
        # the demo patient's record holds the Brock inputs: probabilities, inputs shown
        brock = review.load_context(session, current).analysis.result["brock"]  # type: ignore[union-attr]
        assert brock["computable"] is True and brock["nodules"]
        assert brock["patient"]["family_history_lung_cancer"] is True
        assert brock["patient"]["emphysema"] is False and brock["patient"]["sex"] == "male"
        assert report.lung_rads["brock"]["computable"] is True  # kept in the signed version
        assert "Brock(PanCan)恶性概率(" in report.impression
        # a year later one solid nodule grew: the follow-up and Lung-RADS growth show it
        result = review.load_context(session, current).analysis.result  # type: ignore[union-attr]
        statuses = [c["status"] for c in result["followup"]["changes"]]
        assert statuses.count("grown") == 1 and statuses.count("stable") == 2, statuses
        assert result["lung_rads"]["category"] == "4A"  # growing solid < 8 mm (v2022)
        assert result["lung_rads"]["baseline_category"] == "3"  # the same scan without a prior
        assert rows[current].lung_rads == "4A" and report.lung_rads["category"] == "2"
