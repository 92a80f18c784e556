"""Benchmark ``medbrain qc check``: real-time latency and batch throughput, with accuracy.

Run: ``.venv/bin/python tests/bench/bench_qc.py [--records 400] [--seed 7]``. Prints, for the
same synthetic corpus in the same run:

* baseline: parsing alone (decode-free API form → documents, notes, sections), per record;
* real-time check of one full record (parse + all real-time rules + scoring): p50/p99;
* final check batch throughput in one process and on 2 worker processes (records/s);
* per-category precision/recall on the synthetic corpus and the hand-written fixtures.

Timings are reported, never asserted (STYLE.md habit 12). Issue 7 targets: p99 ≤ 100 ms,
batch ≥ 1,000 records/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from medbrain.qc import CATEGORIES, RuleRegistry, check_record, load_qc_knowledge, read_record_dir  # noqa: E402
from medbrain.qc.corpus import generate_corpus, precision_recall  # noqa: E402
from medbrain.qc.parse import record_from_mapping  # noqa: E402

_REGISTRY: RuleRegistry | None = None


def _registry() -> RuleRegistry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = RuleRegistry(load_qc_knowledge())
    return _REGISTRY


def _check_chunk(bodies: list[dict[str, Any]]) -> int:
    registry = _registry()
    for body in bodies:
        check_record(record_from_mapping(body), registry, stage="final")
    return len(bodies)


def _check_chunk_cpu(bodies: list[dict[str, Any]]) -> tuple[int, float]:
    """Records checked and the CPU seconds this worker spent on them."""
    started = time.process_time()
    done = _check_chunk(bodies)
    return done, time.process_time() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="latency samples per record")
    parser.add_argument(
        "--scan", type=int, default=3000, help="in-patients for the scheduler scan (0: skip)"
    )
    parser.add_argument("--scan-only", action="store_true", help="run only the scan benchmark")
    args = parser.parse_args()
    if args.scan:
        bench_scan(args.scan, args.seed)
    if args.scan_only:
        return

    corpus = generate_corpus(args.records, seed=args.seed)
    bodies = [rec.to_request() for rec in corpus]
    registry = _registry()
    chars = statistics.mean(sum(len(t) for t in b["documents"].values()) for b in bodies)
    print(
        f"corpus: {len(corpus)} synthetic records, mean {chars:.0f} characters, {len(registry)} rules"
    )

    for body in bodies[:20]:  # warm-up (regex compilation, caches)
        check_record(record_from_mapping(body), registry, stage="realtime")

    parse_ms: list[float] = []
    check_ms: list[float] = []
    for _ in range(args.repeat):
        for body in bodies:
            t0 = time.perf_counter()
            record = record_from_mapping(body)
            t1 = time.perf_counter()
            check_record(record, registry, stage="realtime")
            t2 = time.perf_counter()
            parse_ms.append((t1 - t0) * 1000)
            check_ms.append((t2 - t0) * 1000)
    print(
        f"baseline parse only      : p50 {statistics.median(parse_ms):6.2f} ms   p99 {_percentile(parse_ms, 0.99):6.2f} ms"
    )
    print(
        f"real-time check (parse+rules+score): p50 {statistics.median(check_ms):6.2f} ms   p99 {_percentile(check_ms, 0.99):6.2f} ms   (target p99 ≤ 100 ms)"
    )

    t0 = time.perf_counter()
    for body in bodies:
        record_from_mapping(body)
    parse_rate = len(bodies) / (time.perf_counter() - t0)
    t0, c0 = time.perf_counter(), time.process_time()
    _check_chunk(bodies)
    single_rate = len(bodies) / (time.perf_counter() - t0)
    cpu_rate = len(bodies) / (time.process_time() - c0)
    workload = bodies * 5
    chunks = [workload[i : i + 100] for i in range(0, len(workload), 100)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_check_chunk, chunks[:2]))  # start and warm the workers
        t0 = time.perf_counter()
        parts = list(pool.map(_check_chunk_cpu, chunks))
        two_rate = sum(n for n, _ in parts) / (time.perf_counter() - t0)
        two_cpu = sum(n for n, _ in parts) / sum(c for _, c in parts) * 2
    print(f"batch parse only (1 process)   : {parse_rate:8.0f} records/s")
    print(f"batch final check (1 process)  : {single_rate:8.0f} records/s")
    print(
        f"batch final check (2 processes): {two_rate:8.0f} records/s   (target ≥ 1,000 on 2 cores)"
    )
    print(
        f"CPU-time capacity (other load excluded): {cpu_rate:6.0f} records/s per core, "
        f"{two_cpu:6.0f} records/s on 2 cores"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load:.1f} during the run")

    def predict(rec: Any) -> set[str]:
        report = check_record(record_from_mapping(rec.to_request()), registry, stage="final")
        return {f.category for f in (*report.defects, *report.needs_review)}

    stats = precision_recall(corpus, predict, CATEGORIES)
    print("\nper-category accuracy, synthetic corpus (record level):")
    print(f"  {'category':18s} {'precision':>9s} {'recall':>7s} {'support':>7s}")
    for category, row in stats.items():
        print(
            f"  {category:18s} {row['precision']:9.3f} {row['recall']:7.3f} {row['support']:7.0f}"
        )
    clean = [rec for rec in corpus if not rec.labels]
    dirty_clean = sum(1 for rec in clean if predict(rec))
    print(f"  clean records with any finding: {dirty_clean}/{len(clean)}")

    hand = ROOT / "tests" / "fixtures" / "qc" / "hand"
    ok = 0
    folders = sorted(p for p in hand.iterdir() if p.is_dir())
    counts = {c: [0, 0, 0] for c in CATEGORIES}  # true positive, false positive, false negative
    clean_hand = clean_hand_dirty = 0
    for folder in folders:
        expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
        report = check_record(read_record_dir(folder), registry, stage=expected["stage"])
        got = sorted({f.category for f in report.defects})
        queued = {f.category for f in report.needs_review}
        ok += got == sorted(expected["categories"]) and queued <= set(expected.get("review", []))
        wanted = set(expected["categories"])
        for category in CATEGORIES:
            counts[category][0] += category in wanted and category in got
            counts[category][1] += category not in wanted and category in got
            counts[category][2] += category in wanted and category not in got
        if not wanted:
            clean_hand += 1
            clean_hand_dirty += bool(got)
    print(f"hand-written records with exactly the expected categories: {ok}/{len(folders)}")
    print("per-category accuracy, hand-written records (defects, record level):")
    for category, (tp, fp, fn) in counts.items():
        if tp + fp + fn:
            precision = tp / (tp + fp) if tp + fp else float("nan")
            recall = tp / (tp + fn) if tp + fn else float("nan")
            print(f"  {category:18s} {precision:9.3f} {recall:7.3f} {tp + fn:7d}")
    print(f"  clean hand-written records with any defect: {clean_hand_dirty}/{clean_hand}")


def bench_scan(inpatients: int, seed: int) -> None:
    """The in-stay deadline scan (``medbrain qc scan``) over ``inpatients`` open stays in a
    fresh SQLite database: first pass (opens notices) and second pass (updates them), with
    the pure ``due_items`` over the same records in memory as the baseline."""
    import hashlib
    import random
    import tempfile
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from medbrain.qc.parse import build_record, parse_meta
    from medbrain.qc.scheduler import due_items
    from medbrain.store import migrate
    from medbrain.store import models as m
    from medbrain.store import qc_workflow as wf
    from medbrain.store.db import make_engine, make_session_factory

    rng = random.Random(seed)
    source = generate_corpus(60, seed=seed)
    now = datetime(2026, 1, 10, 4, 0, tzinfo=UTC)
    zone = wf.zone_of("Asia/Shanghai")
    knowledge = load_qc_knowledge()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        t0 = time.perf_counter()
        with factory() as session, session.begin():
            session.execute(
                insert(m.Patient),
                [
                    {"id": i + 1, "mrn": f"B{i:06d}", "name": f"患者{i}", "sex": "male"}
                    for i in range(inpatients)
                ],
            )
            session.execute(
                insert(m.Encounter),
                [
                    {
                        "id": i + 1,
                        "patient_id": i + 1,
                        "kind": "inpatient",
                        "status": "in-progress",
                        "department": source[i % len(source)].department,
                        "admit_time": now - timedelta(hours=rng.uniform(0.5, 120)),
                    }
                    for i in range(inpatients)
                ],
            )
            docs: list[dict[str, Any]] = []
            versions: list[dict[str, Any]] = []
            for i in range(inpatients):
                rec = source[i % len(source)]
                keep = ("admission", "course") if i % 3 == 0 else ("admission",) if i % 3 else ()
                for doc_type in keep:
                    doc_id = len(docs) + 1
                    text = rec.documents[doc_type]
                    docs.append(
                        {
                            "id": doc_id,
                            "patient_id": i + 1,
                            "encounter_id": i + 1,
                            "doc_type": doc_type,
                            "title": doc_type,
                        }
                    )
                    versions.append(
                        {
                            "document_id": doc_id,
                            "version": 1,
                            "text": text,
                            "content_sha256": hashlib.sha256(text.encode()).hexdigest(),
                            "author": "李明",
                        }
                    )
            if docs:
                session.execute(insert(m.Document), docs)
                session.execute(insert(m.DocumentVersion), versions)
        print(
            f"\nscheduler scan: {inpatients} open in-patient stays, {len(docs)} documents "
            f"(loaded in {time.perf_counter() - t0:.1f} s)"
        )
        with factory() as session:
            from sqlalchemy import select

            encounters = list(session.scalars(select(m.Encounter).order_by(m.Encounter.id)))
            stays = wf.build_inputs(session, encounters, zone)
        local_now = wf.local_naive(now, zone)
        t0 = time.perf_counter()
        for stay in stays:
            texts = {k: (k, v, "utf-8") for k, v in stay.documents.items()}
            record = build_record(texts, parse_meta(stay.meta), (), knowledge.vocabulary)
            due_items(record, knowledge, local_now)
        base = time.perf_counter() - t0
        print(
            f"baseline parse + due_items in memory : {base:6.2f} s  ({inpatients / base:7.0f} stays/s)"
        )
        for label in ("first pass (opens notices)", "second pass (updates)   "):
            with factory() as session, session.begin():
                t0 = time.perf_counter()
                result = wf.scan_in_stay(session, knowledge=knowledge, now=now, zone=zone)
                spent = time.perf_counter() - t0
            print(
                f"scan {label}: {spent:6.2f} s  ({inpatients / spent:7.0f} stays/s)  "
                f"due soon {result.due_soon}, overdue {result.overdue}, "
                f"opened {result.opened}, closed {result.closed}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
