"""The web UI in a real browser: login, search, patient page, language, inbox, patient account."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def log_in(page: Page, username: str, password: str) -> None:
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").click()


def test_login_with_wrong_then_right_password(page: Page, scenario: Scenario) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    log_in(page, "doctor", "not-the-password")
    expect(page.locator(".alert")).to_contain_text("用户名或密码错误")
    log_in(page, "doctor", scenario.passwords["doctor"])
    expect(page).to_have_url(f"{scenario.base_url}/")
    expect(page.locator("input[type=search]")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("医生")


def test_search_by_pinyin_initials_then_read_labs_and_a_document(
    page: Page, scenario: Scenario
) -> None:
    page.goto("/login")
    log_in(page, "doctor", scenario.passwords["doctor"])
    page.locator("input[type=search]").press_sequentially(scenario.search_initials, delay=30)
    hit = page.locator(f'#results a[href="/patients/{scenario.patient_id}"]').first
    expect(hit).to_be_visible()
    hit.click()
    expect(page.locator(".patient-head h1")).to_have_text(scenario.patient_name)

    row = page.locator(f'#labs tr.lab-row.abnormal[data-code="{scenario.abnormal_code}"]')
    expect(row).to_be_visible()
    flag = row.locator(".flag")
    expect(flag).to_have_text(re.compile(r"^(H|L|HH|LL|A)"))
    background = flag.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    expect(row.locator("svg.spark")).to_be_visible()

    page.locator(f'a.doc-link[data-document-id="{scenario.document_id}"]').click()
    reader = page.locator(f'#reader article.document[data-document-id="{scenario.document_id}"]')
    expect(reader).to_be_visible()
    expect(reader.locator(".doc-text").first).not_to_be_empty()
    expect(page).to_have_url(f"{scenario.base_url}/patients/{scenario.patient_id}")


def test_switch_to_english_and_it_sticks(page: Page, scenario: Scenario) -> None:
    page.goto("/login")
    log_in(page, "doctor", scenario.passwords["doctor"])
    page.goto(f"/patients/{scenario.patient_id}")
    expect(page.locator("#labs h2")).to_have_text("检验结果")
    page.locator(".lang-switch").click()
    expect(page.locator("#labs h2")).to_have_text("Lab results")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Patient search")
    page.locator(".lang-switch").click()
    expect(page.locator("h1")).to_have_text("患者查询")


def test_inbox_accept_and_override_which_needs_a_reason(page: Page, scenario: Scenario) -> None:
    page.goto("/login")
    log_in(page, "doctor", scenario.passwords["doctor"])
    page.locator('nav a[href="/inbox"]').click()
    expect(page.locator("article.finding .badge.review").first).to_be_visible()
    open_cards = page.locator('article.finding[data-status="open"]')
    expect(open_cards.nth(1)).to_be_visible()

    first_id = open_cards.first.get_attribute("data-finding-id")
    open_cards.first.locator("button.accept").click()
    first = page.locator(f"#finding-{first_id}")
    expect(first).to_have_attribute("data-status", "accepted")
    expect(first.locator(".decided")).to_contain_text("已采纳")

    second_id = page.locator('article.finding[data-status="open"]').first.get_attribute(
        "data-finding-id"
    )
    second = page.locator(f"#finding-{second_id}")
    second.locator("button.override").click()
    expect(second.locator(".alert")).to_contain_text("否决时必须填写理由")
    expect(second).to_have_attribute("data-status", "open")
    second.locator("textarea[name=reason]").fill("已与主治医师讨论,暂不处理")
    second.locator("button.override").click()
    expect(second).to_have_attribute("data-status", "overridden")
    expect(second.locator(".decided")).to_contain_text("已与主治医师讨论,暂不处理")

    page.reload()
    expect(page.locator(f"#finding-{first_id}")).to_have_count(0)
    expect(page.locator(f"#finding-{second_id}")).to_have_count(0)


def test_patient_account_sees_only_its_own_record(page: Page, scenario: Scenario) -> None:
    page.goto("/login")
    log_in(page, "patient", scenario.passwords["patient"])
    expect(page).to_have_url(f"{scenario.base_url}/patients/{scenario.own_patient_id}")
    expect(page.locator(".patient-head h1")).to_have_text(scenario.own_patient_name)
    expect(page.locator('nav a[href="/inbox"]')).to_have_count(0)
    expect(page.locator("#patient-findings")).to_have_count(0)

    page.goto(f"/patients/{scenario.other_patient_id}")
    expect(page.locator(".error-card")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(scenario.patient_name)
    page.goto("/")
    expect(page).to_have_url(f"{scenario.base_url}/patients/{scenario.own_patient_id}")


def test_logout_ends_the_session(page: Page, scenario: Scenario) -> None:
    page.goto("/login")
    log_in(page, "nurse", scenario.passwords["nurse"])
    expect(page.locator(".who")).to_be_visible()
    page.locator("form.logout button").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/inbox")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Finbox$"))


def test_patient_page_fits_a_tablet_without_sideways_scrolling(
    page: Page, scenario: Scenario
) -> None:
    page.set_viewport_size({"width": 820, "height": 1180})
    page.goto("/login")
    log_in(page, "doctor", scenario.passwords["doctor"])
    page.goto(f"/patients/{scenario.patient_id}")
    expect(page.locator("#labs")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
