"""Small parts of the gateway: reasoning stripping, breaker, prompts, config, probes."""

from __future__ import annotations

import pytest

from medbrain.core.config import Settings
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.llm import (
    BreakerState,
    CircuitBreaker,
    Document,
    LLMConfig,
    is_loopback_host,
    load_prompt,
    local,
    strip_think,
)
from medbrain.llm.config import normalize_base_url
from medbrain.llm.prompt import adhoc_prompt
from medbrain.llm.reasoning import ThinkStreamFilter
from medbrain.llm.result import FallbackReason, fallback_notice


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        ("<think>reasoning</think>\n\n答案", "答案"),
        ("<THINK>a</THINK>b<think>c</think>d", "bd"),
        ("reasoning without an opening tag</think>答案", "答案"),  # R1 template opened it
        ("答案<think>cut off by max_tokens", "答案"),
        ("<think>only reasoning, never finished", ""),
        ("plain answer", "plain answer"),
        ("a < b and c > d", "a < b and c > d"),
    ],
)
def test_strip_think(raw: str, answer: str) -> None:
    assert strip_think(raw) == answer


RAW_STREAM = "<think>step 1\nstep 2</think>\n\n血压 < 140/90，<b>继续</b>观察。"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 100])
def test_think_stream_filter_matches_strip_think_for_any_chunking(size: int) -> None:
    think = ThinkStreamFilter()
    out = "".join(think.feed(RAW_STREAM[i : i + size]) for i in range(0, len(RAW_STREAM), size))
    out += think.flush()
    assert out == strip_think(RAW_STREAM) == "血压 < 140/90，<b>继续</b>观察。"


def test_think_stream_filter_drops_an_unfinished_block() -> None:
    think = ThinkStreamFilter()
    assert think.feed("答案<think>still thin") + think.flush() == "答案"


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read the state through a call, so mypy does not narrow it between assertions."""
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_allows_one_trial_after_reset() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10, clock=clock)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN and not breaker.allow()
    assert breaker.seconds_until_retry() == 10
    clock.now = 10
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # exactly one trial
    breaker.record_success()
    assert state_of(breaker) is BreakerState.CLOSED and breaker.consecutive_failures == 0


def test_breaker_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED


def test_prompt_files_render_with_documents_in_the_user_message_only() -> None:
    template = load_prompt("summarize")
    rendered = template.render(
        [Document(id="Observation/7", text="肌酐 180 μmol/L", kind="lab")],
        {"language": "Chinese", "max_sentences": "2"},
    )
    system, user = rendered.messages
    assert system["content"] == template.system
    assert "肌酐" not in system["content"]
    assert (
        '<document id="Observation/7" type="lab">\n肌酐 180 μmol/L\n</document>' in user["content"]
    )
    assert rendered.template_sha256 == template.sha256 and len(template.sha256) == 64


def test_prompt_hash_changes_when_the_instructions_change() -> None:
    assert adhoc_prompt("x", "a", "b").sha256 != adhoc_prompt("x", "a", "c").sha256


@pytest.mark.parametrize(
    ("name", "variables", "problem"),
    [
        ("summarize", {"language": "zh"}, "missing variable 'max_sentences'"),
        ("no_such_prompt", {}, "not found"),
        ("../etc", {}, "lower-case"),
    ],
)
def test_prompt_errors_name_the_problem(name: str, variables: dict[str, str], problem: str) -> None:
    with pytest.raises(KnowledgeError, match=problem):
        load_prompt(name).render([], variables)


def test_documents_variable_is_reserved() -> None:
    with pytest.raises(KnowledgeError, match="reserved"):
        adhoc_prompt("x", "s", "$documents").render([], {"documents": "injected"})


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("http://gpu01:8000", "http://gpu01:8000/v1"),
        ("http://gpu01:8000/", "http://gpu01:8000/v1"),
        ("https://llm.hospital.local/v1/", "https://llm.hospital.local/v1"),
        ("http://proxy/openai/v1", "http://proxy/openai/v1"),
    ],
)
def test_base_url_is_normalized(url: str, normalized: str) -> None:
    assert normalize_base_url(url) == normalized


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"base_url": "ftp://x"}, "MEDBRAIN_LLM_URL"),
        ({"structured_output": "xml"}, "MEDBRAIN_LLM_STRUCTURED_OUTPUT"),
        ({"deid": "maybe"}, "MEDBRAIN_LLM_DEID"),
        ({"max_concurrency": 0}, "MEDBRAIN_LLM_MAX_CONCURRENCY"),
        ({"timeout_seconds": 0}, "MEDBRAIN_LLM_TIMEOUT_SECONDS"),
    ],
)
def test_bad_configuration_names_the_variable(overrides: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"base_url": "http://127.0.0.1:8000"}
    values.update(overrides)
    with pytest.raises(InputError) as info:
        LLMConfig(**values)  # type: ignore[arg-type]
    assert info.value.field == field


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDBRAIN_LLM_URL", raising=False)
    assert LLMConfig.from_settings(Settings.from_env()) is None
    monkeypatch.setenv("MEDBRAIN_LLM_URL", "http://gpu01:8000")
    monkeypatch.setenv("MEDBRAIN_LLM_MODEL", "deepseek-r1")
    monkeypatch.setenv("MEDBRAIN_LLM_API_KEY", "k")
    monkeypatch.setenv("MEDBRAIN_LLM_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("MEDBRAIN_LLM_MAX_CONCURRENCY", "8")
    monkeypatch.setenv("MEDBRAIN_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("MEDBRAIN_LLM_STRUCTURED_OUTPUT", "json_object")
    monkeypatch.setenv("MEDBRAIN_LLM_DEID", "always")
    config = LLMConfig.from_settings(Settings.from_env())
    assert config is not None
    assert (config.base_url, config.model, config.api_key) == (
        "http://gpu01:8000/v1",
        "deepseek-r1",
        "k",
    )
    assert (config.timeout_seconds, config.max_concurrency, config.max_retries) == (12.5, 8, 1)
    assert (config.structured_output, config.deid, config.server) == (
        "json_object",
        "always",
        "gpu01:8000",
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("api.localhost", True),
        ("192.168.10.5", False),
        ("10.0.0.7", False),
        ("8.8.8.8", False),
    ],
)
async def test_loopback_detection(host: str, loopback: bool) -> None:
    assert await is_loopback_host(host) is loopback


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_every_fallback_reason_has_a_notice_in_both_languages() -> None:
    for reason in FallbackReason:
        assert fallback_notice(reason, "zh") != fallback_notice(reason, "en")


def test_local_server_probe_explains_itself() -> None:
    reason = local.unavailable_reason()
    assert local.is_available() is (reason is None)
    if reason is not None:
        assert "pip install" in reason or "not found" in reason
