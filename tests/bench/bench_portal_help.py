"""Benchmark the patient-assistant engines in-process (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_portal_help.py [--rounds 2000]``

Reports p50/p99 microseconds for: where-to-go ranking (``recommend``) over 200 institutions,
lab explanation (``explain``) of 40 results, and a navigation lookup; with a baseline measured
in the same run: haversine distances alone for the same 200 institutions. Prints numbers only.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.alerts.knowledge import load_alert_knowledge
from medbrain.triage.navigation import default_navigation, find_places
from medbrain.triage.reports import LabValue, default_report_knowledge, explain
from medbrain.triage.where import Load, haversine_km, institutions_with, recommend


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    rng = random.Random(9)
    rows = [
        {
            "code": f"X{i:03d}",
            "name": {"zh": f"机构{i}", "en": f"Site {i}"},
            "lat": 31 + rng.random(),
            "lon": 121 + rng.random(),
            "departments": ["02", "03", "07", "20"],
            "hours": {"open": "00:00", "close": "24:00"},
            "ed_24h": i % 3 == 0,
        }
        for i in range(200)
    ]
    knowledge = institutions_with({"institutions": rows})
    now = datetime.now(UTC)
    loads = {r["code"]: Load(rng.randint(0, 50), rng.randint(0, 5), now) for r in rows}
    alerts = load_alert_knowledge(None)
    reports = default_report_knowledge()
    codes = list(reports.by_loinc)
    labs = [
        LabValue(f"Observation/{i}", codes[i % len(codes)], "x", rng.uniform(0, 200), None, 1, 100)
        for i in range(40)
    ]
    nav = default_navigation()
    points = [(r["lat"], r["lon"]) for r in rows]
    cases = {
        "baseline: haversine ×200": lambda: [haversine_km(31.5, 121.5, a, b) for a, b in points],
        "recommend outpatient (200 inst.)": lambda: recommend(
            knowledge, loads, lat=31.5, lon=121.5, department="07", emergency=False, now=now
        ),
        "recommend red flag (200 inst.)": lambda: recommend(
            knowledge, loads, lat=31.5, lon=121.5, department="02", emergency=True, now=now
        ),
        "explain 40 lab results": lambda: explain(labs, reports, alerts=alerts, sex="female"),
        "navigation lookup": lambda: find_places("请问抽血在几楼,几点开门?", nav),
    }
    print(f"python {platform.python_version()} on {platform.machine()}, {rounds} rounds")
    for name, fn in cases.items():
        p50, p99 = timed(fn, rounds)
        print(f"{name:36s} p50 {p50:9.1f} µs   p99 {p99:9.1f} µs")


if __name__ == "__main__":
    main()
