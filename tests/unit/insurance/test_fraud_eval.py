"""Synthetic claims generator and the evaluation maths."""

from __future__ import annotations

import numpy as np
import pytest

from medbrain.insurance import fraud
from medbrain.insurance.claims_generator import generate_claims


def test_generator_is_reproducible_and_low_prevalence() -> None:
    first = generate_claims(200, 5)
    again = generate_claims(200, 5)
    assert [c.document for c in first] == [c.document for c in again]
    assert [c.label for c in first] == [c.label for c in again]
    other = generate_claims(200, 6)
    assert [c.document for c in first] != [c.document for c in other]
    prevalence = sum(c.label for c in generate_claims(2000, 5)) / 2000
    assert 0.01 <= prevalence <= 0.05


def test_average_precision_on_a_tiny_ranking() -> None:
    # ranks: 1 pos, 2 neg, 3 pos, 4 neg -> AP = (1/1 + 2/3) / 2
    labels = [True, False, True, False]
    scores = [0.9, 0.8, 0.7, 0.1]
    assert fraud.average_precision(labels, scores) == pytest.approx((1 + 2 / 3) / 2)
    assert fraud.precision_at_k(labels, scores, 2) == pytest.approx(0.5)
    assert fraud.precision_at_k(labels, scores, 3) == pytest.approx(2 / 3)
    assert fraud.average_precision([False, False], [0.2, 0.1]) == 0.0


def test_evaluation_reports_prevalence_and_all_negative_accuracy() -> None:
    labels = [True] + [False] * 99
    evaluation = fraud.evaluate(labels, np.linspace(1, 0, 100), np.zeros(100), ks=(50,))
    assert evaluation.prevalence == pytest.approx(0.01)
    assert evaluation.all_negative_accuracy == pytest.approx(0.99)
    assert evaluation.scores["rules"]["pr_auc"] == pytest.approx(1.0)
    assert evaluation.scores["rules"]["precision_at_50"] == pytest.approx(1 / 50)


def test_rules_and_model_rank_injected_cases_above_chance() -> None:
    from medbrain.insurance.pipeline import analyse_documents, insurance_knowledge

    cases = generate_claims(600, 3, prevalence=0.05)
    results = analyse_documents([c.document for c in cases], insurance_knowledge())
    labels = [c.label for c in cases]
    rules = np.asarray([r.rule_risk for r in results])
    anomaly = fraud.anomaly_scores(fraud.claim_features(results))
    prevalence = sum(labels) / len(labels)
    evaluation = fraud.evaluate(labels, rules, anomaly)
    assert evaluation.scores["rules"]["pr_auc"] > 2 * prevalence
    assert evaluation.scores["combined"]["pr_auc"] > 2 * prevalence
