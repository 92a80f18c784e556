"""Hospital navigation answers for the patient assistant (pure).

"Where is the pharmacy?", "抽血在几楼?", "儿科几点开门?" → the matching places of the hospital's
configured directory (``knowledge/triage/navigation.yaml``, demo content for a synthetic
hospital; a hospital overrides rows by id) with building, floor and hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.overrides import deep_merge

LANGS = ("zh", "en")
TEXTS = ("name", "building", "floor", "hours")


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    keywords: tuple[str, ...]
    texts: Mapping[str, Mapping[str, str]]  # name/building/floor/hours → lang → text

    def text(self, field: str, lang: str) -> str:
        return self.texts[field]["en" if lang == "en" else "zh"]


@dataclass(frozen=True, slots=True)
class NavigationKnowledge:
    hospital: Mapping[str, str]
    places: tuple[Place, ...]
    source: str


def build_navigation(data: Mapping[str, Any]) -> NavigationKnowledge:
    """Validate the directory: every place has keywords and zh/en name, building, floor, hours."""
    rows = data.get("places")
    if not isinstance(rows, list) or not rows:
        raise KnowledgeError("triage/navigation.yaml: places must be a non-empty list")
    places: list[Place] = []
    for row in rows:
        pid = str(row.get("id") or "")
        keywords = tuple(str(k).lower() for k in row.get("keywords") or [] if str(k).strip())
        if not pid or not keywords:
            raise KnowledgeError(
                f"triage/navigation.yaml: place {pid or '?'} needs id and keywords"
            )
        texts: dict[str, Mapping[str, str]] = {}
        for field in TEXTS:
            value = row.get(field)
            if not isinstance(value, dict) or any(not str(value.get(k) or "") for k in LANGS):
                raise KnowledgeError(f"triage/navigation.yaml: {pid}.{field} needs zh and en")
            texts[field] = {k: str(value[k]) for k in LANGS}
        places.append(Place(id=pid, keywords=keywords, texts=texts))
    hospital = data.get("hospital") or {}
    return NavigationKnowledge(
        hospital={k: str(hospital.get(k) or "") for k in LANGS},
        places=tuple(places),
        source=str(data.get("source") or ""),
    )


def _shipped() -> Any:
    text = (
        resources.files("medbrain.knowledge")
        .joinpath("triage")
        .joinpath("navigation.yaml")
        .read_text(encoding="utf-8")
    )
    data = yamlio.parse(text)
    if not isinstance(data, dict):
        raise KnowledgeError("triage/navigation.yaml: top level must be a mapping")
    return data


@lru_cache(maxsize=1)
def default_navigation() -> NavigationKnowledge:
    return build_navigation(_shipped())


def navigation_with(override: Mapping[str, Any] | None) -> NavigationKnowledge:
    """The shipped directory with a hospital's override mapping merged in (rows by id)."""
    if not override:
        return default_navigation()
    return build_navigation(deep_merge(_shipped(), dict(override)))


def _matches(keyword: str, text: str) -> bool:
    if keyword.isascii() and len(keyword) <= 3:
        # short English words ("er", "ct", "lab") only as whole words
        words = "".join(c if (c.isascii() and c.isalnum()) or c == "&" else " " for c in text)
        return keyword in words.split()
    return keyword in text


def find_places(question: str, knowledge: NavigationKnowledge) -> list[Place]:
    """Places whose keywords occur in the question (longest match first; none → [])."""
    text = question.lower()
    scored: list[tuple[int, int, Place]] = []
    for index, place in enumerate(knowledge.places):
        hits = [len(k) for k in place.keywords if _matches(k, text)]
        if hits:
            scored.append((-max(hits), index, place))
    return [p for _s, _i, p in sorted(scored, key=lambda x: (x[0], x[1]))]
