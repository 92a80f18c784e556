"""Free text → HPO: Chinese lexicon and English labels, with negation → excluded."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.rare import PhenotypeIndex, RareKnowledge, extract_phenotypes, rank_document

CASES = [
    # (text, observed, excluded)
    (
        "患者少汗,蛋白尿,左心室肥厚。否认高血压、糖尿病,无发热。",
        {"HP:0000966", "HP:0000093", "HP:0001712"},
        {"HP:0000822", "HP:0000819", "HP:0001945"},
    ),
    ("无明显诱因出现发热、咳嗽", {"HP:0001945", "HP:0012735"}, set()),
    ("未见K-F环,震颤明显", {"HP:0001337"}, {"HP:0200032"}),
    ("没有癫痫发作,但有共济失调", {"HP:0001251"}, {"HP:0001250"}),
    ("患者无发热,无癫痫。", set(), {"HP:0001945", "HP:0001250"}),
    ("腕管综合征;肌钙蛋白持续升高", {"HP:0012185", "HP:0410174"}, set()),
    (
        "Tall stature and arachnodactyly. No seizures; denies hearing impairment.",
        {"HP:0000098", "HP:0001166"},
        {"HP:0001250", "HP:0000365"},
    ),
    ("Ectopia lentis, without scoliosis", {"HP:0001083"}, {"HP:0002650"}),
]


@pytest.mark.parametrize(("text", "observed", "excluded"), CASES)
def test_text_finds_observed_and_negated_phenotypes(
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    text: str,
    observed: set[str],
    excluded: set[str],
) -> None:
    matches = extract_phenotypes(text, index, knowledge)
    assert {m.hpo for m in matches if not m.excluded} == observed
    assert {m.hpo for m in matches if m.excluded} == excluded
    for m in matches:
        assert text[m.start : m.start + len(m.quote)] == m.quote


def test_chinese_text_case_is_ranked_with_quotes(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    doc = {"text": "男,28岁,手足烧灼样疼痛,少汗,血管角质瘤,蛋白尿,角膜混浊;无发热", "sex": "男"}
    out: Any = rank_document(doc, index, knowledge, top=5)
    assert "HP:0001945" in out["excluded_hpo_used"]
    assert {c["disease_id"] for c in out["candidates"][:3]} & {"OMIM:301500", "ORPHA:324"}
    assert any(m["quote"] == "血管角质瘤" for m in out["text_matches"])
    assert any(p["pack_id"] == "rare.fabry" for p in out["rule_packs"])


def test_lexicon_covers_at_least_150_signs_with_known_ids(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    assert len(knowledge.lexicon) >= 150
    for entry in knowledge.lexicon:
        assert int(entry.hpo[3:]) in index.term_row, entry.hpo
        assert entry.label_zh or entry.synonyms_zh
