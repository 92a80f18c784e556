"""The synthetic demo generator: reproducible, valid identifiers, importable bundles."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import date
from typing import Any

import pytest

from medbrain.core.identifiers import parse_resident_id, validate_mobile
from medbrain.demo.generator import (
    demo_mrn,
    generate_bundles,
    generate_patient_bundle,
    load_demo_data,
)
from medbrain.interop.fhir import prepare_bundle

PATIENTS = 24


@pytest.fixture(scope="module")
def bundles() -> list[dict[str, Any]]:
    return generate_bundles(PATIENTS, seed=7)


def _resources(bundles: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for b in bundles
        for e in b["entry"]
        if e["resource"]["resourceType"] == resource_type
    ]


def _texts(bundles: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (d["type"]["text"], base64.b64decode(d["content"][0]["attachment"]["data"]).decode())
        for d in _resources(bundles, "DocumentReference")
    ]


def test_same_seed_gives_identical_bundles(bundles: list[dict[str, Any]]) -> None:
    again = generate_bundles(PATIENTS, seed=7)
    assert json.dumps(again, sort_keys=True) == json.dumps(bundles, sort_keys=True)


def test_other_seed_gives_other_patients(bundles: list[dict[str, Any]]) -> None:
    other = generate_bundles(3, seed=8)
    assert _resources(other, "Patient")[0]["name"] != _resources(bundles, "Patient")[0]["name"]


def test_patient_i_does_not_depend_on_how_many_are_generated(bundles: list[dict[str, Any]]) -> None:
    assert generate_patient_bundle(5, seed=7) == bundles[5]


def test_every_resident_id_validates_and_matches_birth_date_and_sex(
    bundles: list[dict[str, Any]],
) -> None:
    seen = set()
    for patient in _resources(bundles, "Patient"):
        number = next(
            i["value"] for i in patient["identifier"] if i["type"]["coding"][0]["code"] == "NNCHN"
        )
        parsed = parse_resident_id(number)
        assert parsed.birth_date == date.fromisoformat(patient["birthDate"])
        assert parsed.sex == patient["gender"]
        validate_mobile(patient["telecom"][0]["value"])
        seen.add(number)
    assert len(seen) == PATIENTS


def test_mrns_are_sequential_demo_numbers(bundles: list[dict[str, Any]]) -> None:
    mrns = [
        next(i["value"] for i in p["identifier"] if i["type"]["coding"][0]["code"] == "MR")
        for p in _resources(bundles, "Patient")
    ]
    assert mrns == [demo_mrn(i) for i in range(PATIENTS)]


def test_every_bundle_passes_the_importers_validation(bundles: list[dict[str, Any]]) -> None:
    for bundle in bundles:
        prepared = prepare_bundle(bundle, source=bundle["id"])
        assert not prepared.skipped


def test_default_demo_covers_the_departments_and_visit_kinds() -> None:
    bundles = generate_bundles(60)
    departments = {e["serviceType"]["text"] for e in _resources(bundles, "Encounter")}
    assert {
        "心内科",
        "呼吸内科",
        "消化内科",
        "神经内科",
        "内分泌科",
        "肾内科",
        "普外科",
        "骨科",
        "妇产科",
        "儿科",
        "急诊科",
    } <= departments
    kinds = Counter(e["class"]["code"] for e in _resources(bundles, "Encounter"))
    assert kinds["IMP"] >= 45 and kinds["AMB"] >= 5 and kinds["EMER"] >= 3
    current = [e for e in _resources(bundles, "Encounter") if e["status"] == "in-progress"]
    assert current, "some patients are in hospital now"


def test_labs_use_loinc_ucum_ranges_and_include_abnormal_values(
    bundles: list[dict[str, Any]],
) -> None:
    labs = [
        o
        for o in _resources(bundles, "Observation")
        if o["category"][0]["coding"][0]["code"] == "laboratory"
    ]
    assert all(o["code"]["coding"][0]["system"] == "http://loinc.org" for o in labs)
    assert all(o["valueQuantity"]["system"] == "http://unitsofmeasure.org" for o in labs)
    assert all("referenceRange" in o for o in labs)
    flags = Counter(o["interpretation"][0]["coding"][0]["code"] for o in labs)
    assert flags["H"] > 0 and flags["L"] > 0 and flags["N"] > flags["H"]


def test_inpatient_documents_carry_the_required_sections_and_a_signature(
    bundles: list[dict[str, Any]],
) -> None:
    texts = _texts(bundles)
    admissions = [t for kind, t in texts if kind == "入院记录"]
    assert admissions
    for text in admissions:
        for section in (
            "主诉",
            "现病史",
            "既往史",
            "个人史",
            "婚育史",
            "家族史",
            "体格检查",
            "辅助检查",
            "初步诊断",
        ):
            assert f"\n{section}：" in text, section
        assert "医师签名：" in text
        assert "{" not in text and "}" not in text
    kinds = Counter(kind for kind, _ in texts)
    assert kinds["首次病程记录"] == kinds["入院记录"]
    assert kinds["日常病程记录"] > 0 and kinds["出院记录"] > 0 and kinds["门诊病历"] > 0


def test_allergy_is_consistent_between_record_and_document() -> None:
    bundles = generate_bundles(60)
    for bundle in bundles:
        allergies = [
            e["resource"]["code"]["text"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "AllergyIntolerance"
        ]
        admissions = [t for kind, t in _texts([bundle]) if kind == "入院记录"]
        for text in admissions:
            if allergies:
                assert f"有{allergies[0]}过敏史" in text
            else:
                assert "否认药物及食物过敏史" in text


def test_beta_lactam_allergy_swaps_to_the_alternative_drug() -> None:
    bundles = generate_bundles(60)
    for bundle in bundles:
        allergic = any(
            e["resource"]["resourceType"] == "AllergyIntolerance"
            and e["resource"]["code"]["text"] in ("青霉素", "头孢类药物")
            for e in bundle["entry"]
        )
        drugs = [
            e["resource"]["medicationCodeableConcept"]["text"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "MedicationRequest"
        ]
        if allergic:
            assert not any(("头孢" in d or "西林" in d) for d in drugs), drugs


def test_demo_data_files_load() -> None:
    data = load_demo_data()
    assert len(data.scenarios["inpatient"]) >= 14
    assert len(data.people["surnames"]) >= 60
