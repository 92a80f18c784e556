"""Small synthetic chest CT series for the ingestion tests (64x64x40 at 5 mm: fast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from medbrain.api.security import hash_password, issue_token
from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from medbrain.store.models import User

SHAPE = (40, 64, 64)
SPACING = (5.0, 5.0, 5.0)


def write_series(directory: Path, seed: int, *, modality: str = "CT") -> list[Path]:
    scan = generate_chest_ct(
        seed, shape=SHAPE, spacing_mm=SPACING, n_nodules=2, diameter_range_mm=(10.0, 16.0)
    )
    return write_dicom_series(scan.series, directory, seed=seed, modality=modality)


def make_tokens(factory: sessionmaker[Session], roles: tuple[str, ...]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    with factory() as session, session.begin():
        for role in roles:
            user = User(
                username=f"u_{role}",
                display_name=role,
                role=role,
                password_hash=hash_password("pw-for-tests"),
            )
            session.add(user)
            session.flush()
            tokens[role] = issue_token(
                session, user, "api", timedelta(hours=1), datetime.now(UTC)
            ).token
    return tokens
