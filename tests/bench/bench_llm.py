"""Benchmark the LLM gateway (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_llm.py [--calls 200] [--no-model]``

1. Gateway overhead per call: ``chat_json`` (breaker, semaphore, prompt, schema, think
   stripping, pydantic validation, audit record) against the local fake OpenAI server, next
   to a raw ``httpx`` POST of the same body to the same server in the same run (baseline),
   with and without de-identification.
2. Tokens per second from SmolLM2-135M through ``medbrain.llm.local`` (skipped when the
   optional packages are missing), plain and JSON-schema constrained.

Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
from pydantic import BaseModel, Field

from medbrain.llm import (
    Document,
    KnownIdentifiers,
    LLMCallRecord,
    LLMConfig,
    LLMGateway,
    load_prompt,
    local,
)
from medbrain.llm.prompt import adhoc_prompt
from tests.unit.llm.fake_server import FakeLLM, free_port, json_reply


class Summary(BaseModel):
    summary: str = Field(min_length=1)
    sources: list[str]


DOC = (
    "患者王建国，男，68岁，住院号：ZY2023001，电话13800138000。因胸痛2小时入院。"
    "既往高血压10年。查体：血压150/90mmHg，心率98次/分。肌钙蛋白I 0.8 ng/mL。"
) * 8


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, ms: list[float]) -> None:
    print(
        f"  {label:<36} p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 0.99):7.2f} ms   "
        f"mean {statistics.fmean(ms):7.2f} ms"
    )


async def bench_overhead(calls: int) -> None:
    server = FakeLLM()
    server.start()
    server.reset(json_reply({"summary": "胸痛2小时", "sources": ["Composition/1"]}))
    rendered = load_prompt("summarize").render(
        [Document(id="Composition/1", text=DOC, kind="admission")],
        {"language": "Chinese", "max_sentences": "3"},
    )
    records: list[LLMCallRecord] = []
    try:
        body = {"model": "fake-model", "messages": list(rendered.messages), "max_tokens": 1024}
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(20):
                await client.post("/chat/completions", json=body)
            raw: list[float] = []
            for _ in range(calls):
                started = time.perf_counter()
                response = await client.post("/chat/completions", json=body)
                response.json()["choices"][0]["message"]["content"]
                raw.append((time.perf_counter() - started) * 1000)

        timings: dict[str, list[float]] = {}
        for label, deid in (
            ("gateway chat_json", "off"),
            ("gateway chat_json + de-identify", "always"),
        ):
            config = LLMConfig(base_url=server.url, model="fake-model", deid=deid)  # type: ignore[arg-type]
            async with LLMGateway(config, on_call=records.append) as gateway:
                known = KnownIdentifiers(names=("王建国",))
                for _ in range(20):
                    await gateway.chat_json(
                        rendered,
                        Summary,
                        fallback=lambda: Summary(summary="t", sources=[]),
                        known=known,
                    )
                ms: list[float] = []
                for _ in range(calls):
                    started = time.perf_counter()
                    result = await gateway.chat_json(
                        rendered,
                        Summary,
                        fallback=lambda: Summary(summary="t", sources=[]),
                        known=known,
                    )
                    ms.append((time.perf_counter() - started) * 1000)
                    assert result.used_llm
                timings[label] = ms
    finally:
        server.stop()
    print(
        f"Gateway overhead, {calls} calls each, prompt {len(rendered.messages[1]['content'])} chars:"
    )
    report("raw httpx POST (baseline)", raw)
    for label, ms in timings.items():
        report(label, ms)
        print(
            f"  {'':<36} overhead vs baseline: {statistics.median(ms) - statistics.median(raw):+.2f} ms (p50)"
        )


class Colour(BaseModel):
    colour: str = Field(max_length=10)
    count: int = Field(ge=0, le=9)


async def bench_model(rounds: int) -> None:
    reason = local.unavailable_reason()
    if reason is not None:
        print(f"SmolLM2 tokens/s: skipped ({reason})")
        return
    server = local.start(port=free_port(), n_ctx=2048)
    records: list[LLMCallRecord] = []
    try:
        config = LLMConfig(base_url=server.url, timeout_seconds=300, max_tokens=64, temperature=0.0)
        async with LLMGateway(config, on_call=records.append) as gateway:
            text_prompt = adhoc_prompt(
                "story", "You are helpful.", "Write a short story about a hospital."
            ).render()
            await gateway.chat(text_prompt, max_tokens=8)  # warm-up
            records.clear()
            started = time.perf_counter()
            for _ in range(rounds):
                await gateway.chat(text_prompt)
            plain_s = time.perf_counter() - started
            plain_tokens = sum(r.completion_tokens or 0 for r in records)
            records.clear()
            json_prompt = adhoc_prompt(
                "colour", "You are helpful.", "Name a colour and a count. $documents"
            ).render([Document(id="d", text="Three red apples.")])
            started = time.perf_counter()
            ok = 0
            for _ in range(rounds):
                result = await gateway.chat_json(
                    json_prompt, Colour, fallback=lambda: Colour(colour="x", count=0)
                )
                ok += result.used_llm
            json_s = time.perf_counter() - started
            json_tokens = sum(r.completion_tokens or 0 for r in records)
            # llama.cpp's own count of decoding speed, without HTTP and prompt processing
            async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
                response = await client.post(
                    "/chat/completions",
                    json={
                        "model": server.model,
                        "messages": list(text_prompt.messages),
                        "max_tokens": 64,
                        "temperature": 0.0,
                    },
                )
                timings = response.json().get("timings") or {}
    finally:
        server.stop()
    print(f"SmolLM2-135M-Instruct Q4_1 via xllamacpp (CPU), {rounds} calls each:")
    print(
        f"  plain text      {plain_tokens} tokens in {plain_s:.2f} s = {plain_tokens / plain_s:6.1f} tokens/s (end to end)"
    )
    print(
        f"  server-reported decoding speed: {timings.get('predicted_per_second', 0):.1f} tokens/s"
    )
    print(
        f"  json_schema     {json_tokens} tokens in {json_s:.2f} s = {json_tokens / json_s:6.1f} tokens/s; "
        f"{ok}/{rounds} validated"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}")
    asyncio.run(bench_overhead(args.calls))
    if not args.no_model:
        asyncio.run(bench_model(args.rounds))


if __name__ == "__main__":
    main()
