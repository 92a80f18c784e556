"""`medbrain import` as a subprocess: counts, idempotence, stdin, exit 2 and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from medbrain.store import models as m
from medbrain.store.db import make_engine
from tests.support.fhir_bundles import (
    FIXTURE,
    FIXTURE_IMPORTED,
    FIXTURE_SKIPPED,
    fixture_bundle,
    resource,
)


def _run(
    home: Path, database_url: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDBRAIN_HOME": str(home), "MEDBRAIN_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "medbrain.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def _counts(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                table.__tablename__: int(
                    connection.scalar(select(func.count()).select_from(table)) or 0
                )
                for table in (m.Patient, m.Observation, m.DocumentVersion, m.AuditEntry)
            }
    finally:
        engine.dispose()


def test_import_prints_counts_and_is_idempotent(tmp_path: Path, database_url: str) -> None:
    first = _run(tmp_path, database_url, "import", str(FIXTURE), "--json")
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert document["imported"] == FIXTURE_IMPORTED
    assert document["skipped"] == FIXTURE_SKIPPED
    assert document["unchanged"] == document["updated"] == {}
    counts = _counts(database_url)
    assert (counts["patient"], counts["observation"]) == (2, 5)
    # The import itself is one entry; import hooks (alerts tracking, QC recheck) add their own.
    assert _imports_audited(database_url) == 1

    again = _run(tmp_path, database_url, "import", "-", "--json", stdin=FIXTURE.read_text("utf-8"))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == FIXTURE_IMPORTED
    after = _counts(database_url)
    assert {**after, "audit_entry": 0} == {**counts, "audit_entry": 0}
    assert _imports_audited(database_url) == 2


def _imports_audited(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            statement = select(func.count()).where(m.AuditEntry.action == "fhir.import")
            return int(connection.scalar(statement) or 0)
    finally:
        engine.dispose()


def test_import_human_output_lists_each_type(tmp_path: Path, sqlite_url: str) -> None:
    result = _run(tmp_path, sqlite_url, "import", str(FIXTURE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Bundle/medbrain-fixture-synthea-1"
    assert any(line.split()[:2] == ["Observation", "5"] for line in lines)
    assert any(line.split() == ["Claim", "0", "0", "0", "3"] for line in lines)


def _broken(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_broken_bundle_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    assert _run(tmp_path, database_url, "import", str(FIXTURE), "--json").returncode == 0
    before = _counts(database_url)
    bundle = fixture_bundle()
    bundle["id"] = "broken"
    resource(bundle, "Observation", 4)["subject"] = {"reference": "Patient/nobody"}
    resource(bundle, "Patient")["name"][0]["text"] = "王建国(改)"
    result = _run(tmp_path, database_url, "import", str(_broken(tmp_path, bundle)), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "broken.json: entry[" in result.stderr and "subject.reference" in result.stderr
    assert _counts(database_url) == before


def test_invalid_resident_id_names_the_entry_before_touching_the_database(
    tmp_path: Path, sqlite_url: str
) -> None:
    bundle = fixture_bundle()
    resource(bundle, "Patient")["identifier"][2]["value"] = "110105195803120134"
    result = _run(tmp_path, sqlite_url, "import", "-", stdin=json.dumps(bundle))
    assert result.returncode == 2
    assert result.stderr.startswith("<stdin>: entry[0].resource.identifier[2].value: ")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_malformed_json_and_missing_file(tmp_path: Path, sqlite_url: str) -> None:
    malformed = _run(tmp_path, sqlite_url, "import", "-", stdin='{"resourceType": "Bundle",')
    assert malformed.returncode == 2
    assert "malformed JSON" in malformed.stderr
    missing = _run(tmp_path, sqlite_url, "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "file not found" in missing.stderr
