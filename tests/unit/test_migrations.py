from sqlalchemy import inspect

from medbrain.store import migrate
from medbrain.store.db import make_engine


def test_upgrade_downgrade_upgrade_round_trips(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
        assert "audit_entry" in inspect(engine).get_table_names()
        migrate.downgrade(engine, "base")
        assert "audit_entry" not in inspect(engine).get_table_names()
        assert not migrate.is_current(engine)
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
    finally:
        engine.dispose()
