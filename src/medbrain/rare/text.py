"""Free text (Chinese or English) → observed and excluded HPO terms.

English: every HPO label shipped by hpo3 (greedy longest match on word n-grams), plus the
English labels of the lexicon. Chinese: the curated lexicon in
``knowledge/rare/zh_lexicon.tsv`` (HPO's official Chinese labels plus MedBrain's own clinical
synonyms), by forward maximum matching over the characters; no segmenter is needed for a
closed vocabulary. A finding is *excluded* when a negation cue precedes it in the same clause
(无, 否认, 未见, 未, 没有, 不伴, 阴性; no, denies, without, negative for, absence of). Items
joined by 、/和/及/or/and share the cue ("无发热、咳嗽" excludes both).

References
----------
- Chapman WW, et al. A simple algorithm for identifying negated findings and diseases in
  discharge summaries (NegEx). J Biomed Inform 2001;34:301-10.
- HPO Chinese translation: obophenotype/human-phenotype-ontology,
  src/translations/hp-zh.babelon.tsv (HPO licence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medbrain.rare.knowledge import RareKnowledge
from medbrain.rare.ontology import PhenotypeIndex, hpo_id

ZH_NEGATION = ("否认", "未见", "未及", "没有", "不伴", "未", "无")
ZH_NEUTRAL = ("无明显诱因", "无诱因", "无明显原因", "原因不明", "未明确")
EN_NEGATION = ("no", "not", "denies", "denied", "without", "negative for", "absence of", "absent")
CLAUSE_SPLIT = re.compile(r"[。；;，,.!?！？\n]|但|but|however", re.IGNORECASE)
WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
MAX_WORDS = 8


@dataclass(frozen=True, slots=True)
class TextMatch:
    """One phenotype found in the text, with the exact span it came from."""

    hpo: str
    quote: str
    start: int
    excluded: bool


@dataclass(frozen=True, slots=True)
class _Matcher:
    english: dict[str, int]
    chinese: dict[str, int]
    zh_first: dict[str, tuple[str, ...]]


@lru_cache(maxsize=2)
def _matcher(index: PhenotypeIndex, knowledge: RareKnowledge) -> _Matcher:
    english: dict[str, int] = {}
    for number in index.term_row:
        label = index.names[number].lower()
        if len(label) >= 4 and number != 1:
            english.setdefault(label, number)
    chinese: dict[str, int] = {}
    for entry in knowledge.lexicon:
        number = int(entry.hpo[3:])
        english.setdefault(entry.label_en.lower(), number)
        for phrase in (entry.label_zh, *entry.synonyms_zh):
            if phrase:
                chinese.setdefault(phrase, number)
    first: dict[str, list[str]] = {}
    for phrase in chinese:
        first.setdefault(phrase[0], []).append(phrase)
    zh_first = {k: tuple(sorted(v, key=len, reverse=True)) for k, v in first.items()}
    return _Matcher(english, chinese, zh_first)


def extract_phenotypes(
    text: str, index: PhenotypeIndex, knowledge: RareKnowledge
) -> list[TextMatch]:
    """Find HPO terms in ``text``; each keeps its quote and whether it is negated."""
    matcher = _matcher(index, knowledge)
    found: list[TextMatch] = []
    offset = 0
    for clause in CLAUSE_SPLIT.split(text):
        start = text.find(clause, offset) if clause else offset
        offset = max(offset, start + len(clause))
        found.extend(_zh_clause(clause, start, matcher))
        found.extend(_en_clause(clause, start, matcher))
    return found


def _zh_clause(clause: str, base: int, matcher: _Matcher) -> list[TextMatch]:
    masked = clause
    for neutral in ZH_NEUTRAL:
        masked = masked.replace(neutral, "#" * len(neutral))
    out: list[TextMatch] = []
    i = 0
    while i < len(masked):
        hit = next(
            (p for p in matcher.zh_first.get(masked[i], ()) if masked.startswith(p, i)), None
        )
        if hit is None:
            i += 1
            continue
        before = masked[:i]
        # a cue inside an earlier matched phrase (e.g. 无汗) does not negate later ones
        for m in out:
            s = m.start - base
            before = before[:s] + "#" * len(m.quote) + before[s + len(m.quote) :]
        negated = any(cue in before for cue in ZH_NEGATION)
        out.append(TextMatch(hpo_id(matcher.chinese[hit]), hit, base + i, negated))
        i += len(hit)
    return out


def _en_clause(clause: str, base: int, matcher: _Matcher) -> list[TextMatch]:
    lower = clause.lower()
    words = [(m.group(0), m.start(), m.end()) for m in WORD.finditer(lower)]
    out: list[TextMatch] = []
    i = 0
    while i < len(words):
        hit = None
        for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
            phrase = lower[words[i][1] : words[i + n - 1][2]]
            key = phrase if phrase in matcher.english else phrase[:-1]
            if key in matcher.english and (key == phrase or phrase.endswith("s")):
                hit = (key, n)
                break
        if hit is None:
            i += 1
            continue
        phrase, n = hit
        start = words[i][1]
        before = " " + lower[:start]
        negated = any(re.search(rf"\b{re.escape(cue)}\b", before) for cue in EN_NEGATION)
        quote = clause[start : words[i + n - 1][2]]
        out.append(TextMatch(hpo_id(matcher.english[phrase]), quote, base + start, negated))
        i += n
    return out
