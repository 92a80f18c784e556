"""Pharmacist workbench pages through TestClient on SQLite with the demo seed: queue, return
with a reason, the prescriber's inbox and change, rule switches that apply to the next review,
and the stewardship numbers. Roles are enforced; refused actions write nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medbrain.api.app import create_app
from medbrain.api.security import hash_password
from medbrain.core.config import Settings
from medbrain.demo.seed import DEMO_ACCOUNTS, seed_demo
from medbrain.rx import load_rx_knowledge
from medbrain.store import models as m
from medbrain.store.rx_models import RxReview
from medbrain.store.rx_stewardship import stewardship_report

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORDS = {a.username: a.password for a in DEMO_ACCOUNTS}
DOCTOR_DEPARTMENT = next(a.department for a in DEMO_ACCOUNTS if a.username == "doctor")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    home: Path = tmp_path_factory.mktemp("rxwb")
    built = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'medbrain.db'}"))
    with built.state.session_factory() as session, session.begin():
        seed_demo(session, patients=12)
    yield built
    built.state.engine.dispose()


def login(app: FastAPI, username: str) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    form = CSRF_FIELD.search(client.get("/login").text)
    assert form is not None
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORDS[username], "csrf_token": form.group(1)},
    )
    assert response.status_code == 303, response.text
    token = CSRF_FIELD.search(client.get("/inbox").text)
    assert token is not None
    return client, token.group(1)


def audit_count(app: FastAPI, action: str) -> int:
    with app.state.session_factory() as session:
        statement = select(func.count()).select_from(m.AuditEntry)
        return int(session.scalar(statement.where(m.AuditEntry.action == action)) or 0)


def review_row(app: FastAPI, review_id: int) -> RxReview:
    with app.state.session_factory() as session:
        row = session.get(RxReview, review_id)
        assert row is not None
        return row


def test_queue_pages_are_role_checked(app: FastAPI) -> None:
    nurse, _ = login(app, "nurse")
    assert nurse.get("/rx/queue").status_code == 403
    assert nurse.get("/rx/rules").status_code == 403
    doctor, _ = login(app, "doctor")
    assert doctor.get("/rx/queue").status_code == 403
    pharmacist, _ = login(app, "pharmacist")
    assert pharmacist.get("/rx/inbox").status_code == 403


def test_pharmacist_returns_and_doctor_changes_the_prescription(app: FastAPI) -> None:
    pharmacist, csrf = login(app, "pharmacist")
    page = pharmacist.get("/rx/queue")
    assert page.status_code == 200
    cards = re.findall(
        r'data-review-id="(\d+)" data-status="(\w+)" data-verdict="(\w+)"', page.text
    )
    assert cards and all(status == "pending" for _, status, _ in cards)
    ranks = [{"block": 2, "warn": 1, "pass": 0}.get(v, 3) for _, _, v in cards]
    assert ranks == sorted(ranks, reverse=True)  # most severe first
    with app.state.session_factory() as session:
        target = session.scalar(
            select(RxReview.id)
            .where(RxReview.department == DOCTOR_DEPARTMENT, RxReview.status == "pending")
            .where(RxReview.verdict != "pass")
        )
    assert target is not None and str(target) in {c[0] for c in cards}

    refused = pharmacist.post(f"/rx/reviews/{target}/return", data={"csrf_token": csrf})
    assert refused.status_code == 422 and 'id="rx-action-error"' in refused.text
    assert review_row(app, target).status == "pending"
    before = audit_count(app, "rx.return")
    done = pharmacist.post(
        f"/rx/reviews/{target}/return",
        data={"csrf_token": csrf, "reason": "请核对剂量与频次"},
    )
    assert done.status_code == 303 and audit_count(app, "rx.return") == before + 1

    doctor, dcsrf = login(app, "doctor")
    inbox = doctor.get("/rx/inbox")
    assert f'data-review-id="{target}"' in inbox.text and "请核对剂量与频次" in inbox.text
    detail = doctor.get(f"/rx/reviews/{target}")
    assert 'id="rx-modify"' in detail.text and "请核对剂量与频次" in detail.text
    request_id = re.search(r'data-request-id="(\d+)"', detail.text)
    assert request_id is not None
    nothing = doctor.post(f"/rx/reviews/{target}/modify", data={"csrf_token": dcsrf})
    assert nothing.status_code == 422 and review_row(app, target).status == "returned"
    changed = doctor.post(
        f"/rx/reviews/{target}/modify",
        data={"csrf_token": dcsrf, f"days_{request_id.group(1)}": "3", "note": "已调整"},
    )
    assert changed.status_code == 303
    row = review_row(app, target)
    assert row.status == "resubmitted" and row.prescriber_note == "已调整"
    history = pharmacist.get(f"/rx/reviews/{target}").text
    assert re.findall(r'data-action="(\w+)"', history) == ["return", "modify"]


def test_rule_disabled_from_the_page_no_longer_fires_on_the_next_review(app: FastAPI) -> None:
    pharmacist, csrf = login(app, "pharmacist")
    pharmacist.get("/rx/queue")
    rules = pharmacist.get("/rx/rules")
    fired = re.findall(r'<tr data-rule="([^"]+)" data-fired="(\d+)" data-enabled="yes"', rules.text)
    assert fired
    with app.state.session_factory() as session:
        pending = list(session.scalars(select(RxReview).where(RxReview.status == "pending")))
    live = {f["rule_id"] for r in pending for f in r.findings}
    rule = next(rule for rule, _ in fired if rule in live)
    bad = pharmacist.post("/rx/rules/toggle", data={"csrf_token": csrf, "rule_id": "not a rule"})
    assert bad.status_code == 422 and 'id="rx-rules-error"' in bad.text
    before = audit_count(app, "rx.rules.configure")
    off = pharmacist.post(
        "/rx/rules/toggle", data={"csrf_token": csrf, "rule_id": rule, "enabled": "0"}
    )
    assert off.status_code == 303 and audit_count(app, "rx.rules.configure") == before + 1
    assert f'data-rule="{rule}" data-fired' in pharmacist.get("/rx/rules").text
    pharmacist.get("/rx/queue")
    with app.state.session_factory() as session:
        pending = list(session.scalars(select(RxReview).where(RxReview.status == "pending")))
    assert pending and all(f["rule_id"] != rule for r in pending for f in r.findings)
    assert f'data-rule="{rule}"' not in pharmacist.get("/rx").text  # the live worklist too
    threshold = pharmacist.post(
        "/rx/rules/threshold",
        data={"csrf_token": csrf, "key": "supply_days.outpatient", "value": "500"},
    )
    assert threshold.status_code == 422


def test_stewardship_page_shows_the_period_numbers(app: FastAPI) -> None:
    pharmacist, _ = login(app, "pharmacist")
    page = pharmacist.get("/rx/stewardship", params={"start": "2020-01-01", "end": "2029-12-31"})
    assert page.status_code == 200
    with app.state.session_factory() as session:
        report = stewardship_report(
            session, load_rx_knowledge(None), date(2020, 1, 1), date(2029, 12, 31)
        )
    assert report["inpatient"]["aud"] is not None and report["inpatient"]["patient_days"] > 0
    assert f'data-value="{report["inpatient"]["aud"]}"' in page.text
    for row in report["by_department"]:
        assert f'data-department="{row["department"]}"' in page.text
    culture = {g["group"]: g for g in report["culture"]["groups"]}
    rate = culture["all"]["rate_pct"]
    shown = "" if rate is None else rate
    assert f'data-culture-group="all" data-rate="{shown}"' in page.text
    assert 'id="rx-stew-prophylaxis-note"' in page.text
    wrong = pharmacist.get("/rx/stewardship", params={"start": "2026-02-01", "end": "2026-01-01"})
    assert wrong.status_code == 422 and 'id="rx-stew-error"' in wrong.text


def test_doctor_cannot_answer_another_departments_prescription(app: FastAPI) -> None:
    pharmacist, csrf = login(app, "pharmacist")
    pharmacist.get("/rx/queue")
    with app.state.session_factory() as session:
        other = session.scalar(
            select(RxReview.id).where(
                RxReview.department != DOCTOR_DEPARTMENT, RxReview.status == "pending"
            )
        )
    assert other is not None
    done = pharmacist.post(
        f"/rx/reviews/{other}/return", data={"csrf_token": csrf, "reason": "请补充诊断"}
    )
    assert done.status_code == 303
    doctor, dcsrf = login(app, "doctor")
    assert f'data-review-id="{other}"' not in doctor.get("/rx/inbox").text
    refused = doctor.post(
        f"/rx/reviews/{other}/justify", data={"csrf_token": dcsrf, "reason": "我坚持"}
    )
    assert refused.status_code == 403 and review_row(app, other).status == "returned"
    admin, _ = login(app, "admin")
    assert f'data-review-id="{other}"' in admin.get("/rx/inbox").text


def test_only_admin_or_a_listed_pharmacy_lead_changes_rules(app: FastAPI) -> None:
    with app.state.session_factory() as session, session.begin():
        session.add(
            m.User(username="pharm2", display_name="李药师", role="pharmacist",
                   password_hash=hash_password("pharm2-pass"), department="药学部")
        )  # fmt: skip
    PASSWORDS["pharm2"] = "pharm2-pass"
    plain, csrf = login(app, "pharm2")
    page = plain.get("/rx/rules")
    assert page.status_code == 200 and 'id="rx-rules-readonly"' in page.text
    assert ' disabled id="rx-rules-controls"' in page.text  # the forms are greyed out
    before = audit_count(app, "rx.rules.configure")
    for path, data in (
        ("/rx/rules/toggle", {"rule_id": "rx.duplication.ppi", "enabled": "0"}),
        ("/rx/rules/severity", {"rule_id": "rx.duplication.ppi", "severity": "info"}),
        ("/rx/rules/threshold", {"key": "supply_days.outpatient", "value": "5"}),
    ):
        refused = plain.post(path, data={"csrf_token": csrf, **data})
        assert refused.status_code == 403, path
    assert audit_count(app, "rx.rules.configure") == before
    lead, lead_csrf = login(app, "pharmacist")  # listed in MEDBRAIN_RX_RULE_EDITORS by default
    lead_page = lead.get("/rx/rules").text
    assert 'id="rx-rules-readonly"' not in lead_page
    assert ' disabled id="rx-rules-controls"' not in lead_page
    ok = lead.post(
        "/rx/rules/severity",
        data={"csrf_token": lead_csrf, "rule_id": "rx.duplication.ppi", "severity": "info"},
    )
    assert ok.status_code == 303 and audit_count(app, "rx.rules.configure") == before + 1
