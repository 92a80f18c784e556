"""Open the instance database the way every adapter needs it.

One place creates the engine, migrates on first use (DESIGN.md §3) and arms signed audit
checkpoints with the instance key, so the web app, ``medbrain import``, ``demo seed`` and
``audit`` commands cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit.chain import configure_checkpoints
from medbrain.audit.keys import load_or_create_signer
from medbrain.core.config import Settings
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory


@dataclass(frozen=True, slots=True)
class Instance:
    engine: Engine
    session_factory: sessionmaker[Session]

    def dispose(self) -> None:
        self.engine.dispose()


def open_instance(settings: Settings, *, sign_checkpoints: bool = True) -> Instance:
    """Engine on the migrated database plus a session factory whose audit appends sign
    checkpoints every ``settings.audit_checkpoint_every`` entries."""
    engine = make_engine(settings.database_url)
    if not migrate.is_current(engine):
        migrate.upgrade(engine)
    factory = make_session_factory(engine)
    if sign_checkpoints:
        configure_checkpoints(
            factory, load_or_create_signer(settings.keys_dir), settings.audit_checkpoint_every
        )
    return Instance(engine=engine, session_factory=factory)
