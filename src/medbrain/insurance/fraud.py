"""Fraud and abuse ranking: compliance rule hits combined with an anomaly model, and its evaluation.

The anomaly model is scikit-learn's :class:`~sklearn.ensemble.IsolationForest` over claim
features (cost, length of stay, cost against the DRG benchmark, cost shares, billing
intensity, lines without orders, …) and provider features (the doctor's mean cost ratio,
MCC rate and rule-hit rate, as deviations from the department). It is unsupervised: labels
are used only to *evaluate*. Cases are ranked for human review, never judged.

Evaluation reports what matters at low prevalence: PR-AUC (average precision) and precision
at the top k, for rules alone, the model alone and both combined — next to the prevalence and
the "accuracy" of calling every case clean, to show why accuracy is meaningless here.

References
----------
Liu, Ting & Zhou (2008) Isolation Forest, ICDM; Saito & Rehmsmeier (2015) "The
precision-recall plot is more informative than the ROC plot … on imbalanced datasets",
PLoS ONE 10(3): e0118432.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medbrain.insurance.pipeline import CaseAnalysis

FEATURES = (
    "total_cost",
    "los_days",
    "cost_per_day",
    "cost_ratio",
    "drug_share",
    "exam_share",
    "consumable_share",
    "lines",
    "distinct_items",
    "max_item_day_quantity",
    "lines_without_order",
    "lines_outside_stay",
    "secondary_diagnoses",
    "has_mcc",
    "doctor_cost_ratio",
    "doctor_mcc_rate",
    "doctor_rule_rate",
)


def claim_features(cases: Sequence[CaseAnalysis], base_rate_yuan: float = 12000.0) -> np.ndarray:
    """One row per case, columns :data:`FEATURES` (provider columns relative to the department)."""
    rows: list[list[float]] = []
    for case in cases:
        fp, drg = case.frontpage, case.drg
        total = fp.total_cost
        los = float(fp.los_days or 0)
        expected = drg.weight * base_rate_yuan if drg.weight else 0.0
        order_ids = {o.order_id for o in fp.orders}
        order_names = {o.name for o in fp.orders}
        per_item_day: dict[tuple[str, Any], float] = defaultdict(float)
        outside = 0
        without = 0
        for line in fp.claim_lines:
            per_item_day[(line.item_code, line.day)] += line.quantity
            if fp.orders and line.order_id not in order_ids and line.name not in order_names:
                without += 1
            if (
                line.day
                and fp.admit_date
                and fp.discharge_date
                and not (fp.admit_date <= line.day <= fp.discharge_date)
            ):
                outside += 1
        rows.append(
            [
                total,
                los,
                total / los if los else total,
                total / expected if expected else 0.0,
                fp.costs.get("drug", 0.0) / total if total else 0.0,
                (fp.costs.get("exam", 0.0) + fp.costs.get("lab", 0.0)) / total if total else 0.0,
                fp.costs.get("consumable", 0.0) / total if total else 0.0,
                float(len(fp.claim_lines)),
                float(len({line.item_code for line in fp.claim_lines})),
                max(per_item_day.values(), default=0.0),
                float(without),
                float(outside),
                float(len(fp.secondary_diagnoses)),
                1.0 if drg.severity == "MCC" else 0.0,
                0.0,
                0.0,
                0.0,
            ]
        )
    matrix = np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURES))
    # Provider features: the doctor's mean against the department's mean.
    by_doctor: dict[str, list[int]] = defaultdict(list)
    by_dept: dict[str, list[int]] = defaultdict(list)
    for i, case in enumerate(cases):
        by_doctor[case.frontpage.doctor or "-"].append(i)
        by_dept[case.frontpage.department or "-"].append(i)
    # Claim volume and cost relative to the department's median (departments differ by design).
    relative = [
        FEATURES.index(n)
        for n in ("total_cost", "los_days", "cost_per_day", "lines", "distinct_items")
    ]
    for members in by_dept.values():
        for col in relative:
            median = float(np.median(matrix[members, col]))
            if median > 0:
                matrix[members, col] = matrix[members, col] / median
    rule_hit = np.asarray([1.0 if c.findings else 0.0 for c in cases])
    cost_col, mcc_col = FEATURES.index("cost_ratio"), FEATURES.index("has_mcc")
    for i, case in enumerate(cases):
        peers = by_dept[case.frontpage.department or "-"]
        mine = by_doctor[case.frontpage.doctor or "-"]
        matrix[i, -3] = matrix[mine, cost_col].mean() - matrix[peers, cost_col].mean()
        matrix[i, -2] = matrix[mine, mcc_col].mean() - matrix[peers, mcc_col].mean()
        matrix[i, -1] = rule_hit[mine].mean() - rule_hit[peers].mean()
    return matrix


def anomaly_scores(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Isolation-forest anomaly scores in [0, 1] (higher = more unusual), as percentile ranks."""
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

    if len(features) < 2:
        return np.zeros(len(features))
    model = IsolationForest(n_estimators=100, random_state=seed, n_jobs=1)
    model.fit(features)
    raw = -model.score_samples(features)
    return _percentile(raw)


def _percentile(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(len(values), dtype=float)
    return ranks / max(1, len(values) - 1)


def combined_scores(rule_risk: np.ndarray, anomaly: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Review priority: the rule risk and the anomaly percentile, weighted."""
    return (1.0 - weight) * rule_risk + weight * anomaly


# -- evaluation -----------------------------------------------------------------------------


def average_precision(
    labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> float:
    """PR-AUC as average precision: mean of precision@k over the ranks k of the positives.

    Ties are broken by the order given (stable sort), so results are deterministic.
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    positives = int(y.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    hits = y[order]
    cumulative = np.cumsum(hits)
    ranks = np.arange(1, len(hits) + 1)
    return float((cumulative[hits] / ranks[hits]).sum() / positives)


def precision_at_k(
    labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int
) -> float:
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if k <= 0 or len(y) == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")[:k]
    return float(y[order].sum() / min(k, len(y)))


@dataclass(frozen=True, slots=True)
class Evaluation:
    cases: int
    positives: int
    prevalence: float
    all_negative_accuracy: float
    scores: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "positives": self.positives,
            "prevalence": round(self.prevalence, 4),
            "all_negative_accuracy": round(self.all_negative_accuracy, 4),
            "scores": {k: {m: round(v, 4) for m, v in d.items()} for k, d in self.scores.items()},
        }


def evaluate(
    labels: Sequence[bool],
    rule_risk: np.ndarray,
    anomaly: np.ndarray,
    ks: Sequence[int] = (50, 100),
) -> Evaluation:
    y = np.asarray(labels, dtype=bool)
    rankers = {
        "rules": rule_risk,
        "model": anomaly,
        "combined": combined_scores(rule_risk, anomaly),
    }
    scores: dict[str, dict[str, float]] = {}
    for name, s in rankers.items():
        entry = {"pr_auc": average_precision(y, s)}
        for k in ks:
            entry[f"precision_at_{k}"] = precision_at_k(y, s, k)
        scores[name] = entry
    prevalence = float(y.mean()) if len(y) else 0.0
    return Evaluation(
        cases=len(y),
        positives=int(y.sum()),
        prevalence=prevalence,
        all_negative_accuracy=1.0 - prevalence,
        scores=scores,
    )
