"""Benchmark the shared batch runner (:mod:`medbrain.core.parallel`) for both capabilities.

Run: ``.venv/bin/python tests/bench/bench_batch.py [--rx 8000] [--qc 2000] [--workers 2]
[--no-ray] [--store 200]``. Prints, in one run and with the machine's load average:

* prescription review (``medbrain rx batch``): rows per second with the single-process engine
  (the baseline), the process pool and Ray (local; with and without its start-up);
* record QC (``medbrain qc batch``, final stage) over synthetic stays, the same engines;
* the chunk size used and the CPU seconds of the baseline and of the pool's processes (the
  CPU-time capacity), so a slow run on a loaded machine can be told apart from a slow engine;
* with ``--store N``: stored runs (store read, engine, chunked writes) on a temporary SQLite
  store of N synthetic patients, single vs process.

Timings are reported, never asserted. Targets (issues 6 and 7): rx ≥ 2,000 prescriptions/s,
qc ≥ 1,000 records/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from medbrain.core import parallel  # noqa: E402


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs"


def line(label: str, n: int, seconds: float, base: float | None = None, note: str = "") -> float:
    rate = n / seconds if seconds else float("inf")
    ratio = f"x{rate / base:.2f}" if base else "     "
    print(f"  {label:<38} n={n:>6} {seconds:7.2f} s {rate:9.0f}/s {ratio}  {note}[{load()}]")
    return rate


def engines(
    title: str,
    items: list[Any],
    job: parallel.Job[Any, Any],
    context: Any,
    workers: int,
    chunk: int,
    with_ray: bool,
) -> None:
    print(f"\n-- {title}: {len(items)} items, chunk {chunk}")

    def timed(engine: str, n_workers: int) -> float:
        started = time.perf_counter()
        rows = parallel.run(
            items, job, context, engine=engine, workers=n_workers, chunk_size=chunk
        ).rows
        assert len(rows) == len(items)
        return time.perf_counter() - started

    parallel.run(items[: chunk * 2], job, context, engine="single", chunk_size=chunk)  # warm
    cpu0 = time.process_time()
    seconds = timed("single", 1)
    cpu = time.process_time() - cpu0
    base = line("baseline: single process", len(items), seconds, note=f"cpu {cpu:.2f} s ")
    own0, kids0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    pooled = timed("process", workers)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time() - own0
    kids = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    line(f"process pool, {workers} workers", len(items), pooled, base,
         note=f"cpu {own:.2f} s here + {kids:.2f} s workers ")  # fmt: skip
    print(
        f"  {'CPU-time capacity (other load excluded)':<38} single {len(items) / cpu:9.0f}/s   "
        f"process pool on {workers} cores {len(items) * workers / (kids + own):9.0f}/s "
        "(items / CPU seconds of all its processes × cores)"
    )
    if not with_ray or not parallel.ray_available():
        print("  ray: skipped (not installed or --no-ray)")
        return
    line(f"ray local, {workers} CPUs, incl. start", len(items), timed("ray", workers), base)
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        timed("ray", workers)  # actors' first import
        line(f"ray local, {workers} CPUs, started", len(items), timed("ray", workers), base)
    finally:
        ray.shutdown()


def rx_items(count: int) -> list[tuple[str, Any]]:
    from tests.unit.rx.casebook import load_cases, prescription_of

    texts = [json.dumps(prescription_of(c), ensure_ascii=False) for c in load_cases()]
    texts = (texts * (count // len(texts) + 1))[:count]
    return [(f"rx{n}", json.loads(t)) for n, t in enumerate(texts)]


def qc_items(count: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    from medbrain.qc.corpus import generate_corpus

    distinct = [r.to_request() for r in generate_corpus(min(count, 400), seed=7)]
    bodies = (distinct * (count // len(distinct) + 1))[:count]
    return [(f"stay{n}", body, {}) for n, body in enumerate(bodies)]


def stored(patients: int, workers: int) -> None:
    """Stored runs (store read + engine + chunked writes) on a temporary SQLite store."""
    import tempfile
    from datetime import date
    from zoneinfo import ZoneInfo

    from medbrain.demo.generator import DEFAULT_ANCHOR, generate_bundles
    from medbrain.interop.fhir.importer import import_bundle
    from medbrain.qc import load_qc_knowledge
    from medbrain.rx import load_rx_knowledge
    from medbrain.store import batch_runs as br
    from medbrain.store import migrate
    from medbrain.store.db import make_engine, make_session_factory

    home = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    engine = make_engine(f"sqlite:///{home / 'store.db'}")
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        for bundle in generate_bundles(patients, 3, anchor=DEFAULT_ANCHOR):
            import_bundle(session, bundle, source="bench", now=DEFAULT_ANCHOR)
    scope, zone = br.factory_scope(factory), ZoneInfo("Asia/Shanghai")
    print(f"\n-- stored runs over a SQLite store of {patients} synthetic patients")
    works = {
        "rx": lambda e: br.rx_work(load_rx_knowledge(), engine=e, workers=workers),
        "qc": lambda e: br.qc_work(load_qc_knowledge(), engine=e, workers=workers),
    }
    for kind, work in works.items():
        for label, name in (("warm-up", "single"), ("single", "single"), ("process", "process")):
            with scope() as session:
                run_id = br.start_run(session, kind=kind, first=date(2020, 1, 1),
                                      last=date(2029, 12, 31), who="bench", params={}).id  # fmt: skip
            started = time.perf_counter()
            out = br.run_stored(scope, run_id, zone, work(name))
            if label != "warm-up":
                line(f"{kind} stored run, {label}", out["items"], time.perf_counter() - started)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rx", type=int, default=8000, help="prescriptions (0: skip)")
    parser.add_argument("--qc", type=int, default=2000, help="stays (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument(
        "--store", type=int, default=0, help="also time stored runs over N patients (0: skip)"
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {load()}")
    bench: list[Callable[[], None]] = []
    if args.rx:
        from medbrain.rx import load_rx_knowledge
        from medbrain.store import rx_batch

        def rx() -> None:
            context = rx_batch.RxContext(load_rx_knowledge(), detail=True)
            items = rx_items(args.rx)
            chunk = parallel.auto_chunk(len(items), args.workers)
            engines("rx review (rows with findings)", items, rx_batch.RX_JOB, context,
                    args.workers, chunk, not args.no_ray)  # fmt: skip

        bench.append(rx)
    if args.qc:
        from medbrain.qc import batch, load_qc_knowledge

        def qc() -> None:
            context = batch.QCContext(load_qc_knowledge(), batch.BatchOptions(), detail=True)
            items = qc_items(args.qc)
            chunk = parallel.auto_chunk(len(items), args.workers)
            engines("qc final check (rows with findings)", items, batch.STAY_JOB, context,
                    args.workers, chunk, not args.no_ray)  # fmt: skip

        bench.append(qc)
    for step in bench:
        step()
    if args.store:
        stored(args.store, args.workers)


if __name__ == "__main__":
    main()
