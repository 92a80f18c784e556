"""Notes tests reuse the fake OpenAI-compatible server of the LLM tests."""

from tests.unit.llm.conftest import _fake_llm_session, anyio_backend, fake_llm  # noqa: F401
