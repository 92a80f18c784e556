"""Messages in Chinese first, English too.

Every user-facing string lives in ``messages.yaml`` (shared keys) or ``messages/<area>.yaml``
(one file per capability) as ``key: {zh: ..., en: ...}``; the loader refuses a key that lacks
either language or is defined twice, so no message exists in only one language or two versions.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, str]]:
    core = resources.files("medbrain.core")
    files = [core.joinpath("messages.yaml")]
    files += sorted(
        (f for f in core.joinpath("messages").iterdir() if f.name.endswith(".yaml")),
        key=lambda f: f.name,
    )
    merged: dict[str, dict[str, str]] = {}
    for file in files:
        data = yamlio.parse(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise KnowledgeError(f"{file.name}: top level must be a mapping")
        for key, value in data.items():
            if not isinstance(value, dict) or any(
                not isinstance(value.get(lang), str) for lang in LANGS
            ):
                raise KnowledgeError(f"{file.name}: {key!r} must have both zh and en strings")
            if key in merged:
                raise KnowledgeError(f"{file.name}: message key {key!r} is defined twice")
            merged[key] = value
    return merged


def t(key: str, lang: str = "zh", **params: object) -> str:
    """Translate ``key`` into ``lang`` and fill ``{placeholders}``."""
    entry = catalog().get(key)
    if entry is None:
        raise KnowledgeError(f"messages.yaml: unknown message key {key!r}")
    template = entry["en" if lang == "en" else "zh"]
    return template.format(**params) if params else template


def normalize_lang(raw: str | None, default: Lang = "zh") -> Lang:
    return "en" if raw == "en" else "zh" if raw == "zh" else default
