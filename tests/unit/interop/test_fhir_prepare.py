"""Validation and staging of FHIR Bundles, before any database is touched."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.interop.fhir import prepare_bundle
from medbrain.interop.fhir.validation import is_resource_type
from tests.support.fhir_bundles import (
    FIXTURE_IMPORTED,
    FIXTURE_SKIPPED,
    entry_index,
    fixture_bundle,
    resource,
)


def _error(bundle: Any) -> InputError:
    with pytest.raises(InputError) as info:
        prepare_bundle(bundle, source="b.json")
    return info.value


def test_fixture_stages_every_supported_resource_and_lists_the_rest() -> None:
    prepared = prepare_bundle(fixture_bundle(), source="b.json")
    staged = {t: len(v) for t, v in prepared.staged.items() if v}
    assert staged == FIXTURE_IMPORTED
    assert dict(prepared.skipped) == FIXTURE_SKIPPED
    assert prepared.bundle_id == "medbrain-fixture-synthea-1"


def test_urn_uuid_references_are_rewritten_to_type_and_id() -> None:
    prepared = prepare_bundle(fixture_bundle())
    observation = prepared.staged["Observation"][0].resource
    assert observation["subject"]["reference"] == "Patient/6f1c2d3e-0a1b-4c5d-8e9f-101112131415"
    assert observation["encounter"]["reference"].startswith("Encounter/")


def test_patient_columns_come_from_mr_and_nnchn_identifiers_with_pinyin() -> None:
    patient = prepare_bundle(fixture_bundle()).staged["Patient"][0].values
    assert patient["mrn"] == "MR0001001"
    assert patient["resident_id"] == "110105195803120133"
    assert (patient["name"], patient["name_pinyin"], patient["name_initials"]) == (
        "王建国",
        "wangjianguo",
        "wjg",
    )
    assert patient["address"] == "北京市朝阳区朝阳路88号"


def test_observation_flag_is_computed_from_the_range_when_not_sent() -> None:
    staged = {
        s.values["code"]: s.values for s in prepare_bundle(fixture_bundle()).staged["Observation"]
    }
    assert staged["2823-3"]["abnormal_flag"] == "H"  # sent as interpretation H
    assert staged["2951-2"]["abnormal_flag"] == "L"  # 128 < 137, computed
    assert staged["89579-7"]["abnormal_flag"] == "H"  # 1860 > 26.2, computed
    assert staged["2951-2"]["unit"] == "mmol/L"
    assert staged["85354-9"]["value_text"] == "收缩压 152 mm[Hg]; 舒张压 94 mm[Hg]"


def test_medication_request_reads_dose_route_frequency_and_supply() -> None:
    values = prepare_bundle(fixture_bundle()).staged["MedicationRequest"][0].values
    assert (values["drug"], values["dose_value"], values["dose_unit"]) == (
        "阿司匹林肠溶片",
        100.0,
        "mg",
    )
    assert (values["route"], values["frequency"], values["days"], values["quantity"]) == (
        "口服",
        "qd",
        30,
        30.0,
    )


def test_document_type_is_mapped_and_text_decoded() -> None:
    staged = prepare_bundle(fixture_bundle()).staged["DocumentReference"][0]
    assert staged.values["doc_type"] == "admission"
    assert staged.text is not None and staged.text.startswith("入院记录")


def test_invalid_resident_id_checksum_names_the_entry_and_identifier() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Patient")["identifier"][2]["value"] = "110105195803120134"
    error = _error(bundle)
    index = entry_index(bundle, "Patient")
    assert error.field == f"entry[{index}].resource.identifier[2].value"
    assert "ISO 7064" in error.problem


def test_resident_id_must_match_birth_date() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Patient")["birthDate"] = "1958-03-13"
    error = _error(bundle)
    assert error.field.endswith(".identifier[2].value")
    assert "birthDate" in error.problem


@pytest.mark.parametrize(
    ("resource_type", "field", "value", "expected_field"),
    [
        ("Patient", "birthDate", "1958-02-30", "birthDate"),
        ("Patient", "birthDate", "12/03/1958", "birthDate"),
        ("Encounter", "period", {"start": "2026-11-02T25:00:00+08:00"}, "period.start"),
        ("Observation", "effectiveDateTime", "2026-13-01", "effectiveDateTime"),
        ("Condition", "recordedDate", "2026-11-02T10:00:00", "recordedDate"),
    ],
)
def test_invalid_dates_name_the_entry_and_field(
    resource_type: str, field: str, value: Any, expected_field: str
) -> None:
    bundle = fixture_bundle()
    resource(bundle, resource_type)[field] = value
    error = _error(bundle)
    assert error.field == f"entry[{entry_index(bundle, resource_type)}].resource.{expected_field}"


def test_birth_date_in_the_future_is_refused() -> None:
    bundle = fixture_bundle()
    patient = resource(bundle, "Patient", 1)
    patient["birthDate"] = "2999-01-01"
    patient["identifier"] = patient["identifier"][:1]
    error = _error(bundle)
    assert error.field.endswith("resource.birthDate")
    assert "future" in error.problem


def test_discharge_before_admission_is_refused() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Encounter")["period"]["end"] = "2026-11-01T10:00:00+08:00"
    assert _error(bundle).field.endswith("resource.period.end")


def test_unknown_element_is_refused_with_its_path() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Observation")["valueQuantity"]["amount"] = 3
    error = _error(bundle)
    assert (
        error.field == f"entry[{entry_index(bundle, 'Observation')}].resource.valueQuantity.amount"
    )


def test_resource_type_that_is_not_fhir_is_an_error_naming_the_entry() -> None:
    bundle = fixture_bundle()
    bundle["entry"].append({"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Spaceship"}})
    error = _error(bundle)
    assert error.field == f"entry[{len(bundle['entry']) - 1}].resource.resourceType"
    assert "unknown FHIR R4 resource type 'Spaceship'" in error.problem


def test_valid_but_unsupported_resource_types_are_skipped_and_listed() -> None:
    bundle = fixture_bundle()
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "Device",
                "id": "dev-1",
                "status": "active",
                "deviceName": [{"name": "心电监护仪", "type": "user-friendly-name"}],
            }
        }
    )
    assert prepare_bundle(bundle).skipped["Device"] == 1


def test_data_types_are_not_resource_types() -> None:
    assert is_resource_type("Claim")
    assert not is_resource_type("HumanName")
    assert not is_resource_type("DomainResource")
    assert not is_resource_type("patient")


def test_reference_to_a_missing_fullurl_is_refused() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Condition")["subject"]["reference"] = (
        "urn:uuid:00000000-0000-4000-8000-000000000000"
    )
    error = _error(bundle)
    assert error.field.endswith("resource.subject.reference")
    assert "fullUrl" in error.problem


def test_subject_must_be_a_patient() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Observation")["subject"] = {"reference": "Group/g1"}
    assert "must reference a Patient" in _error(bundle).problem


def test_clinical_resource_without_patient_is_refused() -> None:
    bundle = fixture_bundle()
    del resource(bundle, "Procedure")["subject"]
    error = _error(bundle)
    assert error.field == f"entry[{entry_index(bundle, 'Procedure')}].resource.subject"


def test_duplicate_resource_ids_are_refused() -> None:
    bundle = fixture_bundle()
    bundle["entry"].append(bundle["entry"][entry_index(bundle, "Procedure")])
    assert "duplicate Procedure/" in _error(bundle).problem


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        ([], "", "expected a FHIR Bundle"),
        ({"resourceType": "Patient"}, "resourceType", "expected 'Bundle'"),
        ({"resourceType": "Bundle", "type": "history"}, "type", "cannot be imported"),
        ({"resourceType": "Bundle", "type": "collection", "entry": {}}, "entry", ""),
    ],
)
def test_bundle_envelope_problems_are_named(document: Any, field: str, fragment: str) -> None:
    error = _error(document)
    assert error.field == field
    assert fragment in error.problem


def test_delete_requests_are_refused() -> None:
    bundle = fixture_bundle()
    bundle["entry"][0]["request"] = {"method": "DELETE", "url": "Patient/x"}
    assert _error(bundle).field == "entry[0].request.method"


def test_gender_outside_the_value_set_is_refused() -> None:
    bundle = fixture_bundle()
    resource(bundle, "Patient")["gender"] = "M"
    assert _error(bundle).field.endswith("resource.gender")


def test_resources_without_id_are_identified_by_fullurl_or_content() -> None:
    bundle = fixture_bundle()
    procedure = resource(bundle, "Procedure")
    del procedure["id"]
    first = prepare_bundle(bundle).staged["Procedure"][0].fhir_id
    assert first == bundle["entry"][entry_index(bundle, "Procedure")]["fullUrl"][9:]
    del bundle["entry"][entry_index(bundle, "Procedure")]["fullUrl"]
    by_content = prepare_bundle(bundle).staged["Procedure"][0].fhir_id
    assert by_content == prepare_bundle(bundle).staged["Procedure"][0].fhir_id
    assert len(by_content) == 40
