"""Gateway to the hospital's OpenAI-compatible model server, with a deterministic fallback.

The LLM improves wording and recall; it never decides alone. Every call either returns a
validated answer or the caller's deterministic result with the reason (:class:`LLMResult`).
See ``docs/llm.md`` for pointing MedBrain at vLLM/SGLang/Ollama/llama.cpp.
"""

from medbrain.llm.breaker import BreakerState, CircuitBreaker
from medbrain.llm.config import LLMConfig
from medbrain.llm.deid import Deidentifier, KnownIdentifiers
from medbrain.llm.gateway import ChatAnswer, LLMGateway, generate_json, is_loopback_host
from medbrain.llm.prompt import ChatMessage, Document, PromptTemplate, RenderedPrompt, load_prompt
from medbrain.llm.reasoning import strip_think
from medbrain.llm.result import FallbackReason, LLMCallRecord, LLMResult, LLMUnavailable

__all__ = [
    "BreakerState",
    "ChatAnswer",
    "ChatMessage",
    "CircuitBreaker",
    "Deidentifier",
    "Document",
    "FallbackReason",
    "KnownIdentifiers",
    "LLMCallRecord",
    "LLMConfig",
    "LLMGateway",
    "LLMResult",
    "LLMUnavailable",
    "PromptTemplate",
    "RenderedPrompt",
    "generate_json",
    "is_loopback_host",
    "load_prompt",
    "strip_think",
]
