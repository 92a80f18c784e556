"""NEWS2 from triage vital signs, using the chart held in ``knowledge/triage/vitals.yaml``.

Values are rounded to chart precision (whole numbers; temperature to 0.1 °C) and looked up in
inclusive bands. SpO₂ scale 2 is used only when the visit states hypercapnic respiratory
failure; on scale 2, saturations ≥93 % score only when the patient is on oxygen. A parameter
that was not measured is listed in ``missing`` and scores nothing, so a partial score is never
mistaken for a full one.

References
----------
Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS. London: RCP, 2017. Chart 1 (the NEWS scoring
system, including SpO₂ scale 2) and Chart 2 (thresholds and triggers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.triage.model import Vitals

PARAMETERS = ("rr", "spo2", "air_or_oxygen", "sbp", "hr", "consciousness", "temp_c")


@dataclass(frozen=True, slots=True)
class News2:
    """A NEWS2 total with each parameter's points and the parameters that were missing."""

    total: int
    parts: tuple[tuple[str, int], ...]
    missing: tuple[str, ...]
    scale: int

    @property
    def single_red(self) -> tuple[str, ...]:
        """Parameters scoring 3 on their own (RCP Chart 2 'red score')."""
        return tuple(name for name, points in self.parts if points >= 3)


def _round(value: float, places: int) -> float:
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def band_points(value: float, bands: Sequence[Sequence[Any]], on_oxygen: bool | None = None) -> int:
    """Points for ``value`` in inclusive bands ``[lo, hi, points(, air|o2)]``."""
    for band in bands:
        lo, hi, points = band[0], band[1], band[2]
        qualifier = band[3] if len(band) > 3 else None
        if qualifier == "air" and on_oxygen:
            continue
        if qualifier == "o2" and not on_oxygen:
            continue
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            return int(points)
    raise KnowledgeError(f"triage/vitals.yaml: news2 has no band for {value}")


def score_news2(
    vitals: Vitals, table: Mapping[str, Any], hypercapnic: bool = False
) -> News2 | None:
    """NEWS2 of the measured parameters, or ``None`` when no parameter was measured.

    Parameters
    ----------
    vitals
        Triage vital signs; ``consciousness`` (ACVPU) or ``gcs`` (<15 read as not alert).
    table
        The ``news2`` mapping of ``vitals.yaml`` (RCP 2017 Chart 1 bands).
    hypercapnic
        Stated hypercapnic respiratory failure → SpO₂ scale 2 (target 88–92 %).
    """
    parts: list[tuple[str, int]] = []
    missing: list[str] = []
    if vitals.rr is not None:
        parts.append(("rr", band_points(_round(vitals.rr, 0), table["rr"])))
    else:
        missing.append("rr")
    if vitals.spo2 is not None:
        bands = table["spo2_scale2"] if hypercapnic else table["spo2_scale1"]
        parts.append(("spo2", band_points(_round(vitals.spo2, 0), bands, vitals.on_oxygen)))
    else:
        missing.append("spo2")
    parts.append(("air_or_oxygen", int(table["on_oxygen"]) if vitals.on_oxygen else 0))
    if vitals.sbp is not None:
        parts.append(("sbp", band_points(_round(vitals.sbp, 0), table["sbp"])))
    else:
        missing.append("sbp")
    if vitals.hr is not None:
        parts.append(("hr", band_points(_round(vitals.hr, 0), table["hr"])))
    else:
        missing.append("hr")
    if vitals.consciousness is not None:
        alert = vitals.consciousness == "A"
        parts.append(("consciousness", 0 if alert else int(table["not_alert"])))
    elif vitals.gcs is not None:
        parts.append(("consciousness", 0 if vitals.gcs >= 15 else int(table["not_alert"])))
    else:
        missing.append("consciousness")
    if vitals.temp_c is not None:
        parts.append(("temp_c", band_points(_round(vitals.temp_c, 1), table["temp_c"])))
    else:
        missing.append("temp_c")
    if len(missing) == len(PARAMETERS) - 1:
        return None
    return News2(
        total=sum(points for _, points in parts),
        parts=tuple(parts),
        missing=tuple(missing),
        scale=2 if hypercapnic else 1,
    )
