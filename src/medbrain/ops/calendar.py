"""Chinese working-day calendar: weekends, statutory holidays, make-up workdays (调休).

The State Council publishes each year's holiday arrangement (《国务院办公厅关于XXXX年部分节假日
安排的通知》) a few weeks before the year starts; the ``chinese-calendar`` package
(pip ``chinese_calendar``) ships those arrangements for the years it knows (2004–2026 in
version 1.11). For a year it does not know:

* ``strict=True`` (the default for the generator) raises :class:`InputError` naming the year
  and the supported range, so no history is silently generated with wrong holidays;
* ``strict=False`` (used for the days a forecast reaches past the package's last year) falls
  back to weekends plus the fixed-date statutory days that do not depend on the lunar calendar
  (元旦 1 Jan, 劳动节 1–3 May, 国庆节 1–7 Oct) and marks the day ``fallback=True``. Lunar
  holidays (春节, 清明, 端午, 中秋) are then unknown: update the package each December.

References
----------
《全国年节及纪念日放假办法》 (State Council, revised 2024: 春节 4 days from 2025);
annual 国务院办公厅 holiday notices, as packaged by ``chinese-calendar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

from medbrain.core.errors import InputError

SPRING_FESTIVAL = "Spring Festival"
FIXED_FALLBACK = frozenset({(1, 1), (5, 1), (5, 2), (5, 3)} | {(10, d) for d in range(1, 8)})


@dataclass(frozen=True, slots=True)
class DayKind:
    """What kind of day ``day`` is for a hospital's clinics.

    ``kind`` is one of ``workday`` (an ordinary weekday), ``weekend``, ``holiday`` (a statutory
    holiday other than the Spring Festival), ``spring_festival``, ``makeup`` (a weekend day
    worked in exchange for a holiday, 调休上班); ``after_holiday`` is true for the first
    working day after two or more days off.
    """

    day: date
    kind: str
    holiday_name: str | None
    after_holiday: bool
    fallback: bool


def supported_years() -> tuple[int, int]:
    """First and last year whose holiday arrangement the installed package knows."""
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


@lru_cache(maxsize=8192)
def _raw(day: date, strict: bool) -> tuple[str, str | None, bool]:
    first, last = supported_years()
    if first <= day.year <= last:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        weekend = day.weekday() >= 5
        if on_holiday and name is not None:
            kind = "spring_festival" if name == SPRING_FESTIVAL else "holiday"
            return kind, name, False
        if on_holiday:
            return "weekend", None, False
        if weekend:
            return "makeup", name, False
        return "workday", None, False
    if strict:
        raise InputError(
            "calendar",
            "date",
            f"{day.isoformat()}: the installed chinese-calendar knows holidays only for "
            f"{first}–{last}; upgrade it (pip install -U chinese_calendar)",
        )
    if (day.month, day.day) in FIXED_FALLBACK:
        return "holiday", "fixed-date fallback", True
    return ("weekend" if day.weekday() >= 5 else "workday"), None, True


def day_kind(day: date, *, strict: bool = True) -> DayKind:
    """Classify ``day``; see the module docstring for years the package does not know."""
    kind, name, fallback = _raw(day, strict)
    after = False
    if kind in ("workday", "makeup"):
        off = 0
        probe = day - timedelta(days=1)
        while off < 10 and _raw(probe, strict)[0] in ("weekend", "holiday", "spring_festival"):
            off += 1
            probe -= timedelta(days=1)
        # An ordinary weekend is 2 days off; only a longer break counts as a holiday return.
        after = off >= 3
    return DayKind(day=day, kind=kind, holiday_name=name, after_holiday=after, fallback=fallback)


def day_kinds(start: date, days: int, *, strict: bool = True) -> list[DayKind]:
    return [day_kind(start + timedelta(days=i), strict=strict) for i in range(days)]
