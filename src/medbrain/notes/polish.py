"""Let the hospital's LLM reword a template draft, and accept only what can be checked.

Why the checks: the LLM improves wording; it never adds facts (DESIGN.md §5, issue 8). An
answer is accepted only if, section by section, it keeps the titles, cites only the
template's sources and all of them, and states no number that the cited template sentences
do not contain. Anything else is retried once (with the reason) and then the template draft
is used, with a notice for the doctor.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, Field, model_validator

from medbrain.llm import (
    Document,
    KnownIdentifiers,
    LLMGateway,
    LLMResult,
    generate_json,
    load_prompt,
)
from medbrain.notes.draft import NoteDraft, Section, Sentence
from medbrain.notes.record import NoteRecord

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class PolishedSentence(BaseModel):
    text: str = Field(min_length=1)
    sources: list[str]


class PolishedSection(BaseModel):
    title: str
    sentences: list[PolishedSentence] = Field(min_length=1)


class PolishedNote(BaseModel):
    sections: list[PolishedSection]


def numbers_in(text: str) -> set[str]:
    """Numbers as canonical decimals, so "03" and "3", "0.80" and "0.8" compare equal."""
    out = set()
    for raw in _NUMBER.findall(text):
        try:
            out.add(format(Decimal(raw).normalize(), "f"))
        except InvalidOperation:
            continue
    return out


def unsupported(template: NoteDraft, polished: PolishedNote) -> str | None:
    """Why ``polished`` is not a faithful rewording of ``template`` (``None`` when it is)."""
    if [s.title for s in polished.sections] != [s.title for s in template.sections]:
        return "sections or titles differ from the draft"
    for index, (original, new) in enumerate(
        zip(template.sections, polished.sections, strict=True), 1
    ):
        allowed = set(original.sources)
        cited: set[str] = set()
        for n, sentence in enumerate(new.sentences, 1):
            extra = set(sentence.sources) - allowed
            if extra:
                return f"section {index} sentence {n} cites ids not in the draft section"
            cited |= set(sentence.sources)
            basis = [s.text for s in original.sentences if set(s.sources) & set(sentence.sources)]
            if not sentence.sources:
                basis = [s.text for s in original.sentences if not s.sources]
            if not numbers_in(sentence.text) <= numbers_in(" ".join(basis)):
                return f"section {index} sentence {n} states a number its sources do not contain"
        if cited != allowed:
            return f"section {index} drops facts of the draft"
    return None


def _schema_for(template: NoteDraft) -> type[PolishedNote]:
    """A schema whose validation includes the faithfulness check (so it is retried once)."""

    class CheckedNote(PolishedNote):
        @model_validator(mode="after")
        def _faithful(self) -> CheckedNote:
            problem = unsupported(template, self)
            if problem is not None:
                raise ValueError(problem)
            return self

    CheckedNote.__name__ = "PolishedNote"
    return CheckedNote


def known_identifiers(record: NoteRecord) -> KnownIdentifiers:
    """The record's structured identifiers, replaced if the model server is remote."""
    return KnownIdentifiers(
        names=(record.name,) if record.name else (),
        mrns=record.identifiers,
        phones=record.phones,
    )


async def polish_note(
    template: NoteDraft, record: NoteRecord, gateway: LLMGateway | None
) -> tuple[NoteDraft, LLMResult[PolishedNote]]:
    """The LLM's rewording when it passes every check, else the template (with the notice)."""
    draft_json = json.dumps(
        [
            {
                "title": s.title,
                "sentences": [{"text": x.text, "sources": list(x.sources)} for x in s.sentences],
            }
            for s in template.sections
        ],
        ensure_ascii=False,
        indent=1,
    )
    rendered = load_prompt("notes_polish").render(
        [Document(id="draft", text=draft_json, kind=f"{template.note_type}-note-draft")],
        {
            "note_type": template.note_type,
            "language": "Chinese" if template.lang == "zh" else "English",
        },
    )
    fallback = PolishedNote(sections=[])
    result = await generate_json(
        gateway,
        rendered,
        _schema_for(template),
        fallback=lambda: fallback,
        known=known_identifiers(record),
    )
    if not result.used_llm:
        return (
            NoteDraft(
                template.note_type,
                template.lang,
                template.sections,
                generator="template",
                notice=result.notice(template.lang),
                extra={"llm": result.meta()}
                if result.reason and result.reason.value != "not_configured"
                else {},
            ),
            result,
        )
    sections = tuple(
        Section(
            original.key,
            original.title,
            tuple(Sentence(x.text, tuple(x.sources)) for x in new.sentences),
        )
        for original, new in zip(template.sections, result.value.sections, strict=True)
    )
    return NoteDraft(
        template.note_type, template.lang, sections, generator=result.generator
    ), result
