"""Loaders for the knowledge files shipped in this package."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError


def load_yaml(name: str) -> Any:
    """Read ``medbrain/knowledge/<name>``; a missing or malformed file names itself."""
    try:
        text = resources.files("medbrain.knowledge").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(f"knowledge file {name} is missing") from None
    try:
        return yamlio.parse(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"knowledge file {name} is not valid YAML: {exc}") from None


@dataclass(frozen=True, slots=True)
class DocumentType:
    code: str
    zh: str
    en: str
    loinc: str

    def title(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@lru_cache(maxsize=1)
def document_types() -> dict[str, DocumentType]:
    data = load_yaml("document_types.yaml")
    out: dict[str, DocumentType] = {}
    for code, row in (data.get("types") or {}).items():
        try:
            out[code] = DocumentType(code=code, zh=row["zh"], en=row["en"], loinc=str(row["loinc"]))
        except (KeyError, TypeError):
            raise KnowledgeError(
                f"document_types.yaml: type {code!r} needs zh, en and loinc"
            ) from None
    return out


def document_type_by_title(title: str) -> DocumentType | None:
    """Find a type by its Chinese or English title (as written in a FHIR DocumentReference)."""
    for doc_type in document_types().values():
        if title.strip() in (doc_type.zh, doc_type.en, doc_type.code):
            return doc_type
    return None
