"""Retrospective QC over many stays with a process pool (``medbrain qc batch DIR --out``).

:func:`find_records` lists the stays of a directory (each sub-directory is a RECORD directory,
each ``*.json`` file a record in the API/FHIR form, DESIGN.md §3). :func:`run_batch` checks
them in chunks on ``workers`` processes (each loads the rule library once) and returns one row
per stay in input order: a stay that cannot be read gets a row with ``error`` and is counted,
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
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbrain.core.errors import InputError
from medbrain.qc.engine import check_record
from medbrain.qc.parse import read_record_dir, record_from_json
from medbrain.qc.registry import STAGES, QCKnowledge, load_qc_knowledge

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


def check_one(path: Path, knowledge: QCKnowledge, options: BatchOptions) -> dict[str, Any]:
    """One report row; unreadable input becomes a row with ``error``."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row["record"] = path.name
    try:
        record = _read(path, knowledge)
        report = check_record(
            record,
            knowledge,
            stage=options.stage,
            lang=options.lang,
            review_threshold=options.review_threshold,
        )
    except (InputError, OSError) as exc:
        row["error"] = str(exc) or type(exc).__name__
        return row
    out = report.to_dict()
    row.update(
        score=out["score"],
        grade=out["grade"],
        veto=out["veto"],
        defects=len(out["defects"]),
        needs_review=len(out["needs_review"]),
        categories=";".join(f"{k}:{v}" for k, v in out["categories"].items()),
        rules=";".join(sorted({d["rule_id"] for d in out["defects"]})),
        skipped=";".join(s["file"] for s in out["skipped"]),
    )
    return row


def _check_chunk(paths: Sequence[str], options: BatchOptions) -> list[dict[str, Any]]:
    knowledge = _knowledge(options.overrides)
    return [check_one(Path(p), knowledge, options) for p in paths]


def _chunks(items: Sequence[Path], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield [str(p) for p in items[start : start + size]]


def run_batch(
    paths: Sequence[Path],
    options: BatchOptions,
    *,
    workers: int | None = None,
    chunk_size: int = 50,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Check every stay; ``workers`` processes (default: CPU count; 1 runs in this process)."""
    if options.stage not in STAGES:
        raise InputError("--stage", "stage", f"must be realtime or final, got {options.stage!r}")
    if workers is not None and workers < 1:
        raise InputError("--workers", "workers", "must be at least 1")
    if chunk_size < 1:
        raise InputError("--chunk-size", "chunk_size", "must be at least 1")
    _knowledge(options.overrides)  # bad overrides fail here, once, before any work
    count = workers or os.cpu_count() or 1
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    chunks = list(_chunks(paths, chunk_size))
    if count == 1 or len(chunks) == 1:
        for chunk in chunks:
            rows += _check_chunk(chunk, options)
            if progress is not None:
                progress(len(rows), len(paths))
        return BatchResult(tuple(rows), time.perf_counter() - started, 1)
    with ProcessPoolExecutor(max_workers=count) as pool:
        for done in pool.map(_check_chunk, chunks, [options] * len(chunks)):
            rows += done
            if progress is not None:
                progress(len(rows), len(paths))
    return BatchResult(tuple(rows), time.perf_counter() - started, count)


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
