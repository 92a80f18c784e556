"""Async client for the hospital's OpenAI-compatible model server, with a deterministic fallback.

Why this exists rather than a vendor SDK: MedBrain talks to whatever the hospital runs (vLLM,
SGLang, Ollama, llama.cpp server), all of which speak ``POST /v1/chat/completions``; what we
need on top is clinical-grade plumbing the SDKs do not give together:

* every call is **bounded**: one deadline covers queueing, retries and backoff;
* **retries** with exponential backoff for connection errors, timeouts, 408/429/5xx only;
* a **concurrency semaphore**, so a ward's worth of drafts does not swamp the GPU server;
* a **circuit breaker**, so a dead server costs callers nothing after a few failures;
* **structured output**: the server's ``response_format: json_schema`` where it has one (a
  400 for it downgrades to prompt-only once and is remembered), pydantic validation always,
  one corrective retry, then the caller's **fallback** with a reason (:class:`LLMResult`);
* ``<think>`` reasoning **stripped** (also while streaming);
* **de-identification** when the server is not on this host, and re-identification of the
  answer (see :mod:`medbrain.llm.deid`);
* an **audit callback** ``on_call(record)`` per request, carrying hashes, model, latency and
  token counts, never text. The gateway holds no database session: the adapter wires the
  callback to ``medbrain.audit.chain.append``. Exceptions from the callback propagate
  (fail closed: an LLM call that cannot be audited is not silently kept).

A gateway (and its HTTP connection pool) belongs to one event loop; adapters create one per
application (API lifespan) or per command (CLI ``asyncio.run``).

References
----------
OpenAI Chat Completions API (``response_format``, streaming ``data:`` server-sent events,
``stream_options.include_usage``); vLLM and SGLang structured outputs (``json_schema``
compiled to a grammar by xgrammar/outlines); llama.cpp server README (``response_format``
with ``schema``, GBNF).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import ipaddress
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from medbrain.llm.breaker import BreakerState, CircuitBreaker
from medbrain.llm.config import LLMConfig
from medbrain.llm.deid import Deidentifier, KnownIdentifiers, StreamReidentifier
from medbrain.llm.prompt import ChatMessage, RenderedPrompt
from medbrain.llm.reasoning import ThinkStreamFilter, strip_think
from medbrain.llm.result import FallbackReason, LLMCallRecord, LLMResult, LLMUnavailable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
OnCall = Callable[[LLMCallRecord], Awaitable[None] | None]
Mode = Literal["text", "json", "stream"]

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_FAILURES_FOR_BREAKER = frozenset(
    {
        FallbackReason.UNREACHABLE,
        FallbackReason.TIMEOUT,
        FallbackReason.SERVER_ERROR,
        FallbackReason.REJECTED,
    }
)


async def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine's loopback (``localhost``, 127.0.0.0/8, ``::1``).

    Names are resolved, and *every* address must be loopback; a name that does not resolve
    counts as remote, so failure to decide errs on the side of de-identifying.
    """
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A plain-text answer: reasoning stripped, identifiers put back."""

    text: str
    model: str
    attempts: int
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class _Raw:
    text: str
    model: str
    attempts: int
    prompt_tokens: int | None
    completion_tokens: int | None


def _sha256_messages(messages: Sequence[ChatMessage]) -> str:
    data = json.dumps(list(messages), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _extract_json(text: str) -> Any:
    """Parse the JSON object in a model answer, tolerating code fences and stray prose."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        if stripped.lower().startswith("json"):
            stripped = stripped[4:]
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        start, end = stripped.find("{"), stripped.rfind("}")
        if start < 0 or end <= start:
            raise
        return json.loads(stripped[start : end + 1])


def _validation_summary(exc: ValidationError) -> str:
    """Where and how the answer failed, without echoing its values."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
        for err in exc.errors()[:5]
    ]
    return "; ".join(parts)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


class LLMGateway:
    """The one way MedBrain talks to a model server (see module docstring for why)."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        on_call: OnCall | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._on_call = on_call
        headers = {"Accept": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=max(config.max_concurrency, 1) + 2),
            trust_env=False,  # no HTTP(S)_PROXY: patient text must not detour via a proxy
        )
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_seconds, clock)
        self._model: str | None = config.model
        self._structured_supported = config.structured_output != "none"
        self._remote: bool | None = None

    async def __aenter__(self) -> LLMGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- configuration probes -------------------------------------------------------------

    async def is_remote(self) -> bool:
        """Whether the server is on another host (decides de-identification in ``auto`` mode)."""
        if self._remote is None:
            host = urlsplit(self.config.base_url).hostname or ""
            self._remote = not await is_loopback_host(host)
        return self._remote

    async def deidentifies(self) -> bool:
        if self.config.deid == "always":
            return True
        if self.config.deid == "off":
            return False
        return await self.is_remote()

    async def is_available(self) -> bool:
        """Cheap probe (``GET /models``) bounded by ``probe_timeout_seconds``; never raises."""
        if self.breaker.state is BreakerState.OPEN:
            return False
        try:
            async with asyncio.timeout(self.config.probe_timeout_seconds):
                response = await self._client.get("/models")
        except (httpx.HTTPError, TimeoutError):
            return False
        return response.status_code == 200

    async def model_name(self) -> str:
        """The configured model, or the first one the server lists (llama.cpp, single-model vLLM)."""
        if self._model is None:
            response = await self._client.get("/models")
            response.raise_for_status()
            data = response.json().get("data") or []
            self._model = str(data[0]["id"]) if data else "default"
        return self._model

    # -- request plumbing ------------------------------------------------------------------

    async def _emit(self, record: LLMCallRecord) -> None:
        if self._on_call is None:
            return
        outcome = self._on_call(record)
        if inspect.isawaitable(outcome):
            await outcome

    async def _prepare(
        self, prompt: RenderedPrompt, known: KnownIdentifiers | None
    ) -> tuple[list[ChatMessage], Deidentifier | None]:
        """Messages to send: user/assistant text de-identified when the server is remote.

        The system message is a template file (no patient text), so it is sent as is.
        """
        if not await self.deidentifies():
            return list(prompt.messages), None
        deid = Deidentifier(known or KnownIdentifiers())
        messages: list[ChatMessage] = []
        for message in prompt.messages:
            if message["role"] == "system":
                messages.append(message)
            else:
                messages.append(
                    {"role": message["role"], "content": deid.deidentify(message["content"])}
                )
        return messages, deid

    def _body(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None,
        temperature: float | None,
        response_format: dict[str, Any] | None,
        stream: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "max_tokens": max_tokens or self.config.max_tokens,
            "temperature": self.config.temperature if temperature is None else temperature,
        }
        if response_format is not None and self._structured_supported:
            body["response_format"] = response_format
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _record(
        self,
        prompt: RenderedPrompt,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        mode: Mode,
        attempt: int,
        outcome: str,
        status_code: int | None,
        started: float,
        usage: dict[str, Any] | None,
        deid: Deidentifier | None,
    ) -> LLMCallRecord:
        usage = usage or {}
        return LLMCallRecord(
            prompt_name=prompt.name,
            prompt_sha256=prompt.template_sha256,
            request_sha256=_sha256_messages(messages),
            model=model,
            server=self.config.server,
            mode=mode,
            attempt=attempt,
            outcome=outcome,
            status_code=status_code,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            deidentified=deid is not None,
            placeholders=len(deid.mapping) if deid is not None else 0,
        )

    def _guard_breaker(self) -> None:
        if not self.breaker.allow():
            raise LLMUnavailable(
                FallbackReason.CIRCUIT_OPEN,
                f"{self.config.server} failed {self.breaker.consecutive_failures} times in a row; "
                f"paused for {self.breaker.seconds_until_retry():.0f} s",
            )

    def _settle_breaker(self, error: BaseException | None) -> None:
        if error is None:
            self.breaker.record_success()
        elif isinstance(error, LLMUnavailable) and error.reason in _FAILURES_FOR_BREAKER:
            self.breaker.record_failure()
        else:
            self.breaker.release()

    async def _exchange(
        self,
        prompt: RenderedPrompt,
        messages: Sequence[ChatMessage],
        *,
        deadline: float,
        mode: Mode,
        response_format: dict[str, Any] | None,
        max_tokens: int | None,
        temperature: float | None,
        deid: Deidentifier | None,
    ) -> _Raw:
        """One logical request: breaker, semaphore, retries and backoff inside ``deadline``."""
        self._guard_breaker()
        try:
            raw = await self._attempts(
                prompt,
                messages,
                deadline=deadline,
                mode=mode,
                response_format=response_format,
                max_tokens=max_tokens,
                temperature=temperature,
                deid=deid,
            )
        except BaseException as exc:
            self._settle_breaker(exc)
            raise
        self._settle_breaker(None)
        return raw

    async def _attempts(
        self,
        prompt: RenderedPrompt,
        messages: Sequence[ChatMessage],
        *,
        deadline: float,
        mode: Mode,
        response_format: dict[str, Any] | None,
        max_tokens: int | None,
        temperature: float | None,
        deid: Deidentifier | None,
    ) -> _Raw:
        loop = asyncio.get_running_loop()
        cfg = self.config
        attempt = 0
        retries = 0
        while True:
            attempt += 1
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LLMUnavailable(
                    FallbackReason.TIMEOUT,
                    f"no answer from {cfg.server} within {cfg.timeout_seconds:g} s",
                )
            started = time.perf_counter()
            model = self._model or "default"
            status: int | None = None
            response: httpx.Response | None = None
            sent_structured = response_format is not None and self._structured_supported
            try:
                async with asyncio.timeout(remaining):
                    async with self._semaphore:
                        model = await self.model_name()
                        body = self._body(
                            model,
                            messages,
                            max_tokens=max_tokens,
                            temperature=temperature,
                            response_format=response_format,
                        )
                        response = await self._client.post(
                            "/chat/completions",
                            json=body,
                            timeout=httpx.Timeout(
                                remaining, connect=min(cfg.connect_timeout_seconds, remaining)
                            ),
                        )
                status = response.status_code
            except (TimeoutError, httpx.TimeoutException):
                error = LLMUnavailable(
                    FallbackReason.TIMEOUT,
                    f"no answer from {cfg.server} within {cfg.timeout_seconds:g} s "
                    f"({attempt} attempt{'s' if attempt > 1 else ''})",
                )
                outcome = "timeout"
            except httpx.HTTPStatusError as exc:  # from model discovery
                status = exc.response.status_code
                error = LLMUnavailable(
                    FallbackReason.SERVER_ERROR,
                    f"{cfg.server} answered HTTP {status} to GET /models",
                )
                outcome = "server_error"
            except (httpx.TransportError, ValueError, KeyError, IndexError) as exc:
                error = LLMUnavailable(
                    FallbackReason.UNREACHABLE, f"cannot reach {cfg.server}: {type(exc).__name__}"
                )
                outcome = "unreachable"
            else:
                assert response is not None
                if status == 200:
                    try:
                        data = response.json()
                        message = data["choices"][0]["message"]
                        content = message.get("content") or ""
                        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        error = LLMUnavailable(
                            FallbackReason.SERVER_ERROR,
                            f"{cfg.server} answered 200 without a chat completion",
                        )
                        outcome = "bad_response"
                    else:
                        await self._emit(
                            self._record(
                                prompt,
                                messages,
                                model=model,
                                mode=mode,
                                attempt=attempt,
                                outcome="ok",
                                status_code=status,
                                started=started,
                                usage=usage,
                                deid=deid,
                            )
                        )
                        return _Raw(
                            text=str(content),
                            model=model,
                            attempts=attempt,
                            prompt_tokens=(usage or {}).get("prompt_tokens"),
                            completion_tokens=(usage or {}).get("completion_tokens"),
                        )
                elif status == 400 and sent_structured:
                    # The server does not know response_format (or this schema): say so once,
                    # then rely on the prompt and pydantic validation.
                    self._structured_supported = False
                    log.warning(
                        "LLM server %s refused response_format; validating without it", cfg.server
                    )
                    await self._emit(
                        self._record(
                            prompt,
                            messages,
                            model=model,
                            mode=mode,
                            attempt=attempt,
                            outcome="structured_output_unsupported",
                            status_code=status,
                            started=started,
                            usage=None,
                            deid=deid,
                        )
                    )
                    continue
                elif status is not None and (status in _RETRYABLE_STATUS or status >= 500):
                    error = LLMUnavailable(
                        FallbackReason.SERVER_ERROR, f"{cfg.server} answered HTTP {status}"
                    )
                    outcome = "server_error"
                else:
                    await self._emit(
                        self._record(
                            prompt,
                            messages,
                            model=model,
                            mode=mode,
                            attempt=attempt,
                            outcome="rejected",
                            status_code=status,
                            started=started,
                            usage=None,
                            deid=deid,
                        )
                    )
                    raise LLMUnavailable(
                        FallbackReason.REJECTED,
                        f"{cfg.server} refused the request with HTTP {status} "
                        "(check MEDBRAIN_LLM_MODEL and MEDBRAIN_LLM_API_KEY)",
                    )
            await self._emit(
                self._record(
                    prompt,
                    messages,
                    model=model,
                    mode=mode,
                    attempt=attempt,
                    outcome=outcome,
                    status_code=status,
                    started=started,
                    usage=None,
                    deid=deid,
                )
            )
            if retries >= cfg.max_retries:
                raise error
            retries += 1
            delay = cfg.backoff_seconds * (2 ** (retries - 1))
            if response is not None:
                delay = max(delay, _retry_after_seconds(response) or 0.0)
            if loop.time() + delay >= deadline:
                raise error
            await asyncio.sleep(delay)

    # -- public calls --------------------------------------------------------------------

    async def chat(
        self,
        prompt: RenderedPrompt,
        *,
        known: KnownIdentifiers | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatAnswer:
        """Plain-text completion; raises :class:`LLMUnavailable` when no answer came back."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        messages, deid = await self._prepare(prompt, known)
        raw = await self._exchange(
            prompt,
            messages,
            deadline=loop.time() + self.config.timeout_seconds,
            mode="text",
            response_format=None,
            max_tokens=max_tokens,
            temperature=temperature,
            deid=deid,
        )
        text = strip_think(raw.text)
        if deid is not None:
            text = deid.reidentify(text)
        return ChatAnswer(
            text=text,
            model=raw.model,
            attempts=raw.attempts,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
        )

    async def chat_text(
        self,
        prompt: RenderedPrompt,
        *,
        fallback: Callable[[], str],
        known: KnownIdentifiers | None = None,
        max_tokens: int | None = None,
    ) -> LLMResult[str]:
        """Text answer or the fallback (empty answers and failures fall back, never raise)."""
        started = time.perf_counter()
        try:
            answer = await self.chat(prompt, known=known, max_tokens=max_tokens)
        except LLMUnavailable as exc:
            return self._fallback(fallback(), exc.reason, exc.detail, 0, started)
        if not answer.text:
            return self._fallback(
                fallback(),
                FallbackReason.EMPTY_OUTPUT,
                "the model returned no text",
                answer.attempts,
                started,
            )
        return LLMResult(
            value=answer.text,
            source="llm",
            model=answer.model,
            attempts=answer.attempts,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _fallback(
        self,
        value: M | str | Any,
        reason: FallbackReason,
        detail: str,
        attempts: int,
        started: float,
    ) -> LLMResult[Any]:
        log.info("LLM fallback used: %s (%s)", reason.value, detail)
        return LLMResult(
            value=value,
            source="fallback",
            model=self._model,
            reason=reason,
            detail=detail,
            attempts=attempts,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _schema_instruction(self, schema: dict[str, Any]) -> str:
        return (
            "Answer with exactly one JSON object, no other text, that validates against this "
            "JSON Schema:\n" + json.dumps(schema, ensure_ascii=False)
        )

    async def chat_json(
        self,
        prompt: RenderedPrompt,
        schema: type[M],
        *,
        fallback: Callable[[], M],
        known: KnownIdentifiers | None = None,
        max_tokens: int | None = None,
    ) -> LLMResult[M]:
        """A validated instance of ``schema`` from the model, or ``fallback()`` with a reason.

        Invalid or empty output is retried once with a corrective message (the validation
        errors' locations, not values); a second failure falls back. Nothing unvalidated is
        ever returned. One deadline (``timeout_seconds``) covers both exchanges.
        """
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = loop.time() + self.config.timeout_seconds
        json_schema = schema.model_json_schema()
        response_format: dict[str, Any] | None
        if self.config.structured_output == "json_schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": prompt.name, "schema": json_schema},
            }
        elif self.config.structured_output == "json_object":
            response_format = {"type": "json_object"}
        else:
            response_format = None
        instructed = self._with_schema_instruction(prompt, json_schema)
        messages, deid = await self._prepare(instructed, known)
        attempts = 0
        last_reason = FallbackReason.INVALID_OUTPUT
        last_detail = ""
        for round_no in (1, 2):
            try:
                raw = await self._exchange(
                    instructed,
                    messages,
                    deadline=deadline,
                    mode="json",
                    response_format=response_format,
                    max_tokens=max_tokens,
                    temperature=None,
                    deid=deid,
                )
            except LLMUnavailable as exc:
                return self._fallback(fallback(), exc.reason, exc.detail, attempts, started)
            attempts += raw.attempts
            text = strip_think(raw.text)
            if not text:
                last_reason, last_detail = FallbackReason.EMPTY_OUTPUT, "the model returned no text"
                problem = "The answer was empty."
            else:
                try:
                    parsed = _extract_json(text)
                    if deid is not None:
                        parsed = deid.reidentify_json(parsed)
                    value = schema.model_validate(parsed)
                except json.JSONDecodeError as exc:
                    last_reason = FallbackReason.INVALID_OUTPUT
                    last_detail = f"answer is not JSON ({exc.msg})"
                    problem = f"The answer was not valid JSON ({exc.msg})."
                except ValidationError as exc:
                    last_reason = FallbackReason.INVALID_OUTPUT
                    last_detail = (
                        f"answer does not match {schema.__name__}: {_validation_summary(exc)}"
                    )
                    problem = f"The answer did not match the schema: {_validation_summary(exc)}."
                else:
                    return LLMResult(
                        value=value,
                        source="llm",
                        model=raw.model,
                        attempts=attempts,
                        latency_ms=(time.perf_counter() - started) * 1000.0,
                    )
            if round_no == 1:
                messages = [
                    *messages,
                    {"role": "assistant", "content": raw.text[:2000]},
                    {
                        "role": "user",
                        "content": problem
                        + " Answer again with only one JSON object that validates against the schema.",
                    },
                ]
        return self._fallback(fallback(), last_reason, last_detail, attempts, started)

    def _with_schema_instruction(
        self, prompt: RenderedPrompt, json_schema: dict[str, Any]
    ) -> RenderedPrompt:
        """Append the schema to the system message (code-controlled text, never record text)."""
        instruction = self._schema_instruction(json_schema)
        messages = list(prompt.messages)
        if messages and messages[0]["role"] == "system":
            messages[0] = {
                "role": "system",
                "content": messages[0]["content"] + "\n\n" + instruction,
            }
        else:
            messages.insert(0, {"role": "system", "content": instruction})
        return RenderedPrompt(prompt.name, prompt.template_sha256, tuple(messages))

    async def stream(
        self,
        prompt: RenderedPrompt,
        *,
        known: KnownIdentifiers | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        """Text deltas for the UI, reasoning stripped and identifiers put back.

        Connection failures before the first byte are retried like :meth:`chat`; a failure
        mid-stream raises :class:`LLMUnavailable` (the UI keeps what it showed and adds the
        notice). Each wait for the next chunk is bounded by ``timeout_seconds``; the length
        of the whole stream is bounded by ``max_tokens``.
        """
        loop = asyncio.get_running_loop()
        cfg = self.config
        messages, deid = await self._prepare(prompt, known)
        self._guard_breaker()
        deadline = loop.time() + cfg.timeout_seconds
        started = time.perf_counter()
        attempt = 0
        retries = 0
        response: httpx.Response | None = None
        model = self._model or "default"
        acquired = False
        error: BaseException | None = None
        usage: dict[str, Any] | None = None
        outcome = "ok"
        try:
            while response is None:
                attempt += 1
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise LLMUnavailable(FallbackReason.TIMEOUT, f"no answer from {cfg.server}")
                try:
                    async with asyncio.timeout(remaining):
                        if not acquired:
                            await self._semaphore.acquire()
                            acquired = True
                        model = await self.model_name()
                        body = self._body(
                            model,
                            messages,
                            max_tokens=max_tokens,
                            temperature=None,
                            response_format=None,
                            stream=True,
                        )
                        request = self._client.build_request(
                            "POST",
                            "/chat/completions",
                            json=body,
                            timeout=httpx.Timeout(
                                remaining, connect=min(cfg.connect_timeout_seconds, remaining)
                            ),
                        )
                        candidate = await self._client.send(request, stream=True)
                except (TimeoutError, httpx.TimeoutException):
                    failure = LLMUnavailable(FallbackReason.TIMEOUT, f"no answer from {cfg.server}")
                except (httpx.TransportError, httpx.HTTPStatusError, ValueError, KeyError) as exc:
                    failure = LLMUnavailable(
                        FallbackReason.UNREACHABLE,
                        f"cannot reach {cfg.server}: {type(exc).__name__}",
                    )
                else:
                    if candidate.status_code == 200:
                        response = candidate
                        break
                    await candidate.aclose()
                    if candidate.status_code in _RETRYABLE_STATUS or candidate.status_code >= 500:
                        failure = LLMUnavailable(
                            FallbackReason.SERVER_ERROR,
                            f"{cfg.server} answered HTTP {candidate.status_code}",
                        )
                    else:
                        raise LLMUnavailable(
                            FallbackReason.REJECTED,
                            f"{cfg.server} refused the request with HTTP {candidate.status_code}",
                        )
                if retries >= cfg.max_retries:
                    raise failure
                retries += 1
                delay = cfg.backoff_seconds * (2 ** (retries - 1))
                if loop.time() + delay >= deadline:
                    raise failure
                await asyncio.sleep(delay)

            think = ThinkStreamFilter()
            reid = StreamReidentifier(deid) if deid is not None else None
            lines = response.aiter_lines()
            while True:
                try:
                    async with asyncio.timeout(cfg.timeout_seconds):
                        line = await anext(lines)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise LLMUnavailable(
                        FallbackReason.TIMEOUT,
                        f"{cfg.server} stopped sending for {cfg.timeout_seconds:g} s",
                    ) from None
                except httpx.HTTPError as exc:
                    raise LLMUnavailable(
                        FallbackReason.UNREACHABLE,
                        f"stream from {cfg.server} broke: {type(exc).__name__}",
                    ) from None
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    continue
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                choices = chunk.get("choices") or []
                if not choices:
                    continue
                delta = (choices[0].get("delta") or {}).get("content") or ""
                visible = think.feed(delta)
                if reid is not None:
                    visible = reid.feed(visible)
                if visible:
                    yield visible
            tail = think.flush()
            if reid is not None:
                tail = reid.feed(tail) + reid.flush()
            if tail:
                yield tail
        except LLMUnavailable as exc:
            error = exc
            outcome = exc.reason.value
            raise
        except BaseException as exc:  # cancelled or closed early by the consumer
            error = exc
            outcome = "cancelled"
            raise
        finally:
            if response is not None:
                await response.aclose()
            if acquired:
                self._semaphore.release()
            self._settle_breaker(error)
            await self._emit(
                self._record(
                    prompt,
                    messages,
                    model=model,
                    mode="stream",
                    attempt=attempt,
                    outcome=outcome,
                    status_code=response.status_code if response else None,
                    started=started,
                    usage=usage,
                    deid=deid,
                )
            )


async def generate_json(
    gateway: LLMGateway | None,
    prompt: RenderedPrompt,
    schema: type[M],
    *,
    fallback: Callable[[], M],
    known: KnownIdentifiers | None = None,
) -> LLMResult[M]:
    """:meth:`LLMGateway.chat_json`, or the fallback marked ``not_configured`` without a server."""
    if gateway is None:
        return LLMResult(
            value=fallback(),
            source="fallback",
            reason=FallbackReason.NOT_CONFIGURED,
            detail="MEDBRAIN_LLM_URL is not set",
        )
    return await gateway.chat_json(prompt, schema, fallback=fallback, known=known)
