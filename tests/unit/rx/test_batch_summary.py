"""Retrospective review rows and their summary (unreasonable rate by department, prescriber,
category), on hand-made rows and on real reviews."""

from __future__ import annotations

import pytest

from medbrain.rx import load_rx_knowledge
from medbrain.rx.batch import COLUMNS, finding_rows, review_chunk, summarize


def _row(dept: str, who: str, verdict: str, categories: str = "") -> dict[str, object]:
    return {"key": "k", "department": dept, "prescriber": who, "verdict": verdict,
            "categories": categories}  # fmt: skip


def test_summary_counts_flagged_prescriptions_once_per_group() -> None:
    rows = [
        _row("呼吸内科", "A", "block", "allergy;interaction"),
        _row("呼吸内科", "A", "pass"),
        _row("呼吸内科", "B", "warn", "dose"),
        _row("儿科", "C", "pass"),
        _row("儿科", "C", "error"),
    ]
    summary = summarize(rows)
    assert summary["prescriptions"] == 5 and summary["reviewed"] == 4 and summary["errors"] == 1
    assert summary["verdicts"] == {"pass": 2, "warn": 1, "block": 1, "error": 1}
    assert summary["unreasonable_rate_pct"] == 50.0
    by_dept = {d["department"]: d for d in summary["by_department"]}
    assert by_dept["呼吸内科"] == {"department": "呼吸内科", "reviewed": 3, "flagged": 2,
                                  "rate_pct": pytest.approx(66.67)}  # fmt: skip
    assert by_dept["儿科"]["reviewed"] == 1 and by_dept["儿科"]["rate_pct"] == 0.0
    assert [p["prescriber"] for p in summary["by_prescriber"]] == ["A", "B", "C"]
    cats = {c["category"]: c["prescriptions"] for c in summary["by_category"]}
    assert cats == {"allergy": 1, "interaction": 1, "dose": 1}


def test_chunk_rows_carry_findings_and_refusals() -> None:
    kb = load_rx_knowledge(None)
    good = {
        "patient": {"age_years": 40, "allergies": ["青霉素"]},
        "department": "呼吸内科",
        "items": [{"drug": "阿莫西林胶囊", "dose": 0.5, "unit": "g", "frequency": "tid"}],
    }
    bad = {"patient": {"age_years": 250}, "items": [{"drug": "阿莫西林胶囊"}]}
    rows = review_chunk([("a", good), ("b", bad)], kb)
    assert set(COLUMNS) <= set(rows[0])
    assert rows[0]["verdict"] == "block" and "allergy" in rows[0]["categories"]
    assert rows[0]["critical"] >= 1 and rows[0]["department"] == "呼吸内科"
    assert rows[1]["verdict"] == "error" and rows[1]["error"].startswith("patient.age_years")
    detail = finding_rows(rows)
    assert len(detail) == rows[0]["findings"] and detail[0]["source"]
    assert review_chunk([("a", good)], kb, detail=False)[0]["_findings"] == []
