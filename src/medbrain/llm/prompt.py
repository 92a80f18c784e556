"""Prompt templates kept as files, rendered with patient documents passed as data.

Why files: a prompt is clinical configuration. Keeping it in
``medbrain/llm/prompts/<name>.system.txt`` and ``<name>.user.txt`` lets reviewers read and
diff it, and its SHA-256 goes into every audit record, so an auditor knows exactly which
instructions produced an answer without the record holding any patient text.

Why this shape (prompt injection): the system message is the template file's text and
nothing else; no variable and no document is ever substituted into it. Record text goes
only into the user message, inside ``<document>`` elements whose closing tag cannot be
forged by the text (it is neutralised), and the system prompt tells the model that text in
documents is data, never instructions.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal, TypedDict

from medbrain.core.errors import KnowledgeError

Role = Literal["system", "user", "assistant"]


class ChatMessage(TypedDict):
    """One OpenAI chat message."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Document:
    """A piece of the record given to the model as data (``id`` is cited back, e.g. ``Observation/12``)."""

    id: str
    text: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """Messages ready to send, with the template identity kept for the audit record."""

    name: str
    template_sha256: str
    messages: tuple[ChatMessage, ...]

    def with_messages(self, *extra: ChatMessage) -> RenderedPrompt:
        return RenderedPrompt(self.name, self.template_sha256, self.messages + extra)


_TAG = re.compile(r"<(/?)(\s*)(documents?)", re.IGNORECASE)
_ATTR_UNSAFE = re.compile(r'[<>"&\n\r]')


def _escape_document_text(text: str) -> str:
    """Neutralise anything that looks like our delimiter, so text cannot end its element."""
    return _TAG.sub(lambda m: "‹" + m.group(1) + m.group(2) + m.group(3), text)


def _attr(value: str) -> str:
    return _ATTR_UNSAFE.sub("_", value)


def render_documents(documents: Sequence[Document]) -> str:
    """The ``<documents>`` block that carries record text as data."""
    parts = ["<documents>"]
    for doc in documents:
        kind = f' type="{_attr(doc.kind)}"' if doc.kind else ""
        parts.append(f'<document id="{_attr(doc.id)}"{kind}>')
        parts.append(_escape_document_text(doc.text))
        parts.append("</document>")
    parts.append("</documents>")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A named pair of templates; ``user`` may use ``$variables`` and ``$documents``."""

    name: str
    system: str
    user: str

    @property
    def sha256(self) -> str:
        """Identity of the instructions (both files), recorded in the audit chain."""
        digest = hashlib.sha256()
        for part in (self.name, self.system, self.user):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()

    def render(
        self, documents: Sequence[Document] = (), variables: Mapping[str, str] | None = None
    ) -> RenderedPrompt:
        """System message verbatim; user message with variables and delimited documents."""
        values = dict(variables or {})
        if "documents" in values:
            raise KnowledgeError(f"prompt {self.name}: 'documents' is reserved for record text")
        values["documents"] = render_documents(documents)
        try:
            user = string.Template(self.user).substitute(values)
        except KeyError as exc:
            raise KnowledgeError(f"prompt {self.name}: missing variable {exc.args[0]!r}") from None
        except ValueError as exc:
            raise KnowledgeError(f"prompt {self.name}: {exc}") from None
        messages: tuple[ChatMessage, ...] = (
            {"role": "system", "content": self.system},
            {"role": "user", "content": user},
        )
        return RenderedPrompt(self.name, self.sha256, messages)


@lru_cache(maxsize=64)
def load_prompt(name: str) -> PromptTemplate:
    """Load ``prompts/<name>.system.txt`` and ``prompts/<name>.user.txt`` from the package."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise KnowledgeError(f"prompt name {name!r}: use lower-case letters, digits and _")
    folder = resources.files("medbrain.llm").joinpath("prompts")
    try:
        system = folder.joinpath(f"{name}.system.txt").read_text(encoding="utf-8")
        user = folder.joinpath(f"{name}.user.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(
            f"prompt {name!r}: template files not found in medbrain/llm/prompts"
        ) from None
    return PromptTemplate(name=name, system=system.strip(), user=user.strip())


def adhoc_prompt(name: str, system: str, user: str) -> PromptTemplate:
    """A template built in code (tests, benchmarks); production prompts are files."""
    return PromptTemplate(name=name, system=system.strip(), user=user.strip())
