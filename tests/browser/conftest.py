"""Browser tests: a real uvicorn server on a free loopback port, driven by Debian's chromium.

The server runs in a subprocess with a temporary ``MEDBRAIN_HOME`` and a SQLite database
seeded with the demo data (``medbrain.demo.seed.seed_demo``; the small synthetic world of
``tests.support.world`` if the demo seeder is unavailable). The scenario — which patient to
search for, which lab is abnormal, which document to open — is read from that database, so the
tests do not hard-code demo content. On failure a full-page screenshot is written to
``test-artifacts/``. Never ``playwright install``: we pass chromium's path (PLATFORM.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.findings import save_findings
from medbrain.store.models import FindingRecord, Patient, User
from medbrain.store.patients import patient_page
from tests.support.server import free_port, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("MEDBRAIN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright.sync_api import Browser, Page, Playwright, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None


@dataclass(frozen=True)
class Scenario:
    base_url: str
    passwords: dict[str, str]
    """username (= role) → password."""
    patient_id: int
    patient_name: str
    search_initials: str
    abnormal_code: str
    document_id: int
    own_patient_id: int
    own_patient_name: str
    other_patient_id: int


def _seed(session: Session) -> dict[str, str]:
    """Demo data if the seeder exists; returns the role → password map."""
    try:
        from medbrain.demo.seed import DEMO_ACCOUNTS, seed_demo
    except ImportError:
        from medbrain.api.security import ROLES
        from tests.support.world import password_of, seed_world

        seed_world(session)
        return {role: password_of(role) for role in ROLES}
    seed_demo(session)
    return {a.username: a.password for a in DEMO_ACCOUNTS}


def _ensure_doctor_findings(session: Session, patient_id: int) -> None:
    """The inbox test accepts one finding and overrides another, one of them needing review."""
    open_rows = session.scalars(
        select(FindingRecord).where(
            FindingRecord.target_role == "doctor", FindingRecord.status == "open"
        )
    ).all()
    missing_review = not any(row.needs_review for row in open_rows)
    wanted = max(0, 3 - len(open_rows)) + (1 if missing_review else 0)
    findings = [
        Finding(
            rule_id=f"test.browser.{i}",
            category="lab_followup",
            severity=Severity.WARNING,
            message=f"浏览器测试用合成发现 {i}",
            suggestion="复查",
            evidence=(Evidence(source="synthetic browser-test finding"),),
            confidence=0.5 if i == 0 and missing_review else 0.9,
            needs_review=i == 0 and missing_review,
        )
        for i in range(wanted)
    ]
    if findings:
        save_findings(session, findings, engine="test", target_role="doctor", patient_id=patient_id)


def _scenario_from(session: Session, base_url: str, passwords: dict[str, str]) -> Scenario:
    patient_user = session.scalar(select(User).where(User.role == "patient"))
    assert patient_user is not None and patient_user.patient_id is not None
    own = session.get(Patient, patient_user.patient_id)
    assert own is not None
    today = datetime.now(UTC).date()
    chosen: tuple[Patient, str, int] | None = None
    for candidate in session.scalars(select(Patient).order_by(Patient.id)).all():
        if candidate.id == own.id or not candidate.name_initials:
            continue
        page = patient_page(session, candidate.id, today=today)
        abnormal = [s for s in page.labs if s.abnormal and len(s.points) >= 2]
        documents = [d for e in page.encounters for d in e.documents]
        if abnormal and documents:
            chosen = (candidate, abnormal[0].code, documents[0].id)
            break
    assert chosen is not None, "the seeded data has no patient with an abnormal lab and a document"
    patient, code, document_id = chosen
    _ensure_doctor_findings(session, patient.id)
    return Scenario(
        base_url=base_url,
        passwords=passwords,
        patient_id=patient.id,
        patient_name=patient.name,
        search_initials=patient.name_initials,
        abnormal_code=code,
        document_id=document_id,
        own_patient_id=own.id,
        own_patient_name=own.name,
        other_patient_id=patient.id,
    )


@pytest.fixture(scope="package")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    home = tmp_path_factory.mktemp("browser-home")
    url = f"sqlite:///{home / 'medbrain.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with make_session_factory(engine)() as session, session.begin():
        passwords = _seed(session)
        built = _scenario_from(session, base_url, passwords)
    engine.dispose()
    server = start_server(home, url, port, log=home / "server.log")
    try:
        yield built
    finally:
        stop_server(server)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One chromium for the browser tests, stopped after them.

    Package scope, not session: Playwright's sync API runs an event loop on the main thread
    while it is started, and every later test calling ``asyncio.run`` would fail.
    """
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (make system-deps)")
    playwright: Playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser: Browser, scenario: Scenario, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(
        base_url=scenario.base_url, locale="zh-CN", viewport={"width": 1366, "height": 900}
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()
