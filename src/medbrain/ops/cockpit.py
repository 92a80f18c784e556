"""The director cockpit: 14 indicators with trends, each down to department level.

Input is the pre-aggregated department-day table (:class:`DailyTable`, built from
:class:`~medbrain.ops.generator.DeptDay` rows or the store's ``ops_department_day``); every
indicator is ``scale × Σ numerator / Σ denominator`` over the chosen days and departments, as
defined with its source in ``knowledge/ops/indicators.yaml``. Summing before dividing is what
the definitions ask for (e.g. ALOS = Σ bed-days of discharges / Σ discharges, never a mean of
daily ALOS values).

The forecast-vs-actual indicator comes from the forecasting engine; the adapter passes the
comparison in (:class:`ForecastComparison`).

References
----------
国家卫生健康委《国家三级公立医院绩效考核操作手册》(2019; 2024) and the sources listed per
indicator in ``knowledge/ops/indicators.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from medbrain.core.errors import InputError
from medbrain.ops.knowledge import FIELDS, IndicatorDef, OpsKnowledge, Ratio

GRANULARITIES = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class DeptInfo:
    code: str
    name_zh: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


class DailyTable:
    """Columnar department-day data: ``days`` (ordinal ints), ``dept`` indices, one float
    array per field of :data:`~medbrain.ops.knowledge.FIELDS`."""

    def __init__(
        self,
        days: np.ndarray,
        dept: np.ndarray,
        columns: dict[str, np.ndarray],
        departments: Sequence[DeptInfo],
    ) -> None:
        self.days = days
        self.dept = dept
        self.columns = columns
        self.departments = tuple(departments)
        self._index = {d.code: i for i, d in enumerate(self.departments)}

    @classmethod
    def from_rows(cls, rows: Iterable[Any], departments: Sequence[DeptInfo]) -> DailyTable:
        """From objects (or mappings) with ``day``, ``dept_code`` and the field attributes.

        Raises :class:`InputError` for an unknown department or a negative count.
        """
        index = {d.code: i for i, d in enumerate(departments)}
        days: list[int] = []
        dept: list[int] = []
        cols: dict[str, list[float]] = {f: [] for f in FIELDS}
        for n, row in enumerate(rows):
            record: dict[str, Any] = row if isinstance(row, dict) else {}

            def get(k: str, row: Any = row, record: dict[str, Any] = record) -> Any:
                return record[k] if record else getattr(row, k)

            code = get("dept_code")
            if code not in index:
                raise InputError(
                    "department-day", f"rows[{n}].dept_code", f"unknown department {code!r}"
                )
            days.append(get("day").toordinal())
            dept.append(index[code])
            for f in FIELDS:
                value = float(get(f))
                if not math.isfinite(value) or value < 0:
                    raise InputError(
                        "department-day", f"rows[{n}].{f}", f"{value} must be a number ≥ 0"
                    )
                cols[f].append(value)
        return cls(
            np.asarray(days, dtype=np.int64),
            np.asarray(dept, dtype=np.int64),
            {f: np.asarray(v, dtype=float) for f, v in cols.items()},
            departments,
        )

    def __len__(self) -> int:
        return len(self.days)

    def dept_index(self, code: str) -> int:
        if code not in self._index:
            raise InputError("cockpit", "department", f"unknown department {code!r}")
        return self._index[code]

    @property
    def first_day(self) -> date | None:
        return date.fromordinal(int(self.days.min())) if len(self) else None

    @property
    def last_day(self) -> date | None:
        return date.fromordinal(int(self.days.max())) if len(self) else None

    def mask(self, start: date, end: date, department: str | None = None) -> np.ndarray:
        m = (self.days >= start.toordinal()) & (self.days <= end.toordinal())
        if department is not None:
            m &= self.dept == self.dept_index(department)
        return m


def _sum(table: DailyTable, names: Sequence[str], m: np.ndarray) -> float:
    total = 0.0
    for name in names:
        col = table.columns[name.lstrip("-")]
        part = float(col[m].sum())
        total += -part if name.startswith("-") else part
    return total


def ratio_value(table: DailyTable, ratio: Ratio, m: np.ndarray) -> float | None:
    """``scale × Σ numerator / Σ denominator`` over the rows in ``m``; None when undefined."""
    if not ratio.numerator:
        return None
    num = _sum(table, ratio.numerator, m)
    if ratio.denominator:
        den = _sum(table, ratio.denominator, m)
        if den <= 0:
            return None
        return round(ratio.scale * num / den, ratio.decimals)
    return round(ratio.scale * num, ratio.decimals)


def _grouped(
    table: DailyTable, ratio: Ratio, m: np.ndarray, groups: np.ndarray, n_groups: int
) -> list[float | None]:
    """The ratio per group (``groups`` gives each row's group index) in one pass."""

    def sums(names: Sequence[str]) -> np.ndarray:
        out = np.zeros(n_groups)
        for name in names:
            part = np.bincount(
                groups[m], weights=table.columns[name.lstrip("-")][m], minlength=n_groups
            )
            out = out - part if name.startswith("-") else out + part
        return out

    if not ratio.numerator:
        return [None] * n_groups
    num = sums(ratio.numerator)
    if not ratio.denominator:
        return [round(ratio.scale * float(v), ratio.decimals) for v in num]
    den = sums(ratio.denominator)
    return [
        round(ratio.scale * float(n) / float(d), ratio.decimals) if d > 0 else None
        for n, d in zip(num, den, strict=True)
    ]


def _bucket_keys(start: date, end: date, granularity: str) -> tuple[list[str], dict[int, int]]:
    """Labels of the periods covering ``start..end`` and a map ordinal day → period index."""
    if granularity not in GRANULARITIES:
        raise InputError("cockpit", "granularity", f"must be one of {GRANULARITIES}")
    labels: list[str] = []
    where: dict[int, int] = {}
    d = start
    while d <= end:
        if granularity == "day":
            label = d.isoformat()
        elif granularity == "week":
            monday = d - timedelta(days=d.weekday())
            label = monday.isoformat()
        else:
            label = f"{d.year:04d}-{d.month:02d}"
        if not labels or labels[-1] != label:
            labels.append(label)
        where[d.toordinal()] = len(labels) - 1
        d += timedelta(days=1)
    return labels, where


def check_period(start: date, end: date) -> None:
    if end < start:
        raise InputError("cockpit", "end", f"{end} is before start {start}")
    if (end - start).days > 366 * 5:
        raise InputError("cockpit", "end", "a period of at most 5 years")


def series(
    table: DailyTable,
    ratio: Ratio,
    start: date,
    end: date,
    *,
    granularity: str = "month",
    department: str | None = None,
) -> list[tuple[str, float | None]]:
    """The ratio per day, ISO week (label = Monday) or month from ``start`` to ``end``."""
    check_period(start, end)
    labels, where = _bucket_keys(start, end, granularity)
    m = table.mask(start, end, department)
    lookup = np.full(end.toordinal() - start.toordinal() + 1, 0, dtype=np.int64)
    for ordinal, idx in where.items():
        lookup[ordinal - start.toordinal()] = idx
    groups = np.zeros(len(table), dtype=np.int64)
    groups[m] = lookup[table.days[m] - start.toordinal()]
    values = _grouped(table, ratio, m, groups, len(labels))
    return list(zip(labels, values, strict=True))


@dataclass(frozen=True, slots=True)
class ForecastComparison:
    """Actual vs forecast (with 80 % interval) for the days before the cockpit's end date."""

    days: tuple[date, ...]
    actual: tuple[float, ...]
    forecast: tuple[float, ...]
    lo80: tuple[float, ...]
    hi80: tuple[float, ...]
    ahead_days: tuple[date, ...] = ()
    ahead: tuple[float, ...] = ()
    ahead_lo80: tuple[float, ...] = ()
    ahead_hi80: tuple[float, ...] = ()

    @property
    def mape(self) -> float | None:
        pairs = [(a, f) for a, f in zip(self.actual, self.forecast, strict=True) if a > 0]
        if not pairs:
            return None
        return 100.0 * sum(abs(a - f) / a for a, f in pairs) / len(pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": [d.isoformat() for d in self.days],
            "actual": list(self.actual),
            "forecast": [round(v, 1) for v in self.forecast],
            "lo80": [round(v, 1) for v in self.lo80],
            "hi80": [round(v, 1) for v in self.hi80],
            "ahead_days": [d.isoformat() for d in self.ahead_days],
            "ahead": [round(v, 1) for v in self.ahead],
            "ahead_lo80": [round(v, 1) for v in self.ahead_lo80],
            "ahead_hi80": [round(v, 1) for v in self.ahead_hi80],
            "mape": None if self.mape is None else round(self.mape, 2),
        }


@dataclass(frozen=True, slots=True)
class Tile:
    """One indicator over the period, with the previous period of equal length and a trend."""

    key: str
    name: str
    unit: str
    value: float | None
    previous: float | None
    change_pct: float | None
    status: str
    direction: str
    target_low: float | None
    target_high: float | None
    trend: tuple[tuple[str, float | None], ...]
    definition: str
    source: str
    note: str
    secondary: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "unit": self.unit,
            "value": self.value,
            "previous": self.previous,
            "change_pct": self.change_pct,
            "status": self.status,
            "direction": self.direction,
            "target_low": self.target_low,
            "target_high": self.target_high,
            "trend": [{"period": p, "value": v} for p, v in self.trend],
            "definition": self.definition,
            "source": self.source,
            "note": self.note,
            "secondary": self.secondary,
            "forecast": self.forecast,
        }


@dataclass(frozen=True, slots=True)
class Cockpit:
    start: date
    end: date
    department: str | None
    tiles: tuple[Tile, ...]
    granularity: str
    knowledge_version: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "department": self.department,
            "granularity": self.granularity,
            "knowledge_version": self.knowledge_version,
            "indicators": [t.to_dict() for t in self.tiles],
        }


def _change(value: float | None, previous: float | None) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    return round(100.0 * (value - previous) / abs(previous), 1)


def _tile(
    table: DailyTable,
    ind: IndicatorDef,
    start: date,
    end: date,
    department: str | None,
    granularity: str,
    lang: str,
    forecast: ForecastComparison | None,
) -> Tile:
    length = end - start
    prev_end = start - timedelta(days=1)
    prev_start = prev_end - length
    m = table.mask(start, end, department)
    value = ratio_value(table, ind.ratio, m)
    previous = ratio_value(table, ind.ratio, table.mask(prev_start, prev_end, department))
    trend = series(table, ind.ratio, start, end, granularity=granularity, department=department)
    secondary = None
    if ind.secondary is not None:
        sid, szh, sen, sratio = ind.secondary
        secondary = {
            "key": sid,
            "name": sen if lang == "en" else szh,
            "value": ratio_value(table, sratio, m),
            "previous": ratio_value(table, sratio, table.mask(prev_start, prev_end, department)),
            "trend": [
                {"period": p, "value": v}
                for p, v in series(
                    table, sratio, start, end, granularity=granularity, department=department
                )
            ],
        }
    fc = None
    if ind.id == "forecast_accuracy" and forecast is not None:
        mape_value = forecast.mape
        value = None if mape_value is None else round(mape_value, ind.ratio.decimals)
        fc = forecast.to_dict()
        trend = [(d.isoformat(), a) for d, a in zip(forecast.days, forecast.actual, strict=True)]
        previous = None
    return Tile(
        key=ind.id,
        name=ind.name(lang),
        unit=ind.unit(lang),
        value=value,
        previous=previous,
        change_pct=_change(value, previous),
        status=ind.status(value),
        direction=ind.direction,
        target_low=ind.target_low,
        target_high=ind.target_high,
        trend=tuple(trend),
        definition=ind.definition(lang),
        source=ind.source,
        note=ind.note,
        secondary=secondary,
        forecast=fc,
    )


def compute_cockpit(
    table: DailyTable,
    knowledge: OpsKnowledge,
    start: date,
    end: date,
    *,
    department: str | None = None,
    granularity: str = "month",
    lang: str = "zh",
    forecast: ForecastComparison | None = None,
) -> Cockpit:
    """Every indicator of ``knowledge`` for ``start..end`` (hospital or one department)."""
    check_period(start, end)
    if department is not None:
        table.dept_index(department)
    tiles = tuple(
        _tile(table, ind, start, end, department, granularity, lang, forecast)
        for ind in knowledge.indicators
    )
    return Cockpit(start, end, department, tiles, granularity, knowledge.version)


@dataclass(frozen=True, slots=True)
class DeptValue:
    code: str
    name: str
    value: float | None
    previous: float | None
    status: str
    secondary: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "value": self.value,
            "previous": self.previous,
            "status": self.status,
            "secondary": self.secondary,
        }


def drill_down(
    table: DailyTable,
    knowledge: OpsKnowledge,
    key: str,
    start: date,
    end: date,
    *,
    lang: str = "zh",
) -> list[DeptValue]:
    """One indicator for every department over ``start..end`` (with the previous period)."""
    check_period(start, end)
    ind = knowledge.indicator(key)
    if ind is None:
        raise InputError("cockpit", "indicator", f"unknown indicator {key!r}")
    if not ind.ratio.numerator:
        raise InputError(
            "cockpit", "indicator", f"{key} has no per-department table value; use the forecast API"
        )
    n = len(table.departments)
    m = table.mask(start, end)
    length = end - start
    prev_end = start - timedelta(days=1)
    pm = table.mask(prev_end - length, prev_end)
    values = _grouped(table, ind.ratio, m, table.dept, n)
    previous = _grouped(table, ind.ratio, pm, table.dept, n)
    second: list[float | None] = [None] * n
    if ind.secondary is not None:
        second = _grouped(table, ind.secondary[3], m, table.dept, n)
    present = np.bincount(table.dept[m], minlength=n) > 0
    return [
        DeptValue(
            code=d.code,
            name=d.name(lang),
            value=values[i],
            previous=previous[i],
            status=ind.status(values[i]),
            secondary=second[i],
        )
        for i, d in enumerate(table.departments)
        if present[i]
    ]
