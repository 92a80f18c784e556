"""2021 病案管理质量控制指标 over a set of checked records."""

from __future__ import annotations

import json

from medbrain.qc import check_record, read_record_dir
from medbrain.qc.indicators import compute_indicators
from tests.unit.qc.helpers import HAND, registry


def test_indicators_over_the_hand_written_records() -> None:
    results = []
    for folder in sorted(p for p in HAND.iterdir() if p.is_dir()):
        if json.loads((folder / "expected.json").read_text(encoding="utf-8"))["stage"] != "final":
            continue
        record = read_record_dir(folder)
        results.append((record, check_record(record, registry(), stage="final")))
    values = {i.id: i for i in compute_indicators(results)}
    pairs = {k: (v.numerator, v.denominator) for k, v in values.items()}
    assert pairs["admission_24h_rate"] == (27, 28)  # 03: admission note 35 h late
    assert pairs["surgery_24h_rate"] == (9, 9)
    assert values["discharge_24h_rate"].rate == 1.0
    assert pairs["copy_paste_rate"] == (2, 28)
    # nine operations and two more transfusions; knee consent late, hip transfusion unconsented
    assert pairs["consent_signed_rate"] == (9, 11)
    grade_a = values["grade_a_rate"]
    assert grade_a.denominator == 28 and grade_a.numerator == sum(
        1 for _, r in results if r.grade == "甲"
    )
    assert values["admission_24h_rate"].to_dict()["code"] == "MER-TL-01"


def test_empty_period_has_no_rate() -> None:
    values = compute_indicators([], lang="en")
    assert all(i.rate is None and i.denominator == 0 for i in values)
    assert values[0].name == "Admission notes completed within 24 h"
