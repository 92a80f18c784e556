"""What the gateway hands back: answers, fallbacks with reasons, and audit records.

Why a result object instead of exceptions for the fallback: the LLM never decides alone
(DESIGN.md §5). Every feature has a deterministic answer; the caller always gets a value and
is told whether the model produced it or the fallback did, and why, so the UI can show a
notice ("模型服务不可用,已使用模板生成") instead of a spinner or an error page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from medbrain.core.errors import BackendUnavailable

T = TypeVar("T")


class FallbackReason(StrEnum):
    """Why the deterministic fallback was used; values are stable (UI, audit, API)."""

    NOT_CONFIGURED = "not_configured"
    CIRCUIT_OPEN = "circuit_open"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    REJECTED = "rejected"
    EMPTY_OUTPUT = "empty_output"
    INVALID_OUTPUT = "invalid_output"


class LLMUnavailable(BackendUnavailable):
    """The model server gave no usable answer; ``reason`` says which way it failed.

    A :class:`BackendUnavailable`, so adapters that already translate it (CLI exit 2 with one
    line, API problem response) handle it without knowing the LLM.
    """

    def __init__(self, reason: FallbackReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"LLM {reason.value}: {detail}")


@dataclass(frozen=True, slots=True)
class LLMResult(Generic[T]):
    """A value and where it came from.

    ``source`` is ``"llm"`` when the model answered and the answer validated, ``"fallback"``
    otherwise; then ``reason`` and ``detail`` (operator text, never patient text) say why.
    ``generator`` matches the notes contract: ``"llm:<model>"`` or ``"template"``.
    """

    value: T
    source: Literal["llm", "fallback"]
    model: str | None = None
    reason: FallbackReason | None = None
    detail: str | None = None
    attempts: int = 0
    latency_ms: float = 0.0

    @property
    def used_llm(self) -> bool:
        return self.source == "llm"

    @property
    def generator(self) -> str:
        return f"llm:{self.model}" if self.used_llm and self.model else "template"

    def notice(self, lang: str = "zh") -> str | None:
        """The sentence the UI shows beside a fallback result (``None`` when the LLM answered
        or when no LLM is configured, which is the normal template mode, not an incident)."""
        if self.used_llm or self.reason in (None, FallbackReason.NOT_CONFIGURED):
            return None
        return fallback_notice(self.reason, lang)

    def meta(self) -> dict[str, Any]:
        """JSON-ready description without the value (for API responses)."""
        return {
            "source": self.source,
            "generator": self.generator,
            "model": self.model,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "attempts": self.attempts,
            "latency_ms": round(self.latency_ms, 1),
        }


def fallback_notice(reason: FallbackReason, lang: str = "zh") -> str:
    """Localised notice for a fallback (``messages.yaml`` keys ``llm.fallback.<reason>``)."""
    from medbrain.core.i18n import t

    return t(f"llm.fallback.{reason.value}", lang)


@dataclass(frozen=True, slots=True)
class LLMCallRecord:
    """What the audit chain keeps about one request to the model server.

    Deliberately no prompt or answer text: ``prompt_sha256`` identifies the instructions (the
    template files), ``request_sha256`` the exact bytes of the messages sent (de-identified
    when the server is remote), so a stored request can be matched to its audit entry without
    the audit log holding patient data.
    """

    prompt_name: str
    prompt_sha256: str
    request_sha256: str
    model: str
    server: str
    mode: Literal["text", "json", "stream"]
    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    deidentified: bool
    placeholders: int

    def to_detail(self) -> dict[str, Any]:
        """JSON-ready dict for ``audit.chain.append(..., detail=...)``."""
        data = asdict(self)
        data["latency_ms"] = round(self.latency_ms, 1)
        return data
