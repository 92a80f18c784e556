"""How annotation frequencies combine at an ancestor (noisy-or) and weight the disease side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medbrain.rare import PhenotypeIndex
from medbrain.rare.ontology import HIGHEST, NOISY_OR, propagate_frequencies
from medbrain.rare.score import ScoringParams, _disease_side

# a toy is_a closure by term number: 1 is the root, 2 and 3 are its children, 4 is below 2
ROWS = {1: frozenset({1}), 2: frozenset({1, 2}), 3: frozenset({1, 3}), 4: frozenset({1, 2, 4})}


def test_independent_features_combine_by_noisy_or_at_their_common_ancestor() -> None:
    got = propagate_frequencies({2: 0.5, 3: 0.4}, ROWS, NOISY_OR)
    assert got[2] == pytest.approx(0.5)
    assert got[3] == pytest.approx(0.4)
    assert got[1] == pytest.approx(1.0 - 0.5 * 0.6)
    # the previous rule kept the highest single frequency
    assert propagate_frequencies({2: 0.5, 3: 0.4}, ROWS, HIGHEST)[1] == pytest.approx(0.5)
    # an obligate feature makes every ancestor certain, a single one is kept as it is
    assert propagate_frequencies({4: 1.0, 3: 0.1}, ROWS)[1] == pytest.approx(1.0)
    assert propagate_frequencies({4: 0.3}, ROWS) == {1: 0.3, 2: 0.3, 4: 0.3}
    with pytest.raises(ValueError, match="propagation"):
        propagate_frequencies({2: 0.5}, ROWS, "mean")


def _direct(index: PhenotypeIndex, column: int) -> tuple[np.ndarray, np.ndarray]:
    start = int(index.disease_offsets[column])
    stop = start + int(index.disease_sizes[column])
    return index.disease_flat[start:stop], index.disease_freq[start:stop]


def test_index_frequencies_are_the_noisy_or_of_the_annotations_below(
    index: PhenotypeIndex,
) -> None:
    checked = combined = 0
    for column in range(0, index.n_diseases, 97):
        rows, freqs = _direct(index, column)
        known = [(int(r), float(f)) for r, f in zip(rows, freqs, strict=True) if not np.isnan(f)]
        expected: dict[int, float] = {}
        for r, f in known:
            for a in index.ancestors[r].tolist():
                expected[a] = expected.get(a, 1.0) * (1.0 - min(f, 1.0 - 1e-12))
        for a, none in expected.items():
            posting = index.term_diseases[a]
            at = int(np.searchsorted(posting, column))
            assert posting[at] == column
            assert index.term_freq[a][at] == pytest.approx(1.0 - none, abs=1e-5)
            combined += sum(1 for r, _ in known if a in set(index.ancestors[r].tolist())) > 1
            checked += 1
    assert checked > 1_000
    assert combined > 100  # ancestors where several features really combine


def test_coverage_is_the_frequency_weighted_share_of_the_disease_information(
    index: PhenotypeIndex,
) -> None:
    frequency = ScoringParams()
    mean = ScoringParams(coverage="mean")
    ic = index.ic
    for column in (index.column["OMIM:301500"], index.column["OMIM:154700"]):
        rows, freqs = _direct(index, column)
        everything = _disease_side(index, [int(r) for r in rows], frequency)
        assert everything[column] == pytest.approx(1.0)
        # one feature shown: the brute-force share over the disease's annotations
        shown = int(rows[np.nanargmax(freqs)]) if not np.isnan(freqs).all() else int(rows[0])
        common = set(index.ancestors[shown].tolist())
        weights = np.where(np.isnan(freqs), frequency.unknown_freq, freqs)
        numerator = sum(
            w * max((ic[a] for a in common & set(index.ancestors[int(r)].tolist())), default=0.0)
            for r, w in zip(rows, weights, strict=True)
        )
        denominator = float(np.sum(weights * ic[rows]))
        side = _disease_side(index, [shown], frequency)
        assert side[column] == pytest.approx(numerator / denominator, rel=1e-9)
        assert not math.isclose(side[column], _disease_side(index, [shown], mean)[column])
    with pytest.raises(ValueError, match="coverage"):
        _disease_side(index, [0], ScoringParams(coverage="median"))


def test_missing_a_frequent_feature_costs_more_than_missing_an_occasional_one(
    index: PhenotypeIndex,
) -> None:
    """Find a disease where, unweighted, lacking its frequent feature looks no worse than
    lacking its occasional one; weighted by frequency it must look worse."""
    frequency, mean = ScoringParams(), ScoringParams(coverage="mean")
    for column in range(index.n_diseases):
        rows, freqs = _direct(index, column)
        if len(rows) > 12 or np.isnan(freqs).any() or len(rows) < 4:
            continue
        high, low = int(np.argmax(freqs)), int(np.argmin(freqs))
        if freqs[high] < 0.8 or freqs[low] > 0.2:
            continue
        lacks_frequent = [int(r) for k, r in enumerate(rows) if k != high]
        lacks_occasional = [int(r) for k, r in enumerate(rows) if k != low]
        unweighted = (
            _disease_side(index, lacks_frequent, mean)[column],
            _disease_side(index, lacks_occasional, mean)[column],
        )
        if unweighted[0] < unweighted[1]:
            continue
        weighted = (
            _disease_side(index, lacks_frequent, frequency)[column],
            _disease_side(index, lacks_occasional, frequency)[column],
        )
        assert weighted[0] < weighted[1]
        return
    raise AssertionError("no disease with a frequent and an occasional feature of equal weight")
