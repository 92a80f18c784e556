"""Insurance XLSX export on SQLite and PostgreSQL: opens with openpyxl, numbers match the stats
API, flags carry their evidence, formula-like text stays text, and the export is audited."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from medbrain.insurance.claims_generator import generate_claims
from medbrain.store.insurance_models import InsuranceFlag
from tests.integration.api.conftest import Site, build_site


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    built = build_site(tmp_path, database_url)
    try:
        yield built
    finally:
        built.app.state.engine.dispose()


def _sheet(book: Any, name: str) -> tuple[list[Any], list[list[Any]]]:
    rows = [list(r) for r in book[name].iter_rows(values_only=True)]
    return rows[0], rows[1:]


def test_xlsx_export_matches_stats_api_and_is_audited(site: Site) -> None:
    api = site.api("insurance_officer")
    documents = [c.document for c in generate_claims(40, 21, prevalence=0.2)]
    documents[0] = {**documents[0], "doctor": '=HYPERLINK("http://x")'}
    assert api.post("/api/v1/insurance/batch?store=true", json=documents).status_code == 200
    with site.session() as session:
        flag_id = session.scalars(select(InsuranceFlag.id).order_by(InsuranceFlag.id)).first()
        total_flags = session.scalar(select(func.count()).select_from(InsuranceFlag))
    decided = api.post(
        f"/api/v1/insurance/flags/{flag_id}/decision",
        json={"decision": "confirmed", "reason": "无对应检验"},
    )
    assert decided.status_code == 200

    client, _ = site.browser("insurance_officer")
    assert 'href="/insurance/export.xlsx"' in client.get("/insurance").text
    before = site.audit_count("insurance.export")
    response = client.get("/insurance/export.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert site.audit_count("insurance.export") == before + 1

    book = load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["flags", "by_department", "by_doctor"]
    header, flags = _sheet(book, "flags")
    assert len(flags) == total_flags
    col = {name: i for i, name in enumerate(header)}
    assert sum(1 for r in flags if r[col["status"]] == "confirmed") == 1
    assert any(r[col["decision_reason"]] == "无对应检验" for r in flags)
    assert all(r[col["evidence"]] for r in flags if r[col["severity"]] != "info")
    assert all(isinstance(r[col["amount_yuan"]], int | float) for r in flags)

    for by in ("department", "doctor"):
        stats = api.get(f"/api/v1/insurance/stats?by={by}")
        assert stats.status_code == 200, stats.text
        header, rows = _sheet(book, f"by_{by}")
        assert header[0] == by
        expected = [[row["key"], *(row[c] for c in header[1:])] for row in stats.json()["rows"]]
        exported = [[str(r[0]), *r[1:]] for r in rows]
        # formula-like names are quoted in the file, verbatim in the API
        assert exported == [[("'" + e[0]) if e[0][:1] == "=" else e[0], *e[1:]] for e in expected]
        assert sum(r[header.index("cases")] for r in rows) == 40
    _, doctors = _sheet(book, "by_doctor")
    assert '\'=HYPERLINK("http://x")' in [r[0] for r in doctors]

    bad = api.get("/api/v1/insurance/stats?by=ward")
    assert bad.status_code == 422
    assert site.browser("nurse")[0].get("/insurance/export.xlsx").status_code == 403
