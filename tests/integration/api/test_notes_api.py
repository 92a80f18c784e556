"""Ask the record, draft and sign notes over HTTP: roles, versions, citations, audit."""

from __future__ import annotations

import re
import time

from fhir.resources.R4B.documentreference import DocumentReference
from sqlalchemy import select

from medbrain.store.models import AuditEntry, Document, DocumentVersion
from tests.integration.api.conftest import Site


def _ask(site: Site, role: str, patient: str, question: str) -> object:
    return site.api(role).post(
        f"/api/v1/patients/{site.world.patients[patient]}/ask", json={"question": question}
    )


def test_ask_quotes_the_latest_version_and_is_audited(site: Site) -> None:
    response = _ask(site, "doctor", "zhangsan", "既往有高血压吗")
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    top = body["passages"][0]
    assert "高血压病史10年" in top["text"]
    assert top["ref"] == f"Document/{site.world.documents['zhangsan']}/v2"
    assert body["answer"] is None and body["generator"] == "retrieval"
    assert site.audit_count("notes.ask", f"Patient/{site.world.patients['zhangsan']}") == 1


def test_ask_is_for_doctors_and_bad_questions_are_422(site: Site) -> None:
    assert _ask(site, "pharmacist", "zhangsan", "血钾").status_code == 403  # type: ignore[attr-defined]
    assert _ask(site, "doctor", "zhangsan", "").status_code == 422  # type: ignore[attr-defined]
    assert _ask(site, "doctor", "zhangsan", "问" * 501).status_code == 422  # type: ignore[attr-defined]
    missing = site.api("doctor").post("/api/v1/patients/999999/ask", json={"question": "血钾"})
    assert missing.status_code == 404


def test_draft_api_cites_every_fact(site: Site) -> None:
    pid = site.world.patients["zhangsan"]
    response = site.api("doctor").post(
        f"/api/v1/patients/{pid}/notes/draft", json={"type": "progress"}
    )
    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["generator"] == "template"
    labs = [
        s for s in draft["sections"] if any(src.startswith("Observation/") for src in s["sources"])
    ]
    assert labs, draft
    bad = site.api("doctor").post(f"/api/v1/patients/{pid}/notes/draft", json={"type": "poem"})
    assert bad.status_code == 422


def test_signing_creates_versions_that_never_change(site: Site) -> None:
    pid = site.world.patients["zhangsan"]
    api = site.api("doctor")
    draft = api.post(f"/api/v1/patients/{pid}/notes/draft", json={"type": "progress"}).json()
    cited = sorted({src for s in draft["sections"] for src in s["sources"]})
    first = api.post(
        f"/api/v1/patients/{pid}/notes",
        json={
            "type": "progress",
            "text": "病程记录:血钾5.9mmol/L,予降钾治疗。",
            "citations": cited,
        },
    )
    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["version"] == 1
    DocumentReference.model_validate(doc["resource"])  # a valid FHIR R4 resource
    related = {r["reference"] for r in doc["resource"]["context"]["related"]}
    assert related == set(cited)
    second = api.post(
        f"/api/v1/patients/{pid}/notes",
        json={
            "type": "progress",
            "text": "病程记录:血钾5.9mmol/L,予降钾治疗,复查。",
            "document_id": doc["document_id"],
            "base_version": 1,
        },
    )
    assert second.status_code == 201 and second.json()["version"] == 2
    stale = api.post(
        f"/api/v1/patients/{pid}/notes",
        json={
            "type": "progress",
            "text": "改",
            "document_id": doc["document_id"],
            "base_version": 1,
        },
    )
    assert stale.status_code == 409  # someone signed version 2 after version 1 was opened
    with site.session() as session:
        texts = session.scalars(
            select(DocumentVersion.text)
            .where(DocumentVersion.document_id == doc["document_id"])
            .order_by(DocumentVersion.version)
        ).all()
        actions = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "notes.sign")
        ).all()
        stored = session.get(Document, doc["document_id"])
        assert stored is not None and stored.doc_type == "course"
    assert [text.split("\n")[0] for text in texts] == [
        "病程记录:血钾5.9mmol/L,予降钾治疗。",
        "病程记录:血钾5.9mmol/L,予降钾治疗,复查。",
    ]
    assert all(text.split("\n")[1].startswith("医师签名:") for text in texts)
    assert [a["version"] for a in actions] == [1, 2]
    # the signed note is searchable at once: the retrieval index follows new versions
    hit = _ask(site, "doctor", "zhangsan", "降钾治疗 复查").json()["passages"][0]  # type: ignore[attr-defined]
    assert hit["ref"] == f"Document/{doc['document_id']}/v2"


def test_citations_must_belong_to_the_patient_and_nothing_is_written(site: Site) -> None:
    pid = site.world.patients["zhangsan"]
    with site.session() as session:
        before = len(session.scalars(select(DocumentVersion.id)).all())
    for citations in (["Observation/no-such-id"], ["Patient/999999"]):
        response = site.api("doctor").post(
            f"/api/v1/patients/{pid}/notes",
            json={"type": "progress", "text": "血钾正常。", "citations": citations},
        )
        assert response.status_code == 422, response.text
        assert (
            "citations" in response.json()["detail"] or response.json().get("field") == "citations"
        )
    with site.session() as session:
        assert len(session.scalars(select(DocumentVersion.id)).all()) == before


def test_editor_page_inserts_facts_and_signs_through_the_form(site: Site) -> None:
    pid = site.world.patients["zhangsan"]
    client, csrf = site.browser("doctor")
    page = client.get(f"/patients/{pid}/notes/new?type=progress")
    assert page.status_code == 200
    refs = re.findall(r'class="insert-fact link" data-ref="([^"]+)"', page.text)
    assert any(r.startswith("Observation/") for r in refs)
    posted = client.post(
        f"/patients/{pid}/notes",
        data={"csrf_token": csrf, "type": "progress", "text": "复查血钾。", "citations": refs[0]},
    )
    assert posted.status_code == 303
    assert re.search(rf"/patients/{pid}/documents/\d+$", posted.headers["location"])
    no_csrf = client.post(f"/patients/{pid}/notes", data={"type": "progress", "text": "x"})
    assert no_csrf.status_code == 403


def test_semantic_index_is_built_in_the_background_then_used(site: Site) -> None:
    first = _ask(site, "doctor", "zhangsan", "history of high blood pressure").json()  # type: ignore[attr-defined]
    assert first["mode"] in ("pending", "hybrid")  # BM25 answers at once
    deadline = time.monotonic() + 60
    body = first
    while body["mode"] != "hybrid" and time.monotonic() < deadline:
        time.sleep(0.2)
        body = _ask(site, "doctor", "zhangsan", "history of high blood pressure").json()  # type: ignore[attr-defined]
    assert body["mode"] == "hybrid"
    assert "高血压" in body["passages"][0]["text"]  # found with no term in common


def test_draft_qc_names_missing_sections_until_the_doctor_adds_them(site: Site) -> None:
    pid = site.world.patients["zhangsan"]
    api = site.api("doctor")
    draft = api.post(f"/api/v1/patients/{pid}/notes/draft", json={"type": "admission"}).json()
    text = "\n".join(f"{s['title']}:{s['text']}" for s in draft["sections"])
    rules = {
        d["rule_id"]
        for d in api.post(
            f"/api/v1/patients/{pid}/notes/qc", json={"type": "admission", "text": text}
        ).json()["defects"]
    }
    assert "qc.section.admission-family-history" in rules
    assert not any(r.startswith("qc.sign.") for r in rules)  # signing adds the signature
    completed = text + "\n家族史:无特殊。\n婚育史:已婚已育。\n个人史:无吸烟饮酒史。\n专科情况:无。"
    after = {
        d["rule_id"]
        for d in api.post(
            f"/api/v1/patients/{pid}/notes/qc", json={"type": "admission", "text": completed}
        ).json()["defects"]
    }
    assert "qc.section.admission-family-history" not in after
    assert after < rules
