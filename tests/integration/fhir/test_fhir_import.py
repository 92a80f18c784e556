"""FHIR Bundle import into the store (SQLite and PostgreSQL): counts, idempotence,
document versions, all-or-nothing, references to the store, and $everything export."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.core.errors import InputError
from medbrain.interop.fhir import find_patient, import_bundle, patient_everything
from medbrain.store import models as m
from tests.support.fhir_bundles import (
    DOCUMENT_ID,
    FIXTURE_IMPORTED,
    FIXTURE_SKIPPED,
    PATIENT_ID,
    SECOND_PATIENT_ID,
    entry_index,
    fixture_bundle,
    resource,
    set_document_text,
)

TABLES = (
    m.Patient,
    m.Encounter,
    m.Condition,
    m.Observation,
    m.MedicationRequest,
    m.AllergyIntolerance,
    m.Procedure,
    m.Document,
    m.DocumentVersion,
    m.ImagingStudy,
    m.ImagingSeries,
)


def _import(factory: sessionmaker[Session], bundle: Any) -> Any:
    with factory() as session, session.begin():
        return import_bundle(session, bundle, source="b.json")


def _row_counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as session:
        return {
            t.__tablename__: int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in TABLES
        }


def test_fixture_imports_exact_counts(session_factory: sessionmaker[Session]) -> None:
    result = _import(session_factory, fixture_bundle())
    assert result.imported == FIXTURE_IMPORTED
    assert result.skipped == FIXTURE_SKIPPED
    assert result.updated == result.unchanged == {}
    assert result.bundle == "Bundle/medbrain-fixture-synthea-1"
    counts = _row_counts(session_factory)
    assert counts["observation"] == 5 and counts["document_version"] == 1
    assert counts["imaging_series"] == 1
    with session_factory() as session:
        patient = session.scalar(select(m.Patient).where(m.Patient.fhir_id == PATIENT_ID))
        assert patient is not None
        assert (patient.mrn, patient.name_initials, patient.sex) == ("MR0001001", "wjg", "male")
        encounter = session.scalar(select(m.Encounter).where(m.Encounter.patient_id == patient.id))
        assert encounter is not None and encounter.kind == "inpatient"
        assert encounter.department == "心内科"
        obs = session.scalar(select(m.Observation).where(m.Observation.code == "2951-2"))
        assert obs is not None and obs.encounter_id == encounter.id
        assert (obs.value_num, obs.ref_low, obs.abnormal_flag) == (128.0, 137.0, "L")


def test_reimport_creates_no_duplicates_and_reports_unchanged(
    session_factory: sessionmaker[Session],
) -> None:
    _import(session_factory, fixture_bundle())
    before = _row_counts(session_factory)
    second = _import(session_factory, fixture_bundle())
    assert second.imported == {} and second.updated == {}
    assert second.unchanged == FIXTURE_IMPORTED
    assert _row_counts(session_factory) == before


def test_changed_document_text_adds_a_version_and_keeps_the_old_one(
    session_factory: sessionmaker[Session],
) -> None:
    _import(session_factory, fixture_bundle())
    bundle = fixture_bundle()
    set_document_text(bundle, "入院记录\n主诉:胸痛2小时。(修订)\n医师签名:李建华\n")
    result = _import(session_factory, bundle)
    assert result.updated == {"DocumentReference": 1}
    assert result.unchanged["Observation"] == 5
    with session_factory() as session:
        document = session.scalar(select(m.Document).where(m.Document.fhir_id == DOCUMENT_ID))
        assert document is not None
        versions = [(v.version, v.text[:4]) for v in document.versions]
        assert [v for v, _ in versions] == [1, 2]
        assert document.versions[0].text.startswith("入院记录\n姓名")
        assert "(修订)" in document.versions[1].text
        assert document.versions[0].content_sha256 != document.versions[1].content_sha256
    assert _import(session_factory, bundle).unchanged["DocumentReference"] == 1


def test_changed_observation_is_updated_in_place(session_factory: sessionmaker[Session]) -> None:
    _import(session_factory, fixture_bundle())
    bundle = fixture_bundle()
    resource(bundle, "Observation")["valueQuantity"]["value"] = 5.1
    del resource(bundle, "Observation")["interpretation"]
    result = _import(session_factory, bundle)
    assert result.updated == {"Observation": 1}
    with session_factory() as session:
        row = session.scalar(select(m.Observation).where(m.Observation.code == "2823-3"))
        assert row is not None and (row.value_num, row.abnormal_flag) == (5.1, "N")
    assert _row_counts(session_factory)["observation"] == 5


def test_invalid_resident_id_writes_nothing(session_factory: sessionmaker[Session]) -> None:
    bundle = fixture_bundle()
    resource(bundle, "Patient")["identifier"][2]["value"] = "110105195803120134"
    with pytest.raises(InputError) as info:
        _import(session_factory, bundle)
    assert info.value.field.startswith(f"entry[{entry_index(bundle, 'Patient')}].")
    assert set(_row_counts(session_factory).values()) == {0}


def test_error_in_the_last_entry_leaves_the_database_empty(
    session_factory: sessionmaker[Session],
) -> None:
    bundle = fixture_bundle()
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:99999999-0000-4000-8000-000000000001",
            "resource": {
                "resourceType": "Observation",
                "id": "99999999-0000-4000-8000-000000000001",
                "status": "final",
                "code": {"text": "血钾"},
                "subject": {"reference": "Patient/not-here"},
            },
        }
    )
    with pytest.raises(InputError) as info:
        _import(session_factory, bundle)
    assert info.value.field == f"entry[{len(bundle['entry']) - 1}].resource.subject.reference"
    assert "neither in this bundle nor in the store" in info.value.problem
    assert set(_row_counts(session_factory).values()) == {0}


def test_a_failed_import_inside_a_larger_transaction_leaves_earlier_work(
    session_factory: sessionmaker[Session],
) -> None:
    """The importer writes in a SAVEPOINT: a caller that catches the error keeps its own work."""
    bad = fixture_bundle()
    resource(bad, "Encounter")["subject"] = {"reference": "Patient/missing"}
    with session_factory() as session, session.begin():
        import_bundle(session, fixture_bundle())
        with pytest.raises(InputError):
            import_bundle(session, {**bad, "id": "other"})
    assert _row_counts(session_factory)["patient"] == 2


def test_later_bundle_may_reference_a_patient_already_in_the_store(
    session_factory: sessionmaker[Session],
) -> None:
    _import(session_factory, fixture_bundle())
    follow_up = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "later-k-1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
                    "subject": {"reference": f"Patient/{PATIENT_ID}"},
                    "valueQuantity": {"value": 4.4, "unit": "mmol/L"},
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "later-k-2",
                    "status": "final",
                    "code": {"text": "血钾"},
                    "subject": {
                        "reference": "Patient?identifier=http://hospital.example.org/mrn|MR0001001"
                    },
                    "valueQuantity": {"value": 4.2, "unit": "mmol/L"},
                }
            },
        ],
    }
    assert _import(session_factory, follow_up).imported == {"Observation": 2}
    with session_factory() as session:
        patient = find_patient(session, PATIENT_ID)
        assert patient is not None
        later = session.scalars(
            select(m.Observation.patient_id).where(m.Observation.fhir_id.like("later-%"))
        ).all()
        assert later == [patient.id, patient.id]


def test_encounter_of_another_patient_is_refused(session_factory: sessionmaker[Session]) -> None:
    bundle = fixture_bundle()
    condition = resource(bundle, "Condition", 1)  # belongs to the second patient
    condition["encounter"] = {"reference": f"Encounter/{resource(bundle, 'Encounter')['id']}"}
    with pytest.raises(InputError) as info:
        _import(session_factory, bundle)
    assert "belongs to a different patient" in info.value.problem


def test_same_mrn_for_another_patient_is_refused(session_factory: sessionmaker[Session]) -> None:
    _import(session_factory, fixture_bundle())
    bundle = fixture_bundle()
    patient = resource(bundle, "Patient")
    patient["id"] = "someone-else"
    patient["identifier"] = patient["identifier"][:2]
    bundle["entry"] = [{"resource": patient}]
    with pytest.raises(InputError) as info:
        _import(session_factory, bundle)
    assert info.value.field == "entry[0].resource.identifier[1].value"
    assert "already belongs to Patient/" in info.value.problem


def test_everything_is_a_valid_r4_bundle_with_the_patients_resources(
    session_factory: sessionmaker[Session],
) -> None:
    result = _import(session_factory, fixture_bundle())
    with session_factory() as session:
        bundle = patient_everything(
            session, result.patient_ids[0], base_url="https://medbrain.example/fhir"
        )
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Patient"
    assert kinds.count("Observation") == 4  # the fifth belongs to the second patient
    assert {
        "Encounter",
        "Condition",
        "MedicationRequest",
        "AllergyIntolerance",
        "Procedure",
        "DocumentReference",
        "ImagingStudy",
    } <= set(kinds)
    assert bundle["total"] == len(bundle["entry"])
    assert bundle["entry"][0]["fullUrl"] == f"https://medbrain.example/fhir/Patient/{PATIENT_ID}"
    for entry in bundle["entry"][1:]:
        text = str(entry["resource"])
        assert SECOND_PATIENT_ID not in text


def test_everything_reimports_as_unchanged(session_factory: sessionmaker[Session]) -> None:
    result = _import(session_factory, fixture_bundle())
    with session_factory() as session:
        exported = patient_everything(session, result.patient_ids[0])
    again = _import(session_factory, exported)
    assert again.imported == {} and again.updated == {}
    assert sum(again.unchanged.values()) == exported["total"]


def test_everything_builds_resources_for_rows_created_without_fhir(
    session_factory: sessionmaker[Session],
) -> None:
    from datetime import UTC, date, datetime

    with session_factory() as session, session.begin():
        patient = m.Patient(mrn="LOCAL1", name="赵六", sex="female", birth_date=date(1970, 5, 6))
        session.add(patient)
        session.flush()
        encounter = m.Encounter(
            patient_id=patient.id,
            kind="outpatient",
            department="内分泌科",
            admit_time=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        )
        session.add(encounter)
        session.flush()
        session.add_all(
            [
                m.Observation(
                    patient_id=patient.id,
                    encounter_id=encounter.id,
                    code="14749-6",
                    display="葡萄糖",
                    value_num=9.1,
                    unit="mmol/L",
                    ref_low=3.9,
                    ref_high=6.1,
                    abnormal_flag="H",
                    effective_at=datetime(2026, 1, 2, 4, 0, tzinfo=UTC),
                ),
                m.Condition(patient_id=patient.id, icd10_code="E11.9", text="2型糖尿病"),
                m.MedicationRequest(
                    patient_id=patient.id,
                    drug="二甲双胍片",
                    dose_value=0.5,
                    dose_unit="g",
                    route="口服",
                    frequency="tid",
                    days=30,
                ),
                m.AllergyIntolerance(
                    patient_id=patient.id, substance="青霉素", category="medication"
                ),
                m.Procedure(patient_id=patient.id, text="血糖监测"),
            ]
        )
        doc = m.Document(patient_id=patient.id, doc_type="outpatient", title="门诊病历")
        doc.versions.append(
            m.DocumentVersion(version=1, text="门诊病历\n主诉:口干多饮", content_sha256="0" * 64)
        )
        session.add(doc)
        patient_id = patient.id
    with session_factory() as session:
        bundle = patient_everything(session, patient_id)
        assert find_patient(session, str(patient_id)) is not None
    Bundle.model_validate(bundle)
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds == sorted(
        [
            "Patient",
            "Encounter",
            "Observation",
            "Condition",
            "MedicationRequest",
            "AllergyIntolerance",
            "Procedure",
            "DocumentReference",
        ]
    )
