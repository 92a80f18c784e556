"""``/api/v1/patients``: roles, a patient's own record only, search, page content, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from medbrain.api.security import CLINICAL_ROLES, ROLES
from medbrain.store.models import AuditEntry, Patient
from tests.integration.api.conftest import Site

# (path template, role → expected status); {other}/{own} are patient ids, {other_doc}/{own_doc}
# their admission notes. Roles outside patient care (director, insurance, materials) never read
# a record through these endpoints.
NO_RECORDS = dict.fromkeys(ROLES, 403)
CLINICIANS = dict.fromkeys(CLINICAL_ROLES, 200)
ROLE_TABLE: list[tuple[str, dict[str, int]]] = [
    ("/api/v1/patients?q=zs", {**NO_RECORDS, **CLINICIANS, "patient": 403}),
    ("/api/v1/patients/{other}", {**NO_RECORDS, **CLINICIANS, "patient": 404}),
    ("/api/v1/patients/{own}", {**NO_RECORDS, **CLINICIANS, "patient": 200}),
    (
        "/api/v1/patients/{other}/documents/{other_doc}/versions",
        {**NO_RECORDS, **CLINICIANS, "patient": 404},
    ),
    (
        "/api/v1/patients/{own}/documents/{own_doc}/versions",
        {**NO_RECORDS, **CLINICIANS, "patient": 200},
    ),
    ("/api/v1/findings", {**NO_RECORDS, **CLINICIANS, "patient": 403}),
]


def _fill(site: Site, template: str) -> str:
    w = site.world
    return template.format(
        other=w.other_patient_id,
        own=w.own_patient_id,
        other_doc=w.documents["zhangsan"],
        own_doc=w.documents["lisi"],
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("template", "expected"), ROLE_TABLE, ids=[t for t, _ in ROLE_TABLE])
def test_each_endpoint_enforces_the_role(
    shared_site: Site, template: str, expected: dict[str, int], role: str
) -> None:
    response = shared_site.api(role).get(_fill(shared_site, template))
    assert response.status_code == expected[role], response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


def test_patient_account_cannot_tell_other_records_from_missing_ones(shared_site: Site) -> None:
    client = shared_site.api("patient")
    other = client.get(f"/api/v1/patients/{shared_site.world.other_patient_id}")
    missing = client.get("/api/v1/patients/999999")
    assert other.status_code == missing.status_code == 404
    assert other.json()["title"] == missing.json()["title"]


def test_patient_account_reads_own_record_without_clinician_findings(shared_site: Site) -> None:
    body = shared_site.api("patient").get(f"/api/v1/patients/{shared_site.world.own_patient_id}")
    assert body.status_code == 200
    assert body.json()["patient"]["name"] == "李四"
    assert body.json()["open_findings"] == []


@pytest.mark.parametrize(
    ("query", "expected_name"),
    [
        ("zs", "张三"),
        ("ZS", "张三"),
        ("zhangsan", "张三"),
        ("zhang", "张三"),
        ("张", "张三"),
        ("小明", "王小明"),
        ("wxm", "王小明"),
        ("zengxiaohua", "曾小华"),  # surname 曾 read zēng, not céng
        ("MRN0002", "李四"),
        ("mrn0003", "王小明"),
        ("  li  si ", "李四"),
    ],
)
def test_search_finds_by_name_initials_pinyin_or_mrn(
    shared_site: Site, query: str, expected_name: str
) -> None:
    response = shared_site.api("doctor").get("/api/v1/patients", params={"q": query})
    assert response.status_code == 200
    names = [hit["name"] for hit in response.json()["results"]]
    assert names[0] == expected_name


def test_exact_mrn_ranks_first(shared_site: Site) -> None:
    results = shared_site.api("nurse").get("/api/v1/patients", params={"q": "MRN000"}).json()
    assert [r["mrn"] for r in results["results"]] == ["MRN0001", "MRN0002", "MRN0003", "MRN0004"]


def test_empty_search_lists_nobody(shared_site: Site) -> None:
    response = shared_site.api("doctor").get("/api/v1/patients", params={"q": "   "})
    assert response.json() == {"query": "", "count": 0, "results": []}


INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE patient; --",
    '" OR ""="',
    "zs' UNION SELECT id, mrn, name, sex, birth_date FROM patient --",
    "%",
    "%%",
    "_",
    "\\",
    "zs%",
    "MRN%",
    "1; SELECT pg_sleep(5)",
    "张' OR name LIKE '%",
    "\x00",
]


@pytest.mark.parametrize("query", INJECTIONS)
def test_sql_injection_strings_find_nothing_and_break_nothing(
    shared_site: Site, query: str
) -> None:
    response = shared_site.api("doctor").get("/api/v1/patients", params={"q": query})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["results"] == []
    with shared_site.session() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 4


def test_search_query_longer_than_allowed_is_refused(shared_site: Site) -> None:
    response = shared_site.api("doctor").get("/api/v1/patients", params={"q": "z" * 201})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("q:")


def test_patient_page_has_timeline_labs_and_lists(shared_site: Site) -> None:
    body = shared_site.api("doctor").get(f"/api/v1/patients/{shared_site.world.other_patient_id}")
    page = body.json()
    assert page["patient"]["mrn"] == "MRN0001"
    [encounter] = page["encounters"]
    [document] = encounter["documents"]
    assert (document["version_count"], document["latest_version"]) == (2, 2)
    labs = {lab["code"]: lab for lab in page["labs"]}
    potassium = labs["2823-3"]
    assert [p["value_num"] for p in potassium["points"]] == [4.1, 5.0, 5.9]
    assert potassium["latest"]["abnormal_flag"] == "H" and potassium["abnormal"] is True
    assert labs["2160-0"]["abnormal"] is False
    assert page["medications"][0]["drug"] == "阿莫西林胶囊"
    assert page["conditions"][0]["icd10_code"] == "J18.9"
    assert page["allergies"][0]["substance"] == "青霉素"
    assert {f["target_role"] for f in page["open_findings"]} == set(CLINICAL_ROLES)
    assert body.headers["cache-control"] == "no-store"


def test_document_versions_are_all_kept_newest_first(shared_site: Site) -> None:
    w = shared_site.world
    response = shared_site.api("doctor").get(
        f"/api/v1/patients/{w.other_patient_id}/documents/{w.documents['zhangsan']}/versions"
    )
    versions = response.json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["text"].startswith(versions[1]["text"])


def test_document_of_another_patient_is_not_found(shared_site: Site) -> None:
    w = shared_site.world
    response = shared_site.api("doctor").get(
        f"/api/v1/patients/{w.own_patient_id}/documents/{w.documents['zhangsan']}/versions"
    )
    assert response.status_code == 404


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", str(2**40)])
def test_invalid_ids_are_422_not_500(shared_site: Site, bad_id: str) -> None:
    response = shared_site.api("doctor").get(f"/api/v1/patients/{bad_id}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("patient_id:")


def test_every_read_is_audited_without_identifiers(shared_site: Site) -> None:
    w = shared_site.world
    client = shared_site.api("pharmacist")
    before = shared_site.audit_count("patient.read", f"Patient/{w.other_patient_id}")
    client.get(f"/api/v1/patients/{w.other_patient_id}")
    client.get("/api/v1/patients", params={"q": "张三"})
    client.get(
        f"/api/v1/patients/{w.other_patient_id}/documents/{w.documents['zhangsan']}/versions"
    )
    assert shared_site.audit_count("patient.read", f"Patient/{w.other_patient_id}") == before + 1
    with shared_site.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.who == "pharmacist").order_by(AuditEntry.seq)
        ).all()
    actions = [row.action for row in rows]
    assert {"patient.read", "patient.search", "document.read"} <= set(actions)
    search = next(row for row in rows if row.action == "patient.search")
    assert search.detail["patient_ids"] == [w.other_patient_id]
    assert all(row.role == "pharmacist" for row in rows)
    dumped = " ".join(str(row.detail) for row in rows)
    assert "张三" not in dumped and "MRN0001" not in dumped
