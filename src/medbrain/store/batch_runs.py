"""Stored retrospective batch runs over the store: prescriptions (``rx``) and discharged stays
(``qc``) of a period, run with the shared runner and kept with progress and a summary.

Life of a run: :func:`start_run` inserts it ``queued`` (one active run per kind: a second is a
:class:`~medbrain.core.errors.ConflictError`, 409); :func:`execute_run` lists the period's
items, marks it ``running`` with the total, reviews chunk after chunk
(:func:`medbrain.core.parallel.iter_chunks`) and stores each chunk's items **in the same
transaction** as the new ``done`` count, so ``done`` always equals the stored items; the
summary is written with status ``done``. Anything that stops the run (a worker dies, the
database fails) marks it ``failed`` with the reason; its committed items stay as they are
(whole chunks, counted), and it has no summary. A run whose heartbeat (``updated_at``) is older
than :data:`STALE_AFTER` (the process that ran it is gone) is marked failed when the next run of
its kind starts. A failed run can be resumed (:func:`resume_run`): it goes on after the
encounters it has stored, so a crash late in a night's run does not cost the whole night.

The same functions serve the CLI (``medbrain rx|qc batch --store``), the web pages (a
background thread) and the demo seed (inside the seed's own transaction, via
:func:`nested_scope`).

References
----------
Issue 6 §6 (retrospective prescription review: unreasonable rate by department, doctor and
category; CSV/XLSX export); issue 7 §5 (retrospective QC over discharged records) and §7
(defect rates by department, doctor and kind); 《医院处方点评管理规范(试行)》(2010) 第十四条.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core import parallel
from medbrain.core.errors import ConflictError, InputError, NotFoundError
from medbrain.store import models as m
from medbrain.store.batch_models import KINDS, BatchItem, BatchRun
from medbrain.store.xlsx import Sheet, safe_cell, workbook_bytes

log = logging.getLogger("medbrain.batch")

#: A running run that has not written for this long belongs to a process that is gone.
STALE_AFTER = timedelta(minutes=10)
#: Longest period one run may cover.
MAX_PERIOD_DAYS = 3660
#: Stays or encounters read from the store per query.
PAGE = 500
#: Engines offered in the web app (Ray is for the command line and clusters).
WEB_ENGINES = ("process", "single")
TOP_ROWS = 50

Scope = Callable[[], AbstractContextManager[Session]]


def factory_scope(factory: sessionmaker[Session]) -> Scope:
    """One new session and transaction per use (the CLI and the web app)."""

    @contextmanager
    def scope() -> Iterator[Session]:
        with factory() as session, session.begin():
            yield session

    return scope


def nested_scope(session: Session) -> Scope:
    """A savepoint of the caller's transaction per use (the demo seed)."""

    @contextmanager
    def scope() -> Iterator[Session]:
        with session.begin_nested():
            yield session

    return scope


def _now() -> datetime:
    return datetime.now(UTC)


# -- period ------------------------------------------------------------------------------------


def parse_day(raw: str | date | None, field_name: str) -> date:
    if isinstance(raw, date):
        return raw
    if not raw or not str(raw).strip():
        raise InputError(f"--{field_name}", field_name, "a date (YYYY-MM-DD) is required")
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise InputError(
            f"--{field_name}", field_name, f"not a date (YYYY-MM-DD): {str(raw)[:40]!r}"
        ) from None


def parse_period(raw_from: str | date | None, raw_to: str | date | None) -> tuple[date, date]:
    """``(first, last)`` day, both included; the field is named on error."""
    first, last = parse_day(raw_from, "from"), parse_day(raw_to, "to")
    if last < first:
        raise InputError("--to", "to", f"{last} is before --from {first}")
    if (last - first).days > MAX_PERIOD_DAYS:
        raise InputError("--to", "to", f"a period is at most {MAX_PERIOD_DAYS} days")
    return first, last


def period_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period as a half-open UTC interval: local midnight of ``first`` to after ``last``."""
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


# -- runs --------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail_stale(session: Session, kind: str, now: datetime) -> None:
    for run in session.scalars(
        select(BatchRun).where(BatchRun.active_kind == kind).with_for_update()
    ):
        heartbeat = run.updated_at or run.created_at
        if heartbeat < now - STALE_AFTER:
            run.status, run.active_kind, run.finished_at = "failed", None, now
            run.error = "stopped: no progress for a while (the process that ran it ended)"


def active_run(session: Session, kind: str) -> BatchRun | None:
    return session.scalar(select(BatchRun).where(BatchRun.active_kind == kind))


def start_run(
    session: Session,
    *,
    kind: str,
    first: date,
    last: date,
    who: str,
    params: Mapping[str, Any],
    now: datetime | None = None,
) -> BatchRun:
    """A new ``queued`` run in the caller's transaction; 409 when one of ``kind`` is active."""
    if kind not in KINDS:
        raise InputError("kind", "kind", f"must be one of {', '.join(KINDS)}")
    when = now or _now()
    _check_idle(session, kind, when)
    run = BatchRun(
        kind=kind,
        active_kind=kind,
        period_from=first,
        period_to=last,
        params=dict(params),
        status="queued",
        total=0,
        done=0,
        errors=0,
        flagged=0,
        created_by=who,
        created_at=when,
        updated_at=when,
    )
    _claim(session, kind, lambda: session.add(run))
    return run


def resume_run(
    session: Session, run_id: int, kind: str, *, now: datetime | None = None
) -> BatchRun:
    """Queue a ``failed`` run again in the caller's transaction: :func:`execute_run` keeps its
    stored items and reviews only the rest. 409 when the run is not failed or another run of
    ``kind`` is active."""
    run = get_run(session, run_id, kind)
    if run.status != "failed":
        raise ConflictError(
            "batch", "run", f"batch run {run_id} is {run.status}; only a failed run can resume"
        )
    when = now or _now()
    _check_idle(session, kind, when)

    def requeue() -> None:
        run.status, run.active_kind, run.error = "queued", kind, None
        run.finished_at, run.updated_at = None, when

    _claim(session, kind, requeue)
    return run


def _check_idle(session: Session, kind: str, now: datetime) -> None:
    _fail_stale(session, kind, now)
    running = active_run(session, kind)
    if running is not None:
        raise ConflictError(
            "batch", "run", f"batch run {running.id} ({kind}) is {running.status}; wait for it"
        )


def _claim(session: Session, kind: str, change: Callable[[], None]) -> None:
    """Apply ``change``, which makes a run the active one of ``kind``; the unique
    ``active_kind`` refuses it when another request claimed one after our check."""
    try:
        with session.begin_nested():
            change()
            session.flush()
    except IntegrityError:
        raise ConflictError("batch", "run", f"a {kind} batch run is already running") from None


def get_run(session: Session, run_id: int, kind: str | None = None) -> BatchRun:
    run = session.get(BatchRun, run_id)
    if run is None or (kind is not None and run.kind != kind):
        raise NotFoundError(f"BatchRun/{run_id}")
    return run


def list_runs(session: Session, kind: str, limit: int = 20) -> list[BatchRun]:
    return list(
        session.scalars(
            select(BatchRun).where(BatchRun.kind == kind).order_by(BatchRun.id.desc()).limit(limit)
        )
    )


# -- inputs ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Source:
    """The items of a run, read page by page, and what each stored row needs besides the
    engine's answer (``info``: encounter, patient, department, doctor), keyed by item key."""

    total: int
    items: Iterable[Any]
    info: dict[str, dict[str, Any]] = field(default_factory=dict)


def rx_encounter_ids(session: Session, start: datetime, end: datetime) -> list[int]:
    """Encounters with a medication order written in ``[start, end)`` (the order's time, else
    the encounter's admission), oldest first."""
    when = func.coalesce(m.MedicationRequest.authored_at, m.Encounter.admit_time)
    rows = session.execute(
        select(m.Encounter.id, func.min(when))
        .join(m.MedicationRequest, m.MedicationRequest.encounter_id == m.Encounter.id)
        .where(when >= start, when < end)
        .group_by(m.Encounter.id)
        .order_by(func.min(when), m.Encounter.id)
    )
    return [int(eid) for eid, _ in rows]


def qc_encounter_ids(session: Session, start: datetime, end: datetime) -> list[int]:
    """Stays discharged in ``[start, end)``, in discharge order."""
    return list(
        session.scalars(
            select(m.Encounter.id)
            .where(
                m.Encounter.discharge_time.is_not(None),
                m.Encounter.discharge_time >= start,
                m.Encounter.discharge_time < end,
                or_(m.Encounter.kind == "inpatient", m.Encounter.kind.is_(None)),
            )
            .order_by(m.Encounter.discharge_time, m.Encounter.id)
        )
    )


def _pages(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), PAGE):
        yield list(ids[start : start + PAGE])


def rx_source(scope: Scope, ids: Sequence[int]) -> Source:
    from medbrain.store.rx_review import stored_prescriptions

    source = Source(len(ids), [])

    def items() -> Iterator[tuple[str, Any]]:
        for page in _pages(ids):
            with scope() as session:
                encounters = list(
                    session.scalars(select(m.Encounter).where(m.Encounter.id.in_(page)))
                )
                encounters.sort(key=lambda e: page.index(e.id))
                stored = stored_prescriptions(session, encounters)
            for sp in stored:
                key = f"Encounter/{sp.encounter.id}"
                document = dict(sp.document)
                prescriber = next((r.prescriber for r in sp.requests if r.prescriber), None)
                if prescriber:
                    document["prescriber"] = prescriber
                source.info[key] = {
                    "encounter_id": sp.encounter.id,
                    "patient_id": sp.encounter.patient_id,
                    "department": sp.encounter.department or document.get("department"),
                    "doctor": prescriber,
                }
                yield key, document

    source.items = items()
    return source


def qc_source(scope: Scope, ids: Sequence[int], zone: ZoneInfo) -> Source:
    from medbrain.store.qc_workflow import build_inputs

    source = Source(len(ids), [])

    def items() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        for page in _pages(ids):
            with scope() as session:
                encounters = list(
                    session.scalars(select(m.Encounter).where(m.Encounter.id.in_(page)))
                )
                encounters.sort(key=lambda e: page.index(e.id))
                stays = build_inputs(session, encounters, zone)
            for stay in stays:
                key = f"Encounter/{stay.encounter.id}"
                source.info[key] = {
                    "encounter_id": stay.encounter.id,
                    "patient_id": stay.encounter.patient_id,
                    "department": stay.encounter.department,
                    "doctor": stay.author_for("admission"),
                }
                yield key, {"documents": stay.documents, "meta": stay.meta}, {}

    source.items = items()
    return source


# -- results -----------------------------------------------------------------------------------


def _split(text: Any) -> list[str]:
    return [part for part in str(text or "").split(";") if part]


def _rx_finding(f: Mapping[str, Any]) -> dict[str, Any]:
    sources = [e.get("source") for e in f.get("evidence") or [] if e.get("source")]
    return {
        "rule_id": f.get("rule_id"),
        "category": f.get("category"),
        "severity": f.get("severity"),
        "drugs": list(f.get("drugs") or []),
        "message": f.get("message"),
        "suggestion": f.get("suggestion") or "",
        "source": "; ".join(str(s) for s in sources),
    }


def _qc_finding(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "rule_id": f.get("rule_id"),
        "category": f.get("category"),
        "severity": f.get("severity"),
        "message": f.get("message"),
        "document": f.get("document") or "",
        "deduction": f.get("deduction", 0.0),
        "needs_review": bool(f.get("needs_review")),
    }


def item_values(kind: str, row: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns of one engine row (:class:`BatchItem`)."""
    error = str(row.get("error") or "") or None
    base = {
        "encounter_id": info.get("encounter_id"),
        "patient_id": info.get("patient_id"),
        "department": (str(info.get("department") or row.get("department") or "") or None),
        "doctor": (str(info.get("doctor") or row.get("prescriber") or "") or None),
        "error": error,
    }
    if kind == "rx":
        verdict = str(row.get("verdict") or "error")
        rules = list(dict.fromkeys(_split(row.get("rules"))))
        return {
            **base,
            "item_key": str(row.get("key"))[:256],
            "verdict": verdict,
            "grade": None,
            "score": None,
            "flagged": verdict in ("warn", "block"),
            "categories": _split(row.get("categories")),
            "rules": rules,
            "findings": [_rx_finding(f) for f in row.get("_findings") or []],
        }
    defects = int(row.get("defects") or 0) if not error else 0
    return {
        **base,
        "item_key": str(row.get("record"))[:256],
        "verdict": "error" if error else ("defective" if defects else "clean"),
        "grade": (str(row.get("grade")) or None) if not error else None,
        "score": float(row["score"]) if not error and row.get("score") != "" else None,
        "flagged": defects > 0,
        "categories": [c.split(":")[0] for c in _split(row.get("categories"))],
        "rules": _split(row.get("rules")),
        "findings": [_qc_finding(f) for f in row.get("_findings") or []],
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 2) if whole else None


@dataclass(slots=True)
class Summary:
    """Counts kept while a run goes on (never every row in memory)."""

    kind: str
    items: int = 0
    errors: int = 0
    flagged: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    grades: Counter[str] = field(default_factory=Counter)
    score_sum: float = 0.0
    scored: int = 0
    groups: dict[str, dict[str, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0]))
    )
    categories: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)

    def add(self, values: Mapping[str, Any]) -> None:
        self.items += 1
        self.verdicts[values["verdict"]] += 1
        if values["error"]:
            self.errors += 1
            return
        flagged = bool(values["flagged"])
        self.flagged += flagged
        for group, key in (("by_department", "department"), ("by_doctor", "doctor")):
            counts = self.groups[group][values[key] or "—"]
            counts[0] += 1
            counts[1] += flagged
        if values["grade"]:
            self.grades[values["grade"]] += 1
        if values["score"] is not None:
            self.score_sum += float(values["score"])
            self.scored += 1
        self.categories.update(set(values["categories"]))
        self.rules.update(set(values["rules"]))

    def to_dict(self) -> dict[str, Any]:
        checked = self.items - self.errors

        def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
            return [
                {"name": name, "items": n, "rate_pct": _rate(n, checked)}
                for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            ][:TOP_ROWS]

        out: dict[str, Any] = {
            "kind": self.kind,
            "items": self.items,
            "checked": checked,
            "errors": self.errors,
            "flagged": self.flagged,
            "flagged_rate_pct": _rate(self.flagged, checked),
            "verdicts": dict(sorted(self.verdicts.items())),
            "by_category": ranked(self.categories),
            "by_rule": ranked(self.rules),
        }
        for group in ("by_department", "by_doctor"):
            counts = sorted(
                self.groups[group].items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])
            )
            out[group] = [
                {"name": name, "items": n, "flagged": k, "rate_pct": _rate(k, n)}
                for name, (n, k) in counts[:TOP_ROWS]
            ]
        if self.kind == "qc":
            out["grades"] = dict(sorted(self.grades.items()))
            out["mean_score"] = round(self.score_sum / self.scored, 1) if self.scored else None
        return out


# -- running -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Work:
    """How to run: the job, its context (sent once per worker) and the runner options."""

    job: parallel.Job[Any, Any]
    context: Any
    engine: str = "single"
    workers: int | None = None
    chunk_size: int | None = None
    ray_address: str | None = None


def _mark_failed(scope: Scope, run_id: int, reason: str) -> None:
    try:
        with scope() as session:
            run = session.get(BatchRun, run_id)
            if run is not None:
                now = _now()
                run.status, run.active_kind, run.error = "failed", None, reason
                run.finished_at = run.updated_at = now
    except Exception:  # the database itself is gone; the heartbeat marks it stale later
        log.exception("batch run %s: could not mark it failed", run_id)


def _stored_so_far(session: Session, run_id: int, kind: str) -> tuple[Summary, set[int]]:
    """The counts and encounters of the items a run has stored (none unless it resumes)."""
    summary = Summary(kind)
    encounters: set[int] = set()
    for item in stored_items(session, run_id):
        summary.add(
            {
                "verdict": item.verdict,
                "error": item.error,
                "flagged": item.flagged,
                "department": item.department,
                "doctor": item.doctor,
                "grade": item.grade,
                "score": item.score,
                "categories": item.categories or [],
                "rules": item.rules or [],
            }
        )
        if item.encounter_id is not None:
            encounters.add(item.encounter_id)
    return summary, encounters


def execute_run(
    scope: Scope,
    run_id: int,
    source: Callable[[Session, set[int]], Source],
    work: Work,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``run_id`` to the end (see the module doc); the summary, or the error re-raised
    after the run was marked failed. A resumed run (:func:`resume_run`) keeps its stored
    items, counts them in the summary and reviews only the encounters it has not stored."""
    try:
        with scope() as session:
            run = get_run(session, run_id)
            kind = run.kind
            summary, stored = _stored_so_far(session, run_id, kind)
            items = source(session, stored)
            run.status, run.total = "running", summary.items + items.total
            run.started_at = run.updated_at = _now()
        engine, workers = parallel.effective_engine(work.engine, work.workers)
        chunk = work.chunk_size or parallel.auto_chunk(items.total, workers)
        started = datetime.now(UTC)
        resumed_after = seq = summary.items
        for rows in parallel.iter_chunks(
            items.items,
            work.job,
            work.context,
            engine=work.engine,
            workers=work.workers,
            chunk_size=chunk,
            ray_address=work.ray_address,
        ):
            values = []
            for row in rows:
                key = str(row.get("key") or row.get("record"))
                value = item_values(kind, row, items.info.pop(key, {}))
                summary.add(value)
                values.append({**value, "run_id": run_id, "seq": seq})
                seq += 1
            with scope() as session:
                if values:
                    session.execute(insert(BatchItem), values)
                run = get_run(session, run_id)
                run.done = seq
                run.errors = summary.errors
                run.flagged = summary.flagged
                run.updated_at = _now()
            if progress is not None:
                progress(seq, items.total)
        seconds = (datetime.now(UTC) - started).total_seconds()
        out = summary.to_dict()
        out.update(
            seconds=round(seconds, 3),
            per_second=round((seq - resumed_after) / seconds, 1) if seconds > 0 else None,
            resumed_after=resumed_after or None,
            engine=engine,
            workers=workers,
            chunk_size=chunk,
        )
        with scope() as session:
            run = get_run(session, run_id)
            run.summary = out
            run.status, run.active_kind = "done", None
            run.finished_at = run.updated_at = _now()
        return out
    except BaseException as exc:
        _mark_failed(scope, run_id, _describe(exc))
        raise


def rx_work(
    kb: Any,
    *,
    lang: str = "zh",
    threshold: float | None = None,
    engine: str = "single",
    workers: int | None = None,
    chunk_size: int | None = None,
    ray_address: str | None = None,
) -> Work:
    """Prescription review of stored encounters (rows keep their findings)."""
    from medbrain.store.rx_batch import RX_JOB, RxContext

    context = RxContext(kb, lang, threshold, detail=True)
    return Work(RX_JOB, context, engine, workers, chunk_size, ray_address)


def qc_work(
    knowledge: Any,
    *,
    lang: str = "zh",
    threshold: float = 0.7,
    engine: str = "single",
    workers: int | None = None,
    chunk_size: int | None = None,
    ray_address: str | None = None,
) -> Work:
    """Final-stage QC of stored discharged stays (rows keep their defects)."""
    from medbrain.qc.batch import STAY_JOB, BatchOptions, QCContext

    options = BatchOptions(stage="final", lang=lang, review_threshold=threshold)
    return Work(STAY_JOB, QCContext(knowledge, options, detail=True), engine, workers,
                chunk_size, ray_address)  # fmt: skip


def source_for(
    kind: str, scope: Scope, first: date, last: date, zone: ZoneInfo
) -> Callable[[Session, set[int]], Source]:
    """The period's prescriptions (``rx``) or discharged stays (``qc``), without the
    encounters a resumed run has already stored."""
    start, end = period_bounds(first, last, zone)

    def build(session: Session, stored: set[int]) -> Source:
        if kind == "rx":
            ids = rx_encounter_ids(session, start, end)
        else:
            ids = qc_encounter_ids(session, start, end)
        ids = [i for i in ids if i not in stored]
        return rx_source(scope, ids) if kind == "rx" else qc_source(scope, ids, zone)

    return build


def run_stored(
    scope: Scope,
    run_id: int,
    zone: ZoneInfo,
    work: Work,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """:func:`execute_run` over the run's own kind and period."""
    with scope() as session:
        run = get_run(session, run_id)
        kind, first, last = run.kind, run.period_from, run.period_to
    if first is None or last is None:
        raise InputError("batch", "period", f"batch run {run_id} has no period")
    return execute_run(scope, run_id, source_for(kind, scope, first, last, zone), work,
                       progress=progress)  # fmt: skip


def start_background(
    factory: sessionmaker[Session], run_id: int, zone: ZoneInfo, work: Work
) -> threading.Thread:
    """Run in a daemon thread (the web app): the request that started it returns at once."""

    def target() -> None:
        try:
            run_stored(factory_scope(factory), run_id, zone, work)
        except Exception:
            log.exception("batch run %s failed", run_id)

    thread = threading.Thread(target=target, name=f"batch-run-{run_id}", daemon=True)
    thread.start()
    return thread


def run_from_cli(
    settings: Any,
    kind: str,
    raw_from: str | None,
    raw_to: str | None,
    *,
    engine: str,
    workers: int | None,
    chunk_size: int | None,
    ray_address: str | None,
    lang: str,
    overrides: str | None,
    out: str | None,
    resume: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """``medbrain rx|qc batch --store --from --to``: a stored, audited run over the store, or
    ``--resume ID``: a failed run goes on after its stored items; ``out`` (.csv/.xlsx) also
    exports it. Options are checked before anything is written."""
    import getpass
    from pathlib import Path

    from medbrain.audit import chain
    from medbrain.store.instance import open_instance

    if resume is not None and (raw_from or raw_to):
        raise InputError("--resume", "resume", "a resumed run keeps its period: drop --from/--to")
    period = parse_period(raw_from, raw_to) if resume is None else None
    parallel.check_options(engine, workers, chunk_size)
    target = Path(out) if out else None
    if target is not None:
        if target.suffix.lower() not in (".csv", ".xlsx"):
            raise InputError("--out", "out", f"must end in .csv or .xlsx, got {target.name!r}")
        if not target.parent.is_dir():
            raise InputError("--out", "out", f"directory {target.parent} does not exist")
    if overrides is not None and not Path(overrides).is_file():
        raise InputError(overrides, "--overrides", "file not found")
    zone = ZoneInfo(settings.timezone)
    instance = open_instance(settings)
    scope = factory_scope(instance.session_factory)
    options: dict[str, Any] = {"engine": engine, "workers": workers, "chunk_size": chunk_size,
                               "ray_address": ray_address, "lang": lang}  # fmt: skip
    with scope() as session:
        if kind == "rx":
            from medbrain.rx import load_rx_knowledge
            from medbrain.store.rx_review import current_knowledge

            kb = load_rx_knowledge(Path(overrides)) if overrides else current_knowledge(session)[1]
            work = rx_work(kb, threshold=settings.review_threshold, **options)
        else:
            from medbrain.qc import load_qc_knowledge
            from medbrain.store.qc_workflow import effective_knowledge

            base = load_qc_knowledge(Path(overrides)) if overrides else None
            knowledge = effective_knowledge(session, base)
            work = qc_work(knowledge, threshold=settings.review_threshold, **options)
        who = f"cli:{getpass.getuser()}"
        params = {**options, "overrides": overrides, "source": "cli"}
        detail: dict[str, Any] = {"kind": kind, "engine": engine}
        if resume is not None:
            run = resume_run(session, resume, kind)
            action, detail["stored"] = "batch.run.resume", run.done
        elif period is not None:
            first, last = period
            run = start_run(session, kind=kind, first=first, last=last, who=who, params=params)
            action, detail["from"], detail["to"] = "batch.run.start", str(first), str(last)
        chain.append(
            session, who=who, role="system", action=action, resource=f"BatchRun/{run.id}",
            detail=detail,
        )  # fmt: skip
        run_id = run.id
    try:
        run_stored(scope, run_id, zone, work, progress=progress)
        with scope() as session:
            run = get_run(session, run_id)
            if target is not None:
                data = export_xlsx(session, run) if target.suffix.lower() == ".xlsx" else (
                    export_csv(session, run))  # fmt: skip
                target.write_bytes(data)
            return {**run_view(run), "out": str(target) if target else None}
    finally:
        instance.engine.dispose()


# -- exports -----------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "seq",
    "key",
    "encounter_id",
    "patient_id",
    "department",
    "doctor",
    "verdict",
    "grade",
    "score",
    "flagged",
    "categories",
    "rules",
    "findings",
    "error",
)
FINDING_COLUMNS = ("key", "rule_id", "category", "severity", "message", "detail")


def stored_items(session: Session, run_id: int) -> Iterator[BatchItem]:
    yield from session.scalars(
        select(BatchItem).where(BatchItem.run_id == run_id).order_by(BatchItem.seq)
    ).yield_per(1000)


def item_page(
    session: Session, run_id: int, *, offset: int, limit: int, flagged_only: bool = False
) -> list[BatchItem]:
    """Stored items ``offset`` .. ``offset + limit`` in input order (of the flagged ones only,
    if asked)."""
    query = select(BatchItem).where(BatchItem.run_id == run_id)
    if flagged_only:
        query = query.where(BatchItem.flagged.is_(True))
    return list(session.scalars(query.order_by(BatchItem.seq).offset(offset).limit(limit)))


def _export_row(item: BatchItem) -> list[Any]:
    return [
        item.seq + 1,
        item.item_key,
        item.encounter_id,
        item.patient_id,
        item.department or "",
        item.doctor or "",
        item.verdict,
        item.grade or "",
        "" if item.score is None else item.score,
        "yes" if item.flagged else "no",
        ";".join(item.categories or []),
        ";".join(item.rules or []),
        len(item.findings or []),
        item.error or "",
    ]


def export_csv(session: Session, run: BatchRun) -> bytes:
    """One row per item (UTF-8 with BOM so spreadsheet programs read Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for item in stored_items(session, run.id):
        writer.writerow([safe_cell(v) for v in _export_row(item)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _summary_rows(run: BatchRun) -> list[list[Any]]:
    summary = run.summary or {}
    rows: list[list[Any]] = [
        ["kind", run.kind],
        ["from", str(run.period_from)],
        ["to", str(run.period_to)],
        ["status", run.status],
    ]
    for name in ("items", "checked", "errors", "flagged", "flagged_rate_pct", "mean_score"):
        if name in summary:
            rows.append([name, summary[name]])
    for group in ("verdicts", "grades"):
        rows += [[f"{group}.{k}", v] for k, v in (summary.get(group) or {}).items()]
    for group in ("by_department", "by_doctor", "by_category", "by_rule"):
        entries = summary.get(group) or []
        if entries:
            rows.append([])
            rows.append([group, *entries[0].keys()])
            rows += [["", *entry.values()] for entry in entries]
    return rows


def export_xlsx(session: Session, run: BatchRun) -> bytes:
    """Sheets ``items`` (one row per item), ``findings`` (one per finding), ``summary``."""
    items = list(stored_items(session, run.id))

    def findings() -> Iterator[list[Any]]:
        for item in items:
            for f in item.findings or []:
                detail = f.get("suggestion") or f.get("document") or ""
                yield [
                    item.item_key,
                    f.get("rule_id"),
                    f.get("category"),
                    f.get("severity"),
                    f.get("message"),
                    detail,
                ]

    return workbook_bytes(
        [
            Sheet("items", EXPORT_COLUMNS, (_export_row(i) for i in items)),
            Sheet("findings", FINDING_COLUMNS, findings()),
            Sheet("summary", ("name", "value"), _summary_rows(run)),
        ]
    )


def run_view(run: BatchRun) -> dict[str, Any]:
    """The JSON form of a run (CLI ``--json``, progress)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": run.id,
        "kind": run.kind,
        "from": str(run.period_from) if run.period_from else None,
        "to": str(run.period_to) if run.period_to else None,
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "errors": run.errors,
        "flagged": run.flagged,
        "percent": round(run.done * 100.0 / run.total, 1) if run.total else None,
        "created_by": run.created_by,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "params": run.params,
        "summary": run.summary,
        "error": run.error,
    }


# -- demo --------------------------------------------------------------------------------------


def seed_demo_batch_runs(
    session: Session, anchor: datetime, zone_name: str = "Asia/Shanghai"
) -> list[int]:
    """One finished run of each kind over the demo year (single process, in the seed's own
    transaction), so /rx/batch and /qc/batch are not empty after ``make run``."""
    from medbrain.rx import load_rx_knowledge
    from medbrain.store.qc_workflow import effective_knowledge

    zone = ZoneInfo(zone_name)
    last = anchor.astimezone(zone).date()
    first = last - timedelta(days=365)
    scope = nested_scope(session)
    ids: list[int] = []
    for kind, who in (("rx", "pharmacist"), ("qc", "qc_officer")):
        if session.scalar(select(BatchRun.id).where(BatchRun.kind == kind).limit(1)):
            continue
        work = (
            rx_work(load_rx_knowledge()) if kind == "rx" else qc_work(effective_knowledge(session))
        )
        run = start_run(
            session, kind=kind, first=first, last=last, who=who, params={"source": "demo"}
        )
        run_stored(scope, run.id, zone, work)
        ids.append(run.id)
    return ids
