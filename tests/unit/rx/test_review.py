"""Review behaviour: verdicts, languages, sorting, FHIR input, overrides, knowledge validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.rx import load_rx_knowledge, review
from medbrain.rx.knowledge import build_knowledge, load_raw

KB = load_rx_knowledge()
CATEGORIES = {
    "allergy",
    "contraindication",
    "interaction",
    "duplication",
    "dose",
    "frequency",
    "route",
    "duration",
    "renal",
    "hepatic",
    "age",
    "pregnancy",
    "lactation",
    "indication",
    "antimicrobial",
    "incompatibility",
    "quantity",
    "unknown_drug",
}
WARFARIN_IBUPROFEN: dict[str, Any] = {
    "patient": {"age_years": 60, "sex": "male", "weight_kg": 70, "diagnoses": ["心房颤动", "腰痛"]},
    "items": [
        {
            "drug": "华法林钠片",
            "dose": 3,
            "unit": "mg",
            "route": "po",
            "frequency": "qd",
            "days": 30,
        },
        {
            "drug": "布洛芬缓释胶囊",
            "dose": 0.3,
            "unit": "g",
            "route": "po",
            "frequency": "bid",
            "days": 5,
        },
    ],
}


def test_warfarin_with_ibuprofen_is_critical_interaction_and_blocks() -> None:
    result = review(WARFARIN_IBUPROFEN, KB)
    assert result.verdict == "block"
    top = result.findings[0]
    assert top.rule_id == "rx.interaction.warfarin-nsaid"
    assert top.extra["drugs"] == ["华法林钠片", "布洛芬缓释胶囊"]
    assert top.evidence[0].source and "Coumadin" in top.evidence[0].source
    assert top.suggestion


def test_every_finding_has_contract_fields_in_both_languages() -> None:
    for lang in ("zh", "en"):
        document = review(WARFARIN_IBUPROFEN, KB, lang=lang).to_dict(0.001)
        assert set(document) == {"verdict", "findings", "seconds"}
        for finding in document["findings"]:
            assert finding["category"] in CATEGORIES
            assert finding["severity"] in ("info", "warning", "critical")
            assert isinstance(finding["drugs"], list) and finding["drugs"]
            assert finding["message"] and finding["evidence"][0]["source"]
    assert "出血" in review(WARFARIN_IBUPROFEN, KB, lang="zh").findings[0].message
    assert "bleeding" in review(WARFARIN_IBUPROFEN, KB, lang="en").findings[0].message


def test_messages_exist_in_both_languages() -> None:
    for key, entry in KB.messages.items():
        assert entry["zh"] and entry["en"], key


def test_findings_sorted_by_severity_then_rule() -> None:
    result = review(
        {
            "patient": {"age_years": 70, "sex": "male", "weight_kg": 60, "diagnoses": ["高血压"]},
            "items": [
                {
                    "drug": "阿莫西林胶囊",
                    "dose": 0.5,
                    "unit": "g",
                    "route": "po",
                    "frequency": "tid",
                },
                {
                    "drug": "马来酸氯苯那敏片",
                    "dose": 4,
                    "unit": "mg",
                    "route": "po",
                    "frequency": "tid",
                },
                {"drug": "华法林", "dose": 3, "unit": "mg", "route": "po", "frequency": "qd"},
                {"drug": "甲硝唑片", "dose": 0.4, "unit": "g", "route": "po", "frequency": "tid"},
            ],
        },
        KB,
    )
    keys = [(-f.severity.rank, f.rule_id) for f in result.findings]
    assert keys == sorted(keys)


def test_unknown_drug_needs_review() -> None:
    result = review({"items": [{"drug": "神奇胶囊", "dose": 1, "unit": "粒"}]}, KB)
    assert [(f.category, f.needs_review) for f in result.findings] == [("unknown_drug", True)]
    assert result.verdict == "warn"


def test_fhir_bundle_is_reviewed_like_json() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "gender": "male", "birthDate": "1950-01-01"}},
            {"resource": {"resourceType": "Condition", "code": {"text": "2型糖尿病"}}},
            {"resource": {"resourceType": "AllergyIntolerance", "code": {"text": "青霉素"}}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "valueQuantity": {"value": 60, "unit": "kg"},
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
                    "valueQuantity": {"value": 3.4, "unit": "mg/dL"},
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "authoredOn": "2026-11-01",
                    "medicationCodeableConcept": {"text": "二甲双胍片"},
                    "dosageInstruction": [
                        {
                            "route": {
                                "coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]
                            },
                            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                            "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
                        }
                    ],
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "阿莫西林胶囊"},
                    "dosageInstruction": [
                        {
                            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                            "doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "g"}}],
                        }
                    ],
                }
            },
        ],
    }
    result = review(bundle, KB)
    rules = {f.rule_id for f in result.findings}
    assert "rx.renal.metformin" in rules  # 76 y, 60 kg, 300 µmol/L → CrCl ≈ 15
    assert "rx.allergy.class-penicillin" in rules
    assert "rx.antimicrobial.no-infection-diagnosis" in rules


def test_override_file_changes_a_rule(tmp_path: Path) -> None:
    overrides = tmp_path / "hospital.yaml"
    overrides.write_text(
        """
interactions:
  - {id: warfarin-nsaid, severity: warning}
policy:
  disabled_rules: [rx.antimicrobial.no-infection-diagnosis]
antimicrobial:
  grades: {amoxicillin: 限制}
drugs:
  - id: local_tea
    zh: 院内制剂清热茶
    en: hospital herbal tea
    names: [清热茶]
    classes: [chinese_patent_medicine]
    routes: [oral]
    unit: piece
    piece: 袋
    source: "院内制剂批准文号 X (local)"
""",
        encoding="utf-8",
    )
    kb = load_rx_knowledge(overrides)
    assert kb is load_rx_knowledge(overrides)  # cached
    result = review(WARFARIN_IBUPROFEN, kb)
    assert result.findings[0].severity.value == "warning"
    assert result.verdict == "warn"
    tea = review(
        {"items": [{"drug": "清热茶", "dose": 1, "unit": "袋", "route": "po", "frequency": "tid"}]},
        kb,
    )
    assert tea.findings == ()
    amox = review(
        {
            "prescriber_level": "住院医师",
            "items": [
                {"drug": "阿莫西林", "dose": 0.5, "unit": "g", "route": "po", "frequency": "tid"}
            ],
        },
        kb,
    )
    assert [f.rule_id for f in amox.findings] == ["rx.antimicrobial.prescriber-level"]


def test_override_can_remove_a_row(tmp_path: Path) -> None:
    overrides = tmp_path / "h.yaml"
    overrides.write_text(
        "interactions:\n  - {id: warfarin-nsaid, enabled: false}\n", encoding="utf-8"
    )
    result = review(WARFARIN_IBUPROFEN, load_rx_knowledge(overrides))
    assert "rx.interaction.warfarin-nsaid" not in {f.rule_id for f in result.findings}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {
                "interactions": [
                    {
                        "id": "x",
                        "a": ["no_such_drug"],
                        "b": ["warfarin"],
                        "severity": "warning",
                        "effect": {"zh": "a", "en": "a"},
                        "management": {"zh": "b", "en": "b"},
                        "source": "s",
                    }
                ]
            },
            "rx/interactions.yaml: interactions[x].a: unknown drug id 'no_such_drug'",
        ),
        (
            {"drugs": [{"id": "amoxicillin", "classes": ["no_class"]}]},
            "rx/drugs.yaml: drugs[amoxicillin].classes",
        ),
        ({"renal": [{"id": "metformin", "source": ""}]}, "rx/renal.yaml: rules[metformin].source"),
        (
            {"interactions": [{"id": "warfarin-nsaid", "severity": "deadly"}]},
            "rx/interactions.yaml: interactions[warfarin-nsaid].severity",
        ),
        ({"nonsense": {}}, "nonsense: unknown knowledge file"),
    ],
)
def test_invalid_knowledge_fails_naming_file_and_key(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(KnowledgeError) as raised:
        build_knowledge(load_raw(patch))
    assert message in str(raised.value)


def test_knowledge_is_loaded_once() -> None:
    assert load_rx_knowledge() is load_rx_knowledge(None)


def test_every_rule_row_cites_a_source() -> None:
    rows = [
        *KB.renal,
        *KB.hepatic,
        *KB.pregnancy,
        *KB.lactation,
        *KB.age,
        *KB.contraindications,
        *KB.duplication,
    ]
    assert all(r.source for r in rows)
    assert all(i.source for i in KB.interactions)


def test_every_antibacterial_has_a_stewardship_grade() -> None:
    missing = [
        d.id
        for d in KB.drugs.values()
        if "antibacterial" in d.classes and d.id not in KB.antimicrobial.grades
    ]
    assert missing == []


def test_combination_products_name_their_western_ingredients() -> None:
    assert KB.drugs["vc_yinqiao"].components["paracetamol"] == 105
    assert KB.drugs["ganmaoling"].components["paracetamol"] == 200
    assert set(KB.drugs["xinkangtaike"].components) == {"pseudoephedrine", "chlorphenamine"}
    assert KB.drugs["xiaokewan"].components == {"glibenclamide": 0.25}


def test_fhir_medication_request_without_dose_names_the_fhir_path() -> None:
    from medbrain.core.errors import InputError

    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Patient", "gender": "female"}},
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "medicationCodeableConcept": {"text": "阿莫西林胶囊"},
                    "dosageInstruction": [
                        {"timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}}
                    ],
                }
            },
        ],
    }
    with pytest.raises(InputError) as raised:
        review(bundle, KB, source="bundle.json")
    assert (
        raised.value.field
        == "entry[1].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value"
    )
