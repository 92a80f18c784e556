"""Benchmark FHIR Bundle import throughput on SQLite and PostgreSQL (a script, not a test).

Run: ``.venv/bin/python tests/bench/bench_fhir_import.py [--patients 60] [--seed 20251]``

Input: the synthetic demo bundles (one transaction Bundle per patient). For each database it
reports resources per second for

- ``import``: a first import into an empty, migrated database (one transaction per bundle);
- ``re-import``: the same bundles again (every resource ``unchanged``, nothing written);

next to baselines measured in the same run:

- ``validate only``: ``fhir.resources`` R4B ``model_validate`` of every entry, no database;
- ``prepare only``: :func:`medbrain.interop.fhir.prepare_bundle` (validation + MedBrain checks
  + column extraction), no database;
- ``raw insert``: one Core ``executemany`` of as many Observation rows (with their resource
  JSON) as the bundles hold resources: the floor of the database's write cost.

Prints numbers; asserts nothing about time (issue 3, "Measure").
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import Engine, insert

from medbrain.demo.generator import generate_bundles
from medbrain.interop.fhir import import_bundle, prepare_bundle
from medbrain.store import migrate
from medbrain.store import models as m
from medbrain.store.db import make_engine, make_session_factory


def _timed(label: str, resources: int, action: Callable[[], Any]) -> tuple[str, float, float]:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return label, seconds, resources / seconds if seconds else float("inf")


def _validate_only(bundles: list[dict[str, Any]]) -> None:
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def _prepare_only(bundles: list[dict[str, Any]]) -> None:
    for bundle in bundles:
        prepare_bundle(bundle, source=bundle["id"])


def _import_all(engine: Engine, bundles: list[dict[str, Any]]) -> dict[str, int]:
    factory = make_session_factory(engine)
    totals: dict[str, int] = {"imported": 0, "updated": 0, "unchanged": 0}
    for bundle in bundles:
        with factory() as session, session.begin():
            result = import_bundle(session, bundle, source=bundle["id"])
        for key in totals:
            totals[key] += sum(getattr(result, key).values())
    return totals


def _raw_insert(engine: Engine, bundles: list[dict[str, Any]], resources: int) -> None:
    """Insert ``resources`` Observation rows for one throw-away patient, in one statement."""
    observation = next(
        e["resource"] for e in bundles[0]["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    with engine.begin() as connection:
        patient_id = connection.execute(
            insert(m.Patient).values(mrn="BENCH-RAW", name="基准", sex="unknown", resource={})
        ).inserted_primary_key[0]
        rows = [
            {
                "fhir_id": f"raw-{i}",
                "patient_id": patient_id,
                "category": "laboratory",
                "code": "2823-3",
                "display": "血钾",
                "value_num": 4.0,
                "unit": "mmol/L",
                "status": "final",
                "resource": observation,
            }
            for i in range(resources)
        ]
        connection.execute(insert(m.Observation), rows)


def _run_database(
    name: str, url: str, bundles: list[dict[str, Any]], resources: int
) -> list[tuple[str, float, float]]:
    rows = []
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        counts: dict[str, dict[str, int]] = {}

        def first() -> None:
            counts["first"] = _import_all(engine, bundles)

        def second() -> None:
            counts["second"] = _import_all(engine, bundles)

        rows.append(_timed(f"{name}: import (empty database)", resources, first))
        rows.append(_timed(f"{name}: re-import (all unchanged)", resources, second))
        assert counts["second"]["unchanged"] == counts["first"]["imported"], counts
        rows.append(
            _timed(
                f"{name}: raw insert baseline",
                resources,
                lambda: _raw_insert(engine, bundles, resources),
            )
        )
        stored = counts["first"]["imported"]
        print(
            f"  {name}: stored {stored} resources; re-import unchanged {counts['second']['unchanged']}"
        )
    finally:
        engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20251)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()

    print(f"FHIR import benchmark: Python {platform.python_version()}, {platform.machine()}")
    started = time.perf_counter()
    bundles = generate_bundles(args.patients, args.seed)
    resources = sum(len(b["entry"]) for b in bundles)
    print(
        f"  {args.patients} demo patients, {resources} resources (generated in {time.perf_counter() - started:.2f} s)"
    )
    _validate_only(bundles[:1])  # load the fhir.resources models once, outside the timings

    rows = [
        _timed(
            "baseline: validate only (fhir.resources R4B)",
            resources,
            lambda: _validate_only(bundles),
        ),
        _timed(
            "baseline: prepare only (validate + checks)", resources, lambda: _prepare_only(bundles)
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="medbrain-bench-") as tmp:
        rows += _run_database("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", bundles, resources)
    if not args.no_postgres:
        try:
            from tests.support.postgres import start_postgres

            server = start_postgres()
        except (RuntimeError, OSError) as exc:
            print(f"  PostgreSQL: skipped ({exc})")
        else:
            try:
                rows += _run_database(
                    "PostgreSQL", server.create_database("bench_fhir"), bundles, resources
                )
            finally:
                server.stop()

    width = max(len(label) for label, _, _ in rows)
    print(f"\n  {'measurement':<{width}}  {'seconds':>8}  {'resources/s':>12}")
    for label, seconds, rate in rows:
        print(f"  {label:<{width}}  {seconds:8.2f}  {rate:12.0f}")


if __name__ == "__main__":
    main()
