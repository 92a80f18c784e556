"""Benchmark in-process triage per visit (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_triage.py [--rounds 50]``

Reports p50/p99 milliseconds per visit over the vignette table (tests/unit/triage/
vignettes.yaml), next to baselines measured in the same run: input validation alone, and
NEWS2 alone on the same vital signs. Also reports the one-off knowledge load. Prints numbers
only; the target (issue 9) is ≤ 100 ms p99 and nothing here asserts it.

ED board: ``GET /ed/board`` (the fragment the page polls: database read, board engine and
template) rendered in-process on a fresh SQLite instance with 200 patients on the board, next to
the same request on an empty board (the baseline: login, session, audit write and page frame),
and the pure board engine alone for the same 200 visits. ``--board-patients`` changes the count.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.triage import assess_document, load_triage_knowledge, parse_visit, score_news2

VIGNETTES = Path(__file__).resolve().parents[1] / "unit" / "triage" / "vignettes.yaml"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(label: str, visits: list[Any], rounds: int, call: Callable[[Any], object]) -> None:
    for visit in visits:  # warm-up
        call(visit)
    samples: list[float] = []
    for _ in range(rounds):
        for visit in visits:
            started = time.perf_counter()
            call(visit)
            samples.append((time.perf_counter() - started) * 1000)
    print(
        f"{label:<34} n={len(samples):>6}  p50={statistics.median(samples):8.3f} ms"
        f"  p99={percentile(samples, 99):8.3f} ms  max={max(samples):8.3f} ms"
    )


def bench_ed_board(patients: int, rounds: int) -> None:
    """``GET /ed/board`` with ``patients`` on the board vs an empty board, and the engine alone."""
    import tempfile
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient

    from medbrain.api.app import create_app
    from medbrain.api.security import hash_password, issue_token
    from medbrain.core.config import Settings
    from medbrain.demo.ed_seed import seed_ed_board
    from medbrain.store import triage_ed
    from medbrain.store.models import User
    from medbrain.triage import default_knowledge
    from medbrain.triage.ed import board, default_ed_knowledge

    home = Path(tempfile.mkdtemp(prefix="bench-ed-"))
    app = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'm.db'}"))
    factory = app.state.session_factory
    with factory() as session, session.begin():
        nurse = User(
            username="bench_nurse",
            display_name="nurse",
            role="nurse",
            password_hash=hash_password("pw-for-bench"),
        )
        session.add(nurse)
        session.flush()
        token = issue_token(session, nurse, "cookie", timedelta(hours=1), datetime.now(UTC)).token
    client = TestClient(app)
    client.cookies.set("medbrain_session", token)

    def page() -> None:
        response = client.get("/ed/board")
        assert response.status_code == 200, response.status_code

    measure("ED board, empty (baseline)", [None], rounds, lambda _v: page())
    with factory() as session, session.begin():
        seed_ed_board(session, patients)
    rows = client.get("/ed/board").text.count('class="ed-row')
    measure(f"ED board, {rows} patients", [None], rounds, lambda _v: page())
    with factory() as session:
        states = triage_ed.board_states(session, datetime.now(UTC))
    triage, ed = default_knowledge(), default_ed_knowledge()
    measure(
        f"board engine only, {len(states)} visits",
        [None],
        rounds,
        lambda _v: board(states, datetime.now(UTC), ed, triage),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--board-patients", type=int, default=200)
    parser.add_argument("--board-rounds", type=int, default=30)
    args = parser.parse_args()
    visits = [row["visit"] for row in yaml.safe_load(VIGNETTES.read_text(encoding="utf-8"))]
    print(f"python {platform.python_version()} on {platform.machine()}; {len(visits)} vignettes")

    started = time.perf_counter()
    knowledge = load_triage_knowledge(None)
    print(f"knowledge load (once per process)   {(time.perf_counter() - started) * 1000:8.3f} ms")

    parsed = {id(v): parse_visit(v, knowledge.plausible) for v in visits}
    measure(
        "baseline: parse_visit only",
        visits,
        args.rounds,
        lambda v: parse_visit(v, knowledge.plausible),
    )
    measure(
        "baseline: NEWS2 alone",
        visits,
        args.rounds,
        lambda v: score_news2(parsed[id(v)].vitals, knowledge.news2, parsed[id(v)].hypercapnic),
    )
    measure("triage assess (zh)", visits, args.rounds, lambda v: assess_document(v, knowledge))
    measure(
        "triage assess + to_dict (en)",
        visits,
        args.rounds,
        lambda v: assess_document(v, knowledge, lang="en").to_dict(),
    )
    bench_ed_board(args.board_patients, args.board_rounds)


if __name__ == "__main__":
    main()
