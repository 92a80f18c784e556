"""The record screen: a rule pack is raised only when the whole ranking agrees."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.core.findings import Severity
from medbrain.demo.generator import generate_bundles
from medbrain.interop.cds_hooks import rare_case_fields
from medbrain.rare import PhenotypeIndex, RareKnowledge, parse_case
from medbrain.rare.knowledge import screen_top_rank
from medbrain.rare.screen import CATEGORY, screen_case

AMYLOID_RECORD = {
    "text": "射血分数保留的心力衰竭。左心室肥厚。双侧腕管综合征。",
    "labs": [
        {"loinc": "2889-4", "value": 1.8, "unit": "g/24h", "resource": "Observation/up-1"},
    ],
    "sex": "male",
    "age_years": 76,
}
# Anaemia and thrombocytopenia: both red flags of Gaucher disease, and everyday on a ward.
CYTOPENIAS = {
    "labs": [
        {"loinc": "718-7", "value": 86, "unit": "g/L", "resource": "Observation/hb-1"},
        {"loinc": "777-3", "value": 62, "unit": "10*9/L", "resource": "Observation/plt-1"},
    ]
}


def test_a_record_pointing_to_cardiac_amyloidosis_raises_it_with_evidence(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    case = parse_case(AMYLOID_RECORD, index, knowledge, lang="zh")
    findings = {f.rule_id: f for f in screen_case(case, index, knowledge, lang="zh")}
    amyloid = findings["rare.cardiac-amyloidosis"]
    assert amyloid.category == CATEGORY and amyloid.severity is Severity.WARNING
    assert amyloid.message.startswith("考虑心脏淀粉样变") and "非诊断" in amyloid.message
    assert 0 < amyloid.confidence == amyloid.extra["probability"] <= 1
    best = amyloid.extra["candidates"][0]
    assert best["rank"] <= knowledge.screen_top_rank
    # the lab-derived red flag cites its Observation; the others quote the record's words
    quotes = {e.quote: e.resource for e in amyloid.evidence if e.quote}
    assert quotes.get("lab.urine_protein_24h 1800 mg/(24.h)") == "Observation/up-1"
    assert "双侧腕管综合征" in quotes and "左心室肥厚" in quotes
    assert any(e.source and "ESC" in e.source for e in amyloid.evidence)
    assert "免疫固定电泳" in amyloid.suggestion  # rule out AL first
    assert amyloid.extra["suggested_hpo"]  # what to look for next


def test_red_flags_alone_do_not_raise_a_pack_the_ranking_disagrees_with(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    case = parse_case(CYTOPENIAS, index, knowledge, lang="zh")
    assert screen_case(case, index, knowledge) == []
    # it is the ranking gate that holds it back: the red flags are there
    lenient = replace(knowledge, screen_top_rank=300)
    assert [f.rule_id for f in screen_case(case, index, lenient)] == ["rare.gaucher"]


def test_messages_in_english(index: PhenotypeIndex, knowledge: RareKnowledge) -> None:
    case = parse_case(AMYLOID_RECORD, index, knowledge, lang="en")
    messages = [f.message for f in screen_case(case, index, knowledge, lang="en")]
    assert any(m.startswith("Consider Cardiac amyloidosis (not a diagnosis") for m in messages)


def test_the_gate_is_configured_in_the_rule_pack_file() -> None:
    assert screen_top_rank({"packs": []}) == 5
    assert screen_top_rank({"screen": {"top_rank": 3}, "packs": []}) == 3
    for bad in (0, 101, "5", True, None):
        with pytest.raises(KnowledgeError, match=r"screen\.top_rank"):
            screen_top_rank({"screen": {"top_rank": bad}, "packs": []})


def test_no_generated_ward_patient_raises_a_pack(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    """Specificity on the demo world's 60 patients (pneumonia, NSTEMI, heart failure, DKA,
    ...): their diagnoses and labs raise no rule pack."""
    screened = 0
    for bundle in generate_bundles(60):
        resources = [e["resource"] for e in bundle["entry"]]
        context = {
            key: [r for r in resources if r["resourceType"] == kind]
            for key, kind in (
                ("patient", "Patient"),
                ("conditions", "Condition"),
                ("observations", "Observation"),
            )
        }
        fields = rare_case_fields(context, date(2026, 11, 20))
        if not fields.get("text") and not fields["labs"]:
            continue
        try:
            case = parse_case(fields, index, knowledge)
        except InputError as exc:
            assert exc.field == "hpo"  # no abnormal finding at all
            continue
        screened += 1
        assert screen_case(case, index, knowledge) == [], bundle["id"]
    assert screened >= 55
