"""Benchmark ``medbrain rx review`` (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_rx.py [--rounds 300] [--batch 4000] [--ray]``

Reports, in one run on this machine:

* p50/p99 milliseconds for one 10-item prescription reviewed in-process (JSON text → verdict),
  next to two baselines: JSON parsing alone, and JSON parsing + name resolution of the
  10 drugs (the floor any reviewer pays);
* batch throughput (prescriptions per second) over every case in the clinical case table,
  in one process next to the same baselines, then over one process per CPU;
* the ``medbrain rx batch`` runners: single process (baseline), the process pool, and with
  ``--ray`` a local Ray (its start-up included).

Prints numbers only. Targets (issue 6): p99 ≤ 50 ms, batch ≥ 2,000 prescriptions/s on
2 cores; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.rx import load_rx_knowledge, review
from medbrain.rx.names import resolve_name
from tests.unit.rx.casebook import load_cases, prescription_of

TEN_ITEMS: dict[str, Any] = {
    "patient": {
        "age_years": 72,
        "sex": "male",
        "weight_kg": 62,
        "height_cm": 168,
        "allergies": ["青霉素(皮疹)"],
        "diagnoses": ["社区获得性肺炎", "高血压", "2型糖尿病", "冠心病", "心房颤动"],
        "labs": {"creatinine_umol_l": 135, "alt_u_l": 35, "potassium_mmol_l": 4.6},
    },
    "department": "呼吸内科",
    "prescriber_level": "主治医师",
    "setting": "inpatient",
    "items": [
        {
            "drug": "注射用头孢曲松钠",
            "dose": 2,
            "unit": "g",
            "route": "ivgtt",
            "frequency": "qd",
            "days": 7,
            "group": 1,
        },
        {
            "drug": "0.9%氯化钠注射液",
            "dose": 100,
            "unit": "ml",
            "route": "ivgtt",
            "frequency": "qd",
            "days": 7,
            "group": 1,
        },
        {
            "drug": "阿奇霉素片",
            "dose": 0.5,
            "unit": "g",
            "route": "po",
            "frequency": "qd",
            "days": 3,
        },
        {
            "drug": "苯磺酸氨氯地平片",
            "dose": 5,
            "unit": "mg",
            "route": "po",
            "frequency": "qd",
            "days": 30,
        },
        {
            "drug": "盐酸二甲双胍片",
            "dose": 0.5,
            "unit": "g",
            "route": "po",
            "frequency": "tid",
            "days": 30,
        },
        {
            "drug": "阿托伐他汀钙片",
            "dose": 20,
            "unit": "mg",
            "route": "po",
            "frequency": "qn",
            "days": 30,
        },
        {
            "drug": "阿司匹林肠溶片",
            "dose": 100,
            "unit": "mg",
            "route": "po",
            "frequency": "qd",
            "days": 30,
        },
        {
            "drug": "华法林钠片",
            "dose": 3,
            "unit": "mg",
            "route": "po",
            "frequency": "qd",
            "days": 30,
        },
        {
            "drug": "布洛芬缓释胶囊",
            "dose": 0.3,
            "unit": "g",
            "route": "po",
            "frequency": "bid",
            "days": 3,
        },
        {
            "drug": "感冒灵颗粒",
            "dose": 1,
            "unit": "袋",
            "route": "po",
            "frequency": "tid",
            "days": 3,
        },
    ],
}


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(name: str, func: Callable[[], object], rounds: int) -> None:
    values = []
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        values.append((time.perf_counter() - started) * 1000.0)
    values.sort()
    print(
        f"{name:<46} n={len(values):>6}  p50={statistics.median(values):8.3f} ms"
        f"  p99={percentile(values, 0.99):8.3f} ms"
    )


def throughput(name: str, texts: list[str], func: Callable[[str], object]) -> None:
    started = time.perf_counter()
    for text in texts:
        func(text)
    seconds = time.perf_counter() - started
    print(f"{name:<46} n={len(texts):>6}  {len(texts) / seconds:10.0f} prescriptions/s")


def _review_chunk(texts: list[str]) -> int:
    kb = load_rx_knowledge()
    for text in texts:
        review(json.loads(text), kb)
    return len(texts)


def parallel_throughput(name: str, texts: list[str], workers: int) -> None:
    """Prescriptions/s over ``workers`` processes (knowledge loaded once per process)."""
    chunks = [texts[i::workers] for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers, initializer=load_rx_knowledge) as pool:
        pool.map(_review_chunk, [c[:10] for c in chunks])  # warm up: knowledge loaded
        started = time.perf_counter()
        done = sum(pool.map(_review_chunk, chunks))
        seconds = time.perf_counter() - started
    print(f"{name:<46} n={done:>6}  {done / seconds:10.0f} prescriptions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4000)
    parser.add_argument("--ray", action="store_true", help="also time the Ray runner")
    args = parser.parse_args()

    started = time.perf_counter()
    kb = load_rx_knowledge()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"knowledge: {len(kb.drugs)} drugs, {len(kb.interactions)} interactions, loaded once in "
        f"{(time.perf_counter() - started) * 1000:.0f} ms"
    )

    ten = json.dumps(TEN_ITEMS, ensure_ascii=False)
    names = [item["drug"] for item in TEN_ITEMS["items"]]
    result = review(json.loads(ten), kb)
    print(f"10-item prescription: verdict={result.verdict}, findings={len(result.findings)}")

    def parse_only(text: str = ten) -> object:
        return json.loads(text)

    def parse_and_resolve(text: str = ten) -> object:
        document = json.loads(text)
        return [resolve_name(item["drug"], kb) for item in document["items"]]

    def full(text: str = ten) -> object:
        return review(json.loads(text), kb)

    assert len(names) == 10
    print("\n-- one 10-item prescription, in-process")
    latency("baseline: json.loads", parse_only, args.rounds)
    latency("baseline: json.loads + name resolution", parse_and_resolve, args.rounds)
    latency("review (parse, validate, 18 checks, verdict)", full, args.rounds)

    documents = [json.dumps(prescription_of(c), ensure_ascii=False) for c in load_cases()]
    documents.append(ten)
    texts = (documents * (args.batch // len(documents) + 1))[: args.batch]
    print(f"\n-- batch of {len(texts)} prescriptions ({len(documents)} distinct), one process")
    throughput("baseline: json.loads", texts, json.loads)
    throughput(
        "baseline: json.loads + name resolution",
        texts,
        lambda t: [resolve_name(i["drug"], kb) for i in json.loads(t)["items"]],
    )
    throughput("review", texts, lambda t: review(json.loads(t), kb))
    workers = os.cpu_count() or 1
    if workers > 1:
        parallel_throughput(f"review, {workers} processes", texts, workers)
    batch_runners(texts, workers, args.ray)


def batch_runners(texts: list[str], workers: int, with_ray: bool) -> None:
    """``medbrain rx batch`` runners (report rows, input order kept), JSONL already read."""
    from medbrain.store import rx_batch

    docs = [(f"rx{n}", json.loads(t)) for n, t in enumerate(texts)]
    print(f"\n-- medbrain rx batch runners over {len(docs)} prescriptions (rows without detail)")
    single = rx_batch.run_batch(docs, engine="single", detail=False)
    print(
        f"{'baseline: single process':<46} n={len(docs):>6}  {single.per_second:10.0f} prescriptions/s"
    )
    pooled = rx_batch.run_batch(docs, engine="process", workers=workers, detail=False)
    print(
        f"{f'process pool, {pooled.workers} workers':<46} n={len(docs):>6}  "
        f"{pooled.per_second:10.0f} prescriptions/s  (x{pooled.per_second / single.per_second:.2f})"
    )
    if with_ray and rx_batch.ray_available():
        on_ray = rx_batch.run_batch(docs, engine="ray", workers=workers, detail=False)
        print(
            f"{f'ray (local, {workers} CPUs, incl. start)':<46} n={len(docs):>6}  "
            f"{on_ray.per_second:10.0f} prescriptions/s"
        )


if __name__ == "__main__":
    main()
