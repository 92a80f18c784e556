"""A QC officer in a real browser: the demo's mined candidate rules are listed with their
support, confidence and draft condition; one is approved (tested on samples and enabled as a
hospital rule), another rejected with a reason; a manual finding is recorded on a stay."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_qc_officer_approves_and_rejects_mined_rules_and_records_a_manual_finding(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login?next=%2Fqc%2Fproposals")
    page.locator("input[name=username]").fill("qc_officer")
    page.locator("input[name=password]").fill(scenario.passwords["qc_officer"])
    page.locator("form button[type=submit]").click()
    proposed = page.locator("li.qc-proposal[data-status=proposed]")
    expect(proposed.first).to_be_visible()
    assert proposed.count() >= 2  # the demo seeds two patterns
    first = proposed.first
    expect(first.locator("code.qc-condition")).to_contain_text("not contains(section(")
    pid = first.get_attribute("data-proposal-id")
    first.locator("form.qc-approve-form button").click()
    expect(page.locator("#qc-tested")).to_be_visible()
    done = page.locator(f"li.qc-proposal[data-proposal-id='{pid}']")
    expect(done).to_have_attribute("data-status", "approved")
    expect(done.locator("a.mono")).to_have_text(f"qc.local.mined-{pid}")

    other = page.locator("li.qc-proposal[data-status=proposed]").first
    oid = other.get_attribute("data-proposal-id")
    other.locator("form.qc-reject-form input[name=reason]").fill("心电监护已包含监测")
    other.locator("form.qc-reject-form button").click()
    rejected = page.locator(f"li.qc-proposal[data-proposal-id='{oid}']")
    expect(rejected).to_have_attribute("data-status", "rejected")
    expect(rejected).to_contain_text("心电监护已包含监测")

    page.goto(f"/qc/rules?edit=qc.local.mined-{pid}")
    row = page.locator(f"#qc-rule-list tr[data-rule-id='qc.local.mined-{pid}']")
    expect(row).to_have_attribute("data-enabled", "true")

    page.goto("/qc")
    page.locator("a[href^='/qc/encounters/']").first.click()
    form = page.locator("form.qc-manual-form")
    form.locator("select[name=pattern]").select_option("bad_phrase")
    form.locator("input[name=section]").fill("现病史")
    form.locator("input[name=element]").fill("同上")
    form.locator("button[type=submit]").click()
    expect(page.locator("#qc-manual p.ok")).to_be_visible()
