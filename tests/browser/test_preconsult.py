"""Pre-consultation (预问诊) in a real browser: the patient describes a complaint and gets a
department with recommended places; a red-flag complaint says go to the emergency department."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def test_patient_gets_a_department_and_a_red_flag_goes_to_the_ed(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill("patient")
    page.locator("input[name=password]").fill(scenario.passwords["patient"])
    page.locator("form button[type=submit]").click()
    expect(page.locator("button", has_text="退出")).to_be_visible()
    page.goto("/portal/preconsult")
    form = page.locator("#preconsult-form")
    expect(form).to_be_visible()

    form.locator("textarea[name=complaint]").fill("咳嗽3天,有白痰,不发热")
    form.locator("button[type=submit]").click()
    result = page.locator("#preconsult-result")
    expect(result).to_have_attribute("data-go-ed", "false")
    department = result.locator(".department")
    expect(department).not_to_be_empty()
    assert result.get_attribute("data-department") != "20"
    expect(page.locator("#where-to-go")).to_be_visible()
    expect(
        page.locator("#where-to-go .where-item[data-code='C001'][data-emergency='true']")
    ).to_have_count(0)

    page.locator("#preconsult-form textarea[name=complaint]").fill("突然胸口压榨样疼痛,出冷汗")
    page.locator("#preconsult-form button[type=submit]").click()
    urgent = page.locator("#preconsult-result")
    expect(urgent).to_have_attribute("data-go-ed", "true")
    expect(urgent).to_contain_text("急诊")
    places = page.locator("#where-to-go .where-item")
    expect(places.first).to_have_attribute("data-emergency", "true")
    expect(page.locator("#where-to-go .where-item[data-code='C001']")).to_have_count(0)
