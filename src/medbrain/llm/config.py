"""Configuration of the LLM gateway, built by adapters from :class:`~medbrain.core.config.Settings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit, urlunsplit

from medbrain.core.config import Settings
from medbrain.core.errors import InputError

StructuredOutput = Literal["json_schema", "json_object", "none"]
DeidMode = Literal["auto", "always", "off"]
_STRUCTURED = ("json_schema", "json_object", "none")
_DEID = ("auto", "always", "off")


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` → ``http://host:8000/v1``; a URL with a path is kept as given.

    vLLM, SGLang, Ollama and llama.cpp all serve the OpenAI API under ``/v1``; a proxy with
    another prefix (``/openai/v1``) is named in full by the hospital.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("environment", "MEDBRAIN_LLM_URL", f"must be an http(s) URL, got {url!r}")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Everything the gateway needs; every bound is explicit so no call can hang.

    ``timeout_seconds`` bounds one gateway call in total (queueing for the concurrency
    semaphore, all retries and backoff included), because the caller's question is "when do I
    get an answer or the fallback", not how long each socket read may take.
    """

    base_url: str
    model: str | None = None
    api_key: str | None = None
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 5.0
    max_retries: int = 2
    backoff_seconds: float = 0.5
    max_concurrency: int = 4
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    structured_output: StructuredOutput = "json_schema"
    deid: DeidMode = "auto"
    max_tokens: int = 1024
    temperature: float = 0.2
    probe_timeout_seconds: float = 3.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        if self.timeout_seconds <= 0:
            raise InputError("environment", "MEDBRAIN_LLM_TIMEOUT_SECONDS", "must be positive")
        if self.max_concurrency < 1:
            raise InputError("environment", "MEDBRAIN_LLM_MAX_CONCURRENCY", "must be at least 1")
        if self.max_retries < 0:
            raise InputError("environment", "MEDBRAIN_LLM_MAX_RETRIES", "must be 0 or more")
        if self.structured_output not in _STRUCTURED:
            raise InputError(
                "environment",
                "MEDBRAIN_LLM_STRUCTURED_OUTPUT",
                f"must be one of {', '.join(_STRUCTURED)}, got {self.structured_output!r}",
            )
        if self.deid not in _DEID:
            raise InputError(
                "environment",
                "MEDBRAIN_LLM_DEID",
                f"must be one of {', '.join(_DEID)}, got {self.deid!r}",
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig | None:
        """``None`` when no server is configured: callers then use templates and rules only."""
        if not settings.llm_url:
            return None
        return cls(
            base_url=settings.llm_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            max_concurrency=settings.llm_max_concurrency,
            structured_output=cast(StructuredOutput, settings.llm_structured_output),
            deid=cast(DeidMode, settings.llm_deid),
        )

    @property
    def server(self) -> str:
        """``host:port`` of the server, safe for logs and audit (no path, no credentials)."""
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"
