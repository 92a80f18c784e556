"""``medbrain qc batch DIR --out report.csv``: every stay gets a row, pool == single process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbrain.cli import app
from medbrain.core.errors import InputError
from medbrain.qc import batch, check_record, load_qc_knowledge, read_record_dir
from medbrain.qc.corpus import generate_corpus, write_record


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stays")
    for rec in generate_corpus(10, seed=11):
        write_record(rec, root / rec.record_id)
    (root / "broken.json").write_bytes(b"{not json")
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not a record", encoding="utf-8")  # neither: not listed
    return root


def test_cli_writes_one_row_per_stay_and_prints_throughput(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    done = CliRunner().invoke(
        app, ["qc", "batch", str(records), "--out", str(out), "--workers", "2", "--chunk-size", "3"]
    )
    assert done.exit_code == 0, done.output
    assert "records/s" in done.stdout and "12 records (1 unreadable)" in done.stdout
    with out.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    names = sorted(p.name for p in records.iterdir() if p.is_dir() or p.suffix == ".json")
    assert [r["record"] for r in rows] == names
    errors = {r["record"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"broken.json"} and "malformed JSON" in errors["broken.json"]
    # an empty stay is read like `qc check` reads it: every required document is missing
    [empty] = [r for r in rows if r["record"] == "empty"]
    assert empty["veto"] == "True" and "missing_document" in empty["categories"]
    knowledge = load_qc_knowledge()
    for row in rows:
        if row["error"]:
            continue
        expected = check_record(read_record_dir(records / row["record"]), knowledge)
        assert float(row["score"]) == expected.score and row["grade"] == expected.grade
        assert int(row["defects"]) == len(expected.defects)


def test_pool_and_single_process_agree_and_bad_input_is_refused(
    records: Path, tmp_path: Path
) -> None:
    paths = batch.find_records(records)
    options = batch.BatchOptions()
    single = batch.run_batch(paths, options, workers=1)
    pooled = batch.run_batch(paths, options, workers=2, chunk_size=4)
    assert single.rows == pooled.rows and pooled.workers == 2
    assert single.summary()["records"] == len(paths) == 12
    with pytest.raises(InputError):
        batch.find_records(tmp_path / "missing")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError):
        batch.find_records(tmp_path / "nothing")
    runner = CliRunner()
    bad = runner.invoke(app, ["qc", "batch", str(records), "--out", str(tmp_path / "r.txt")])
    assert bad.exit_code == 2 and "--out" in bad.stderr and "Traceback" not in bad.output
    bad = runner.invoke(
        app, ["qc", "batch", str(records), "--out", str(tmp_path / "r.csv"), "--stage", "x"]
    )
    assert bad.exit_code == 2 and not (tmp_path / "r.csv").exists()
    done = runner.invoke(
        app,
        ["qc", "batch", str(records), "--out", str(tmp_path / "r.csv"), "--json", "--workers", "1"],
    )
    assert done.exit_code == 0 and json.loads(done.stdout)["errors"] == 1
