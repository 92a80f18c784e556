"""A QC officer writes a hospital rule in the QC expression language in a real browser:
sees the validation error pointing at the position, fixes it, sees it fire on samples,
saves, tests and enables it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_qc_officer_edits_a_rule_sees_the_error_fixes_it_and_enables_it(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login?next=%2Fqc%2Frules")
    page.locator("input[name=username]").fill("qc_officer")
    page.locator("input[name=password]").fill(scenario.passwords["qc_officer"])
    page.locator("form button[type=submit]").click()
    expect(page.locator("#qc-rule-editor")).to_be_visible()

    form = page.locator("#rule-form")
    form.locator("input[name=rule_id]").fill("qc.local.browser-cc")
    broken = 'has("admission") and length(section("admission", "主诉")) >'
    form.locator("textarea[name=when]").fill(broken)
    form.locator("input[name=message_zh]").fill("主诉超过5个字")
    form.locator("input[name=message_en]").fill("Chief complaint longer than 5 characters")
    form.locator("input[name=source]").fill("本院病历书写细则(浏览器测试)")
    page.locator("#rule-validate").click()

    error = page.locator("#rule-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-field", "when")
    expect(error).to_have_attribute("data-position", str(len(broken) + 1))
    expect(error).to_contain_text("^")
    expect(page.locator("#rule-results")).to_have_count(0)

    form.locator("textarea[name=when]").fill(broken + " 5")
    page.locator("#rule-validate").click()
    expect(page.locator("#rule-ok")).to_be_visible()
    fired = page.locator("#rule-results li[data-fired=true]")
    expect(fired.first).to_be_visible()
    expect(fired.first.locator("q").first).not_to_be_empty()

    page.locator("#rule-save").click()
    row = page.locator("#qc-rule-list tr[data-rule-id='qc.local.browser-cc']")
    expect(row).to_have_attribute("data-enabled", "false")
    expect(row.locator("button.enable-rule")).to_be_disabled()  # not tested yet
    row.locator("button.test-rule").click()
    expect(page.locator("#rule-results li[data-fired=true]").first).to_be_visible()
    row = page.locator("#qc-rule-list tr[data-rule-id='qc.local.browser-cc']")
    row.locator("button.enable-rule").click()
    expect(page.locator("#qc-rule-list tr[data-rule-id='qc.local.browser-cc']")).to_have_attribute(
        "data-enabled", "true"
    )
