"""One chunked batch runner for every retrospective job (prescription review, record QC).

A :class:`Job` names three module-level functions (so that they pickle by reference):
``setup(context)`` builds a worker's state once (e.g. a rule registry from the knowledge),
``work(state, item)`` turns one item into one result row, and ``error_row(item, message)``
turns an item whose ``work`` raised into a row that says so: a failed item is never lost.

Engines:

* ``single`` — this process;
* ``process`` — a pool of ``workers`` processes; the context travels once per worker (the
  pool initializer: inherited by ``fork``, pickled once otherwise), never with each chunk;
* ``ray`` — one Ray actor per worker holding the context (``ray.put`` once); a local Ray by
  default (started and stopped here unless one is already running), a cluster with ``address``.

Items are sent in chunks (start-up and pickling are paid per chunk, not per item) with a
bounded number of chunks in flight, so an input stream of any length is never held in full.
:func:`iter_chunks` yields each chunk's rows in input order as soon as it and every earlier
chunk are done; :func:`run` collects them and reports progress after every chunk. A worker
that dies (killed, out of memory) fails the run with :class:`BatchFailed`.

Pure: no web, database or environment reads (Ray is imported only when asked for).

References
----------
Issue 6 §6 and issue 7 §5 (retrospective stage, Ray-backed runner); PLATFORM.md (Ray: batch
work into chunks, ``RAY_AUTH_MODE=disabled`` for local runs); Python ``concurrent.futures``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, TypeVar

from medbrain.core.errors import BackendUnavailable, InputError, MedBrainError

ENGINES = ("single", "process", "ray")
DEFAULT_CHUNK = 500
#: Chunks in flight per worker: enough to keep every worker busy, bounded to cap memory.
IN_FLIGHT_PER_WORKER = 2

T = TypeVar("T")
R = TypeVar("R")


class BatchFailed(MedBrainError):
    """The run as a whole failed (a worker died, Ray failed); no row of it can be trusted."""


@dataclass(frozen=True, slots=True)
class Job(Generic[T, R]):
    """What a run does; every function must be importable at module level (pickled by name)."""

    work: Callable[[Any, T], R]
    error_row: Callable[[T, str], R]
    setup: Callable[[Any], Any] | None = None
    #: Modules that are slow to import (e.g. a code table loaded at import): imported once
    #: before a pool starts, so that forked workers inherit them instead of each loading them.
    preload: tuple[str, ...] = ()


@dataclass(slots=True)
class RunResult(Generic[R]):
    rows: list[R]
    seconds: float
    engine: str
    workers: int
    chunks: int = 0
    failed_items: int = field(default=0)

    @property
    def per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else float("inf")


def check_options(engine: str, workers: int | None, chunk_size: int | None) -> int:
    """Validate the runner options (the field named on error); the worker count to use."""
    if engine not in ENGINES:
        raise InputError("--engine", "engine", f"must be one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise InputError("--workers", "workers", "must be at least 1")
    if chunk_size is not None and chunk_size < 1:
        raise InputError("--chunk-size", "chunk_size", "must be at least 1")
    return max(1, workers or os.cpu_count() or 1)


def auto_chunk(total: int | None, workers: int, ceiling: int = DEFAULT_CHUNK) -> int:
    """A chunk size that gives every worker about four chunks (never more than ``ceiling``)."""
    if not total:
        return ceiling
    return max(1, min(ceiling, math.ceil(total / (workers * 4))))


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def work_chunk(job: Job[T, R], state: Any, chunk: Sequence[T]) -> list[R]:
    """Rows of ``chunk`` in order; an item whose work raises becomes its error row."""
    out: list[R] = []
    for item in chunk:
        try:
            out.append(job.work(state, item))
        except Exception as exc:  # one bad item must not lose the others
            out.append(job.error_row(item, _describe(exc)))
    return out


def _state(job: Job[Any, Any], context: Any) -> Any:
    return job.setup(context) if job.setup is not None else context


# -- process pool --------------------------------------------------------------------------------

_WORKER: tuple[Job[Any, Any], Any] | None = None  # (job, state), one per pool process


def _init_worker(job: Job[Any, Any], context: Any) -> None:
    global _WORKER
    _WORKER = (job, _state(job, context))


def _pool_chunk(chunk: Sequence[Any]) -> list[Any]:
    assert _WORKER is not None, "pool worker not initialised"
    job, state = _WORKER
    return work_chunk(job, state, chunk)


def start_method() -> str:
    """``fork`` (cheapest: the context is inherited) unless other threads run in this process
    (a web server), where forking is unsafe: then ``forkserver``; ``spawn`` off POSIX."""
    if os.name != "posix":
        return "spawn"
    return "fork" if threading.active_count() == 1 else "forkserver"


def _ordered(
    submit: Callable[[list[T]], Any],
    wait: Callable[[Any], list[R]],
    chunks: Iterator[list[T]],
    window: int,
) -> Iterator[list[R]]:
    """Keep up to ``window`` chunks in flight; yield their rows in submission order."""
    pending: deque[Any] = deque()
    for chunk in chunks:
        pending.append(submit(chunk))
        if len(pending) >= window:
            yield wait(pending.popleft())
    while pending:
        yield wait(pending.popleft())


def _iter_process(
    job: Job[T, R], context: Any, chunks: Iterator[list[T]], workers: int
) -> Iterator[list[R]]:
    method = start_method()
    context_of_pool = multiprocessing.get_context(method)
    for name in job.preload:
        with contextlib.suppress(ImportError), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # old packages' data readers
            importlib.import_module(name)  # a missing one is reported by the work, per item
    if method == "forkserver":  # the server imports these once, its children fork
        context_of_pool.set_forkserver_preload([__name__, job.work.__module__, *job.preload])
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context_of_pool,
        initializer=_init_worker,
        initargs=(job, context),
    )

    def wait(future: Future[list[R]]) -> list[R]:
        return future.result()

    try:
        # A dead worker breaks the pool: the next result *or* the next submit raises.
        yield from _ordered(
            lambda chunk: pool.submit(_pool_chunk, chunk),
            wait,
            chunks,
            workers * IN_FLIGHT_PER_WORKER,
        )
    except BrokenProcessPool as exc:
        raise BatchFailed(f"a worker process died: {_describe(exc)}") from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- Ray -----------------------------------------------------------------------------------------


def ray_available() -> bool:
    try:
        import ray  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


class RayWorker:
    """Body of one Ray actor: the job and its state, built once from the shared context."""

    def __init__(self, job: Job[Any, Any], context: Any) -> None:
        self.job = job
        self.state = _state(job, context)

    def run(self, chunk: Sequence[Any]) -> list[Any]:
        return work_chunk(self.job, self.state, chunk)


def _iter_ray(
    job: Job[T, R], context: Any, chunks: Iterator[list[T]], workers: int, address: str | None
) -> Iterator[list[R]]:
    try:
        import ray  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise BackendUnavailable(
            "ray is not installed: pip install 'medbrain[ray]' (or use --engine process)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    actors: list[Any] = []
    try:
        shared = ray.put(context)  # once: every actor reads the same object
        actor_class = ray.remote(num_cpus=1)(RayWorker)
        actors = [actor_class.remote(job, shared) for _ in range(workers)]
        turn = iter(range(1 << 62))

        def submit(chunk: list[T]) -> Any:
            return actors[next(turn) % len(actors)].run.remote(chunk)

        def wait(ref: Any) -> list[R]:
            try:
                return list(ray.get(ref))
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                raise BatchFailed(f"a Ray worker died: {_describe(exc)}") from exc

        yield from _ordered(submit, wait, chunks, workers * IN_FLIGHT_PER_WORKER)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()


# -- entry points --------------------------------------------------------------------------------


def iter_chunks(
    items: Iterable[T],
    job: Job[T, R],
    context: Any,
    *,
    engine: str = "process",
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    ray_address: str | None = None,
) -> Iterator[list[R]]:
    """Each chunk's rows, in input order, as soon as they are ready (see the module doc)."""
    count = check_options(engine, workers, chunk_size)
    chunks = _chunked(items, chunk_size)
    if engine == "single" or (engine == "process" and count == 1):
        state = _state(job, context)
        for chunk in chunks:
            yield work_chunk(job, state, chunk)
    elif engine == "process":
        yield from _iter_process(job, context, chunks, count)
    else:
        yield from _iter_ray(job, context, chunks, count, ray_address)


def effective_engine(engine: str, workers: int | None) -> tuple[str, int]:
    """The engine and worker count that :func:`iter_chunks` will really use."""
    count = check_options(engine, workers, None)
    if engine == "single" or (engine == "process" and count == 1):
        return "single", 1
    return engine, count


def run(
    items: Sequence[T] | Iterable[T],
    job: Job[T, R],
    context: Any,
    *,
    engine: str = "process",
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    ray_address: str | None = None,
    total: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    is_error: Callable[[R], bool] | None = None,
) -> RunResult[R]:
    """Every row, in input order; ``progress(done, total)`` after each chunk."""
    if total is None and isinstance(items, Sequence):
        total = len(items)
    used, count = effective_engine(engine, workers)
    started = time.perf_counter()
    rows: list[R] = []
    chunks = 0
    for part in iter_chunks(
        items,
        job,
        context,
        engine=engine,
        workers=workers,
        chunk_size=chunk_size,
        ray_address=ray_address,
    ):
        rows.extend(part)
        chunks += 1
        if progress is not None:
            progress(len(rows), total)
    failed = sum(1 for r in rows if is_error(r)) if is_error is not None else 0
    return RunResult(rows, time.perf_counter() - started, used, count, chunks, failed)
