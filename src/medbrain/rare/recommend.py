"""Which phenotypes to look for next: the unrecorded features that best tell the leading
candidates apart.

A ranking with several close candidates is most useful with the question that separates
them ("does the patient have hepatomegaly? 80 % in A, rare in B"). For each unrecorded
feature annotated in a leading candidate, the expected information gain about which
candidate is right is computed from how often each candidate shows the feature
(phenotype.hpoa frequencies, propagated as in scoring) and the candidates' current
probabilities; the features with the largest gain are suggested, with the frequencies
that make them informative.

A feature a candidate is not annotated with is assumed to occur at its background rate,
the share of all diseases annotated with it (at least ``MIN_FREQUENCY``); a feature the
candidate records as absent occurs at ``MIN_FREQUENCY``; an annotation without a frequency
counts as ``unknown_freq``, as in scoring. Each shown frequency says which of these it is,
so that an assumed rate is never presented as a measured one.

References
----------
- Köhler S, et al. Clinical diagnostics in human genetics with semantic similarity searches
  in ontologies. Am J Hum Genet 2009;85:457-64 (Phenomizer: features to check next).
- Cover TM, Thomas JA. Elements of Information Theory, 2nd ed. 2006, ch. 2 (mutual
  information of a binary question and the candidate distribution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medbrain.rare.ontology import FloatArray, PhenotypeIndex
from medbrain.rare.score import ScoringParams, pair_scores, ranked_columns

#: Candidates whose distinction the suggestions aim at.
POOL = 30
#: Leading candidates whose unrecorded annotations are the questions considered.
SOURCES = 10
#: Suggestions returned.
LIMIT = 5
#: Floor (and ceiling ``1 - MIN_FREQUENCY``) on a feature's frequency in a candidate.
MIN_FREQUENCY = 0.01
#: Candidates whose frequencies each suggestion shows.
SHOWN = 3


#: How a candidate's frequency of a suggested feature is known.
KNOWN = "frequency"  # phenotype.hpoa gives it
ANNOTATED = "annotated"  # annotated, no frequency given (``unknown_freq`` is assumed)
NOT_ANNOTATED = "not_annotated"  # background rate assumed
RECORDED_ABSENT = "absent"  # phenotype.hpoa records the feature as absent


@dataclass(frozen=True, slots=True)
class Shown:
    """One leading candidate's frequency of a suggested feature, and how it is known."""

    column: int  # as listed (OMIM/Orphanet twins under one id)
    scored_column: int  # whose annotations give the frequency (the candidate's scored id)
    frequency: float
    basis: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An unrecorded feature worth looking for, and how often the leading candidates show it."""

    row: int
    gain_bits: float
    shown: tuple[Shown, ...]


def suggest_phenotypes(
    index: PhenotypeIndex,
    total: FloatArray,
    observed_rows: list[int],
    excluded_rows: list[int],
    *,
    params: ScoringParams = ScoringParams(),
    pool: int = POOL,
    limit: int = LIMIT,
    questions: list[int] | None = None,
) -> list[Suggestion]:
    """The ``limit`` features with the largest expected information gain about which of the
    ``pool`` leading candidates (OMIM/Orphanet twins listed once) is right, chosen from
    ``questions`` (default: :func:`unrecorded_features` of the first ``SOURCES``)."""
    listed = ranked_columns(index, total)[:pool]
    if len(listed) < 2:
        return []
    best, source = pair_scores(index, total)
    scored = source[listed]
    weights = np.exp((best[listed] - best[listed].max()) / params.temperature)
    prior = weights / weights.sum()
    if questions is None:
        questions = unrecorded_features(
            index, scored[:SOURCES].tolist(), observed_rows, excluded_rows
        )
    if not questions:
        return []
    looked_up = [_frequencies(index, q, scored, params) for q in questions]
    frequency = np.array([f for f, _ in looked_up])
    gain = _information_gain(prior, np.clip(frequency, MIN_FREQUENCY, 1.0 - MIN_FREQUENCY))
    order = np.lexsort((np.arange(len(questions)), -gain))[:limit]
    return [
        Suggestion(
            row=questions[k],
            gain_bits=round(float(gain[k]), 4),
            shown=tuple(
                Shown(
                    int(listed[j]),
                    int(scored[j]),
                    round(float(frequency[k, j]), 3),
                    looked_up[k][1][j],
                )
                for j in range(min(SHOWN, len(listed)))
            ),
        )
        for k in order
        if gain[k] > 0.0
    ]


def unrecorded_features(
    index: PhenotypeIndex, columns: list[int], observed_rows: list[int], excluded_rows: list[int]
) -> list[int]:
    """Features annotated in ``columns`` that the record does not settle: not implied by an
    observed feature (itself or broader) nor by an excluded one (itself or narrower), and not
    a refinement of an observed feature (*multiple* café-au-lait spots beside café-au-lait
    spots), whose frequency a disease annotated only with the broader term does not give."""
    implied_present: set[int] = set()
    for q in observed_rows:
        implied_present.update(index.ancestors[q].tolist())
    recorded = set(excluded_rows) | set(observed_rows)
    return sorted(
        {
            row
            for column in columns
            for row in index.disease_terms[column]
            if row not in implied_present and recorded.isdisjoint(index.ancestors[row].tolist())
        }
    )


def _frequencies(
    index: PhenotypeIndex, row: int, columns: npt.NDArray[np.int32], params: ScoringParams
) -> tuple[FloatArray, list[str]]:
    """How often each disease column shows the feature ``row`` (or a feature below it), and
    how that is known."""
    postings = index.term_diseases[row]
    out = np.full(len(columns), max(len(postings) / index.n_diseases, MIN_FREQUENCY))
    basis = np.full(len(columns), NOT_ANNOTATED, dtype=object)
    if len(postings) == 0:  # annotated to no disease at all
        return out, [NOT_ANNOTATED] * len(columns)
    where = np.searchsorted(postings, columns)
    hit = (where < len(postings)) & (postings[np.minimum(where, len(postings) - 1)] == columns)
    if index.term_freq:
        known = index.term_freq[row][where[hit]].astype(np.float64)
        unknown = index.term_unknown[row][where[hit]]
        value = np.where(np.isnan(known), params.unknown_freq, known)
        out[hit] = np.where(unknown, np.maximum(value, params.unknown_freq), value)
        basis[hit] = np.where(np.isnan(known), ANNOTATED, KNOWN)
    else:
        out[hit] = params.unknown_freq
        basis[hit] = ANNOTATED
    if index.term_absent and len(index.term_absent[row]):
        absent = np.isin(columns, index.term_absent[row])
        out[absent] = MIN_FREQUENCY
        basis[absent] = RECORDED_ABSENT
    return out, [str(b) for b in basis]


def _information_gain(prior: FloatArray, frequency: FloatArray) -> FloatArray:
    """Mutual information (bits) between each yes/no feature (rows of ``frequency``, the
    chance each candidate shows it) and the candidate, under ``prior``."""
    yes = frequency @ prior
    joint_yes = frequency * prior
    joint_no = (1.0 - frequency) * prior

    def entropy_part(joint: FloatArray, marginal: FloatArray) -> FloatArray:
        ratio = joint / marginal[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0.0, joint * np.log2(ratio), 0.0)
        result: FloatArray = terms.sum(axis=1)
        return result

    prior_entropy = -float(np.sum(prior[prior > 0] * np.log2(prior[prior > 0])))
    after = -(entropy_part(joint_yes, yes) + entropy_part(joint_no, 1.0 - yes))
    result: FloatArray = prior_entropy - after
    return result
