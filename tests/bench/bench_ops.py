"""Benchmark the operations cockpit, outpatient forecasting and the backtest (a script).

Run: ``.venv/bin/python tests/bench/bench_ops.py [--skip-postgres] [--origins 6]``

1. **Cockpit page** for a 3,000-bed hospital: 3 years of generated department-day history
   (20 departments; the last year ≈ 130k admissions and ≈ 1.9M outpatient + 0.3M emergency
   visits, pre-aggregated per department per day) are seeded into a fresh instance on SQLite
   and on a real PostgreSQL (started with ``tests/support/postgres.py``); a real uvicorn server
   answers ``GET /ops`` (the HTML page: 14 indicators over the last 365 days with the previous
   period, monthly trends, the bed table), ``GET /api/v1/ops/cockpit`` (the same with the
   forecast tile computed in-request) and ``GET /api/v1/ops/forecast/compare``. We report the
   first (cold: imports, template compile, model fit) and p50/p95 warm latencies, next to
   ``GET /health`` measured in the same run as the baseline.
2. **Forecasting all departments** 14 days ahead (MSTL and AutoETS), the statsforecast import
   time reported separately.
3. **Backtest**: rolling-origin MAPE and sMAPE per department against the weekly seasonal
   naive forecast.

Nothing is asserted: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.api.security import hash_password, issue_token
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import User
from medbrain.store.ops import seed_ops_demo
from tests.support.server import free_port, start_server

END = date(2026, 11, 19)


def _seed(database_url: str) -> tuple[str, dict[str, float]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    with factory() as session, session.begin():
        counts = seed_ops_demo(session, end=END, years=3)
    seed_s = time.perf_counter() - started
    with factory() as session, session.begin():
        user = User(
            username="bench_director",
            display_name="bench",
            role="director",
            password_hash=hash_password("bench-pw"),
        )
        session.add(user)
        session.flush()
        token = issue_token(session, user, "api", timedelta(hours=2), datetime.now(UTC)).token
    engine.dispose()
    return token, {"seed_s": seed_s, "rows": float(counts["department_days"])}


def _timed(client: httpx.Client, url: str, token: str | None, n: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    r = client.get(url, headers=headers)
    first = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        raise SystemExit(f"{url}: {r.status_code} {r.text[:300]}")
    warm = []
    for _ in range(n):
        started = time.perf_counter()
        r = client.get(url, headers=headers)
        warm.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{url}: {r.status_code}")
    return first, warm


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_cockpit(label: str, database_url: str, home: Path, n: int) -> None:
    token, info = _seed(database_url)
    print(
        f"\n[{label}] seeded {info['rows']:.0f} department-days (3 years) in {info['seed_s']:.2f} s"
    )
    port = free_port()
    server = start_server(home, database_url, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            print(f"{'request':<42} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8}")
            # Order matters: /ops first shows the page's cold cost without the model fit.
            for url, auth in (
                ("/health", False),
                ("/ops", True),
                ("/api/v1/ops/forecast/compare", True),
                ("/api/v1/ops/cockpit", True),
                ("/api/v1/ops/indicators/bed_occupancy/departments", True),
                ("/api/v1/ops/beds", True),
            ):
                first, warm = _timed(client, url, token if auth else None, n)
                print(
                    f"{url:<42} {first:9.1f} {statistics.median(warm):8.1f} {_pct(warm, 0.95):8.1f}"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)


def bench_forecast(origins: int) -> None:
    from medbrain.ops.generator import generate_daily

    rows = generate_daily(
        date(END.year - 3, END.month, END.day) + timedelta(days=1), END, seed=2026
    )
    from medbrain.ops import forecast as fc

    started = time.perf_counter()
    import statsforecast.models  # noqa: F401  (the engine imports it lazily; timed here)

    import_s = time.perf_counter() - started
    series = [  # the ICU has no clinic: its all-zero series is left out, as the CLI does
        s
        for s in fc.series_from_rows(
            [(r.day, r.dept_code, float(r.outpatient_visits)) for r in rows]
        )
        if sum(s.values) > 0
    ]
    print(f"\nstatsforecast import: {import_s:.2f} s (once per process)")
    for model, fit_days in (("ets", 200), ("mstl", 200), ("ets", None), ("mstl", None)):
        started = time.perf_counter()
        fc.forecast_many(series, 14, model=model, fit_days=fit_days)
        print(
            f"forecast all {len(series)} departments, 14 days, model {model}, fitted on "
            f"{fit_days or 'all'} days of 3 years: {time.perf_counter() - started:.2f} s"
        )
    for model, fit_days in (("ets", 200), ("mstl", 200)):
        started = time.perf_counter()
        result = fc.backtest(
            series, horizon=14, origins=origins, step_days=14, model=model, fit_days=fit_days
        )
        seconds = time.perf_counter() - started
        print(
            f"\nbacktest model {model} fitted on {fit_days} days: {origins} origins 14 days apart, "
            f"horizon 1-14 days, {seconds:.1f} s; baseline = seasonal naive (weekly), same origins"
        )
        print(
            f"{'dept':<6} {'MAPE':>6} {'sMAPE':>6} {'naive':>7} {'naive s':>8} "
            f"{'ord.':>6} {'ord.naive':>9} {'cov80':>6}"
        )
        for r in result.rows:
            print(
                f"{r.key:<6} {r.mape:6.2f} {r.smape:6.2f} {r.naive_mape:7.2f} {r.naive_smape:8.2f} "
                f"{r.ordinary_mape:6.2f} {r.ordinary_naive_mape:9.2f} {r.coverage80:6.2f}"
            )
        o = result.overall()
        print(
            f"{'mean':<6} {o['mape']:6.2f} {o['smape']:6.2f} {o['naive_mape']:7.2f} "
            f"{o['naive_smape']:8.2f} {o['ordinary_mape']:6.2f} {o['ordinary_naive_mape']:9.2f} "
            f"{o['coverage80']:6.2f}"
        )
    print("('ord.' = ordinary days only: no holiday, make-up workday or first day back)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="warm requests per URL")
    parser.add_argument("--origins", type=int, default=6, help="backtest origins")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-cockpit", action="store_true")
    parser.add_argument("--skip-forecast", action="store_true")
    args = parser.parse_args()
    print(f"{platform.platform()} · {os.cpu_count()} CPUs · Python {platform.python_version()}")
    if not args.skip_cockpit:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            bench_cockpit("SQLite", f"sqlite:///{home / 'medbrain.db'}", home, args.requests)
        if not args.skip_postgres:
            from tests.support.postgres import start_postgres

            pg = start_postgres()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    url = pg.create_database("bench_ops")
                    bench_cockpit("PostgreSQL", url, Path(tmp), args.requests)
            finally:
                pg.stop()
    if not args.skip_forecast:
        bench_forecast(args.origins)


if __name__ == "__main__":
    main()
