"""FHIR import into the instance database, for the command line (``medbrain import``).

The bundle is validated before the database is even opened, so a malformed file leaves no
trace; the import and its audit entry then commit together or not at all.

References
----------
DESIGN.md §3 (``medbrain import BUNDLE --json``: exit 2 and nothing written on invalid
input; the database is created and migrated on first use).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from medbrain.alerts import load_alert_knowledge
from medbrain.core.config import Settings
from medbrain.interop.fhir.importer import ImportResult, import_prepared, prepare_bundle
from medbrain.store import qc_workflow
from medbrain.store.alert_tracking import track_import_alerts

CLI_USER = "cli"
CLI_ROLE = "admin"


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
    from medbrain.store.instance import open_instance

    prepared = prepare_bundle(document, source=source)
    instance = open_instance(settings)
    try:
        with transaction(instance.session_factory) as session:
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
            _track_alerts(session, result, document, settings, who, role)
            _qc_recheck(settings, session, result, who, role)
    finally:
        instance.dispose()
    return result


def _qc_recheck(
    settings: Settings, session: Session, result: ImportResult, who: str, role: str
) -> None:
    """Re-check the stays whose documents changed; defects become QC notices (issue 7)."""
    if not result.document_encounter_ids:
        return
    qc_workflow.recheck_after_import(
        session,
        result.document_encounter_ids,
        knowledge=qc_workflow.effective_knowledge(
            session, qc_workflow.hospital_knowledge(settings.home)
        ),
        zone=qc_workflow.zone_of(settings.timezone),
        actor=qc_workflow.Actor(who, role),
        lang=settings.default_lang,
        review_threshold=settings.review_threshold,
    )


def _track_alerts(
    session: Session, result: ImportResult, document: Any, settings: Settings, who: str, role: str
) -> None:
    """New lab results raise tracked alerts (critical values) for their patients (issue 10)."""
    track_import_alerts(
        session,
        result.patient_ids,
        document,
        load_alert_knowledge(None),
        now=datetime.now(UTC),
        origin=f"fhir.import {result.bundle}",
        who=who,
        role=role,
        lang=settings.default_lang,
        review_threshold=settings.review_threshold,
    )


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
