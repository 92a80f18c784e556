"""The insurance office in a real browser: open the queue, open a case, read evidence, dismiss."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_insurance_officer_dismisses_a_flag_with_a_reason(page: Page, scenario: Scenario) -> None:
    if "insurance_officer" not in scenario.passwords:
        pytest.skip("the demo seeder (with insurance accounts) is not available")
    page.goto("/login?next=%2Finsurance")
    page.locator("input[name=username]").fill("insurance_officer")
    page.locator("input[name=password]").fill(scenario.passwords["insurance_officer"])
    page.locator("form button[type=submit]").click()
    expect(page.locator("#insurance-queue")).to_be_visible()
    first = page.locator("#insurance-queue tbody tr").first
    expect(first).to_be_visible()
    first.locator("th a").click()

    expect(page.locator("#drg-path li").first).to_be_visible()
    flag = page.locator("#insurance-flags article[data-status='open']").first
    expect(flag.locator(".evidence li").first).to_be_visible()
    flag_id = flag.get_attribute("id")
    flag.locator("input[name=reason]").fill("病程记录已写明指征")
    flag.locator("button[value=dismissed]").click()

    decided = page.locator(f"#{flag_id}")
    expect(decided).to_have_attribute("data-status", "dismissed")
    expect(decided.locator(".decided")).to_contain_text("病程记录已写明指征")
