"""Answer a doctor's question about one record: quoted passages, and a cited LLM answer on top.

Why the checks: an answer is shown only if it cites passages that were retrieved and states
no number those passages do not contain; otherwise (or without a model server) the doctor
gets the quoted passages themselves, which are always true to the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, model_validator

from medbrain.llm import Document, KnownIdentifiers, LLMGateway, generate_json, load_prompt
from medbrain.notes.polish import numbers_in
from medbrain.notes.retrieval import Hit, RecordIndex


class RecordAnswer(BaseModel):
    answer: str = Field(min_length=1)
    citations: list[str] = Field(min_length=1)


def unsupported(hits: Sequence[Hit], answer: RecordAnswer) -> str | None:
    """Why ``answer`` is not supported by the retrieved passages (``None`` when it is)."""
    by_id = {h.passage.id: h.passage.text for h in hits}
    unknown = [c for c in answer.citations if c not in by_id]
    if unknown:
        return f"cites passages that were not given: {', '.join(unknown)}"
    cited_text = " ".join(by_id[c] for c in answer.citations)
    if not numbers_in(answer.answer) <= numbers_in(cited_text):
        return "states a number the cited passages do not contain"
    return None


def _schema_for(hits: Sequence[Hit]) -> type[RecordAnswer]:
    class CheckedAnswer(RecordAnswer):
        @model_validator(mode="after")
        def _supported(self) -> CheckedAnswer:
            problem = unsupported(hits, self)
            if problem is not None:
                raise ValueError(problem)
            return self

    CheckedAnswer.__name__ = "RecordAnswer"
    return CheckedAnswer


@dataclass(frozen=True, slots=True)
class AskResult:
    question: str
    mode: str  # hybrid | bm25
    hits: tuple[Hit, ...]
    answer: str | None = None
    citations: tuple[str, ...] = ()
    generator: str = "retrieval"
    notice: str | None = None
    llm: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "mode": self.mode,
            "passages": [h.to_dict() for h in self.hits],
            "answer": self.answer,
            "citations": list(self.citations),
            "generator": self.generator,
            "notice": self.notice,
            "llm": self.llm,
        }


async def ask_record(
    index: RecordIndex,
    question: str,
    *,
    lang: str = "zh",
    gateway: LLMGateway | None = None,
    known: KnownIdentifiers | None = None,
    k: int = 5,
) -> AskResult:
    """The top ``k`` passages, and the model's cited answer when one passes the checks."""
    hits = tuple(index.search(question, k=k))
    if not hits or gateway is None:
        return AskResult(question.strip(), index.mode, hits)
    prompt = load_prompt("ask_record").render(
        [Document(id=h.passage.id, text=h.passage.text, kind=h.passage.title) for h in hits],
        {"question": question.strip(), "language": "Chinese" if lang == "zh" else "English"},
    )
    result = await generate_json(
        gateway,
        prompt,
        _schema_for(hits),
        fallback=lambda: RecordAnswer(answer="-", citations=["-"]),
        known=known,
    )
    if not result.used_llm:
        return AskResult(
            question.strip(),
            index.mode,
            hits,
            notice=result.notice(lang),
            llm=result.meta(),
        )
    return AskResult(
        question.strip(),
        index.mode,
        hits,
        answer=result.value.answer,
        citations=tuple(result.value.citations),
        generator=result.generator,
        llm=result.meta(),
    )
