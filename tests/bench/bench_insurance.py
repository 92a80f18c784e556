"""Benchmark: CHS-DRG grouping + compliance checks per discharge, and fraud-ranking quality.

Run: ``python tests/bench/bench_insurance.py [--cases 20000]``. Single process. Prints
throughput and p50/p99 per case for grouping alone (the baseline) and grouping + all
compliance checks (with each patient's other stays as history), front-page parsing separately,
then PR-AUC / precision@k of rules, anomaly model and both on the synthetic claims.
Target (issue 11): grouping + checks >= 5,000 discharges/s on the 2-core CI box.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np

from medbrain.core.i18n import catalog
from medbrain.insurance import fraud
from medbrain.insurance.claims_generator import generate_claims
from medbrain.insurance.compliance import Stay, check_case
from medbrain.insurance.drg import group
from medbrain.insurance.frontpage import parse_frontpage
from medbrain.insurance.pipeline import analyse, insurance_knowledge


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--eval-cases", type=int, default=5000)
    args = parser.parse_args()

    started = time.perf_counter()
    knowledge = insurance_knowledge()
    catalog()
    print(f"knowledge load (one-off): {time.perf_counter() - started:.2f} s")
    generated = generate_claims(args.cases, 7)
    lines = statistics.mean(len(g.document["claim_lines"]) for g in generated)
    print(f"cases: {args.cases}, mean claim lines per case: {lines:.1f}")

    print(
        "throughput is per wall-clock second and per CPU second of this process "
        "(the CPU figure is robust when other jobs share the cores)"
    )
    started, cpu = time.perf_counter(), time.process_time()
    pages = [parse_frontpage(g.document) for g in generated]
    parse_s, parse_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"parse front pages:      {args.cases / parse_s:9.0f} /s wall "
        f"{args.cases / parse_cpu:9.0f} /s CPU"
    )

    tables = knowledge.tables
    per_case: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()
    grouped = []
    for fp in pages:
        t0 = time.perf_counter()
        grouped.append(group(fp, tables))
        per_case.append(time.perf_counter() - t0)
    group_s, group_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"baseline grouping only: {args.cases / group_s:9.0f} /s wall "
        f"{args.cases / group_cpu:9.0f} /s CPU   "
        f"p50 {_pct(per_case, 0.5) * 1e6:6.0f} us  p99 {_pct(per_case, 0.99) * 1e6:6.0f} us"
    )

    history: dict[str, list[Stay]] = defaultdict(list)
    for fp, drg in zip(pages, grouped, strict=True):
        if fp.patient_id:
            history[fp.patient_id].append(Stay(fp, drg))
    per_case = []
    started, cpu = time.perf_counter(), time.process_time()
    for fp in pages:
        t0 = time.perf_counter()
        drg = group(fp, tables)
        check_case(fp, drg, knowledge.rules, tables, history=history.get(fp.patient_id or "", ()))
        per_case.append(time.perf_counter() - t0)
    both_s, both_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"grouping + checks:      {args.cases / both_s:9.0f} /s wall "
        f"{args.cases / both_cpu:9.0f} /s CPU   "
        f"p50 {_pct(per_case, 0.5) * 1e6:6.0f} us  p99 {_pct(per_case, 0.99) * 1e6:6.0f} us"
    )
    started = time.perf_counter()
    analyse(pages, knowledge)
    print(
        f"pipeline.analyse (batch, incl. history index): {args.cases / (time.perf_counter() - started):.0f} /s"
    )

    cases = generate_claims(args.eval_cases, 7)
    results = analyse([parse_frontpage(c.document) for c in cases], knowledge)
    started = time.perf_counter()
    anomaly = fraud.anomaly_scores(fraud.claim_features(results, 5000.0))
    model_s = time.perf_counter() - started
    evaluation = fraud.evaluate(
        [c.label for c in cases], np.asarray([r.rule_risk for r in results]), anomaly
    ).to_dict()
    print(
        f"\nfraud evaluation on {evaluation['cases']} synthetic claims, "
        f"prevalence {evaluation['prevalence']:.2%} "
        f"(all-negative 'accuracy' {evaluation['all_negative_accuracy']:.2%}); "
        f"features + isolation forest {model_s:.1f} s"
    )
    print(f"{'ranker':<10}{'PR-AUC':>8}{'P@50':>8}{'P@100':>8}")
    for name, s in evaluation["scores"].items():
        print(
            f"{name:<10}{s['pr_auc']:>8.3f}{s['precision_at_50']:>8.2f}{s['precision_at_100']:>8.2f}"
        )


if __name__ == "__main__":
    main()
