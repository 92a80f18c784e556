"""A small, real OpenAI-compatible HTTP server whose answers a test scripts.

Why a real server and not a mocked transport: the gateway's bounds (timeouts, retries, the
semaphore, streaming) are about sockets and time, and only a server on a real port exercises
them. It runs uvicorn in a thread on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    kind: ``text`` (content), ``json`` (content = json.dumps(data)), ``status`` (HTTP error
    ``status``), ``empty`` (content ""), ``stream`` (``deltas`` as SSE chunks), ``garbage``
    (200 with a non-OpenAI body), ``reject_structured`` (400 when response_format is sent,
    else ``data`` as JSON). ``delay_seconds`` waits before answering (a hang when long).
    """

    kind: str
    content: str = ""
    data: Any = None
    status: int = 500
    deltas: tuple[str, ...] = ()
    delay_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def text(content: str, delay: float = 0.0) -> Reply:
    return Reply("text", content=content, delay_seconds=delay)


def json_reply(data: Any, delay: float = 0.0) -> Reply:
    return Reply("json", data=data, delay_seconds=delay)


def status(code: int, headers: dict[str, str] | None = None) -> Reply:
    return Reply("status", status=code, headers=headers or {})


def hang(seconds: float) -> Reply:
    return Reply("text", content="too late", delay_seconds=seconds)


def stream(*deltas: str, delay: float = 0.0) -> Reply:
    return Reply("stream", deltas=deltas, delay_seconds=delay)


class FakeLLM:
    """Scripted answers (consumed in order, the last one repeats) and what was received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = self._build()
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, *script: Reply) -> None:
        with self._lock:
            self.script = list(script) or [json_reply({"summary": "ok", "sources": []})]
            self.requests.clear()
            self.headers.clear()
            self.in_flight = 0
            self.max_in_flight = 0

    def _next(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            reply = self._next()
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if reply.delay_seconds:
                    await asyncio.sleep(reply.delay_seconds)
                return self._answer(reply, body)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return app

    def _answer(self, reply: Reply, body: dict[str, Any]) -> Response:
        usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
        if reply.kind == "status":
            return JSONResponse(
                {"error": {"message": "scripted"}}, status_code=reply.status, headers=reply.headers
            )
        if reply.kind == "garbage":
            return JSONResponse({"hello": "world"})
        if reply.kind == "reject_structured":
            if "response_format" in body:
                return JSONResponse(
                    {"error": {"message": "response_format unsupported"}}, status_code=400
                )
            content = json.dumps(reply.data, ensure_ascii=False)
        elif reply.kind == "json":
            content = json.dumps(reply.data, ensure_ascii=False)
        elif reply.kind == "empty":
            content = ""
        elif reply.kind == "stream":
            return StreamingResponse(self._sse(reply.deltas), media_type="text/event-stream")
        else:
            content = reply.content
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": usage,
            }
        )

    @staticmethod
    async def _sse(deltas: tuple[str, ...]) -> Any:
        for delta in deltas:
            chunk = {"choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            await asyncio.sleep(0)
        final = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(deltas)}}
        yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.01)
        self.reset()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def free_port() -> int:
    """A port nothing listens on (for 'unreachable' tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def running() -> Iterator[FakeLLM]:
    server = FakeLLM()
    server.start()
    try:
        yield server
    finally:
        server.stop()
