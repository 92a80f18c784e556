"""Geometry of the small inline trend line drawn next to each lab test.

Pure presentation maths (values in, SVG coordinates out), kept apart from the templates so it
is testable; the reference range is drawn as a band, so a value outside it is visible at a
glance even without colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    flag: str | None


@dataclass(frozen=True, slots=True)
class Sparkline:
    width: int
    height: int
    points: str
    """``x,y x,y ...`` for an SVG ``polyline``."""
    dots: tuple[Dot, ...]
    band_y: float | None
    band_height: float | None
    label: str
    """Text alternative: first → last value."""


def sparkline(
    values: Sequence[float | None],
    flags: Sequence[str | None],
    ref_low: float | None,
    ref_high: float | None,
    *,
    width: int = 120,
    height: int = 28,
    pad: float = 3.0,
) -> Sparkline | None:
    """Scale a series into a ``width`` × ``height`` box; ``None`` when fewer than 2 numbers.

    The vertical domain covers the values and the reference limits, so the band is always
    drawn where the limits are; a flat series sits in the middle.
    """
    numeric = [
        (i, float(v), flags[i] if i < len(flags) else None)
        for i, v in enumerate(values)
        if v is not None and math.isfinite(v)
    ]
    if len(numeric) < 2:
        return None
    domain = [v for _, v, _ in numeric]
    domain += [r for r in (ref_low, ref_high) if r is not None and math.isfinite(r)]
    low, high = min(domain), max(domain)
    if high == low:
        low, high = low - 1.0, high + 1.0
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    step = inner_w / (len(numeric) - 1)

    def y_of(value: float) -> float:
        return round(pad + (high - value) / (high - low) * inner_h, 1)

    dots = tuple(
        Dot(x=round(pad + n * step, 1), y=y_of(v), flag=flag)
        for n, (_, v, flag) in enumerate(numeric)
    )
    band_y = band_height = None
    if ref_low is not None or ref_high is not None:
        top = y_of(ref_high) if ref_high is not None else pad
        bottom = y_of(ref_low) if ref_low is not None else pad + inner_h
        band_y, band_height = top, round(max(bottom - top, 0.5), 1)
    return Sparkline(
        width=width,
        height=height,
        points=" ".join(f"{d.x},{d.y}" for d in dots),
        dots=dots,
        band_y=band_y,
        band_height=band_height,
        label=f"{_short(numeric[0][1])} → {_short(numeric[-1][1])}",
    )


def _short(value: float) -> str:
    return f"{value:g}"
