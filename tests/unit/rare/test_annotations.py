"""phenotype.hpoa frequencies and negations, OMIM/Orphanet equivalents, and their use."""

from __future__ import annotations

import numpy as np
import pytest

from medbrain.core.errors import KnowledgeError
from medbrain.rare import PhenotypeIndex, RareKnowledge, rank_document
from medbrain.rare.annotations import (
    HpoaExtract,
    load_equivalents,
    load_hpoa,
    parse_frequency,
    read_hpoa,
)

HEADER = [
    "#version: 2025-01-16",
    "database_id\tqualifier\thpo_id\tonset\tfrequency\tsex\taspect",
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HP:0040280", 1.0),
        ("HP:0040283", 0.17),
        ("HP:0040285", 0.0),
        ("3/12", 0.25),
        ("0/4", 0.0),
        ("45%", 0.45),
        ("", None),
        ("1/0", None),
        ("often", None),
    ],
)
def test_frequency_column_is_read_as_a_fraction(raw: str, expected: float | None) -> None:
    assert parse_frequency(raw) == expected


def test_rows_of_one_pair_are_combined_and_absences_kept_apart() -> None:
    rows = [
        "OMIM:1\t\tHP:0001250\t\t1/4\t\tP",
        "OMIM:1\t\tHP:0001250\t\t2/4\t\tP",  # cohorts summed: 3/8
        "OMIM:1\t\tHP:0000252\t\t0/5\t\tP",  # looked for, absent
        "OMIM:1\tNOT\tHP:0001263\t\t\t\tP",  # NOT qualifier
        "OMIM:1\t\tHP:0004322\t\tHP:0040282\t\tP",
        "OMIM:1\t\tHP:0004322\t\t1/10\t\tP",  # highest of the two
        "OMIM:1\t\tHP:0000007\t\t\t\tI",  # inheritance row: ignored
        "ORPHA:2\t\tHP:0001250\t\t\t\tP",  # no frequency
        "DECIPHER:3\t\tHP:0001250\t\t1/1\t\tP",  # not OMIM/Orphanet
    ]
    extract = read_hpoa(HEADER + rows)
    assert extract.version == "2025-01-16"
    assert set(extract.spans) == {"OMIM:1", "ORPHA:2"}
    present, absent = extract.annotations("OMIM:1")
    assert present[1250] == pytest.approx(3 / 8)
    assert present[4322] == pytest.approx(0.545)
    assert absent == {252, 1263}
    assert 7 not in present
    assert extract.annotations("ORPHA:2") == ({1250: None}, set())
    assert extract.annotations("OMIM:999") == ({}, set())


def test_extract_without_header_or_version_is_refused() -> None:
    with pytest.raises(KnowledgeError):
        read_hpoa(["OMIM:1\t\tHP:0001250\t\t1/4\t\tP"])
    with pytest.raises(KnowledgeError):
        read_hpoa(["#version: x", "database_id\thpo_id"])


@pytest.fixture(scope="module")
def extract() -> HpoaExtract:
    return load_hpoa()


def test_shipped_extract_and_equivalents_load(extract: HpoaExtract) -> None:
    assert extract.version == "2025-01-16"
    assert len(extract.spans) > 12_000
    known = extract.frequency[~np.isnan(extract.frequency)]
    assert known.min() >= 0.0 and known.max() <= 1.0
    pairs = load_equivalents()
    assert len(pairs) > 2_000
    omim = [a for a, _ in pairs]
    orpha = [b for _, b in pairs]
    assert len(set(omim)) == len(omim) and len(set(orpha)) == len(orpha)


def _zero_row(index: PhenotypeIndex, extract: HpoaExtract) -> tuple[str, int]:
    """A (disease, term) pair that phenotype.hpoa records as absent and hpo3 annotates."""
    for disease, (start, end) in extract.spans.items():
        column = index.column.get(disease)
        if column is None:
            continue
        for k in range(start, end):
            row = index.term_row.get(int(extract.term[k]))
            if extract.absent[k] and row is not None and row in index.disease_absent[column]:
                return disease, row
    raise AssertionError("no absent annotation found")


def test_absent_annotation_is_not_a_feature_and_contradicts(
    index: PhenotypeIndex, knowledge: RareKnowledge, extract: HpoaExtract
) -> None:
    disease, row = _zero_row(index, extract)
    column = index.column[disease]
    assert row not in index.disease_terms[column]
    assert column in set(index.term_absent[row].tolist())
    assert column not in set(index.term_direct[row].tolist())
    # the disease's own features plus the absent one: listed as contradicting
    own = [f"HP:{int(index.term_numbers[r]):07d}" for r in sorted(index.disease_terms[column])]
    absent_id = f"HP:{int(index.term_numbers[row]):07d}"
    doc = {"hpo": [*own[:8], absent_id]}
    out = rank_document(doc, index, knowledge, top=50, lang="en", merge_equivalents=False)
    found = [c for c in out["candidates"] if c["disease_id"] == disease]
    assert found, f"{disease} not in the top 50 for its own features"
    assert absent_id in found[0]["contradicting_hpo"]
    assert absent_id in found[0]["recorded_absent_hpo"]


def test_frequencies_are_aligned_with_postings(index: PhenotypeIndex, extract: HpoaExtract) -> None:
    checked = 0
    for disease in list(extract.spans)[:200]:
        column = index.column.get(disease)
        if column is None:
            continue
        present, _ = extract.annotations(disease)
        for term, value in present.items():
            row = index.term_row.get(term)
            if row is None or value is None:
                continue
            posting = index.term_diseases[row]
            at = int(np.searchsorted(posting, column))
            if at < len(posting) and posting[at] == column:
                assert index.term_freq[row][at] >= value - 1e-6
                checked += 1
    assert checked > 1_000
    assert all(len(f) == len(p) for f, p in zip(index.term_freq, index.term_diseases, strict=True))


def test_equivalent_ids_are_listed_once(index: PhenotypeIndex, knowledge: RareKnowledge) -> None:
    # Fabry disease: OMIM:301500 and ORPHA:324 are exact MONDO matches
    a, b = index.column["OMIM:301500"], index.column["ORPHA:324"]
    assert index.equivalent[a] == b and index.equivalent[b] == a
    doc = {"hpo": ["HP:0012534", "HP:0001014", "HP:0000966", "HP:0007957", "HP:0000093"]}
    merged = rank_document(doc, index, knowledge, top=20, lang="en")
    plain = rank_document(doc, index, knowledge, top=20, lang="en", merge_equivalents=False)
    ids = [c["disease_id"] for c in merged["candidates"]]
    for c in merged["candidates"]:
        for other in c["equivalent_ids"]:
            assert other not in ids
    hit = [c for c in merged["candidates"] if c["disease_id"] in ("OMIM:301500", "ORPHA:324")]
    assert len(hit) == 1
    assert set(hit[0]["equivalent_ids"]) == {"OMIM:301500", "ORPHA:324"} - {hit[0]["disease_id"]}
    plain_ids = [c["disease_id"] for c in plain["candidates"]]
    assert {"OMIM:301500", "ORPHA:324"} <= set(plain_ids)
    assert all(not c["equivalent_ids"] for c in plain["candidates"])
    assert merged["annotations_version"] == "2025-01-16"
    # ranks stay consecutive after merging
    assert [c["rank"] for c in merged["candidates"]] == list(range(1, len(ids) + 1))
