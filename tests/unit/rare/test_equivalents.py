"""OMIM/Orphanet twins are listed once, under the OMIM id, ranked by the better score."""

from __future__ import annotations

from medbrain.rare import PhenotypeIndex, RareKnowledge, parse_case, rank_case
from medbrain.rare.ontology import hpo_id


def _orpha_only_terms(index: PhenotypeIndex, omim: str, orpha: str) -> list[str]:
    """Terms the Orphanet entry is annotated with and the OMIM entry has nowhere below."""
    a, b = index.column[omim], index.column[orpha]
    rows = [
        r
        for r in sorted(index.disease_terms[b], key=lambda r: -index.ic[r])
        if a not in set(index.term_diseases[r].tolist())
    ]
    return [hpo_id(int(index.term_numbers[r])) for r in rows[:5]]


def test_twin_is_listed_under_its_omim_id_with_the_better_score(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    omim, orpha = "OMIM:301500", "ORPHA:324"  # Fabry disease (MONDO exact matches)
    hpo = _orpha_only_terms(index, omim, orpha)
    assert len(hpo) >= 3
    case = parse_case({"hpo": hpo}, index, knowledge, lang="en")
    plain = rank_case(case, index, knowledge, top=200, lang="en", merge=False)
    score = {c.disease_id: c.log_score for c in plain.candidates}
    assert score[orpha] > score.get(omim, float("-inf"))  # the Orphanet twin explains more

    merged = rank_case(case, index, knowledge, top=200, lang="en")
    ids = [c.disease_id for c in merged.candidates]
    assert orpha not in ids
    hit = merged.candidates[ids.index(omim)]
    assert hit.equivalent_ids == (orpha,)
    assert hit.log_score == score[orpha]  # ranked by the pair's better score
    assert hit.to_dict()["scored_id"] == orpha
    twin = next(c for c in plain.candidates if c.disease_id == orpha)
    assert hit.matched_hpo == twin.matched_hpo  # explained by the annotations that scored
    assert "rare.fabry" in hit.rule_packs
    # a disease listed above it scores at least as well; one below at most as well
    position = ids.index(omim)
    assert all(c.log_score >= hit.log_score for c in merged.candidates[:position])
    assert all(c.log_score <= hit.log_score for c in merged.candidates[position + 1 :])

    # the previous release listed the better-scoring id instead
    before = rank_case(case, index, knowledge, top=200, lang="en", representative="score")
    before_ids = [c.disease_id for c in before.candidates]
    assert orpha in before_ids and omim not in before_ids


def test_unmerged_ranking_keeps_each_id_with_its_own_score(
    index: PhenotypeIndex, knowledge: RareKnowledge
) -> None:
    hpo = _orpha_only_terms(index, "OMIM:301500", "ORPHA:324")
    case = parse_case({"hpo": hpo}, index, knowledge, lang="en")
    plain = rank_case(case, index, knowledge, top=200, lang="en", merge=False)
    for c in plain.candidates:
        assert c.equivalent_ids == () and c.to_dict()["scored_id"] == c.disease_id
