"""The workbench in a real browser: a nurse triages the chest-pain example."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_nurse_triages_the_chest_pain_example_to_level_two_or_higher(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login?next=%2Ftriage")
    page.locator("input[name=username]").fill("nurse")
    page.locator("input[name=password]").fill(scenario.passwords["nurse"])
    page.locator("form button[type=submit]").click()
    expect(page.locator(".mainnav a[href='/triage']")).to_be_visible()
    page.goto("/triage")
    page.locator("a.example[data-example='chest_pain']").click()
    expect(page.locator("input[name=complaint]")).to_have_value(re.compile("胸痛"))
    page.locator("#triage-form button[type=submit]").click()

    result = page.locator("#triage-result")
    expect(result).to_be_visible()
    level = int(result.get_attribute("data-level") or "9")
    assert level <= 2
    expect(result).to_have_attribute("data-zone", "red")
    expect(result.locator(".department")).to_contain_text("急诊医学科")
    expect(result.locator(".pathway")).to_have_text("chest_pain")
    badge = result.locator(".level-badge")
    expect(badge).to_contain_text(re.compile("Ⅰ级|Ⅱ级"))
    colour = badge.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")


def test_doctor_sees_alerts_and_drafts_a_cited_note_on_the_patient_page(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill("doctor")
    page.locator("input[name=password]").fill(scenario.passwords["doctor"])
    page.locator("form button[type=submit]").click()
    page.goto(f"/patients/{scenario.patient_id}")
    expect(page.locator("#alerts-panel")).to_be_visible()  # swapped in by HTMX
    expect(page.locator("#alerts-panel")).to_contain_text("NEWS2")
    page.locator("button.draft-note[data-note-type='discharge']").click()
    draft = page.locator("#note-slot #note-draft[data-note-type='discharge']")
    expect(draft).to_be_visible()
    expect(draft.locator(".cite").first).to_contain_text("/")
    expect(page).to_have_url(f"{scenario.base_url}/patients/{scenario.patient_id}")
