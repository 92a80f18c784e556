"""``medbrain rx batch``: directory / JSONL / store in, CSV / XLSX out, same results whatever
the runner (one process, a process pool, a local Ray); bad input exits 2 and writes nothing."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.errors import InputError
from medbrain.rx import load_rx_knowledge
from medbrain.rx.batch import COLUMNS, review_chunk
from medbrain.store import rx_batch
from tests.integration.test_rx_review_loop import _add_prescription
from tests.support.ray import local_ray  # noqa: F401  (fixture)
from tests.unit.rx.casebook import load_cases, prescription_of

BAD_DOSE: dict[str, Any] = {
    "patient": {"age_years": 40},
    "items": [{"drug": "阿莫西林胶囊", "dose": -1, "unit": "g", "frequency": "tid"}],
}


def _docs(n: int) -> list[dict[str, Any]]:
    cases = load_cases()
    return [prescription_of(cases[i % len(cases)]) for i in range(n)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", "rx", "batch", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pool_and_single_process_give_the_same_rows_in_input_order() -> None:
    docs = [(f"rx{n}", d) for n, d in enumerate([*_docs(120), BAD_DOSE])]
    single = rx_batch.run_batch(docs, engine="single")
    pooled = rx_batch.run_batch(docs, engine="process", workers=2, chunk_size=25)
    assert pooled.engine == "process" and pooled.workers == 2
    assert [r["key"] for r in pooled.rows] == [k for k, _ in docs]
    assert rx_batch.public_rows(pooled.rows) == rx_batch.public_rows(single.rows)
    expected = review_chunk(docs[:5], load_rx_knowledge(None))
    assert rx_batch.public_rows(pooled.rows[:5]) == rx_batch.public_rows(expected)
    last = pooled.rows[-1]
    assert last["verdict"] == "error" and "items[0].dose" in last["error"]


def test_cli_reviews_a_jsonl_file_into_csv_and_prints_throughput(tmp_path: Path) -> None:
    docs = [*_docs(60), BAD_DOSE]
    source = tmp_path / "rx.jsonl"
    source.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n\n")
    out = tmp_path / "report.csv"
    done = _cli(str(source), "--out", str(out), "--workers", "2", "--chunk-size", "16", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["prescriptions"] == 61 and summary["errors"] == 1
    assert summary["engine"] == "process" and summary["per_second"] > 0
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 61
    assert rows[0]["key"] == "rx.jsonl:1" and rows[-1]["verdict"] == "error"
    flagged = sum(r["verdict"] in ("warn", "block") for r in rows)
    assert summary["unreasonable_rate_pct"] == round(flagged * 100 / 60, 2)


def test_cli_writes_xlsx_with_prescription_finding_and_summary_sheets(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    docs = _docs(12)
    (folder / "one.json").write_text(json.dumps(docs[0], ensure_ascii=False))
    (folder / "many.json").write_text(json.dumps(docs[1:], ensure_ascii=False))
    out = tmp_path / "report.xlsx"
    done = _cli(str(folder), "--out", str(out), "--engine", "single")
    assert done.returncode == 0, done.stderr
    assert "12 prescriptions in" in done.stdout and "/s, engine=single" in done.stdout
    book = load_workbook(out, read_only=True)
    assert book.sheetnames == ["prescriptions", "findings", "summary"]
    prescriptions = list(book["prescriptions"].iter_rows(values_only=True))
    assert prescriptions[0] == COLUMNS and len(prescriptions) == 13
    findings = list(book["findings"].iter_rows(values_only=True))
    assert len(findings) - 1 == sum(int(row[4]) for row in prescriptions[1:])


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps(BAD_DOSE) + '\n{"items": [}\n')
    out = tmp_path / "report.csv"
    done = _cli(str(source), "--out", str(out))
    assert done.returncode == 2 and "line 2" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == [source]
    broken = tmp_path / "bad.json"
    broken.write_text("[1, 2")
    with pytest.raises(InputError, match="not valid JSON"):
        rx_batch.read_inputs(broken)
    with pytest.raises(InputError, match="no prescriptions"):
        rx_batch.read_inputs(_empty_dir(tmp_path))
    with pytest.raises(InputError, match="no such file"):
        rx_batch.read_inputs(tmp_path / "missing")
    with pytest.raises(InputError, match=r"\.csv or \.xlsx"):
        rx_batch.check_output(tmp_path / "report.txt")


def _empty_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.mark.usefixtures("local_ray")  # one local Ray per test session (tests/support/ray.py)
def test_ray_runner_on_a_local_ray_matches_the_single_process() -> None:
    docs = [(f"rx{n}", d) for n, d in enumerate(_docs(80))]
    on_ray = rx_batch.run_batch(docs, engine="ray", workers=2, chunk_size=20)
    single = rx_batch.run_batch(docs, engine="single")
    assert on_ray.engine == "ray"
    assert rx_batch.public_rows(on_ray.rows) == rx_batch.public_rows(single.rows)


def test_store_prescriptions_are_reviewed_in_batch(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        encounter_id = _add_prescription(session)
    with session_factory() as session:
        docs = rx_batch.store_inputs(session)
    assert [key for key, _ in docs] == [f"Encounter/{encounter_id}"]
    assert docs[0][1]["prescriber"] == "李建华" and docs[0][1]["setting"] == "inpatient"
    run = rx_batch.run_batch(docs, engine="single")
    assert run.rows[0]["verdict"] == "block" and "interaction" in run.rows[0]["categories"]
