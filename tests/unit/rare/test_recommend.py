"""Features to look for next: the question that best separates the leading candidates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from medbrain.rare import PhenotypeIndex, RareKnowledge, rank_document
from medbrain.rare.recommend import (
    ANNOTATED,
    KNOWN,
    NOT_ANNOTATED,
    RECORDED_ABSENT,
    _information_gain,
    suggest_phenotypes,
)
from medbrain.rare.score import score_case

CAFE_AU_LAIT, AXILLARY_FRECKLING = "HP:0000957", "HP:0000997"
NEUROFIBROMAS = "HP:0001067"
LEGIUS = "OMIM:611431"


def brute_force_gain(prior: list[float], frequencies: list[float]) -> float:
    """I(D; answer) = Σ over answers and candidates of P(a, d) · log2(P(d | a) / P(d))."""
    total = 0.0
    for answer, (d, p) in itertools.product((True, False), enumerate(prior)):
        joint = p * (frequencies[d] if answer else 1.0 - frequencies[d])
        marginal = sum(
            q * (frequencies[k] if answer else 1.0 - frequencies[k]) for k, q in enumerate(prior)
        )
        if joint > 0:
            total += joint * math.log2(joint / marginal / p)
    return total


def test_information_gain_equals_the_mutual_information() -> None:
    rng = np.random.default_rng(3)
    prior = rng.dirichlet(np.ones(6))
    frequencies = rng.uniform(0.01, 0.99, size=(20, 6))
    gain = _information_gain(prior, frequencies)
    for row, value in zip(frequencies, gain, strict=True):
        assert value == pytest.approx(brute_force_gain(prior.tolist(), row.tolist()), abs=1e-9)


def test_a_feature_that_splits_two_even_candidates_is_worth_one_bit() -> None:
    prior = np.array([0.5, 0.5])
    gain = _information_gain(prior, np.array([[1.0, 0.0], [0.5, 0.5], [0.9, 0.9]]))
    assert gain == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)


def rows(index: PhenotypeIndex, *ids: str) -> list[int]:
    return [index.term_row[int(h[3:])] for h in ids]


def test_suggestions_leave_out_what_the_record_already_settles(index: PhenotypeIndex) -> None:
    observed = rows(index, CAFE_AU_LAIT, AXILLARY_FRECKLING)
    excluded = rows(index, NEUROFIBROMAS)
    total = score_case(index, observed, excluded).total
    suggestions = suggest_phenotypes(index, total, observed, excluded)
    assert len(suggestions) == 5
    implied = {a for q in observed for a in index.ancestors[q].tolist()}
    for s in suggestions:
        lineage = set(index.ancestors[s.row].tolist())
        assert s.row not in implied  # neither observed nor broader than an observed feature
        assert not lineage & set(observed)  # nor a refinement of one
        assert not lineage & set(excluded)  # nor excluded or narrower than an excluded one
    gains = [s.gain_bits for s in suggestions]
    assert gains == sorted(gains, reverse=True) and gains[-1] > 0


def test_each_shown_frequency_says_how_it_is_known(index: PhenotypeIndex) -> None:
    observed = rows(index, CAFE_AU_LAIT, AXILLARY_FRECKLING)
    total = score_case(index, observed, []).total
    bases = set()
    for s in suggest_phenotypes(index, total, observed, [], limit=20):
        postings = index.term_diseases[s.row].tolist()
        for shown in s.shown:
            bases.add(shown.basis)
            source = shown.scored_column  # the listed id or its twin, whichever scored
            assert source in (shown.column, int(index.equivalent[shown.column]))
            annotated = source in postings
            if shown.basis == KNOWN:
                known = float(index.term_freq[s.row][postings.index(source)])
                assert annotated and shown.frequency == pytest.approx(known, abs=1e-3)
            elif shown.basis == ANNOTATED:
                assert annotated
            elif shown.basis == NOT_ANNOTATED:
                assert not annotated
            else:
                assert shown.basis == RECORDED_ABSENT
                assert source in index.term_absent[s.row].tolist()
    assert {KNOWN, NOT_ANNOTATED} <= bases


def test_answering_the_top_suggestion_separates_the_leading_candidates(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    case = {"hpo": [CAFE_AU_LAIT, AXILLARY_FRECKLING]}
    before = rank_document(case, index, knowledge, top=5, lang="en")
    assert isinstance(before, dict)
    assert before["candidates"][0]["disease_id"] == LEGIUS
    top = before["suggested_hpo"][0]
    # Legius syndrome lacks the feature; another leading candidate shows it
    basis = {f["disease_id"]: f["basis"] for f in top["frequencies"]}
    assert basis[LEGIUS] in (NOT_ANNOTATED, RECORDED_ABSENT)
    assert any(f["basis"] == KNOWN and f["frequency"] >= 0.4 for f in top["frequencies"])
    present = rank_document({"hpo": [*case["hpo"], top["hpo"]]}, index, knowledge, top=5)
    absent = rank_document({**case, "excluded_hpo": [top["hpo"]]}, index, knowledge, top=5)
    assert isinstance(present, dict) and isinstance(absent, dict)
    assert LEGIUS not in [c["disease_id"] for c in present["candidates"]]
    assert absent["candidates"][0]["disease_id"] == LEGIUS


def test_messages_in_chinese_and_english(index: PhenotypeIndex, knowledge: RareKnowledge) -> None:
    case = {"hpo": [CAFE_AU_LAIT, AXILLARY_FRECKLING]}
    zh = rank_document(case, index, knowledge, top=5, lang="zh")
    en = rank_document(case, index, knowledge, top=5, lang="en")
    assert isinstance(zh, dict) and isinstance(en, dict)
    assert [s["hpo"] for s in zh["suggested_hpo"]] == [s["hpo"] for s in en["suggested_hpo"]]
    assert all(s["message"].startswith("可核查") for s in zh["suggested_hpo"])
    assert all(s["message"].startswith("Look for") for s in en["suggested_hpo"])
    assert any("未注释此表型" in s["message"] for s in zh["suggested_hpo"])


def test_nothing_to_separate_with_a_single_candidate(index: PhenotypeIndex) -> None:
    observed = rows(index, CAFE_AU_LAIT)
    total = score_case(index, observed, []).total
    assert suggest_phenotypes(index, total, observed, [], pool=1) == []
