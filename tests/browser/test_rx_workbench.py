"""The pharmacist workbench in a real browser: a pharmacist returns a prescription with a reason
and the prescriber finds it, with the reason, in their inbox."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser

DOCTOR_DEPARTMENT = "心内科"  # the demo doctor's department (medbrain.demo.seed.DEMO_ACCOUNTS)


def _login(page: Page, scenario: Scenario, username: str) -> None:
    page.context.clear_cookies()
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(scenario.passwords[username])
    page.locator("form button[type=submit]").click()
    expect(page.locator(".mainnav")).to_be_visible()


def test_pharmacist_returns_a_prescription_and_the_doctor_sees_the_reason(
    page: Page, scenario: Scenario
) -> None:
    _login(page, scenario, "pharmacist")
    page.goto("/rx/queue")
    card = page.locator("article[data-review-id][data-status=pending]").filter(
        has_text=DOCTOR_DEPARTMENT
    )
    expect(card.first).to_be_visible()
    review_id = card.first.get_attribute("data-review-id")
    card.first.locator("a.primary").click()
    expect(page.locator("#rx-review")).to_have_attribute("data-status", "pending")
    reason = "请核对华法林与非甾体抗炎药合用的出血风险"
    page.locator("#rx-return textarea[name=reason]").fill(reason)
    page.locator("#rx-return button[type=submit]").click()
    expect(page).to_have_url(f"{scenario.base_url}/rx/queue")
    expect(page.locator(f"article[data-review-id='{review_id}']")).to_have_count(0)

    _login(page, scenario, "doctor")
    page.goto("/rx/inbox")
    returned = page.locator(f"article[data-review-id='{review_id}']")
    expect(returned).to_be_visible()
    expect(returned.locator(".return-reason")).to_contain_text(reason)
    returned.locator("a.primary").click()
    expect(page.locator("#rx-return-reason")).to_contain_text(reason)
    expect(page.locator("#rx-justify")).to_be_visible()
