"""Note drafts are checked with the hospital's QC knowledge: the enabled hospital DSL rules of
the rule editor and the hospital overrides, exactly as the record check API does (issue 7)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from medbrain.qc import load_qc_knowledge
from medbrain.store import models as m
from tests.integration.test_qc_effective import LOCAL, PAST_RULE, _enable_local_rule
from tests.integration.test_qc_workflow import ADMISSION, bundle


def _draft_rules(client: Any, headers: dict[str, str], patient_id: int, text: str) -> set[str]:
    response = client.post(
        f"/api/v1/patients/{patient_id}/notes/qc",
        json={"type": "admission", "text": text},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    defects = body["defects"] if isinstance(body, dict) else body
    return {d["rule_id"] for d in defects}


def test_draft_check_uses_enabled_hospital_rules_and_overrides(client_and_tokens: Any) -> None:
    client, tokens, factory = client_and_tokens
    doctor = {"Authorization": f"Bearer {tokens['doctor']}"}
    imported = client.post(
        "/fhir",
        content=json.dumps(bundle(ADMISSION.format(past=""))),
        headers={**doctor, "Content-Type": "application/fhir+json"},
    )
    assert imported.status_code == 200, imported.text
    with factory() as session:
        patient_id = session.scalars(select(m.Patient.id)).one()
    draft = ADMISSION.format(past="")
    before = _draft_rules(client, doctor, patient_id, draft)
    assert LOCAL not in before and PAST_RULE in before

    with factory() as session, session.begin():
        _enable_local_rule(session)
    client.app.state.qc_knowledge = load_qc_knowledge(  # type: ignore[attr-defined]
        {"rules": [{"rule_id": PAST_RULE, "enabled": False}]}
    )
    after = _draft_rules(client, doctor, patient_id, draft)
    assert LOCAL in after and PAST_RULE not in after
