"""Rare-disease knowledge: rule packs and the Chinese phenotype lexicon, validated at load.

References
----------
- Garcia-Pavia P, et al. Eur Heart J 2021;42:1554-68 (cardiac amyloidosis red flags).
- 国家卫生健康委员会等.《第一批罕见病目录》(国卫医发〔2018〕10号).
- HPO Chinese translation, obophenotype/human-phenotype-ontology
  ``src/translations/hp-zh.babelon.tsv`` (HPO licence, https://hpo.jax.org/app/license).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError

RULE_PACKS = "rare/rule_packs.yaml"
ZH_LEXICON = "rare/zh_lexicon.tsv"
WORKUP_KINDS = ("test", "consult", "drug")


@dataclass(frozen=True, slots=True)
class WorkupItem:
    """One thing to consider: a test, a consultation or a drug option."""

    kind: str
    zh: str
    en: str

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True, slots=True)
class RedFlag:
    hpo: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class RulePack:
    """A disease (group) that hides in common presentations, with what to consider."""

    pack_id: str
    version: str
    name_zh: str
    name_en: str
    diseases: tuple[str, ...]
    red_flags: tuple[RedFlag, ...]
    min_red_flags: int
    workup: tuple[WorkupItem, ...]
    sources: tuple[str, ...]

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    hpo: str
    label_en: str
    label_zh: str
    synonyms_zh: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class RareKnowledge:
    version: str
    packs: tuple[RulePack, ...]
    generic_workup: tuple[WorkupItem, ...]
    lexicon: tuple[LexiconEntry, ...]
    screen_top_rank: int = 5

    def label(self, hpo: str, lang: str) -> str:
        """The term's Chinese label (HPO's translation, else the first curated synonym) for
        ``lang="zh"``, its English label otherwise; empty when the lexicon lacks the term."""
        entry = _lexicon_by_id(self).get(hpo)
        if entry is None:
            return ""
        if lang == "en":
            return entry.label_en
        return entry.label_zh or next(iter(entry.synonyms_zh), "") or entry.label_en

    def packs_for(self, *disease_ids: str) -> list[RulePack]:
        """Packs naming any of ``disease_ids`` (a disease and its OMIM/Orphanet equivalent)."""
        wanted = set(disease_ids)
        return [p for p in self.packs if wanted.intersection(p.diseases)]


def _text(name: str, path: Path | None) -> str:
    try:
        if path is not None:
            return path.read_text(encoding="utf-8")
        return resources.files("medbrain.knowledge").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(f"knowledge file {path or name} is missing") from None


def _workup(where: str, raw: Any) -> tuple[WorkupItem, ...]:
    if not isinstance(raw, list):
        raise KnowledgeError(f"{where}: must be a list")
    items = []
    for i, row in enumerate(raw):
        if not isinstance(row, dict) or row.get("kind") not in WORKUP_KINDS:
            raise KnowledgeError(f"{where}[{i}]: kind must be one of {WORKUP_KINDS}")
        if not isinstance(row.get("zh"), str) or not isinstance(row.get("en"), str):
            raise KnowledgeError(f"{where}[{i}]: needs zh and en text")
        items.append(WorkupItem(row["kind"], row["zh"], row["en"]))
    return tuple(items)


def parse_rule_packs(
    data: Any, name: str = RULE_PACKS
) -> tuple[str, tuple[RulePack, ...], tuple[WorkupItem, ...]]:
    """Validate the rule-pack document; errors name the file and key."""
    if not isinstance(data, dict) or not isinstance(data.get("packs"), list):
        raise KnowledgeError(f"{name}: top level needs a 'packs' list")
    packs = []
    seen: set[str] = set()
    for i, row in enumerate(data["packs"]):
        where = f"{name}: packs[{i}]"
        if not isinstance(row, dict):
            raise KnowledgeError(f"{where}: must be a mapping")
        for key in ("pack_id", "version", "name", "diseases", "red_flags", "workup", "sources"):
            if key not in row:
                raise KnowledgeError(f"{where}: missing {key!r}")
        if row["pack_id"] in seen:
            raise KnowledgeError(f"{where}: duplicate pack_id {row['pack_id']!r}")
        seen.add(row["pack_id"])
        if not row["sources"]:
            raise KnowledgeError(f"{where}: every pack cites at least one source")
        flags = []
        for j, flag in enumerate(row["red_flags"]):
            hpo = flag.get("hpo") if isinstance(flag, dict) else None
            note = flag.get("note") if isinstance(flag, dict) else None
            if not isinstance(hpo, str) or not hpo.startswith("HP:") or not isinstance(note, dict):
                raise KnowledgeError(f"{where}.red_flags[{j}]: needs hpo (HP:...) and note")
            flags.append(RedFlag(hpo, str(note.get("zh", "")), str(note.get("en", ""))))
        packs.append(
            RulePack(
                pack_id=str(row["pack_id"]),
                version=str(row["version"]),
                name_zh=str(row["name"]["zh"]),
                name_en=str(row["name"]["en"]),
                diseases=tuple(str(d) for d in row["diseases"]),
                red_flags=tuple(flags),
                min_red_flags=int(row.get("min_red_flags", 2)),
                workup=_workup(f"{where}.workup", row["workup"]),
                sources=tuple(str(s) for s in row["sources"]),
            )
        )
    generic = _workup(f"{name}: generic_workup", data.get("generic_workup", []))
    return str(data.get("version", "")), tuple(packs), generic


def parse_lexicon(text: str, name: str = ZH_LEXICON) -> tuple[LexiconEntry, ...]:
    """Parse the tab-separated zh lexicon (comment lines start with ``#``)."""
    entries = []
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 4 or not cells[0].startswith("HP:"):
            raise KnowledgeError(f"{name}: row {number}: expected 4 tab-separated cells")
        synonyms = tuple(s for s in cells[3].split("|") if s)
        entries.append(LexiconEntry(cells[0], cells[1], cells[2], synonyms))
    return tuple(entries)


def load_rare_knowledge(
    rule_packs: Path | None = None, lexicon: Path | None = None
) -> RareKnowledge:
    """Load rule packs and the zh lexicon (shipped files unless paths are given)."""
    data = yamlio.parse(_text(RULE_PACKS, rule_packs))
    version, packs, generic = parse_rule_packs(data, str(rule_packs or RULE_PACKS))
    entries = parse_lexicon(_text(ZH_LEXICON, lexicon), str(lexicon or ZH_LEXICON))
    top_rank = screen_top_rank(data, str(rule_packs or RULE_PACKS))
    return RareKnowledge(version, packs, generic, entries, top_rank)


def screen_top_rank(data: Any, name: str = RULE_PACKS) -> int:
    """``screen.top_rank``: how high a pack's disease must rank for the record screen to
    raise the pack (:mod:`medbrain.rare.screen`); 5 when the file has no ``screen``."""
    screen = data.get("screen", {"top_rank": 5}) if isinstance(data, dict) else None
    value = screen.get("top_rank") if isinstance(screen, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise KnowledgeError(f"{name}: screen.top_rank must be a whole number from 1 to 100")
    return value


@lru_cache(maxsize=1)
def default_rare_knowledge() -> RareKnowledge:
    """The shipped knowledge, loaded once per process."""
    return load_rare_knowledge()


@lru_cache(maxsize=4)
def _lexicon_by_id(knowledge: RareKnowledge) -> dict[str, LexiconEntry]:
    return {entry.hpo: entry for entry in knowledge.lexicon}
