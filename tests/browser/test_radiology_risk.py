"""The guideline panel of the CT study page in a real browser (issue 4).

The hospital chose ``china2021`` in ``MEDBRAIN_HOME/imaging/overrides.yaml``; the patient's
record holds age, sex and a family history of lung cancer but no emphysema entry, so Brock is
first shown as not computable with emphysema named. The radiologist records "no emphysema"
on the page, sees the probabilities, then rejects a nodule and the Brock table follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from medbrain.store.models import Condition, Patient
from tests.browser.ct_study import analysed_study
from tests.support.server import free_port, start_server, stop_server

pytestmark = pytest.mark.browser

PASSWORD = "radiologist-risk-pass"
SEED = 5


@dataclass(frozen=True)
class Scenario:
    base_url: str
    study_uid: str
    nodules: int


def _record(session: Session) -> None:
    patient = Patient(mrn=f"SYN{SEED:06d}", name="李四", sex="male", birth_date=date(1957, 5, 5))
    session.add(patient)
    session.flush()
    session.add(Condition(patient_id=patient.id, icd10_code="Z80.1", text="母亲肺癌"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    home = tmp_path_factory.mktemp("ct-risk-home")
    (home / "imaging").mkdir(parents=True)
    (home / "imaging" / "overrides.yaml").write_text("guideline: china2021\n", encoding="utf-8")
    url, study_uid, nodules = analysed_study(
        home,
        seed=SEED,
        n_nodules=2,
        diameter_range_mm=(10.0, 16.0),
        password=PASSWORD,
        before_ingest=_record,
    )
    count = len(nodules)
    assert count >= 2, "the synthetic scan must give at least two nodules"
    port = free_port()
    server = start_server(
        home, url, port, env={"MEDBRAIN_RADIOLOGY_WORKER": "0"}, log=home / "server.log"
    )
    try:
        yield Scenario(f"http://127.0.0.1:{port}", study_uid, count)
    finally:
        stop_server(server)


@pytest.fixture
def page(browser: Browser, scenario: Scenario) -> Iterator[Page]:
    context = browser.new_context(base_url=scenario.base_url, locale="zh-CN")
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_guideline_panel_records_an_input_and_follows_the_review(
    page: Page, scenario: Scenario
) -> None:
    study = f"/radiology/studies/{scenario.study_uid}"
    page.goto(f"/login?next={study}")
    page.locator("input[name=username]").fill("rad1")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"**{study}")

    panel = page.locator("#ct-risk")
    expect(panel).to_have_attribute("data-guideline", "china2021")
    expect(page.locator("#ct-risk-china-text")).not_to_be_empty()
    brock = page.locator("#ct-risk-brock")
    expect(brock).to_have_attribute("data-computable", "0")
    expect(brock).to_contain_text("肺气肿")  # the missing input is named

    page.locator("#ct-brock-form select[name=emphysema]").select_option("no")
    page.locator("#ct-brock-form button[type=submit]").click()
    expect(brock).to_have_attribute("data-computable", "1")
    expect(brock).to_contain_text("肺癌家族史:有,肺气肿:无")
    rows = page.locator("#ct-risk-brock-table tbody tr")
    expect(rows).to_have_count(scenario.nodules)

    viewer = page.locator("#ct-viewer")
    expect(viewer).to_have_attribute("data-loaded", "1")
    page.locator("#ct-nodules tr[data-key='e1'] button.reject").click()
    expect(rows).to_have_count(scenario.nodules - 1)  # Brock follows the kept nodules
    expect(page.locator("#ct-risk-brock-table tbody tr[data-key='e1']")).to_have_count(0)
