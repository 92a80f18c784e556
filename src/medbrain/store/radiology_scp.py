"""DICOM C-STORE SCP (``medbrain dicom listen``): a scanner or PACS pushes studies to MedBrain.

Accepted: Verification (C-ECHO) and the storage SOP classes of
:data:`medbrain.radiology.ingest_rules.STORAGE_SOP_CLASSES` in any transfer syntax pynetdicom
knows; other SOP classes are refused at association negotiation. Each instance is stored and
registered at once (:func:`medbrain.store.radiology.ingest_instances`, one short transaction);
a bad one is answered with its failure status (0xC000 cannot understand, 0xA900 does not match
its SOP class, 0xA700 out of resources) and the others are kept. When the association is
released, the series it carried are marked complete (detection starts without waiting for the
settle time) and one audit entry records what arrived; an aborted association leaves its series
to settle.

References
----------
DICOM PS3.4 Annex B (Storage Service Class, B.2.3 statuses), PS3.7 §9.1.1 (C-STORE), PS3.8
(association negotiation); pynetdicom 3 ``AE.start_server`` and ``evt.EVT_C_STORE``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit import chain
from medbrain.core.config import Settings
from medbrain.radiology.ingest_rules import STATUS_OUT_OF_RESOURCES, STORAGE_SOP_CLASSES
from medbrain.store import radiology as store
from medbrain.store.db import transaction

log = logging.getLogger("medbrain.radiology.scp")
VERIFICATION = "1.2.840.10008.1.1"


@dataclass(slots=True)
class _AssocStats:
    calling_ae: str
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    job_ids: set[int] = field(default_factory=set)
    study_uids: set[str] = field(default_factory=set)


class StoreSCP:
    """A running C-STORE SCP; :meth:`stop` shuts it down."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        ae_title: str = "MEDBRAIN",
        worker: store.RadiologyWorker | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.ae_title = ae_title
        self.worker = worker
        self._stats: dict[int, _AssocStats] = {}
        self._lock = threading.Lock()
        self._server: Any = None

    def _ae(self) -> Any:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES

        ae = AE(ae_title=self.ae_title)
        ae.add_supported_context(VERIFICATION)
        for uid in STORAGE_SOP_CLASSES:
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        ae.maximum_pdu_size = 0  # no limit: fewer fragments for 512x512 slices
        return ae

    def _stats_for(self, event: Any) -> _AssocStats:
        key = id(event.assoc)
        with self._lock:
            stats = self._stats.get(key)
            if stats is None:
                calling = str(event.assoc.requestor.ae_title).strip()
                stats = self._stats[key] = _AssocStats(calling_ae=calling[:16])
            return stats

    def handle_store(self, event: Any) -> int:
        stats = self._stats_for(event)
        try:
            data = event.encoded_dataset()
        except Exception as exc:  # a data set pynetdicom cannot even re-encode
            log.warning("C-STORE from %s: unreadable data set (%s)", stats.calling_ae, exc)
            stats.failed += 1
            return 0xC000
        result = None
        for attempt in range(2):  # a concurrent association may create the same study first
            try:
                with transaction(self.session_factory) as session:
                    result = store.ingest_instances(
                        session,
                        self.settings,
                        [data],
                        source=f"cstore:{stats.calling_ae}",
                        audit=False,
                    )
                break
            except IntegrityError:
                if attempt == 1:
                    log.exception("C-STORE from %s: conflicting registration", stats.calling_ae)
            except Exception:  # the database is down: the sender may retry later
                log.exception("C-STORE from %s: could not register", stats.calling_ae)
                break
        if result is None:
            stats.failed += 1
            return STATUS_OUT_OF_RESOURCES
        if result.failed:
            stats.failed += 1
            failure = result.failed[0]
            log.info("C-STORE from %s refused: %s", stats.calling_ae, failure.text("en"))
            return failure.status
        stats.stored += result.new_count
        stats.duplicates += result.duplicate_count
        stats.job_ids.update(result.job_ids)
        stats.study_uids.update(result.study_uids)
        return 0x0000

    def _close(self, event: Any, *, released: bool) -> None:
        with self._lock:
            stats = self._stats.pop(id(event.assoc), None)
        if stats is None:
            return
        try:
            with transaction(self.session_factory) as session:
                if released:
                    store.mark_complete(session, stats.job_ids)
                chain.append(
                    session,
                    who=f"ae:{stats.calling_ae}",
                    role="modality",
                    action="radiology.ingest",
                    resource="ImagingStudy/" + ",".join(sorted(stats.study_uids))[:200],
                    detail={
                        "source": "cstore",
                        "stored": stats.stored,
                        "duplicates": stats.duplicates,
                        "failed": stats.failed,
                        "released": released,
                    },
                )
        except Exception:
            log.exception("C-STORE association close: could not record")
        if self.worker is not None:
            self.worker.wake()

    def handle_released(self, event: Any) -> None:
        self._close(event, released=True)

    def handle_aborted(self, event: Any) -> None:
        self._close(event, released=False)

    def start(self, host: str, port: int, *, block: bool = False) -> Any:
        from pynetdicom import evt

        handlers = [
            (evt.EVT_C_STORE, self.handle_store),
            (evt.EVT_RELEASED, self.handle_released),
            (evt.EVT_ABORTED, self.handle_aborted),
        ]
        ae = self._ae()
        if block:
            return ae.start_server((host, port), block=True, evt_handlers=handlers)
        self._server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        return self._server

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server is not None else 0

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
