"""C-STORE SCU: send derived instances (SR, SEG) to the hospital's PACS.

The PACS is named by the caller (AE title, host, port from ``MEDBRAIN_PACS_*``); this module
reads no configuration. Each instance gets its own status; one refused instance does not stop
the others, and an association that cannot be made is reported, not raised.

References
----------
PS3.4 B (Storage Service Class; status 0x0000 success, 0xB000/0xB007/0xB006 warnings);
PS3.7 9.1.1 C-STORE; pynetdicom ``AE.associate`` / ``send_c_store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

CALLING_AE = "MEDBRAIN"


@dataclass(frozen=True, slots=True)
class StoreResult:
    sop_instance_uid: str
    status: int | None
    """DIMSE status (0 = success), or ``None`` when no answer came back."""

    @property
    def ok(self) -> bool:
        return self.status is not None and (self.status == 0 or self.status >> 12 == 0xB)


@dataclass(frozen=True, slots=True)
class SendReport:
    ae_title: str
    host: str
    port: int
    associated: bool
    results: tuple[StoreResult, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.associated and all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, object]:
        return {
            "ae_title": self.ae_title,
            "host": self.host,
            "port": self.port,
            "ok": self.ok,
            "associated": self.associated,
            "error": self.error,
            "results": [
                {"sop_instance_uid": r.sop_instance_uid, "status": r.status, "ok": r.ok}
                for r in self.results
            ],
        }


def send_instances(
    datasets: Sequence[Dataset],
    ae_title: str,
    host: str,
    port: int,
    *,
    calling_ae: str = CALLING_AE,
    timeout_s: float = 10.0,
) -> SendReport:
    """C-STORE every dataset over one association; never raises for network trouble."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class)
    try:
        assoc = ae.associate(host, port, ae_title=ae_title)
    except (OSError, ValueError) as exc:
        return SendReport(ae_title, host, port, False, (), f"{type(exc).__name__}: {exc}")
    if not assoc.is_established:
        return SendReport(ae_title, host, port, False, (), "association rejected or aborted")
    results: list[StoreResult] = []
    try:
        for ds in datasets:
            try:
                answer = assoc.send_c_store(ds)
            except (RuntimeError, ValueError, OSError) as exc:
                results.append(StoreResult(str(ds.SOPInstanceUID), None))
                error = f"{type(exc).__name__}: {exc}"
                return SendReport(ae_title, host, port, True, tuple(results), error)
            status = int(answer.Status) if answer and "Status" in answer else None
            results.append(StoreResult(str(ds.SOPInstanceUID), status))
    finally:
        assoc.release()
    return SendReport(ae_title, host, port, True, tuple(results))
