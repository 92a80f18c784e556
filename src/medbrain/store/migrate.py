"""Run Alembic migrations programmatically (``medbrain db upgrade``, first use, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "medbrain.store:migrations")
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Upgrade to every head: each capability adds its own branch off the initial schema."""
    with engine.begin() as connection:
        cfg = _config(engine)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        cfg = _config(engine)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def is_current(engine: Engine) -> bool:
    """True when the schema is at every head (cheap check so ``make run`` restarts quickly)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    if "alembic_version" not in inspect(engine).get_table_names():
        return False
    heads = set(ScriptDirectory.from_config(_config(engine)).get_heads())
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads
