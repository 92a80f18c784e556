"""Login, sessions, CSRF, throttling, and that nothing but /health, /ready and the login is public."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from medbrain.api.deps import SESSION_COOKIE
from medbrain.store.models import AuthSession, LoginAttempt
from tests.integration.api.conftest import CSRF_FIELD, Site
from tests.support.world import password_of

PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/api/v1/auth/token"),  # the API's login
}
API_PREFIXES = ("/api/", "/fhir", "/openapi.json", "/cds-services", "/dicomweb")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str

    def url(self) -> str:
        return re.sub(r"\{[^}]+\}", "1", self.path)


def _walk(routes: list[object], prefix: str = "") -> Iterator[Endpoint]:
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:  # FastAPI ≥ 0.13x keeps included routers as wrappers
            context = getattr(route, "include_context", None)
            yield from _walk(original.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", None)
        if path is None:
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            yield Endpoint(method, prefix + path)


def endpoints(app: FastAPI) -> list[Endpoint]:
    return sorted(set(_walk(list(app.routes))), key=lambda e: (e.path, e.method))


def test_the_route_walker_sees_the_routes(shared_site: Site) -> None:
    found = {(e.method, e.path) for e in endpoints(shared_site.app)}
    assert {
        ("GET", "/api/v1/patients/{patient_id}"),
        ("POST", "/api/v1/findings/{finding_id}/decision"),
        ("GET", "/patients/{patient_id}"),
        ("POST", "/inbox/{finding_id}/decision"),
    } <= found
    assert found >= PUBLIC


def test_nothing_but_health_ready_and_login_is_reachable_without_login(shared_site: Site) -> None:
    client = shared_site.client()
    problems = []
    for endpoint in endpoints(shared_site.app):
        if (endpoint.method, endpoint.path) in PUBLIC:
            continue
        response = client.request(
            endpoint.method,
            endpoint.url(),
            content=b"{}" if endpoint.method != "GET" else None,
            headers={"Content-Type": "application/json"} if endpoint.method != "GET" else {},
        )
        if endpoint.path.startswith(API_PREFIXES):
            ok = response.status_code == 401 and response.headers["content-type"].startswith(
                "application/problem+json"
            )
        else:
            ok = response.status_code == 303 and response.headers["location"].startswith("/login")
        if not ok:
            problems.append(f"{endpoint.method} {endpoint.path} -> {response.status_code}")
    assert problems == []


def test_static_files_are_public_but_hold_no_data(shared_site: Site) -> None:
    client = shared_site.client()
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/static/medbrain.css").status_code == 200
    assert client.get("/static/../../core/config.py").status_code == 404
    assert client.get("/static/%2e%2e/%2e%2e/core/config.py").status_code == 404


def test_htmx_request_without_session_is_told_to_redirect(shared_site: Site) -> None:
    response = shared_site.client().get("/search?q=zs", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"


def test_unknown_bearer_token_is_401(shared_site: Site) -> None:
    client = shared_site.client()
    response = client.get("/api/v1/patients/1", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_docs_and_schema_need_a_login(shared_site: Site) -> None:
    client = shared_site.client()
    assert client.get("/docs").headers["location"].startswith("/login")
    assert client.get("/openapi.json").status_code == 401
    schema = shared_site.api("doctor").get("/openapi.json").json()
    assert "/api/v1/patients/{patient_id}" in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    docs, _csrf = shared_site.browser("doctor")
    page = docs.get("/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn.jsdelivr.net" not in page.text


def _failures(site: Site, username: str) -> int:
    with site.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(LoginAttempt)
                .where(LoginAttempt.username == username, LoginAttempt.success.is_(False))
            )
            or 0
        )


@pytest.fixture
def site_overrides() -> dict[str, object]:
    return {"login_max_failures": 3}


def test_api_login_is_throttled_after_repeated_failures(site: Site) -> None:
    client = site.client()
    for attempt in range(1, 4):
        response = client.post(
            "/api/v1/auth/token", json={"username": "nurse", "password": "wrong"}
        )
        assert response.status_code == 401
        assert _failures(site, "nurse") == attempt  # recorded although the request failed
    blocked = client.post(
        "/api/v1/auth/token", json={"username": "nurse", "password": password_of("nurse")}
    )
    assert blocked.status_code == 429
    assert blocked.headers["content-type"].startswith("application/problem+json")
    assert int(blocked.headers["Retry-After"]) > 0


def test_web_login_is_throttled_and_shows_why(site: Site) -> None:
    client = site.client()
    token = CSRF_FIELD.search(client.get("/login").text)
    assert token is not None
    form = {"username": "radiologist", "password": "wrong", "csrf_token": token.group(1)}
    for _ in range(3):
        response = client.post("/login", data=form)
        assert response.status_code == 401
        assert "用户名或密码错误" in response.text
    assert _failures(site, "radiologist") == 3
    blocked = client.post("/login", data={**form, "password": password_of("radiologist")})
    assert blocked.status_code == 429
    assert "登录失败次数过多" in blocked.text
    assert SESSION_COOKIE not in blocked.cookies


@pytest.mark.parametrize("username", ["nurse\x00", "\x00", "a\nb"])
def test_control_characters_in_a_username_are_refused(site: Site, username: str) -> None:
    response = site.client().post(
        "/api/v1/auth/token", json={"username": username, "password": "x"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("username:")


def test_login_form_without_its_csrf_cookie_is_refused_and_records_nothing(site: Site) -> None:
    client = site.client()
    response = client.post(
        "/login",
        data={"username": "doctor", "password": password_of("doctor"), "csrf_token": "forged"},
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 0
        assert session.scalar(select(func.count()).select_from(AuthSession)) == 0


def test_login_cookie_is_httponly_and_lax(site: Site) -> None:
    client = site.client()
    token = CSRF_FIELD.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={
            "username": "doctor",
            "password": password_of("doctor"),
            "csrf_token": token.group(1),
        },
    )
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_when_configured(tmp_path: object, sqlite_url: str) -> None:
    from pathlib import Path

    from tests.integration.api.conftest import build_site

    site = build_site(Path(str(tmp_path)), sqlite_url, cookie_secure=True)
    client = site.client()
    token = CSRF_FIELD.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": "nurse", "password": password_of("nurse"), "csrf_token": token.group(1)},
    )
    cookies = response.headers.get_list("set-cookie")
    assert all("Secure" in c for c in cookies if c.startswith(SESSION_COOKIE))
    site.app.state.engine.dispose()


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/inbox", "/inbox"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_login_redirects_only_to_local_pages(site: Site, next_url: str, landing: str) -> None:
    client = site.client()
    token = CSRF_FIELD.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={
            "username": "doctor",
            "password": password_of("doctor"),
            "csrf_token": token.group(1),
            "next": next_url,
        },
    )
    assert response.headers["location"] == landing


def test_patient_account_lands_on_its_own_record(site: Site) -> None:
    client, _ = site.browser("patient")
    assert client.get("/").headers["location"] == f"/patients/{site.world.own_patient_id}"
    assert client.get(f"/patients/{site.world.own_patient_id}").status_code == 200
    assert client.get(f"/patients/{site.world.other_patient_id}").status_code == 404
    assert client.get("/inbox").status_code == 403
    assert client.get("/search?q=zs", headers={"HX-Request": "true"}).status_code == 403


def test_logout_needs_csrf_and_then_revokes_the_session(site: Site) -> None:
    client, token = site.browser("pharmacist")
    assert client.post("/logout").status_code == 403
    assert client.get("/inbox").status_code == 200  # still logged in
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    with site.session() as session:
        assert session.scalar(select(func.count()).where(AuthSession.revoked.is_(True))) == 1


def test_revoked_session_cookie_no_longer_works(site: Site) -> None:
    client, token = site.browser("pharmacist")
    cookie = client.cookies[SESSION_COOKIE]
    client.post("/logout", data={"csrf_token": token})
    replay = site.client()
    replay.cookies[SESSION_COOKIE] = cookie
    assert replay.get("/inbox").headers["location"].startswith("/login")
    assert replay.get("/api/v1/findings").status_code == 401


def test_access_log_holds_no_patient_identifiers(
    shared_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client = shared_site.api("doctor")
    patient_id = shared_site.world.other_patient_id
    with caplog.at_level(logging.INFO, logger="medbrain"):
        logger = logging.getLogger("medbrain")
        propagate = logger.propagate
        logger.propagate = True
        try:
            client.get("/api/v1/patients", params={"q": "张三"})
            client.get("/api/v1/patients", params={"q": "MRN0001"})
            client.get(f"/api/v1/patients/{patient_id}")
        finally:
            logger.propagate = propagate
    records = [r for r in caplog.records if r.name == "medbrain.access"]
    assert len(records) == 3
    text = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in records)
    for identifier in ("张三", "MRN0001", "zhangsan", "13800138000"):
        assert identifier not in text
    assert "/api/v1/patients/{patient_id}" in text  # the route template, not the path


def test_ui_pages_send_security_headers(shared_site: Site) -> None:
    client, _ = shared_site.browser("doctor")
    response = client.get(f"/patients/{shared_site.world.other_patient_id}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
