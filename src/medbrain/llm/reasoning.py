"""Removing reasoning text (``<think>…</think>``) from model answers.

Why: reasoning models (DeepSeek-R1, Qwen3, QwQ) write their chain of thought before the
answer. It is not an answer, it is not tied to a source in the record, and it must never be
shown as advice (DESIGN.md §5). Servers started with a reasoning parser (vLLM/SGLang
``--reasoning-parser deepseek_r1``) move it into a separate ``reasoning_content`` field, which
the gateway ignores; this module handles servers that leave it inline.
"""

from __future__ import annotations

import re

OPEN = "<think>"
CLOSE = "</think>"
_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_think(text: str) -> str:
    """The answer without reasoning.

    Handles three shapes: complete ``<think>…</think>`` blocks; a closing tag with no opening
    one (DeepSeek-R1 chat templates put ``<think>`` into the prompt, so the output starts
    inside the reasoning); and an opening tag never closed (generation stopped at
    ``max_tokens`` while still reasoning), where nothing after the tag is an answer.
    """
    text = _BLOCK.sub("", text)
    lower = text.lower()
    close = lower.rfind(CLOSE)
    if close >= 0:
        text = text[close + len(CLOSE) :]
        lower = text.lower()
    open_at = lower.find(OPEN)
    if open_at >= 0:
        text = text[:open_at]
    return text.strip()


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:].lower()):
            return n
    return 0


class ThinkStreamFilter:
    """Streaming version of :func:`strip_think`: feed deltas, get visible text back.

    A tag split across deltas (``"<thi"`` + ``"nk>"``) is held back until it is decided.
    A closing tag seen outside a block drops what is still held before it; text already
    emitted cannot be recalled, which is why servers should use a reasoning parser.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._in_think = False
        self._emitted = False

    def _emit(self, text: str) -> str:
        if not self._emitted:
            text = text.lstrip()
            self._emitted = bool(text)
        return text

    def feed(self, delta: str) -> str:
        self._buffer += delta
        out: list[str] = []
        while True:
            lower = self._buffer.lower()
            if self._in_think:
                close = lower.find(CLOSE)
                if close < 0:
                    keep = _partial_tag_suffix(self._buffer, CLOSE)
                    self._buffer = self._buffer[len(self._buffer) - keep :] if keep else ""
                    break
                self._buffer = self._buffer[close + len(CLOSE) :]
                self._in_think = False
                continue
            open_at = lower.find(OPEN)
            close = lower.find(CLOSE)
            if close >= 0 and (open_at < 0 or close < open_at):
                self._buffer = self._buffer[close + len(CLOSE) :]
                continue
            if open_at >= 0:
                out.append(self._emit(self._buffer[:open_at]))
                self._buffer = self._buffer[open_at + len(OPEN) :]
                self._in_think = True
                continue
            keep = max(
                _partial_tag_suffix(self._buffer, OPEN), _partial_tag_suffix(self._buffer, CLOSE)
            )
            cut = len(self._buffer) - keep
            out.append(self._emit(self._buffer[:cut]))
            self._buffer = self._buffer[cut:]
            break
        return "".join(out)

    def flush(self) -> str:
        """Whatever is still held at the end of the stream (never reasoning)."""
        rest, self._buffer = self._buffer, ""
        return "" if self._in_think else self._emit(rest)
