"""Batch retrospective review (``medbrain rx batch``): read, run, write.

Inputs: a directory of prescription JSON files (each one prescription, a FHIR Bundle or a JSON
array of them), a ``.jsonl`` file (one prescription per line), a ``.json`` file, or the store
(every encounter's medication orders). Runners: ``single`` (this process), ``process`` (a
:mod:`multiprocessing` pool, the default) and ``ray`` (optional extra ``medbrain[ray]``; a
local Ray unless ``address`` names a cluster). Every runner reviews chunks with the same pure
:func:`medbrain.rx.batch.review_chunk`. Reports: CSV (one row per prescription) or XLSX
(sheets ``prescriptions``, ``findings``, ``summary``), written to a temporary file and renamed,
so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.core.errors import BackendUnavailable, InputError
from medbrain.rx import RxKnowledge, load_rx_knowledge
from medbrain.rx.batch import COLUMNS, FINDING_COLUMNS, finding_rows, review_chunk, summarize
from medbrain.store import models as m
from medbrain.store.rx_review import stored_prescriptions
from medbrain.store.xlsx import Sheet, safe_cell, workbook_bytes

ENGINES = ("process", "single", "ray")
FORMATS = (".csv", ".xlsx")
DEFAULT_CHUNK = 500
MAX_LINE_BYTES = 5_000_000

Doc = tuple[str, Any]


# -- inputs ------------------------------------------------------------------------------------


def _json_file(path: Path) -> list[Doc]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "", f"cannot read: {exc}") from None
    if isinstance(data, list):
        return [(f"{path.name}[{n}]", doc) for n, doc in enumerate(data)]
    return [(path.name, data)]


def _jsonl_file(path: Path) -> list[Doc]:
    out: list[Doc] = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if len(line) > MAX_LINE_BYTES:
                    raise InputError(str(path), f"line {n}", "line too long")
                try:
                    out.append((f"{path.name}:{n}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(str(path), f"line {n}", f"not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "", f"cannot read: {exc}") from None
    return out


def read_inputs(path: Path) -> list[Doc]:
    """``(key, document)`` pairs from a directory, a ``.jsonl`` or a ``.json`` file.

    Raises
    ------
    InputError
        Missing path, unknown file type, unreadable JSON (file and line named), nothing found.
    """
    if path.is_dir():
        docs: list[Doc] = []
        for child in sorted(path.iterdir()):
            if child.suffix == ".json":
                docs.extend(_json_file(child))
            elif child.suffix == ".jsonl":
                docs.extend(_jsonl_file(child))
    elif path.is_file() and path.suffix == ".jsonl":
        docs = _jsonl_file(path)
    elif path.is_file() and path.suffix == ".json":
        docs = _json_file(path)
    elif not path.exists():
        raise InputError(str(path), "", "no such file or directory")
    else:
        raise InputError(str(path), "", "expected a directory, a .jsonl or a .json file")
    if not docs:
        raise InputError(str(path), "", "no prescriptions found (.json / .jsonl)")
    return docs


def store_inputs(session: Session, limit: int | None = None) -> list[Doc]:
    """Every stored encounter's medication orders as a prescription (latest first)."""
    query = (
        select(m.Encounter)
        .where(m.Encounter.id.in_(select(m.MedicationRequest.encounter_id)))
        .order_by(m.Encounter.admit_time.desc(), m.Encounter.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    docs: list[Doc] = []
    for stored in stored_prescriptions(session, list(session.scalars(query))):
        document = dict(stored.document)
        prescriber = next((r.prescriber for r in stored.requests if r.prescriber), None)
        if prescriber:
            document["prescriber"] = prescriber
        docs.append((f"Encounter/{stored.encounter.id}", document))
    return docs


# -- runners -----------------------------------------------------------------------------------

_worker_kb: RxKnowledge | None = None  # one per pool process, set by _init_worker


def _init_worker(overrides: str | None) -> None:
    global _worker_kb
    _worker_kb = load_rx_knowledge(Path(overrides) if overrides else None)


def _work(args: tuple[Sequence[Doc], str, float | None, bool]) -> list[dict[str, Any]]:
    chunk, lang, threshold, detail = args
    assert _worker_kb is not None
    return review_chunk(chunk, _worker_kb, lang, threshold, detail)


def chunks(docs: Sequence[Doc], size: int) -> Iterator[Sequence[Doc]]:
    for start in range(0, len(docs), size):
        yield docs[start : start + size]


@dataclass(frozen=True, slots=True)
class BatchRun:
    rows: list[dict[str, Any]]
    seconds: float
    engine: str
    workers: int

    @property
    def per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else float("inf")


def ray_available() -> bool:
    try:
        import ray  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def _run_ray(
    docs: Sequence[Doc],
    size: int,
    workers: int,
    lang: str,
    threshold: float | None,
    overrides: str | None,
    address: str | None,
    detail: bool,
) -> list[dict[str, Any]]:
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
    try:

        @ray.remote  # type: ignore[untyped-decorator,unused-ignore]
        def review_remote(
            chunk: Sequence[Doc], lang: str, threshold: float | None, overrides: str | None
        ) -> list[dict[str, Any]]:
            kb = load_rx_knowledge(Path(overrides) if overrides else None)
            return review_chunk(chunk, kb, lang, threshold, detail)

        futures = [
            review_remote.remote(list(chunk), lang, threshold, overrides)
            for chunk in chunks(docs, size)
        ]
        rows: list[dict[str, Any]] = []
        for part in ray.get(futures):
            rows.extend(part)
        return rows
    finally:
        if started_here:
            ray.shutdown()


def run_batch(
    docs: Sequence[Doc],
    *,
    engine: str = "process",
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    lang: str = "zh",
    threshold: float | None = None,
    overrides: Path | None = None,
    ray_address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    detail: bool = True,
) -> BatchRun:
    """Review ``docs`` with the chosen runner; rows come back in input order.

    ``detail=False`` drops each row's finding list (the CSV report does not need it), which
    keeps what workers send back small.
    """
    if engine not in ENGINES:
        raise InputError("--engine", "engine", f"must be one of {', '.join(ENGINES)}")
    if chunk_size < 1:
        raise InputError("--chunk-size", "chunk_size", "must be at least 1")
    n_workers = max(1, workers or os.cpu_count() or 1)
    overrides_text = str(overrides) if overrides else None
    kb = load_rx_knowledge(overrides)  # validates the knowledge once, before any work starts
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if engine == "single" or (engine == "process" and n_workers == 1):
        for chunk in chunks(docs, chunk_size):
            rows.extend(review_chunk(chunk, kb, lang, threshold, detail))
            if progress:
                progress(len(rows), len(docs))
        engine, n_workers = "single", 1
    elif engine == "process":
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with context.Pool(n_workers, initializer=_init_worker, initargs=(overrides_text,)) as pool:
            tasks = ((chunk, lang, threshold, detail) for chunk in chunks(docs, chunk_size))
            for part in pool.imap(_work, tasks):
                rows.extend(part)
                if progress:
                    progress(len(rows), len(docs))
    else:
        rows = _run_ray(
            docs, chunk_size, n_workers, lang, threshold, overrides_text, ray_address, detail
        )
        if progress:
            progress(len(rows), len(docs))
    return BatchRun(rows, time.perf_counter() - started, engine, n_workers)


# -- outputs -----------------------------------------------------------------------------------


def check_output(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError("--out", "out", f"must end in .csv or .xlsx, got {path.name!r}")
    if not path.parent.is_dir():
        raise InputError("--out", "out", f"directory {path.parent} does not exist")
    return suffix


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(path: Path, rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
    """CSV (per prescription, UTF-8 with BOM for Excel) or XLSX (three sheets)."""
    suffix = check_output(path)
    if suffix == ".csv":

        def write_csv(target: Path) -> None:
            with target.open("w", encoding="utf-8-sig", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(COLUMNS)
                for row in rows:
                    writer.writerow([safe_cell(row.get(c, "")) for c in COLUMNS])

        _atomic(path, write_csv)
        return

    totals: list[list[Any]] = [
        [name, summary[name]]
        for name in ("prescriptions", "reviewed", "errors", "unreasonable_rate_pct")
    ]
    totals += [[f"verdict.{verdict}", n] for verdict, n in summary["verdicts"].items()]
    for group in ("by_department", "by_prescriber", "by_category"):
        entries = summary[group]
        totals.append([])
        if entries:
            totals.append([group, *entries[0].keys()])
            totals += [["", *entry.values()] for entry in entries]
    sheets = [
        Sheet("prescriptions", COLUMNS, ([row.get(c, "") for c in COLUMNS] for row in rows)),
        Sheet(
            "findings",
            FINDING_COLUMNS,
            ([f[c] for c in FINDING_COLUMNS] for f in finding_rows(rows)),
        ),
        Sheet("summary", ("name", "value"), totals),
    ]

    def write_xlsx(target: Path) -> None:
        target.write_bytes(workbook_bytes(sheets))

    _atomic(path, write_xlsx)


def public_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{c: row.get(c, "") for c in COLUMNS} for row in rows]


def summary_of(run: BatchRun) -> dict[str, Any]:
    out = summarize(run.rows)
    out.update(
        seconds=round(run.seconds, 3),
        per_second=round(run.per_second, 1),
        engine=run.engine,
        workers=run.workers,
    )
    return out
