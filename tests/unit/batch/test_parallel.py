"""The shared chunked runner (medbrain.core.parallel): every engine gives the rows of the
single-process engine in input order, a failing item becomes its error row, the context is
set up once per worker, progress comes once per chunk, and a dead worker fails the run."""

from __future__ import annotations

import os
from typing import Any

import pytest

from medbrain.core import parallel
from medbrain.core.errors import InputError
from tests.support.ray import local_ray  # noqa: F401  (fixture)

# -- a small job: module-level functions, so that they pickle by reference ------------------


def _setup(context: dict[str, Any]) -> dict[str, Any]:
    return {**context, "pid": os.getpid(), "setups": 1}


def _work(state: dict[str, Any], item: int) -> dict[str, Any]:
    if item in state["bad"]:
        raise ValueError(f"item {item} is bad")
    if item == state.get("die_on"):
        os._exit(3)  # a worker killed mid-run (out of memory, kill -9)
    return {"item": item, "square": item * item * state["factor"], "pid": state["pid"]}


def _error(item: int, message: str) -> dict[str, Any]:
    return {"item": item, "error": message}


JOB: parallel.Job[int, dict[str, Any]] = parallel.Job(work=_work, error_row=_error, setup=_setup)
CONTEXT = {"factor": 3, "bad": {7, 40}}


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "pid"} for row in rows]


def test_single_engine_keeps_order_and_turns_a_failing_item_into_its_error_row() -> None:
    seen: list[tuple[int, int | None]] = []
    result = parallel.run(
        list(range(50)),
        JOB,
        CONTEXT,
        engine="single",
        chunk_size=8,
        progress=lambda done, total: seen.append((done, total)),
        is_error=lambda row: "error" in row,
    )
    assert [r["item"] for r in result.rows] == list(range(50))
    assert result.rows[7] == {"item": 7, "error": "ValueError: item 7 is bad"}
    assert result.rows[9]["square"] == 9 * 9 * 3
    assert result.failed_items == 2
    assert (result.engine, result.workers, result.chunks) == ("single", 1, 7)
    assert seen == [(min(50, 8 * n), 50) for n in range(1, 8)]


def test_process_pool_gives_the_single_rows_and_sets_each_worker_up_once() -> None:
    items = list(range(120))
    single = parallel.run(items, JOB, CONTEXT, engine="single", chunk_size=10)
    pooled = parallel.run(iter(items), JOB, CONTEXT, engine="process", workers=2, chunk_size=10)
    assert _strip(pooled.rows) == _strip(single.rows)
    assert (pooled.engine, pooled.workers, pooled.chunks) == ("process", 2, 12)
    worker_pids = {r["pid"] for r in pooled.rows if "pid" in r}
    assert os.getpid() not in worker_pids
    assert 1 <= len(worker_pids) <= 2  # one setup per worker, not one per chunk


def test_a_worker_that_dies_fails_the_whole_run() -> None:
    with pytest.raises(parallel.BatchFailed, match="worker process died"):
        parallel.run(
            list(range(40)),
            JOB,
            {**CONTEXT, "die_on": 25},
            engine="process",
            workers=2,
            chunk_size=5,
        )


def test_bad_options_name_the_field() -> None:
    with pytest.raises(InputError) as engine:
        parallel.run([1], JOB, CONTEXT, engine="gpu")
    assert engine.value.field == "engine"
    with pytest.raises(InputError) as chunk:
        parallel.run([1], JOB, CONTEXT, engine="single", chunk_size=0)
    assert chunk.value.field == "chunk_size"
    with pytest.raises(InputError) as workers:
        parallel.run([1], JOB, CONTEXT, engine="process", workers=0)
    assert workers.value.field == "workers"


def test_auto_chunk_gives_each_worker_several_chunks_within_the_ceiling() -> None:
    assert parallel.auto_chunk(100, 2) == 13
    assert parallel.auto_chunk(1_000_000, 2) == parallel.DEFAULT_CHUNK
    assert parallel.auto_chunk(None, 2) == parallel.DEFAULT_CHUNK
    assert parallel.auto_chunk(1, 8) == 1


@pytest.mark.usefixtures("local_ray")
def test_ray_actors_give_the_single_rows_in_order() -> None:
    items = list(range(90))
    single = parallel.run(items, JOB, CONTEXT, engine="single", chunk_size=10)
    seen: list[int] = []
    on_ray = parallel.run(
        items,
        JOB,
        CONTEXT,
        engine="ray",
        workers=2,
        chunk_size=10,
        progress=lambda done, _total: seen.append(done),
    )
    assert _strip(on_ray.rows) == _strip(single.rows)
    assert on_ray.engine == "ray"
    assert seen == list(range(10, 91, 10))
    assert len({r["pid"] for r in on_ray.rows if "pid" in r}) <= 2  # one state per actor
