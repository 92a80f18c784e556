"""Audit polled page fragments without writing an entry on every poll.

A page that refreshes itself (the ED board every 30 s, the radiology worklist every 2 s while a
job runs) still shows patient data on each refresh, so the reads stay audited, but one entry per
poll buries the chain in identical lines. :func:`audit_poll` records a polled read when

* this user has not had an entry for this action and resource in this process within the window
  (:data:`POLL_AUDIT_WINDOW_SECONDS`, 10 minutes by default), or
* what the fragment shows changed: ``shown`` (e.g. the visit or patient ids on the board)
  differs from the set recorded last time, so a newly shown patient is always audited.

The full page load is audited by the page itself on every request, as before. The memory is per
process (a second worker writes its own first entry) and is lost on restart, which errs towards
more entries, never fewer. Any polling fragment can use it::

    audit_poll(request, user, "ed.board.read", "EdBoard", {"via": "page"}, shown=ids, force=True)
    audit_poll(request, user, "ed.board.read", "EdBoard", {"via": "poll"}, shown=ids)

The choice of window is MedBrain's (no text fixes one); ``detail`` carries ``poll_window_s`` so an
auditor reading the chain knows that polled reads inside the window were not written.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from medbrain.api.deps import Principal, ReadAuditor

#: How long a polled read by the same user of the same unchanged content is not re-audited.
POLL_AUDIT_WINDOW_SECONDS = 600.0


def shown_digest(shown: Iterable[object]) -> str:
    """An order-independent fingerprint of the records a fragment shows."""
    text = "\x1f".join(sorted({str(s) for s in shown}))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class PollAuditMemory:
    """When each (user, action, resource) was last audited, and what it showed then."""

    window_seconds: float = POLL_AUDIT_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _last: dict[tuple[str, str, str], tuple[float, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, who: str, action: str, resource: str, digest: str, force: bool = False) -> bool:
        """True (and remembered) when this read must be audited now (always when ``force``)."""
        now = self.clock()
        key = (who, action, resource)
        with self._lock:
            last = self._last.get(key)
            if (
                not force
                and last is not None
                and now - last[0] < self.window_seconds
                and last[1] == digest
            ):
                return False
            self._last[key] = (now, digest)
            if len(self._last) > 4096:  # forget stale keys; never grows with time
                cutoff = now - self.window_seconds
                for stale in [k for k, (at, _) in self._last.items() if at < cutoff]:
                    del self._last[stale]
            return True

    def forget(self, who: str, action: str, resource: str) -> None:
        """Undo :meth:`due` when the entry could not be written (the next poll retries)."""
        with self._lock:
            self._last.pop((who, action, resource), None)


def poll_memory(request: Request) -> PollAuditMemory:
    """The application's memory (created on first use)."""
    state = request.app.state
    memory = getattr(state, "poll_audit", None)
    if not isinstance(memory, PollAuditMemory):
        memory = PollAuditMemory()
        state.poll_audit = memory
    return memory


def audit_poll(
    request: Request,
    user: Principal,
    action: str,
    resource: str,
    detail: dict[str, Any],
    *,
    shown: Iterable[object] = (),
    force: bool = False,
) -> bool:
    """Audit a polled read unless the same user read the same content within the window.

    The full page passes ``force=True``: it is always audited and starts the window, so the
    polls that follow it write nothing until the window ends or the content changes. Returns
    True when an entry was written. The entry is written in its own short transaction
    (as :class:`~medbrain.api.deps.ReadAuditor`) before the fragment is returned; if writing
    fails the request fails, so no patient data leaves unaudited.
    """
    memory = poll_memory(request)
    digest = shown_digest(shown)
    if not memory.due(user.username, action, resource, digest, force):
        return False
    try:
        ReadAuditor(request.app.state.session_factory, user).record(
            action, resource, {**detail, "poll_window_s": int(memory.window_seconds)}
        )
    except BaseException:
        memory.forget(user.username, action, resource)
        raise
    return True
