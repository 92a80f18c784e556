"""The QC officer starts a retrospective QC run over a period in a real browser (process
engine in the real server's background thread), watches the progress reach done and opens
the run's summary with its rates and exports."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_qc_officer_starts_a_run_sees_it_finish_and_opens_the_summary(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login?next=%2Fqc%2Fbatch")
    page.locator("input[name=username]").fill("qc_officer")
    page.locator("input[name=password]").fill(scenario.passwords["qc_officer"])
    page.locator("form button[type=submit]").click()
    expect(page.locator("#batch-start")).to_be_visible()
    expect(page.locator("#batch-runs tr[data-run]").first).to_be_visible()  # the demo's run

    form = page.locator("#batch-form")
    form.locator("input[name=from]").fill("2025-11-21")
    form.locator("input[name=to]").fill("2026-11-20")
    form.locator("select[name=engine]").select_option("process")
    page.locator("#batch-submit").click()

    expect(page).to_have_url(re.compile(r"/qc/batch/\d+$"))
    expect(page.locator("#batch-progress")).to_be_visible()
    expect(page.locator("#batch-progress")).to_have_attribute("data-status", "done", timeout=60_000)
    total = int(page.locator("#batch-total").inner_text())
    assert total > 0
    expect(page.locator("#batch-done")).to_have_text(str(total))
    page.locator("#batch-open-summary").click()

    expect(page.locator("#batch-summary")).to_be_visible()
    expect(page.locator("#kpi-items strong")).to_have_text(str(total))
    expect(page.locator("#batch-by_department tbody tr").first).to_be_visible()
    expect(page.locator("#batch-distribution tbody tr").first).to_be_visible()
    expect(page.locator("#batch-export-xlsx")).to_have_attribute(
        "href", re.compile(r"/export\.xlsx$")
    )
