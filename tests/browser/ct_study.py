"""One synthetic chest CT ingested and analysed before a browser test's server starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.api.security import hash_password
from medbrain.core.config import Settings
from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import User
from medbrain.store.radiology import ingest_instances, process_pending
from medbrain.store.radiology_models import CtAnalysis


def analysed_study(
    home: Path,
    *,
    seed: int,
    n_nodules: int,
    diameter_range_mm: tuple[float, float],
    password: str,
    before_ingest: Callable[[Session], None] | None = None,
) -> tuple[str, str, list[dict[str, Any]]]:
    """A SQLite instance in ``home`` with the radiologist ``rad1`` and a 64×64×40 chest CT at
    5 mm ingested and analysed by the worker's code; ``before_ingest`` adds record data in the
    same transaction. Returns the database URL, the study UID and the stored nodules."""
    url = f"sqlite:///{home / 'medbrain.db'}"
    settings = Settings(home=home, database_url=url, series_settle_seconds=0)
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    scan = generate_chest_ct(
        seed,
        shape=(40, 64, 64),
        spacing_mm=(5.0, 5.0, 5.0),
        n_nodules=n_nodules,
        diameter_range_mm=diameter_range_mm,
    )
    paths = write_dicom_series(scan.series, home / "incoming", seed=seed)
    with factory() as session, session.begin():
        session.add(
            User(
                username="rad1",
                display_name="影像医师",
                role="radiologist",
                password_hash=hash_password(password),
            )
        )
        if before_ingest is not None:
            before_ingest(session)
        result = ingest_instances(session, settings, paths, source="test")
    process_pending(factory, settings)
    with factory() as session:
        nodules = list(session.scalars(select(CtAnalysis)).one().result["nodules"])
    engine.dispose()
    return url, result.study_uids[0], nodules
