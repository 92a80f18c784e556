"""The labelled synthetic corpus: clean records are clean, injected defects are found.

Per-category record-level precision and recall are asserted ≥ 0.9 on ≥ 200 records
(issue 7 acceptance); the realistic hand-written fixtures are checked in
``test_qc_fixtures.py``.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from medbrain.qc import CATEGORIES, check_record
from medbrain.qc.corpus import (
    CATEGORY_INJECTIONS,
    SyntheticRecord,
    generate_corpus,
    generate_record,
    precision_recall,
)
from medbrain.qc.parse import record_from_mapping
from tests.unit.qc.helpers import registry

SIZE = 240


@lru_cache(maxsize=1)
def corpus() -> tuple[SyntheticRecord, ...]:
    return tuple(generate_corpus(SIZE, seed=20261123))


def _found(rec: SyntheticRecord) -> set[str]:
    report = check_record(record_from_mapping(rec.to_request()), registry(), stage="final")
    return {f.category for f in (*report.defects, *report.needs_review)}


def test_corpus_is_large_and_covers_every_category() -> None:
    records = corpus()
    assert len(records) >= 200
    covered = {label for rec in records for label in rec.labels}
    assert covered == set(CATEGORIES)
    assert sum(1 for rec in records if not rec.labels) >= 30
    assert {rec.encoding for rec in records} == {"utf-8", "gbk"}
    assert len({rec.department for rec in records}) >= 8


def test_generator_is_deterministic() -> None:
    assert generate_record(3, 5, ("copy_note",)) == generate_record(3, 5, ("copy_note",))


def test_clean_records_yield_zero_defects() -> None:
    dirty = {}
    for rec in corpus():
        if rec.labels:
            continue
        report = check_record(record_from_mapping(rec.to_request()), registry(), stage="final")
        if report.defects or report.needs_review:
            dirty[rec.record_id] = [f.rule_id for f in (*report.defects, *report.needs_review)]
    assert dirty == {}


@pytest.mark.parametrize("category", CATEGORIES)
def test_precision_and_recall_per_category_at_least_0_9(category: str) -> None:
    stats = _stats()[category]
    assert stats["support"] >= 5, stats
    assert stats["precision"] >= 0.9, stats
    assert stats["recall"] >= 0.9, stats


@lru_cache(maxsize=1)
def _stats() -> dict[str, dict[str, float]]:
    return precision_recall(list(corpus()), _found, CATEGORIES)


@pytest.mark.parametrize(
    "injection", [name for names in CATEGORY_INJECTIONS.values() for name in names]
)
def test_each_injection_alone_is_found(injection: str) -> None:
    for index in range(40):
        rec = generate_record(99, index, (injection,))
        if rec.injections:
            break
    else:
        pytest.fail(f"{injection} applies to no department")
    assert set(rec.labels) <= _found(rec), rec.record_id
