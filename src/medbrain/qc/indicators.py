"""The 2021 national medical-record quality indicators, computed from QC reports.

Each indicator is a row of ``knowledge/qc/indicators.yaml``: which records form the
denominator (those with an operative note, …) and which of them meet it (no
``qc.time.surgery-24h`` defect, grade 甲, …). The function is pure: give it the
(record, report) pairs of any period, department or doctor.

References
----------
国家卫生健康委办公厅《病案管理质量控制指标(2021年版)》(国卫办医函〔2021〕28号):
入院记录24小时内完成率 (MER-TL-01), 手术记录24小时内完成率 (MER-TL-02), 出院记录24小时内
完成率 (MER-TL-03), 不合理复制病历发生率, 知情同意书规范签署率, 甲级病历率.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.qc.engine import QCReport
from medbrain.qc.model import Record
from medbrain.qc.parse import read_knowledge_yaml


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator's value over a set of records."""

    id: str
    code: str
    name: str
    numerator: int
    denominator: int
    source: str

    @property
    def rate(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "rate": None if rate is None else round(rate, 4),
            "source": self.source,
        }


def _in_denominator(spec: Mapping[str, Any], record: Record) -> bool:
    kinds: list[Any] = list(spec.get("has_notes") or ())
    words: list[Any] = list(spec.get("or_orders_contain") or ())
    if not kinds and not words:
        return True
    if kinds and any(record.notes(str(k)) for k in kinds):
        return True
    return any(str(w) in o.text for o in record.orders for w in words)


def _meets(spec: Mapping[str, Any], report: QCReport) -> bool:
    findings = report.defects
    rules = {f.rule_id for f in findings}
    categories = {f.category for f in findings}
    if "without_rules" in spec:
        return not rules & set(spec["without_rules"])
    if "with_categories" in spec:
        return bool(categories & set(spec["with_categories"]))
    if "without_categories" in spec:
        return not categories & set(spec["without_categories"])
    if "grades" in spec:
        return report.grade in spec["grades"]
    raise KnowledgeError(f"qc/indicators.yaml: unknown numerator {dict(spec)!r}")


def compute_indicators(
    results: Iterable[tuple[Record, QCReport]], lang: str = "zh"
) -> list[Indicator]:
    """Every indicator of ``indicators.yaml`` over ``results`` (final-stage reports)."""
    data = read_knowledge_yaml("indicators.yaml")
    rows = data.get("indicators") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise KnowledgeError("qc/indicators.yaml: indicators must be a list")
    pairs = list(results)
    out: list[Indicator] = []
    for row in rows:
        try:
            den = [rep for rec, rep in pairs if _in_denominator(row["denominator"] or {}, rec)]
            num = sum(1 for rep in den if _meets(row["numerator"], rep))
            name = str(row["en" if lang == "en" else "zh"])
            out.append(
                Indicator(
                    str(row["id"]),
                    str(row.get("code", "")),
                    name,
                    num,
                    len(den),
                    str(data["source"]),
                )
            )
        except (KeyError, TypeError) as exc:
            raise KnowledgeError(f"qc/indicators.yaml: malformed row {row!r}: {exc}") from None
    return out
