"""Unknown, obsolete and malformed HPO ids, empty phenotypes: clear errors, never silent."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.rare import PhenotypeIndex, RareKnowledge, rank_document


def _rank(index: PhenotypeIndex, knowledge: RareKnowledge, doc: Any, lang: str = "en") -> Any:
    return rank_document(doc, index, knowledge, lang=lang, source="case.json")


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        (
            {"hpo": ["HP:9999999", "HP:0001166", "HP:9999998"]},
            "hpo",
            ["unknown", "HP:9999999", "HP:9999998"],
        ),
        ({"hpo": ["HP:0001166"], "excluded_hpo": ["HP:9999999"]}, "excluded_hpo", ["HP:9999999"]),
        ({"hpo": ["0001166", "HP:12"]}, "hpo", ["0001166", "HP:12"]),
        ({"hpo": "HP:0001166"}, "hpo", ["list"]),
        ({"hpo": []}, "hpo", ["no phenotypes"]),
        ({}, "hpo", ["no phenotypes"]),
        ({"text": "nothing clinical here"}, "hpo", ["no phenotypes"]),
        ({"hpo": ["HP:0001166"], "sex": "robot"}, "sex", ["male"]),
        ({"hpo": ["HP:0001166"], "age_years": -3}, "age_years", ["130"]),
        ({"hpo": ["HP:0001166"], "age_years": True}, "age_years", ["130"]),
        ({"hpo": ["HP:0001166"], "text": 5}, "text", ["text"]),
        ("HP:0001166", "$", ["object"]),
        ([], "$", ["empty"]),
        ([{"hpo": ["HP:0001166"]}, {"hpo": ["HP:9999999"]}], "[1].hpo", ["HP:9999999"]),
    ],
)
def test_bad_case_raises_input_error_naming_the_field(
    index: PhenotypeIndex, knowledge: RareKnowledge, doc: Any, field: str, words: list[str]
) -> None:
    with pytest.raises(InputError) as info:
        _rank(index, knowledge, doc)
    assert info.value.source == "case.json"
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)


def test_error_messages_come_in_chinese_too(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    with pytest.raises(InputError, match="未知的 HPO 编号"):
        _rank(index, knowledge, {"hpo": ["HP:9999999"]}, lang="zh")


def test_obsolete_id_is_mapped_to_its_replacement_and_reported(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    # HP:0000057 "obsolete Clitoromegaly" is replaced by HP:0008665 "Clitoral hypertrophy"
    out = _rank(index, knowledge, {"hpo": ["HP:0000057", "HP:0001166"]})
    assert out["hpo_used"] == ["HP:0008665", "HP:0001166"]
    assert out["hpo_replaced"] == [{"obsolete": "HP:0000057", "replacement": "HP:0008665"}]


def test_duplicate_ids_are_used_once(index: PhenotypeIndex, knowledge: RareKnowledge) -> None:
    out = _rank(
        index,
        knowledge,
        {"hpo": ["HP:0001166", "HP:0001166"], "excluded_hpo": ["HP:0001083", "HP:0001083"]},
    )
    assert out["hpo_used"] == ["HP:0001166"]
    assert out["excluded_hpo_used"] == ["HP:0001083"]


@pytest.mark.parametrize(
    ("excluded", "pair"),
    [
        ("HP:0001166", "HP:0001166 ⊇ HP:0001166"),  # the same term
        ("HP:0100807", "HP:0100807 ⊇ HP:0001166"),  # long fingers, broader than arachnodactyly
    ],
)
def test_excluding_an_observed_term_or_a_broader_one_is_refused(
    index: PhenotypeIndex, knowledge: RareKnowledge, excluded: str, pair: str
) -> None:
    doc = {"hpo": ["HP:0001166", "HP:0001083"], "excluded_hpo": ["HP:0001250", excluded]}
    with pytest.raises(InputError) as info:
        _rank(index, knowledge, doc)
    assert info.value.field == "excluded_hpo"
    assert pair in str(info.value) and "HP:0001250" not in str(info.value)
    with pytest.raises(InputError, match="排除的表型与观察到的表型矛盾"):
        _rank(index, knowledge, doc, lang="zh")


def test_a_narrower_excluded_term_is_fine_and_text_that_contradicts_the_list_is_dropped(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    narrower = _rank(index, knowledge, {"hpo": ["HP:0100807"], "excluded_hpo": ["HP:0001166"]})
    assert narrower["excluded_hpo_used"] == ["HP:0001166"]  # long fingers, not arachnodactyly
    # one note says fever, another "无发热": what the record shows wins over the negation
    mixed = _rank(index, knowledge, {"hpo": ["HP:0001945"], "text": "患者无发热。"})
    assert [m["excluded"] for m in mixed["text_matches"]] == [True]
    assert mixed["hpo_used"] == ["HP:0001945"] and mixed["excluded_hpo_used"] == []
