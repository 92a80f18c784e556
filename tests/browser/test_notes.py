"""Notes in a real browser: ask the record, insert a cited fact with one click, sign."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_doctor_asks_the_record_then_edits_and_signs_a_note(page: Page, scenario: Scenario) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill("doctor")
    page.locator("input[name=password]").fill(scenario.passwords["doctor"])
    page.locator("form button[type=submit]").click()
    page.goto(f"/patients/{scenario.patient_id}")

    page.locator("#ask-q").fill("主诉")
    page.locator("#ask-record button[type=submit]").click()
    passages = page.locator("#ask-slot .ask-passage")
    expect(passages.first).to_be_visible(timeout=30_000)  # first question builds the index
    expect(page).to_have_url(f"{scenario.base_url}/patients/{scenario.patient_id}")  # HTMX swap
    passages.first.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/patients/{scenario.patient_id}/documents/\d+"))

    page.goto(f"/patients/{scenario.patient_id}/notes/new?type=progress")
    text = page.locator("#note-text")
    fact = page.locator("button.insert-fact").first
    fact_text = fact.get_attribute("data-text") or ""
    fact_ref = fact.get_attribute("data-ref") or ""
    text.evaluate(
        "e => { e.value = '今日查房。'; e.selectionStart = e.selectionEnd = e.value.length; }"
    )
    fact.click()
    expect(text).to_have_value(f"今日查房。{fact_text}。")
    expect(page.locator("#note-citations")).to_have_value(re.compile(re.escape(fact_ref)))
    page.locator("#run-qc").click()
    expect(page.locator("#note-qc #note-qc-result")).to_be_visible()
    page.locator("#sign-note").click()
    expect(page).to_have_url(re.compile(rf"/patients/{scenario.patient_id}/documents/\d+$"))
    expect(page.locator("main")).to_contain_text(fact_text)
