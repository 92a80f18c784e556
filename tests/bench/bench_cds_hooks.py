"""Benchmark the CDS Hooks ``order-sign`` service at a fixed arrival rate (a script; not collected).

Run: ``.venv/bin/python tests/bench/bench_cds_hooks.py [--rate 50] [--seconds 20]``

Starts a real uvicorn server (one worker, as ``medbrain serve``) on a free loopback port with a
temporary instance and SQLite database, creates one pharmacist, then sends requests
open-loop at ``--rate`` requests per second (each request starts on schedule, whether or not
the previous ones have finished, as EHRs calling on every signature do), for:

* ``GET /health`` — the baseline: server, network stack and client;
* ``POST /cds-services/medbrain-order-sign`` with warfarin + ibuprofen draft orders and a full
  prefetch (one critical interaction card; the call is audited);
* ``POST /api/v1/rx/review`` with the same orders as one FHIR Bundle (the REST reference:
  same engine, auth and audit, no card mapping);
* the same order-sign with paracetamol alone (no card: the review passes).

Reports p50/p99 latency, the rate achieved and errors. Nothing is asserted: the numbers depend
on the machine (the load generator shares its cores with the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.api.security import hash_password
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import User
from tests.support.server import free_port, start_server

USERNAME, PASSWORD = "bench_pharmacist", "bench-cds-password"


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
        return f"{self.name:<40} {len(lat):>6} {p50:>9.1f} {p99:>9.1f} {rps:>9.1f} {self.errors:>7}"


def med(rid: str, drug: str, dose: float, per_day: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "dosageInstruction": [
            {
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg"}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": 5, "unit": "d"}},
    }


def order_sign(*orders: dict[str, Any]) -> dict[str, Any]:
    def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }

    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/1",
            "patientId": "p-bench",
            "draftOrders": bundle(*orders),
        },
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "p-bench",
                "gender": "female",
                "birthDate": "1950-05-01",
            },
            "conditions": bundle(),
            "allergies": bundle(),
            "observations": bundle(),
        },
    }


def seed(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        session.add(
            User(
                username=USERNAME,
                display_name="bench",
                role="pharmacist",
                password_hash=hash_password(PASSWORD),
            )
        )
    engine.dispose()


async def open_loop(
    name: str,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    rate: float,
    count: int,
) -> Result:
    """``count`` requests started every ``1/rate`` seconds; latency from each one's start."""
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            response = await client.request(method, path, json=body)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        if not ok:
            errors += 1

    began = time.perf_counter()
    tasks = []
    for n in range(count):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return Result(name, latencies, time.perf_counter() - began, errors)


async def run(base_url: str, token: str, rate: float, count: int) -> None:
    interaction = order_sign(med("mr-w", "warfarin", 3, 1), med("mr-i", "ibuprofen", 400, 3))
    clean = order_sign(med("mr-p", "paracetamol", 500, 3))
    # The same review through the REST API: the cost of the rx engine behind auth and audit.
    rx_bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": interaction["context"]["draftOrders"]["entry"]
        + [{"resource": interaction["prefetch"]["patient"]}],
    }
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, limits=limits
    ) as client:
        check = await client.post("/cds-services/medbrain-order-sign", json=interaction)
        cards = check.json()["cards"]
        print(
            f"check: {check.status_code}, {len(cards)} card(s): {[c['indicator'] for c in cards]}"
        )
        await open_loop(
            "warm-up", client, "POST", "/cds-services/medbrain-order-sign", interaction, rate, 50
        )
        results = [
            await open_loop("GET /health (baseline)", client, "GET", "/health", None, rate, count),
            await open_loop(
                "POST order-sign (interaction card)",
                client,
                "POST",
                "/cds-services/medbrain-order-sign",
                interaction,
                rate,
                count,
            ),
            await open_loop(
                "POST /api/v1/rx/review (same bundle)",
                client,
                "POST",
                "/api/v1/rx/review",
                rx_bundle,
                rate,
                count,
            ),
            await open_loop(
                "POST order-sign (clean, no card)",
                client,
                "POST",
                "/cds-services/medbrain-order-sign",
                clean,
                rate,
                count,
            ),
        ]
    print(f"{'endpoint':<40} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>9} {'errors':>7}")
    for result in results:
        print(result.row())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="per endpoint")
    args = parser.parse_args()
    count = max(1, round(args.rate * args.seconds))
    with tempfile.TemporaryDirectory(prefix="medbrain-bench-") as tmp:
        home = Path(tmp)
        database_url = f"sqlite:///{home / 'medbrain.db'}"
        seed(database_url)
        port = free_port()
        server = start_server(home, database_url, port)
        base_url = f"http://127.0.0.1:{port}"
        try:
            token = httpx.post(
                f"{base_url}/api/v1/auth/token",
                json={"username": USERNAME, "password": PASSWORD},
                timeout=30,
            ).json()["access_token"]
            print(
                f"CDS Hooks order-sign at {args.rate:g} req/s open-loop on loopback — "
                f"{platform.python_implementation()} {platform.python_version()}, "
                f"{os.cpu_count()} CPUs, SQLite, one uvicorn worker, {count} requests per endpoint"
            )
            asyncio.run(run(base_url, token, args.rate, count))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
