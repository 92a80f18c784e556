"""Stored batch runs over the store, on SQLite and PostgreSQL: progress and results of a
prescription run and a QC run (checked against the engines run directly), a failed run marked
failed with only whole chunks counted and then resumed, one active run per kind, and the
exports."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from medbrain.cli import app
from medbrain.core import parallel
from medbrain.core.errors import ConflictError
from medbrain.demo.generator import DEFAULT_ANCHOR, generate_bundles
from medbrain.interop.fhir.importer import import_bundle
from medbrain.qc import check_record, load_qc_knowledge
from medbrain.qc.parse import record_from_mapping
from medbrain.rx import load_rx_knowledge
from medbrain.store import batch_runs as br
from medbrain.store import models as m
from medbrain.store import rx_batch
from medbrain.store.batch_models import BatchItem, BatchRun
from medbrain.store.qc_workflow import build_inputs

ZONE = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2020, 1, 1), date(2030, 12, 31)


def _seed(factory: sessionmaker[Session], patients: int = 8) -> None:
    with factory() as session, session.begin():
        for bundle in generate_bundles(patients, 11, anchor=DEFAULT_ANCHOR):
            import_bundle(session, bundle, source="test", now=DEFAULT_ANCHOR)


def _start(
    factory: sessionmaker[Session], kind: str, first: date = FIRST, last: date = LAST
) -> int:
    with factory() as session, session.begin():
        return br.start_run(session, kind=kind, first=first, last=last, who="tester", params={}).id


def _items(factory: sessionmaker[Session], run_id: int) -> list[BatchItem]:
    with factory() as session:
        return list(br.stored_items(session, run_id))


def _run(factory: sessionmaker[Session], run_id: int) -> BatchRun:
    with factory() as session:
        return br.get_run(session, run_id)


def test_rx_run_stores_every_prescription_with_progress_and_the_engines_verdicts(
    session_factory: sessionmaker[Session],
) -> None:
    _seed(session_factory)
    run_id = _start(session_factory, "rx")
    seen: list[tuple[int, int]] = []
    scope = br.factory_scope(session_factory)
    summary = br.run_stored(
        scope,
        run_id,
        ZONE,
        br.rx_work(load_rx_knowledge(), chunk_size=4),
        progress=lambda done, total: seen.append((done, total)),
    )
    run, items = _run(session_factory, run_id), _items(session_factory, run_id)
    assert run.status == "done" and run.active_kind is None and run.error is None
    assert run.total == run.done == len(items) > 8
    assert seen == [(n, run.total) for n in [*range(4, run.total, 4), run.total]]
    assert seen[-1] == (run.total, run.total)
    assert [i.seq for i in items] == list(range(len(items)))

    with session_factory() as session:  # the file-based runner over the same prescriptions
        direct = rx_batch.run_batch(rx_batch.store_inputs(session), engine="single").rows
    verdicts = {r["key"]: r["verdict"] for r in direct}
    assert {i.item_key: i.verdict for i in items} == verdicts
    flagged = sorted(i.item_key for i in items if i.flagged)
    assert flagged == sorted(k for k, v in verdicts.items() if v in ("warn", "block"))
    assert run.flagged == summary["flagged"] == len(flagged) > 0
    assert sum(g["items"] for g in summary["by_department"]) == summary["checked"]
    assert sum(g["flagged"] for g in summary["by_doctor"]) == summary["flagged"]
    with_findings = next(i for i in items if i.flagged)
    assert with_findings.findings and with_findings.findings[0]["rule_id"] in with_findings.rules
    top = summary["by_category"][0]
    assert top["items"] == sum(1 for i in items if top["name"] in i.categories)

    with session_factory() as session:
        stored = br.get_run(session, run_id)
        text = br.export_csv(session, stored).decode("utf-8-sig")
        book = load_workbook(io.BytesIO(br.export_xlsx(session, stored)), read_only=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["key"] for r in rows] == [i.item_key for i in items]
    assert [r["verdict"] for r in rows] == [i.verdict for i in items]
    assert book.sheetnames == ["items", "findings", "summary"]
    assert sum(1 for _ in book["items"].iter_rows()) == len(items) + 1
    assert sum(1 for _ in book["findings"].iter_rows()) == 1 + sum(len(i.findings) for i in items)


def test_qc_run_checks_the_discharged_stays_of_the_period_only(
    session_factory: sessionmaker[Session],
) -> None:
    _seed(session_factory)
    knowledge = load_qc_knowledge()
    with session_factory() as session:
        stays = list(
            session.scalars(
                select(m.Encounter)
                .where(m.Encounter.discharge_time.is_not(None), m.Encounter.kind == "inpatient")
                .order_by(m.Encounter.discharge_time, m.Encounter.id)
            )
        )
        assert len(stays) >= 3
        expected = {}
        for stay in build_inputs(session, stays, ZONE):
            key = f"Encounter/{stay.encounter.id}"
            body = {"documents": stay.documents, "meta": stay.meta}
            report = check_record(record_from_mapping(body, key, knowledge.vocabulary), knowledge)
            expected[key] = (report.score, report.grade, len(report.defects))
    middle = stays[len(stays) // 2].discharge_time
    assert middle is not None
    last = middle.astimezone(ZONE).date()
    in_period = [
        f"Encounter/{s.id}"
        for s in stays
        if s.discharge_time is not None and s.discharge_time.astimezone(ZONE).date() <= last
    ]
    run_id = _start(session_factory, "qc", FIRST, last)
    summary = br.run_stored(
        br.factory_scope(session_factory), run_id, ZONE, br.qc_work(knowledge, chunk_size=2)
    )
    items = _items(session_factory, run_id)
    assert [i.item_key for i in items] == in_period
    assert len(in_period) < len(stays)
    for item in items:
        score, grade, defects = expected[item.item_key]
        assert (item.score, item.grade, len(item.findings) >= defects) == (score, grade, True)
        assert item.flagged == (defects > 0)
    assert sum(summary["grades"].values()) == summary["checked"] == len(items)
    assert summary["mean_score"] == round(sum(e[0] for k, e in expected.items() if k in in_period)
                                          / len(in_period), 1)  # fmt: skip


# -- failure ---------------------------------------------------------------------------------


def _die_work(state: dict[str, Any], doc: tuple[str, Any]) -> dict[str, Any]:
    if doc[0] == state["die_key"]:
        os._exit(3)  # the worker is killed (out of memory, kill -9)
    return rx_batch.review_doc(state["ctx"], doc)


DYING_JOB: parallel.Job[Any, Any] = parallel.Job(work=_die_work, error_row=rx_batch.error_doc)


def test_a_run_whose_worker_dies_is_failed_and_counts_only_whole_stored_chunks(
    session_factory: sessionmaker[Session],
) -> None:
    _seed(session_factory)
    with session_factory() as session:
        keys = [k for k, _ in rx_batch.store_inputs(session)]
    run_id = _start(session_factory, "rx")
    ordered = br.rx_encounter_ids
    with session_factory() as session:
        start, end = br.period_bounds(FIRST, LAST, ZONE)
        die_key = f"Encounter/{ordered(session, start, end)[7]}"
    context = {"ctx": rx_batch.RxContext(load_rx_knowledge()), "die_key": die_key}
    work = br.Work(DYING_JOB, context, engine="process", workers=2, chunk_size=3)
    with pytest.raises(parallel.BatchFailed):
        br.run_stored(br.factory_scope(session_factory), run_id, ZONE, work)
    run, items = _run(session_factory, run_id), _items(session_factory, run_id)
    assert run.status == "failed" and run.active_kind is None and run.summary is None
    assert "worker process died" in (run.error or "")
    assert run.done == len(items) < run.total == len(keys)
    assert run.done % 3 == 0 and die_key not in {i.item_key for i in items}
    assert [i.seq for i in items] == list(range(run.done))
    _start(session_factory, "rx")  # a failed run does not block the next one


TIMING = ("seconds", "per_second", "engine", "workers", "chunk_size", "resumed_after")


def test_a_failed_run_resumes_after_its_stored_items_and_ends_as_an_unbroken_run(
    session_factory: sessionmaker[Session],
) -> None:
    _seed(session_factory)
    run_id = _start(session_factory, "rx")
    with session_factory() as session:
        start, end = br.period_bounds(FIRST, LAST, ZONE)
        die_key = f"Encounter/{br.rx_encounter_ids(session, start, end)[7]}"
    context = {"ctx": rx_batch.RxContext(load_rx_knowledge(), detail=True), "die_key": die_key}
    dying = br.Work(DYING_JOB, context, engine="process", workers=2, chunk_size=3)
    scope = br.factory_scope(session_factory)
    with pytest.raises(parallel.BatchFailed):
        br.run_stored(scope, run_id, ZONE, dying)
    before = {i.seq: (i.id, i.item_key) for i in _items(session_factory, run_id)}
    assert 0 < len(before) < _run(session_factory, run_id).total

    with session_factory() as session, session.begin():
        resumed = br.resume_run(session, run_id, "rx")
        assert (resumed.status, resumed.active_kind, resumed.error) == ("queued", "rx", None)
    with pytest.raises(ConflictError):  # now active: neither a new run nor a second resume
        _start(session_factory, "rx")
    summary = br.run_stored(scope, run_id, ZONE, br.rx_work(load_rx_knowledge(), chunk_size=4))

    run, items = _run(session_factory, run_id), _items(session_factory, run_id)
    assert run.status == "done" and run.active_kind is None and run.error is None
    assert summary["resumed_after"] == len(before)
    assert {i.seq: (i.id, i.item_key) for i in items if i.seq in before} == before  # kept
    assert [i.seq for i in items] == list(range(run.total)) and run.done == run.total
    keys = [i.item_key for i in items]
    assert len(set(keys)) == len(keys) and die_key in keys

    unbroken = _start(session_factory, "rx")
    reference = br.run_stored(scope, unbroken, ZONE, br.rx_work(load_rx_knowledge()))
    assert sorted(keys) == sorted(i.item_key for i in _items(session_factory, unbroken))
    assert {k: v for k, v in summary.items() if k not in TIMING} == {
        k: v for k, v in reference.items() if k not in TIMING
    }
    with session_factory() as session, session.begin(), pytest.raises(ConflictError):
        br.resume_run(session, unbroken, "rx")  # only a failed run resumes


def test_one_active_run_per_kind_and_a_stale_one_is_failed_by_the_next(
    session_factory: sessionmaker[Session],
) -> None:
    first = _start(session_factory, "rx")
    with pytest.raises(ConflictError):
        _start(session_factory, "rx")
    _start(session_factory, "qc")  # another kind may run beside it
    with session_factory() as session, session.begin():
        stale = br.get_run(session, first)
        stale.updated_at = datetime.now(UTC) - br.STALE_AFTER - timedelta(seconds=1)
    second = _start(session_factory, "rx")
    assert _run(session_factory, first).status == "failed"
    assert _run(session_factory, second).status == "queued"
    with session_factory() as session:
        active = session.scalar(
            select(func.count()).select_from(BatchRun).where(BatchRun.active_kind.is_not(None))
        )
    assert active == 2
    with pytest.raises(IntegrityError), session_factory() as session, session.begin():
        # what two racing requests would write: the database itself refuses a second one
        session.add(BatchRun(kind="rx", active_kind="rx", params={}, created_by="racer"))


def test_cli_store_run_is_stored_audited_and_exported_and_bad_dates_exit_2(
    session_factory: sessionmaker[Session],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(session_factory, patients=4)
    monkeypatch.setenv("MEDBRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("MEDBRAIN_DATABASE_URL", database_url)
    runner = CliRunner()
    bad = runner.invoke(
        app, ["qc", "batch", "--store", "--from", "2026-02-30", "--to", "2026-03-01"]
    )
    assert bad.exit_code == 2 and "from" in bad.output
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(BatchRun)) == 0
    out = tmp_path / "qc.csv"
    args = ["qc", "batch", "--store", "--from", str(FIRST), "--to", "2029-12-31", "--engine",
            "single", "--out", str(out), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout.strip().splitlines()[-1])
    assert view["status"] == "done" and view["done"] == view["total"] > 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == view["done"]
    with session_factory() as session:
        action = session.scalar(
            select(m.AuditEntry.action).where(m.AuditEntry.resource == f"BatchRun/{view['id']}")
        )
    assert action == "batch.run.start"

    done_run = runner.invoke(app, ["qc", "batch", "--resume", str(view["id"])])
    assert done_run.exit_code == 2 and "only a failed run" in done_run.output
    both = runner.invoke(app, ["qc", "batch", "--resume", str(view["id"]), "--from", "2026-01-01"])
    assert both.exit_code == 2 and "--from" in both.output
    with session_factory() as session, session.begin():
        failed = br.get_run(session, view["id"])
        kept = failed.done // 2
        session.execute(
            delete(BatchItem).where(BatchItem.run_id == failed.id, BatchItem.seq >= kept)
        )
        failed.status, failed.done, failed.summary = "failed", kept, None
    resumed = runner.invoke(app, ["qc", "batch", "--resume", str(view["id"]), "--json"])
    assert resumed.exit_code == 0, resumed.output
    again = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert again["status"] == "done" and again["done"] == again["total"] == view["total"]
    assert again["summary"]["resumed_after"] == kept
    assert {k: v for k, v in again["summary"].items() if k not in TIMING} == {
        k: v for k, v in view["summary"].items() if k not in TIMING
    }
    with session_factory() as session:
        actions = session.scalars(
            select(m.AuditEntry.action).where(m.AuditEntry.resource == f"BatchRun/{view['id']}")
        ).all()
    assert list(actions) == ["batch.run.start", "batch.run.resume"]
