"""Batch retrospective review (``medbrain rx batch``): read, run, write.

Inputs: a directory of prescription JSON files (each one prescription, a FHIR Bundle or a JSON
array of them), a ``.jsonl`` file (one prescription per line), a ``.json`` file, or the store
(every encounter's medication orders). Runners (:mod:`medbrain.core.parallel`): ``single``
(this process), ``process`` (a process pool, the default) and ``ray`` (optional extra
``medbrain[ray]``; a local Ray unless ``address`` names a cluster). Every runner reviews each
prescription with the same pure :func:`medbrain.rx.batch.review_one`; the knowledge is sent
once per worker. Reports: CSV (one row per prescription) or XLSX
(sheets ``prescriptions``, ``findings``, ``summary``), written to a temporary file and renamed,
so a failed run leaves nothing half-written.
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

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.core import parallel
from medbrain.core.errors import InputError
from medbrain.rx import RxKnowledge, load_rx_knowledge
from medbrain.rx.batch import COLUMNS, FINDING_COLUMNS, finding_rows, review_one, summarize
from medbrain.store import models as m
from medbrain.store.rx_review import stored_prescriptions
from medbrain.store.xlsx import Sheet, safe_cell, workbook_bytes

ENGINES = ("process", "single", "ray")  # the CLI default first
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


@dataclass(frozen=True, slots=True)
class RxContext:
    """What every worker needs, sent once per worker (see :mod:`medbrain.core.parallel`)."""

    kb: RxKnowledge
    lang: str = "zh"
    threshold: float | None = None
    detail: bool = True


def review_doc(context: RxContext, doc: Doc) -> dict[str, Any]:
    """One report row (the :class:`~medbrain.core.parallel.Job` work function)."""
    key, document = doc
    return review_one(key, document, context.kb, context.lang, context.threshold, context.detail)


def error_doc(doc: Doc, message: str) -> dict[str, Any]:
    """The row of a prescription whose review raised: counted as an error, never lost."""
    key, document = doc
    department = prescriber = ""
    if isinstance(document, dict):
        department = str(document.get("department") or "")
        prescriber = str(document.get("prescriber") or document.get("prescriber_level") or "")
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(
        key=key,
        department=department,
        prescriber=prescriber,
        verdict="error",
        findings=0,
        critical=0,
        warning=0,
        info=0,
        error=message,
        _findings=[],
    )
    return row


RX_JOB: parallel.Job[Doc, dict[str, Any]] = parallel.Job(work=review_doc, error_row=error_doc)

BatchRun = parallel.RunResult  # the runner's result: rows, seconds, engine, workers, per_second


def ray_available() -> bool:
    return parallel.ray_available()


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
    kb: RxKnowledge | None = None,
) -> parallel.RunResult[dict[str, Any]]:
    """Review ``docs`` with the chosen runner; rows come back in input order.

    ``detail=False`` drops each row's finding list (the CSV report does not need it), which
    keeps what workers send back small. The knowledge is loaded once here (bad overrides fail
    before any work) and sent once to each worker.
    """
    parallel.check_options(engine, workers, chunk_size)
    knowledge = kb if kb is not None else load_rx_knowledge(overrides)
    context = RxContext(knowledge, lang, threshold, detail)

    def report(done: int, total: int | None) -> None:
        if progress is not None:
            progress(done, total if total is not None else len(docs))

    return parallel.run(
        docs,
        RX_JOB,
        context,
        engine=engine,
        workers=workers,
        chunk_size=chunk_size,
        ray_address=ray_address,
        progress=report,
        is_error=lambda row: row["verdict"] == "error",
    )


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


def summary_of(run: parallel.RunResult[dict[str, Any]]) -> dict[str, Any]:
    out = summarize(run.rows)
    out.update(
        seconds=round(run.seconds, 3),
        per_second=round(run.per_second, 1),
        engine=run.engine,
        workers=run.workers,
    )
    return out
