"""Radiology worklist in a real browser: upload a zipped CT series, watch it get analysed."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest

from tests.browser.conftest import Scenario
from tests.integration.radiology._ingest_support import write_series

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    pytest.skip("playwright is not installed", allow_module_level=True)


def test_upload_zip_then_worklist_shows_it_ready(
    page: Page, scenario: Scenario, tmp_path: Path
) -> None:
    files = write_series(tmp_path / "ct", seed=41)
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    archive = tmp_path / "ct.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, f"CT/{path.name}")
    archive.write_bytes(buffer.getvalue())

    page.context.clear_cookies()
    page.goto("/login?next=%2Fradiology")
    page.locator("input[name=username]").fill("radiologist")
    page.locator("input[name=password]").fill(scenario.passwords["radiologist"])
    page.locator("form button[type=submit]").click()
    expect(page.locator("#rad-upload-form")).to_be_visible()

    page.locator("#rad-upload-form input[type=file]").set_input_files(str(archive))
    page.locator("#rad-upload-form button[type=submit]").click()
    expect(page.locator("#rad-upload-message")).to_contain_text("40")
    row = page.locator(f"tr[data-study-uid='{study_uid}']")
    expect(row).to_be_visible()
    # HTMX polls the table while the job runs; the row turns ready without a reload
    expect(row).to_have_attribute("data-status", "ready", timeout=30_000)
    expect(row.locator(".rad-lungrads .badge")).to_be_visible()
    expect(page.locator("#rad-worklist")).to_have_attribute("data-polling", "false")
    link = row.locator("a.rad-open")
    expect(link).to_have_attribute("href", f"/radiology/studies/{study_uid}")
