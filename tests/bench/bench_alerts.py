"""Benchmark ``medbrain alerts evaluate`` per patient (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_alerts.py [--rounds 20]``

Reports p50/p99 milliseconds per patient over the synthetic fixture cases and over a large
synthetic inpatient (7 days of hourly vital signs and 6-hourly labs), next to baselines
measured in the same run: JSON parsing alone, JSON + bundle reading, and (if installed)
validating the same bundle with ``fhir.resources`` R4B models. Prints numbers only; the
target (issue 10) is ≤ 20 ms per patient and nothing here asserts it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.alerts import evaluate_bundle, load_alert_knowledge
from medbrain.alerts.record import read_bundle
from tests.unit.alerts.bundles import build_bundle, load_cases


def big_inpatient() -> dict[str, Any]:
    obs: list[list[Any]] = []
    for hour in range(0, 24 * 7):
        obs += [
            ["RR", 18 + hour % 5, "/min", f"{hour}h"],
            ["HR", 80 + hour % 30, "/min", f"{hour}h"],
            ["SpO2", 95, "%", f"{hour}h"],
            ["SBP", 118, "mmHg", f"{hour}h"],
            ["T", 37.2, "Cel", f"{hour}h"],
            ["AVPU", "A", "", f"{hour}h"],
        ]
        if hour % 6 == 0:
            obs += [
                ["K", 4.0 + (hour % 12) / 10, "mmol/L", f"{hour}h"],
                ["Na", 139, "mmol/L", f"{hour}h"],
                ["Cr", 80 + hour % 40, "umol/L", f"{hour}h"],
                ["Hb", 125, "g/L", f"{hour}h"],
                ["WBC", 9.5, "10*9/L", f"{hour}h"],
                ["Glu", 6.2, "mmol/L", f"{hour}h"],
            ]
    return build_bundle(
        {
            "id": "big",
            "patient": {"sex": "female", "age": 77},
            "conditions": ["社区获得性肺炎", "头痛"],
            "meds": ["缬沙坦胶囊", "盐酸二甲双胍片", "注射用头孢曲松钠"],
            "obs": obs,
        }
    )


def timings(texts: list[str], func: Callable[[str], object], rounds: int) -> list[float]:
    out: list[float] = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            func(text)
            out.append((time.perf_counter() - started) * 1000.0)
    return out


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{name:<44} n={len(values):>6}  p50={p50:8.3f} ms  p99={p99:8.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    knowledge = load_alert_knowledge()
    cases = [c for c in load_cases() if "error" not in c]
    small = [json.dumps(build_bundle(c), ensure_ascii=False) for c in cases]
    big = [json.dumps(big_inpatient(), ensure_ascii=False)]
    n_big_obs = sum(
        1 for e in json.loads(big[0])["entry"] if e["resource"]["resourceType"] == "Observation"
    )

    def parse(text: str) -> object:
        return json.loads(text)

    def read(text: str) -> object:
        return read_bundle(json.loads(text), knowledge)

    def evaluate(text: str) -> object:
        report = evaluate_bundle(json.loads(text), knowledge, lang="zh")
        return json.dumps(report.to_dict(), ensure_ascii=False)

    fhir_model: Callable[[str], object] | None = None
    try:
        from fhir.resources.R4B.bundle import Bundle

        def fhir_model(text: str) -> object:
            return Bundle.model_validate_json(text)

    except ImportError:  # optional baseline
        fhir_model = None

    print(f"python {platform.python_version()} on {platform.machine()}; rounds={args.rounds}")
    print(f"fixture patients: {len(small)}; big inpatient: {n_big_obs} observations")
    for label, texts, rounds in (
        ("fixture cases", small, args.rounds),
        ("big inpatient", big, max(5, args.rounds // 2)),
    ):
        print(f"-- {label}")
        print(summary("baseline: json.loads", timings(texts, parse, rounds)))
        print(summary("baseline: json.loads + read_bundle", timings(texts, read, rounds)))
        if fhir_model is not None:
            print(
                summary(
                    "baseline: fhir.resources R4B Bundle validate",
                    timings(texts, fhir_model, rounds),
                )
            )
        print(summary("evaluate (parse + rules + JSON out)", timings(texts, evaluate, rounds)))


if __name__ == "__main__":
    main()
