"""Rule packs: every pack cites sources, its ids exist in hpo3, and bad files are refused."""

from __future__ import annotations

from typing import Any

import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.rare import PhenotypeIndex, RareKnowledge
from medbrain.rare.knowledge import parse_lexicon, parse_rule_packs


def test_packs_cover_cardiac_amyloidosis_and_ten_chinese_list_diseases(
    knowledge: RareKnowledge,
) -> None:
    ids = {p.pack_id for p in knowledge.packs}
    assert "rare.cardiac-amyloidosis" in ids
    listed = [p for p in knowledge.packs if any("第一批罕见病目录" in s for s in p.sources)]
    assert len(listed) >= 10


def test_every_pack_has_sources_workup_and_known_ids(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    for pack in knowledge.packs:
        assert pack.sources and pack.workup and pack.red_flags, pack.pack_id
        assert {w.kind for w in pack.workup} <= {"test", "consult", "drug"}
        for disease in pack.diseases:
            assert disease in index.column, (pack.pack_id, disease)
        for flag in pack.red_flags:
            assert int(flag.hpo[3:]) in index.term_row, (pack.pack_id, flag.hpo)
            assert flag.zh and flag.en


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({}, "packs"),
        ({"packs": [{"pack_id": "x"}]}, "missing"),
        (
            {
                "packs": [
                    {
                        "pack_id": "x",
                        "version": 1,
                        "name": {"zh": "a", "en": "a"},
                        "diseases": [],
                        "red_flags": [],
                        "workup": [],
                        "sources": [],
                    }
                ]
            },
            "source",
        ),
        (
            {
                "packs": [
                    {
                        "pack_id": "x",
                        "version": 1,
                        "name": {"zh": "a", "en": "a"},
                        "diseases": [],
                        "red_flags": [{"hpo": "X"}],
                        "workup": [],
                        "sources": ["s"],
                    }
                ]
            },
            "red_flags[0]",
        ),
        (
            {
                "packs": [
                    {
                        "pack_id": "x",
                        "version": 1,
                        "name": {"zh": "a", "en": "a"},
                        "diseases": [],
                        "red_flags": [],
                        "workup": [{"kind": "pray"}],
                        "sources": ["s"],
                    }
                ]
            },
            "kind",
        ),
    ],
)
def test_malformed_rule_pack_file_is_refused_naming_the_key(data: Any, words: str) -> None:
    with pytest.raises(KnowledgeError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_rule_packs(data, "packs.yaml")


def test_malformed_lexicon_row_is_refused() -> None:
    with pytest.raises(KnowledgeError, match="row 2"):
        parse_lexicon("hpo_id\tlabel_en\tlabel_zh_hpo\tsynonyms_zh\nnot-a-row\n", "lex.tsv")
