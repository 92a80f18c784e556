"""The web UI through TestClient: languages, patient page, document reader, inbox decisions."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from medbrain.store.models import AuditEntry, FindingRecord, LoginAttempt
from tests.integration.api.conftest import CSRF_FIELD, Site

HTMX = {"HX-Request": "true"}


def test_login_page_is_chinese_by_default_and_english_on_request(shared_site: Site) -> None:
    client = shared_site.client()
    zh = client.get("/login")
    assert '<html lang="zh-CN">' in zh.text and "用户名" in zh.text
    en = client.get("/login?lang=en")
    assert '<html lang="en">' in en.text and "Username" in en.text
    assert "medbrain_lang=en" in en.headers["set-cookie"]
    assert "Username" in client.get("/login").text  # the choice is remembered


def test_search_page_renders_results_without_javascript(shared_site: Site) -> None:
    client, _ = shared_site.browser("nurse")
    page = client.get("/", params={"q": "zs"})
    assert page.status_code == 200
    assert f'href="/patients/{shared_site.world.other_patient_id}"' in page.text
    fragment = client.get("/search", params={"q": "wxm"}, headers=HTMX)
    assert "<html" not in fragment.text and "王小明" in fragment.text
    assert client.get("/search", params={"q": "zs"}).headers["location"] == "/?q=zs"


def test_search_with_injection_text_finds_nothing(shared_site: Site) -> None:
    client, _ = shared_site.browser("nurse")
    fragment = client.get("/search", params={"q": "' OR 1=1 --"}, headers=HTMX)
    assert fragment.status_code == 200
    assert "没有找到符合条件的患者" in fragment.text


def test_patient_page_highlights_abnormal_labs_and_draws_trends(shared_site: Site) -> None:
    client, _ = shared_site.browser("doctor")
    page = client.get(f"/patients/{shared_site.world.other_patient_id}").text
    potassium = re.search(r'<tr class="lab-row abnormal flag-row-H" data-code="2823-3"', page)
    assert potassium is not None
    assert 'class="flag flag-H"' in page and 'class="flag flag-L"' in page
    assert 'data-code="2160-0" data-flag="N"' in page  # the normal test is not highlighted
    assert page.count('<svg class="spark"') == 2  # potassium and haemoglobin have series
    assert "青霉素" in page and "阿莫西林胶囊" in page and "J18.9" in page
    assert "入院记录" in page and "2 个版本" in page
    assert "需人工复核" in page  # the doctor's low-confidence finding


def test_document_reader_shows_latest_text_and_history(shared_site: Site) -> None:
    client, _ = shared_site.browser("doctor")
    w = shared_site.world
    url = f"/patients/{w.other_patient_id}/documents/{w.documents['zhangsan']}"
    fragment = client.get(url, headers=HTMX).text
    assert "<html" not in fragment
    assert "既往史" in fragment and "第 2 版(共 2 版)" in fragment
    assert 'data-version="1"' in fragment
    full = client.get(url)
    assert "<html" in full.text and "张三" in full.text


def test_english_patient_page(shared_site: Site) -> None:
    client, _ = shared_site.browser("doctor")
    page = client.get(f"/patients/{shared_site.world.other_patient_id}?lang=en").text
    for text in ("Lab results", "Timeline", "Medications", "Admission note", "Log out"):
        assert text in page
    assert "检验结果" not in page


def test_inbox_decisions_by_htmx(site: Site) -> None:
    client, token = site.browser("doctor")
    finding_id = site.world.findings["doctor"]
    inbox = client.get("/inbox").text
    assert f'id="finding-{finding_id}"' in inbox and "需人工复核" in inbox
    url = f"/inbox/{finding_id}/decision"
    headers = {**HTMX, "X-CSRF-Token": token}
    refused = client.post(url, data={"status": "overridden", "reason": " "}, headers=headers)
    assert refused.status_code == 422
    assert "否决时必须填写理由" in refused.text and 'data-status="open"' in refused.text
    done = client.post(url, data={"status": "overridden", "reason": "已评估"}, headers=headers)
    assert done.status_code == 200
    assert 'data-status="overridden"' in done.text and "已评估" in done.text
    again = client.post(url, data={"status": "accepted"}, headers=headers)
    assert again.status_code == 409 and 'data-status="overridden"' in again.text
    with site.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.resource == f"Finding/{finding_id}")
        ).all()
    assert list(actions) == ["finding.overridden"]


def test_inbox_decision_by_plain_form_redirects(site: Site) -> None:
    client, token = site.browser("nurse")
    finding_id = site.world.findings["nurse"]
    response = client.post(
        f"/inbox/{finding_id}/decision", data={"status": "accepted", "csrf_token": token}
    )
    assert response.status_code == 303 and response.headers["location"] == "/inbox"


@pytest.mark.parametrize("token", [None, "wrong"])
def test_inbox_form_without_csrf_is_refused_and_writes_nothing(
    site: Site, token: str | None
) -> None:
    client, _ = site.browser("nurse")
    finding_id = site.world.findings["nurse"]
    before = site.audit_count()
    data = {"status": "accepted"} if token is None else {"status": "accepted", "csrf_token": token}
    response = client.post(f"/inbox/{finding_id}/decision", data=data)
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    with site.session() as session:
        row = session.get(FindingRecord, finding_id)
        assert row is not None and row.status == "open"
    assert site.audit_count() == before


def test_inbox_of_another_role_cannot_be_decided(site: Site) -> None:
    client, token = site.browser("nurse")
    response = client.post(
        f"/inbox/{site.world.findings['pharmacist']}/decision",
        data={"status": "accepted"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert response.status_code == 403


def test_login_username_with_control_characters_is_just_a_failed_login(site: Site) -> None:
    client = site.client()
    token = CSRF_FIELD.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login", data={"username": "doc\x00tor", "password": "x", "csrf_token": token.group(1)}
    )
    assert response.status_code == 401
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 1


def test_error_pages_are_html_for_the_ui_and_json_for_the_api(shared_site: Site) -> None:
    client, _ = shared_site.browser("doctor")
    page = client.get("/patients/424242")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "未找到 Patient/424242" in page.text
    api = client.get("/api/v1/patients/424242")
    assert api.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("role", "landing"),
    [("director", "/ops"), ("insurance_officer", "/insurance"), ("materials", "/materials")],
)
def test_roles_outside_patient_care_land_on_their_page_and_cannot_search(
    site: Site, role: str, landing: str
) -> None:
    client, _ = site.browser(role)
    home = client.get("/")
    assert home.status_code == 303 and home.headers["location"] == landing
    search = client.get("/search?q=zs", headers={"HX-Request": "true"})
    assert search.status_code == 403
    assert "张三" not in search.text
    record = client.get(f"/patients/{site.world.patients['zhangsan']}")
    assert record.status_code == 403
