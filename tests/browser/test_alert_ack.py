"""A nurse sees a critical value that arrived by FHIR import and acknowledges it (htmx)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Scenario

pytestmark = pytest.mark.browser


def _critical_potassium_bundle(tag: str) -> dict[str, object]:
    patient = f"pt-{tag}"
    return {
        "resourceType": "Bundle",
        "id": f"labs-{tag}",
        "type": "collection",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{patient}",
                "resource": {
                    "resourceType": "Patient",
                    "id": patient,
                    "identifier": [{"system": "urn:mrn", "value": f"ACK-{tag[:8]}"}],
                    "name": [{"text": "危急值测试"}],
                    "gender": "male",
                    "birthDate": "1950-01-01",
                },
            },
            {
                "fullUrl": f"urn:uuid:obs-{tag}",
                "resource": {
                    "resourceType": "Observation",
                    "id": f"obs-{tag}",
                    "status": "final",
                    "category": [{"coding": [{"code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
                    "subject": {"reference": f"urn:uuid:{patient}"},
                    "effectiveDateTime": "2026-11-22T07:30:00+08:00",
                    "valueQuantity": {"value": 7.3, "unit": "mmol/L"},
                },
            },
        ],
    }


def test_nurse_sees_and_acknowledges_an_imported_critical_value(
    page: Page, scenario: Scenario
) -> None:
    tag = uuid.uuid4().hex[:12]
    with httpx.Client(base_url=scenario.base_url, timeout=30) as api:
        token = api.post(
            "/api/v1/auth/token",
            json={"username": "doctor", "password": scenario.passwords["doctor"]},
        ).json()["access_token"]
        imported = api.post(
            "/fhir",
            content=json.dumps(_critical_potassium_bundle(tag)),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        )
        assert imported.status_code == 200, imported.text

    page.goto("/login?next=%2Falerts%2Fmy")
    page.locator("input[name=username]").fill("nurse")
    page.locator("input[name=password]").fill(scenario.passwords["nurse"])
    page.locator("form button[type=submit]").click()
    page.goto("/alerts/my")
    card = page.locator("article.tracked-alert[data-rule='cv.potassium']").filter(has_text="7.3")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "open")
    alert_id = card.get_attribute("data-alert-id")
    card.locator("form.ack button[type=submit]").click()
    acknowledged = page.locator(f"article.tracked-alert[data-alert-id='{alert_id}']")
    expect(acknowledged).to_have_attribute("data-status", "acknowledged")
    expect(acknowledged.locator(".status-acknowledged")).to_contain_text("nurse")
    expect(acknowledged.locator("form.ack")).to_have_count(0)
