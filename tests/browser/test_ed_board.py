"""The ED board in a real browser: a nurse sees the live board, an overdue patient is
highlighted, and recording a step updates the board in place (HTMX)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_nurse_sees_overdue_patient_highlighted_and_records_the_doctor_step(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login?next=%2Fed")
    page.locator("input[name=username]").fill("nurse")
    page.locator("input[name=password]").fill(scenario.passwords["nurse"])
    page.locator("form button[type=submit]").click()
    expect(page.locator(".mainnav a[href='/ed']")).to_be_visible()
    board = page.locator("#ed-board")
    expect(board).to_be_visible()
    assert board.get_attribute("hx-trigger", timeout=2000) == "every 30s"
    expect(board.locator("tr.ed-row").first).to_be_visible()

    overdue = board.locator("tr.ed-row[data-overdue='true'][data-status='waiting']").first
    expect(overdue).to_be_visible()
    expect(overdue.locator(".ed-overdue")).to_be_visible()
    expect(overdue.locator(".ed-retriage")).to_contain_text("请再次评估")
    background = overdue.evaluate("e => getComputedStyle(e).backgroundColor")
    normal = board.locator("tr.ed-row[data-overdue='false']").first
    assert background != normal.evaluate("e => getComputedStyle(e).backgroundColor")
    level_badge = overdue.locator(".ed-level")
    assert level_badge.evaluate("e => getComputedStyle(e).backgroundColor") not in (
        "rgba(0, 0, 0, 0)",
        "transparent",
    )

    visit_id = overdue.get_attribute("data-visit-id")
    row = page.locator(f"#ed-visit-{visit_id}")
    row.locator("select[name=step]").select_option("doctor")
    row.locator("button.record-step").click()
    updated = page.locator(f"#ed-visit-{visit_id}")
    expect(updated).to_have_attribute("data-status", "seen")
    expect(updated).to_have_attribute("data-overdue", "false")
    expect(updated.locator("li.ed-step.done[data-step='doctor']")).to_be_visible()
    expect(page).to_have_url(f"{scenario.base_url}/ed")  # swapped in place, no reload
