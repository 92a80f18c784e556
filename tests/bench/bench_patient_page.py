"""Benchmark the patient page under 20 concurrent clients on loopback (a script; not collected).

Run: ``.venv/bin/python tests/bench/bench_patient_page.py [--clients 20] [--requests 400]``

Starts a real uvicorn server (one worker, as ``medbrain serve``) on a free loopback port with a
temporary instance and a SQLite database seeded with the demo data (``seed_demo``; the small
test world if the demo seeder is unavailable), or the database given by ``--database-url``
(a fresh, empty PostgreSQL database, for example). Then ``--clients`` concurrent httpx
clients, each with its own connection, fetch in the same run:

* ``GET /health`` — the baseline: the cost of the server, the network stack and the client;
* ``GET /api/v1/patients/{id}`` — the patient page as JSON (every read audited);
* ``GET /patients/{id}`` — the patient page as HTML.

and report p50/p99 latency and requests per second for each. Nothing is asserted: the
numbers depend on the machine (the load generator shares its cores with the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, select

from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import Observation, Patient
from tests.support.server import free_port, start_server


@dataclass(frozen=True)
class Result:
    name: str
    latencies_ms: list[float]
    seconds: float
    errors: int

    def row(self) -> str:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        rps = len(lat) / self.seconds
        return f"{self.name:<28} {len(lat):>6} {p50:>9.1f} {p99:>9.1f} {rps:>9.1f} {self.errors:>7}"


def seed(database_url: str) -> tuple[str, str, list[int], int]:
    """Migrate and seed; return (username, password, patient ids, observations)."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        try:
            from medbrain.demo.seed import seed_demo

            seed_demo(session)
            username, password = "doctor", "doctor-demo"
        except ImportError:
            from tests.support.world import password_of, seed_world

            seed_world(session)
            username, password = "doctor", password_of("doctor")
        ids = list(session.scalars(select(Patient.id).order_by(Patient.id)).all())
        observations = int(session.scalar(select(func.count()).select_from(Observation)) or 0)
    engine.dispose()
    return username, password, ids, observations


async def load(
    name: str, base_url: str, paths: list[str], clients: int, token: str | None
) -> Result:
    """``clients`` workers share the list of paths; each has its own keep-alive connection."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def worker() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return Result(name, latencies, time.perf_counter() - started, errors)


async def run(base_url: str, token: str, ids: list[int], clients: int, requests: int) -> None:
    rng = random.Random(20250301)
    picks = [rng.choice(ids) for _ in range(requests)]
    # Warm up: import paths, template compilation, connection pools, SQLite page cache.
    await load("warm-up", base_url, [f"/patients/{i}" for i in ids[:40]], clients, token)
    await load("warm-up", base_url, [f"/api/v1/patients/{i}" for i in ids[:40]], clients, token)
    results = [
        await load("GET /health (baseline)", base_url, ["/health"] * requests, clients, None),
        await load(
            "GET /api/v1/patients/{id}",
            base_url,
            [f"/api/v1/patients/{i}" for i in picks],
            clients,
            token,
        ),
        await load(
            "GET /patients/{id} (HTML)", base_url, [f"/patients/{i}" for i in picks], clients, token
        ),
    ]
    print(f"{'endpoint':<28} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>9} {'errors':>7}")
    for result in results:
        print(result.row())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400, help="per endpoint")
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: SQLite in a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medbrain-bench-") as tmp:
        home = Path(tmp)
        database_url = args.database_url or f"sqlite:///{home / 'medbrain.db'}"
        seeded = time.perf_counter()
        username, password, ids, observations = seed(database_url)
        seconds = time.perf_counter() - seeded
        port = free_port()
        server = start_server(home, database_url, port)
        base_url = f"http://127.0.0.1:{port}"
        try:
            token = httpx.post(
                f"{base_url}/api/v1/auth/token",
                json={"username": username, "password": password},
                timeout=30,
            ).json()["access_token"]
            print(
                f"patient page under {args.clients} concurrent clients on loopback — "
                f"{platform.python_implementation()} {platform.python_version()}, "
                f"{os.cpu_count()} CPUs, {make_engine(database_url).dialect.name}, "
                f"{len(ids)} patients, {observations} observations (seeded in {seconds:.1f} s), "
                f"one uvicorn worker, {args.requests} requests per endpoint"
            )
            asyncio.run(run(base_url, token, ids, args.clients, args.requests))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
