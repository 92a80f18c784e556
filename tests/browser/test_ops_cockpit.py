"""The director cockpit in a real browser: 14 indicators, drill-down to departments, a trend."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_director_drills_an_indicator_down_to_a_department_trend(
    page: Page, scenario: Scenario
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login?next=%2Fops")
    page.locator("input[name=username]").fill("director")
    page.locator("input[name=password]").fill(scenario.passwords["director"])
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/ops$"), timeout=20_000)

    tiles = page.locator("#ops-tiles .ops-tile")
    expect(tiles).to_have_count(14)
    # ECharts (vendored, CSP script-src 'self') drew the sparklines.
    expect(page.locator(".ops-spark canvas").first).to_be_attached()
    # The forecast tile is filled after the page renders (the model fit is the slow part).
    forecast_tile = page.locator(".ops-tile[data-indicator='forecast_accuracy']")
    expect(forecast_tile).to_have_attribute("data-loaded", "true", timeout=30_000)
    expect(forecast_tile.locator(".ops-tile-value strong")).to_have_text(re.compile(r"^\d"))
    expect(page.locator("#ops-forecast-chart canvas")).to_be_attached()

    page.locator(".ops-tile[data-indicator='bed_occupancy']").click()
    drill = page.locator("#ops-drill")
    expect(drill).to_be_visible()
    expect(page.locator("#ops-drill-title")).to_contain_text("病床使用率")
    rows = page.locator("#ops-drill-table tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator("#ops-drill-table tbody tr[data-dept='PEDI']")).to_contain_text("儿科")

    page.locator("#ops-drill-table tbody tr[data-dept='PEDI']").click()
    expect(page.locator("#ops-dept-title")).to_contain_text("儿科")
    expect(page.locator("#ops-dept-chart canvas")).to_be_attached()
    assert errors == []
