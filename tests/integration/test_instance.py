"""The app, the CLI and the demo seed open the instance the same way: migrated and signing."""

from pathlib import Path

from sqlalchemy import func, select

from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.store.instance import open_instance
from medbrain.store.models import AuditCheckpoint


def test_open_instance_migrates_and_signs_checkpoints(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}", audit_checkpoint_every=3
    )
    instance = open_instance(settings)
    try:
        with instance.session_factory() as session, session.begin():
            for i in range(7):
                chain.append(session, who="u", role="admin", action="test", resource=f"X/{i}")
        with instance.session_factory() as session:
            checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint))
        assert checkpoints == 2  # after entries 3 and 6
        assert (tmp_path / "keys" / "audit_ed25519.pem").exists()
    finally:
        instance.dispose()
