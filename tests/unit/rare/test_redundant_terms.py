"""A patient term listed together with its own ancestor counts once."""

from __future__ import annotations

import numpy as np

from medbrain.rare import PhenotypeIndex, RareKnowledge, rank_document
from medbrain.rare.score import score_case

SEIZURE, FOCAL = 1250, 7359  # HP:0001250 Seizure, HP:0007359 Focal-onset seizure
MICROCEPHALY = 252  # HP:0000252


def test_an_ancestor_beside_its_descendant_adds_nothing(index: PhenotypeIndex) -> None:
    focal, seizure, small = (index.term_row[n] for n in (FOCAL, SEIZURE, MICROCEPHALY))
    assert seizure in index.ancestors[focal].tolist()
    alone = score_case(index, [focal, small], []).total
    both = score_case(index, [focal, seizure, small], []).total
    np.testing.assert_allclose(both, alone)
    # the ancestor on its own still counts
    assert not np.allclose(score_case(index, [seizure, small], []).total, alone)


def test_the_redundant_ancestor_is_still_explained(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    doc = {"hpo": ["HP:0007359", "HP:0001250", "HP:0000252"]}
    out = rank_document(doc, index, knowledge, top=5, lang="en")
    assert isinstance(out, dict)
    for c in out["candidates"]:
        listed = c["matched_hpo"] + c["partially_matched_hpo"] + c["unmatched_hpo"]
        assert sorted(listed) == sorted(doc["hpo"])
