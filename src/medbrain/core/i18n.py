"""Messages in Chinese first, English too.

Every user-facing string lives in ``messages.yaml`` as ``key: {zh: ..., en: ...}``; the loader
refuses a key that lacks either language, so no message exists in only one.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

from medbrain.core.errors import KnowledgeError

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, str]]:
    text = resources.files("medbrain.core").joinpath("messages.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise KnowledgeError("messages.yaml: top level must be a mapping")
    for key, value in data.items():
        if not isinstance(value, dict) or any(
            not isinstance(value.get(lang), str) for lang in LANGS
        ):
            raise KnowledgeError(f"messages.yaml: {key!r} must have both zh and en strings")
    return data


def t(key: str, lang: str = "zh", **params: object) -> str:
    """Translate ``key`` into ``lang`` and fill ``{placeholders}``."""
    entry = catalog().get(key)
    if entry is None:
        raise KnowledgeError(f"messages.yaml: unknown message key {key!r}")
    template = entry["en" if lang == "en" else "zh"]
    return template.format(**params) if params else template


def normalize_lang(raw: str | None, default: Lang = "zh") -> Lang:
    return "en" if raw == "en" else "zh" if raw == "zh" else default
