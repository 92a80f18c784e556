"""Fixtures for the LLM gateway tests: one fake OpenAI-compatible server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.llm.fake_server import FakeLLM, running


@pytest.fixture(scope="session")
def _fake_llm_session() -> Iterator[FakeLLM]:
    yield from running()


@pytest.fixture
def fake_llm(_fake_llm_session: FakeLLM) -> FakeLLM:
    """The fake server with an empty script (default: a valid summary) and no requests seen."""
    _fake_llm_session.reset()
    return _fake_llm_session


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
