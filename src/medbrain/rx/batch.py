"""Retrospective review of many prescriptions: the pure part (review a chunk, summarise).

The runners (one process, a process pool, Ray) and the file formats live in
:mod:`medbrain.store.rx_batch`; every runner calls :func:`review_chunk` with the same knowledge,
so the results do not depend on how the work was split.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第二十二条 (处方点评: 不合理处方比例, 按科室、
医师统计); 《医院处方点评管理规范(试行)》(卫医管发〔2010〕28号) 第十四条–第十七条.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from medbrain.core.errors import InputError
from medbrain.rx.culture_metrics import (
    ProphylaxisCase,
    load_quality_rules,
    prophylaxis_case_of,
    prophylaxis_timing,
    prophylaxis_timing_of,
)
from medbrain.rx.knowledge import RxKnowledge
from medbrain.rx.review import review

#: Columns of the per-prescription report, in order.
COLUMNS: tuple[str, ...] = (
    "key",
    "department",
    "prescriber",
    "verdict",
    "findings",
    "critical",
    "warning",
    "info",
    "categories",
    "rules",
    "messages",
    "error",
)
FINDING_COLUMNS: tuple[str, ...] = (
    "key",
    "rule_id",
    "category",
    "severity",
    "drugs",
    "message",
    "suggestion",
    "source",
)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def review_one(
    key: str,
    document: Any,
    kb: RxKnowledge,
    lang: str = "zh",
    threshold: float | None = None,
    detail: bool = True,
) -> dict[str, Any]:
    """One report row (``COLUMNS``) plus ``_findings`` (finding dicts, when ``detail``) for the
    detail sheet.

    A prescription the engine refuses becomes a row with ``verdict`` ``error`` and the field
    and problem in ``error`` (never dropped).
    """
    department = prescriber = ""
    if isinstance(document, Mapping):
        department = _text(document.get("department"))
        prescriber = _text(document.get("prescriber") or document.get("prescriber_level"))
    row: dict[str, Any] = {"key": key, "department": department, "prescriber": prescriber}
    try:
        result = review(document, kb, lang=lang, source=key, review_threshold=threshold)
        case = prophylaxis_case_of(key, document, kb, source=key)
    except InputError as exc:
        row.update(
            verdict="error",
            findings=0,
            critical=0,
            warning=0,
            info=0,
            categories="",
            rules="",
            messages="",
            error=f"{exc.field}: {exc.problem}" if exc.field else exc.problem,
            _findings=[],
        )
        return row
    findings = [f.to_dict() for f in result.findings]
    severities = Counter(f["severity"] for f in findings)
    row.update(
        verdict=result.verdict,
        findings=len(findings),
        critical=severities.get("critical", 0),
        warning=severities.get("warning", 0),
        info=severities.get("info", 0),
        categories=";".join(sorted({f["category"] for f in findings})),
        rules=";".join(f["rule_id"] for f in findings),
        messages=" | ".join(f["message"] for f in findings),
        error="",
        _findings=findings if detail else [],
    )
    if case is not None:
        status, minutes = prophylaxis_timing_of(case, load_quality_rules())
        row["_prophylaxis"] = {
            "department": case.department,
            "incision_at": case.incision_at.isoformat(),
            "first_dose_at": case.first_dose_at.isoformat() if case.first_dose_at else None,
            "drug_id": case.drug_id,
            "status": status,
            "minutes_before": round(minutes, 1) if minutes is not None else None,
        }
    return row


def review_chunk(
    chunk: Sequence[tuple[str, Any]],
    kb: RxKnowledge,
    lang: str = "zh",
    threshold: float | None = None,
    detail: bool = True,
) -> list[dict[str, Any]]:
    """Review ``(key, document)`` pairs in order (``detail``: keep each row's findings)."""
    return [review_one(key, document, kb, lang, threshold, detail) for key, document in chunk]


def finding_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One row per finding (``FINDING_COLUMNS``) for the detail sheet."""
    out = []
    for row in rows:
        for f in row.get("_findings") or []:
            sources = [e.get("source") for e in f.get("evidence") or [] if e.get("source")]
            out.append(
                {
                    "key": row["key"],
                    "rule_id": f["rule_id"],
                    "category": f["category"],
                    "severity": f["severity"],
                    "drugs": "、".join(f.get("drugs") or []),
                    "message": f["message"],
                    "suggestion": f.get("suggestion") or "",
                    "source": "; ".join(sources),
                }
            )
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 2) if whole else None


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals, verdicts and the unreasonable rate (warn + block) by department, prescriber and
    category (a prescription counts once per category it has a finding in)."""
    verdicts = Counter(str(r["verdict"]) for r in rows)
    reviewed = len(rows) - verdicts.get("error", 0)
    flagged = verdicts.get("warn", 0) + verdicts.get("block", 0)

    def grouped(field: str) -> list[dict[str, Any]]:
        groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            if r["verdict"] == "error":
                continue
            g = groups[str(r[field]) or "—"]
            g[0] += 1
            g[1] += int(r["verdict"] in ("warn", "block"))
        return sorted(
            (
                {field: name, "reviewed": n, "flagged": k, "rate_pct": _rate(k, n)}
                for name, (n, k) in groups.items()
            ),
            key=lambda g: (-int(g["flagged"]), str(g[field])),
        )

    categories: Counter[str] = Counter()
    for r in rows:
        for c in str(r.get("categories") or "").split(";"):
            if c:
                categories[c] += 1
    operations = [
        ProphylaxisCase(
            key=str(r["key"]),
            department=str(p["department"]),
            incision_at=datetime.fromisoformat(p["incision_at"]),
            first_dose_at=datetime.fromisoformat(p["first_dose_at"])
            if p["first_dose_at"]
            else None,
            drug_id=p["drug_id"],
        )
        for r in rows
        if (p := r.get("_prophylaxis"))
    ]
    extra = (
        {"prophylaxis_timing": prophylaxis_timing(operations, load_quality_rules())}
        if operations
        else {}
    )
    return {
        "prescriptions": len(rows),
        "reviewed": reviewed,
        "errors": verdicts.get("error", 0),
        "verdicts": {v: verdicts.get(v, 0) for v in ("pass", "warn", "block", "error")},
        "unreasonable_rate_pct": _rate(flagged, reviewed),
        "by_department": grouped("department"),
        "by_prescriber": grouped("prescriber"),
        "by_category": [
            {"category": c, "prescriptions": n, "rate_pct": _rate(n, reviewed)}
            for c, n in sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        **extra,
    }
