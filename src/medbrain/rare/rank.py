"""Rank rare diseases for a case and explain each candidate (DESIGN.md §3 ``rare rank``).

The output never states a diagnosis: each candidate is something to *consider*, with the
features it explains, those it does not, those that contradict it, and the work-up to
consider (rule packs first, then generic genetic testing and referral).

References
----------
- Robinson PN, et al. LIRICAL. Am J Hum Genet 2020;107:403-17 (likelihood-ratio ranking).
- Köhler S, et al. Phenomizer. Am J Hum Genet 2009;85:457-64 (IC-based similarity).
- Garcia-Pavia P, et al. Eur Heart J 2021;42:1554-68 (cardiac amyloidosis red flags).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.rare.knowledge import RareKnowledge, RulePack, WorkupItem
from medbrain.rare.model import RareCase, parse_case
from medbrain.rare.ontology import PhenotypeIndex, hpo_id
from medbrain.rare.recommend import Suggestion, suggest_phenotypes
from medbrain.rare.score import (
    REPRESENT_OMIM,
    ScoringParams,
    pair_scores,
    probabilities,
    ranked_columns,
    score_case,
)

DEFAULT_TOP = 20
PARTIAL_MIN_GAIN = 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One disease to consider, with its explanation."""

    disease_id: str
    name: str
    score: float
    rank: int
    log_score: float
    matched_hpo: tuple[str, ...]
    partial_hpo: tuple[str, ...]
    unmatched_hpo: tuple[str, ...]
    contradicting_hpo: tuple[str, ...]
    workup: tuple[str, ...]
    explanation: str
    rule_packs: tuple[str, ...]
    equivalent_ids: tuple[str, ...] = ()
    absent_hpo: tuple[str, ...] = ()
    scored_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "disease_id": self.disease_id,
            "name": self.name,
            "score": self.score,
            "rank": self.rank,
            "matched_hpo": list(self.matched_hpo),
            "workup": list(self.workup),
            "partially_matched_hpo": list(self.partial_hpo),
            "unmatched_hpo": list(self.unmatched_hpo),
            "contradicting_hpo": list(self.contradicting_hpo),
            "log_score": self.log_score,
            "explanation": self.explanation,
            "rule_packs": list(self.rule_packs),
            "equivalent_ids": list(self.equivalent_ids),
            "recorded_absent_hpo": list(self.absent_hpo),
            "scored_id": self.scored_id or self.disease_id,
        }


@dataclass(frozen=True, slots=True)
class PackHit:
    """A rule pack whose red flags are present in the case."""

    pack: RulePack
    flags: tuple[str, ...]
    lang: str

    def to_dict(self) -> dict[str, Any]:
        notes = {f.hpo: (f.en if self.lang == "en" else f.zh) for f in self.pack.red_flags}
        return {
            "pack_id": self.pack.pack_id,
            "name": self.pack.name(self.lang),
            "red_flags": [{"hpo": h, "note": notes[h]} for h in self.flags],
            "message": t(
                "rare.pack",
                self.lang,
                name=self.pack.name(self.lang),
                count=len(self.flags),
                flags="; ".join(notes[h] for h in self.flags),
            ),
            "workup": [_consider(w, self.lang) for w in self.pack.workup],
            "diseases": list(self.pack.diseases),
            "sources": list(self.pack.sources),
        }


@dataclass(frozen=True, slots=True)
class RankResult:
    candidates: tuple[Candidate, ...]
    case: RareCase
    packs: tuple[PackHit, ...]
    ontology_version: str
    seconds: float
    annotations_version: str = ""
    suggested: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.to_dict() for c in self.candidates],
            "suggested_hpo": list(self.suggested),
            "hpo_used": [hpo_id(n) for n in self.case.observed],
            "excluded_hpo_used": [hpo_id(n) for n in self.case.excluded],
            "hpo_replaced": [
                {"obsolete": r.obsolete, "replacement": r.replacement} for r in self.case.replaced
            ],
            "text_matches": [
                {"hpo": m.hpo, "quote": m.quote, "start": m.start, "excluded": m.excluded}
                for m in self.case.text_matches
            ],
            "lab_phenotypes": [p.to_dict() for p in self.case.lab_matches],
            "rule_packs": [p.to_dict() for p in self.packs],
            "ontology_version": self.ontology_version,
            "annotations_version": self.annotations_version,
            "seconds": round(self.seconds, 4),
        }


def _consider(item: WorkupItem, lang: str) -> str:
    return t(f"rare.consider.{item.kind}", lang, text=item.text(lang))


def rank_case(
    case: RareCase,
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    *,
    top: int = DEFAULT_TOP,
    lang: str = "zh",
    params: ScoringParams = ScoringParams(),
    merge: bool = True,
    representative: str = REPRESENT_OMIM,
) -> RankResult:
    """Rank every OMIM/Orphanet disease for a validated case; return the top ``top``.

    With ``merge`` an OMIM and an Orphanet id naming the same disease (MONDO
    exact matches) are listed once, with the other in ``equivalent_ids``: under the OMIM id
    (``representative="omim"``, default) or the better-scoring id (``"score"``, the
    previous release). The pair is ranked by the better of its two scores, and the score,
    matched, unmatched and contradicting features are those of the id whose annotations
    gave it (``scored_id``).
    """
    started = time.perf_counter()
    observed = [index.term_row[n] for n in case.observed]
    excluded = [index.term_row[n] for n in case.excluded]
    matrix = score_case(
        index, observed, excluded, sex=case.sex, age_years=case.age_years, params=params
    )
    prob = probabilities(matrix.total, params.temperature)
    order = ranked_columns(index, matrix.total, merge=merge, representative=representative)
    order = order[: max(top, 0)]
    best, source = pair_scores(index, matrix.total)
    if not merge:
        best, source = matrix.total, np.arange(len(best), dtype=np.int32)
    present = set(case.observed)
    packs = tuple(_pack_hits(knowledge, index, present, lang))
    candidates = []
    for position, column in enumerate(order, start=1):
        listed = int(column)
        c = int(source[listed])
        matched, partial, unmatched = [], [], []
        for k, number in enumerate(case.observed):
            if matrix.exact[k][c]:
                matched.append(hpo_id(number))
            elif matrix.per_term[k, c] > PARTIAL_MIN_GAIN:
                partial.append(hpo_id(number))
            else:
                unmatched.append(hpo_id(number))
        absent = [
            hpo_id(number)
            for k, number in enumerate(case.observed)
            if matrix.absent_observed and matrix.absent_observed[k][c]
        ]
        contradicting = [
            hpo_id(case.excluded[k]) for k, mask in enumerate(matrix.contradicted) if mask[c]
        ] + absent
        partner = int(index.equivalent[listed]) if len(index.equivalent) else -1
        equivalents = (index.disease_ids[partner],) if merge and partner >= 0 else ()
        disease_id = index.disease_ids[listed]
        disease_packs = knowledge.packs_for(disease_id, *equivalents)
        workup = [_consider(w, lang) for p in disease_packs for w in p.workup]
        workup += [_consider(w, lang) for w in knowledge.generic_workup]
        name = index.disease_names[listed]
        candidates.append(
            Candidate(
                disease_id=disease_id,
                name=name,
                score=round(float(prob[c]), 6),
                rank=position,
                log_score=round(float(best[listed]), 4),
                matched_hpo=tuple(matched),
                partial_hpo=tuple(partial),
                unmatched_hpo=tuple(unmatched),
                contradicting_hpo=tuple(contradicting),
                workup=tuple(dict.fromkeys(workup)),
                explanation=t(
                    "rare.explain",
                    lang,
                    name=name,
                    matched=len(matched),
                    partial=len(partial),
                    unmatched=len(unmatched),
                    contradicting=len(contradicting),
                ),
                rule_packs=tuple(p.pack_id for p in disease_packs),
                equivalent_ids=equivalents,
                absent_hpo=tuple(absent),
                scored_id=index.disease_ids[c],
            )
        )
    suggestions = suggest_phenotypes(index, matrix.total, observed, excluded, params=params)
    return RankResult(
        candidates=tuple(candidates),
        case=case,
        packs=packs,
        ontology_version=index.version,
        seconds=time.perf_counter() - started,
        annotations_version=index.annotations_version,
        suggested=tuple(_suggestion(s, index, knowledge, lang) for s in suggestions),
    )


def _suggestion(
    suggestion: Suggestion, index: PhenotypeIndex, knowledge: RareKnowledge, lang: str
) -> dict[str, Any]:
    number = int(index.term_numbers[suggestion.row])
    name = knowledge.label(hpo_id(number), lang) or index.names.get(number, hpo_id(number))
    shown = [
        {
            "disease_id": index.disease_ids[s.column],
            "scored_id": index.disease_ids[s.scored_column],
            "frequency": s.frequency,
            "basis": s.basis,
        }
        for s in suggestion.shown
    ]
    parts = [
        t(
            f"rare.suggest.{s.basis}",
            lang,
            disease=index.disease_names[s.column],
            percent=round(100 * s.frequency),
        )
        for s in suggestion.shown
    ]
    return {
        "hpo": hpo_id(number),
        "name": name,
        "gain_bits": suggestion.gain_bits,
        "frequencies": shown,
        "message": t(
            "rare.suggest.item", lang, name=name, hpo=hpo_id(number), frequencies="; ".join(parts)
        ),
    }


def _pack_hits(
    knowledge: RareKnowledge, index: PhenotypeIndex, present: set[int], lang: str
) -> list[PackHit]:
    """Packs whose red flags (or a more specific term below one) reach ``min_red_flags``."""
    rows = {index.term_row[n] for n in present}
    hits = []
    for pack in knowledge.packs:
        flags = []
        for flag in pack.red_flags:
            number = int(flag.hpo[3:])
            row = index.term_row.get(number)
            if row is None:
                continue
            if any(row in index.ancestors[r] for r in rows):
                flags.append(flag.hpo)
        flags = list(dict.fromkeys(flags))
        if len(flags) >= pack.min_red_flags:
            hits.append(PackHit(pack, tuple(flags), lang))
    return hits


def rank_document(
    document: Any,
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    *,
    top: int = DEFAULT_TOP,
    lang: str = "zh",
    source: str = "case",
    params: ScoringParams = ScoringParams(),
    merge_equivalents: bool = True,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Validate and rank one case object or an array of cases (answered in the same order).

    Every case in an array is validated before any is ranked, so invalid input yields an
    error and no partial output.
    """
    if isinstance(document, list):
        if not document:
            raise InputError(source, "$", t("rare.error.empty_array", lang))
        cases = [
            parse_case(item, index, knowledge, source=source, prefix=f"[{i}].", lang=lang)
            for i, item in enumerate(document)
        ]
        return [
            rank_case(
                c, index, knowledge, top=top, lang=lang, params=params, merge=merge_equivalents
            ).to_dict()
            for c in cases
        ]
    case = parse_case(document, index, knowledge, source=source, lang=lang)
    return rank_case(
        case, index, knowledge, top=top, lang=lang, params=params, merge=merge_equivalents
    ).to_dict()
