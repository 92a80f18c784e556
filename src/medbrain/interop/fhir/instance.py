"""FHIR import into the instance database, for the command line (``medbrain import``).

The bundle is validated before the database is even opened, so a malformed file leaves no
trace; the import and its audit entry then commit together or not at all.

References
----------
DESIGN.md §3 (``medbrain import BUNDLE --json``: exit 2 and nothing written on invalid
input; the database is created and migrated on first use).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.config import Settings
from medbrain.interop.fhir.importer import ImportResult, import_prepared, prepare_bundle

CLI_USER = "cli"
CLI_ROLE = "admin"


def open_store(settings: Settings) -> sessionmaker[Session]:
    """A session factory on the migrated instance database, with audit checkpoints set up."""
    from medbrain.audit.chain import configure_checkpoints
    from medbrain.audit.keys import load_or_create_signer
    from medbrain.store import migrate
    from medbrain.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    if not migrate.is_current(engine):
        migrate.upgrade(engine)
    factory = make_session_factory(engine)
    configure_checkpoints(
        factory, load_or_create_signer(settings.keys_dir), settings.audit_checkpoint_every
    )
    return factory


def import_into_instance(
    settings: Settings,
    document: Any,
    *,
    source: str,
    who: str = CLI_USER,
    role: str = CLI_ROLE,
) -> ImportResult:
    """Validate, import and audit one Bundle (action ``fhir.import``, counts in detail)."""
    from medbrain.audit import chain
    from medbrain.store.db import transaction

    prepared = prepare_bundle(document, source=source)
    factory = open_store(settings)
    try:
        with transaction(factory) as session:
            result = import_prepared(session, prepared)
            counts = result.to_dict()
            chain.append(
                session,
                who=who,
                role=role,
                action="fhir.import",
                resource=result.bundle,
                detail={k: counts[k] for k in ("imported", "updated", "unchanged", "skipped")},
            )
    finally:
        bind = factory.kw.get("bind")
        if bind is not None:
            bind.dispose()
    return result


def counts_table(result: ImportResult) -> str:
    """Counts per resource type as a small table for people (``medbrain import``)."""
    groups = ("imported", "updated", "unchanged", "skipped")
    data = {g: getattr(result, g) for g in groups}
    types = sorted({t for counts in data.values() for t in counts})
    width = max([len("resource"), *(len(t) for t in types)])
    lines = [result.bundle, f"{'resource':<{width}}  " + "  ".join(f"{g:>9}" for g in groups)]
    for resource_type in types:
        cells = "  ".join(f"{data[g].get(resource_type, 0):>9}" for g in groups)
        lines.append(f"{resource_type:<{width}}  {cells}")
    totals = "  ".join(f"{sum(data[g].values()):>9}" for g in groups)
    lines.append(f"{'total':<{width}}  {totals}")
    return "\n".join(lines)
