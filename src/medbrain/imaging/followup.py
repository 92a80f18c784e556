"""Follow-up comparison of two studies of one patient: new / grown / stable / resolved, VDT.

Nodules are matched by their LPS centre (mm) without registration, so both studies must share
patient positioning (same scanner frame); a match needs the centres within
``max(10 mm, 1.5 x the larger mean diameter)``.

References
----------
Lung-RADS v2022 (ACR, Nov 2022): growth = increase in mean diameter > 1.5 mm within a
12-month interval.
Volume doubling time VDT = t * ln 2 / ln(V2 / V1) (Schultz EM et al., Radiology 1956;
Fleischner Society measurement statement, Bankier AA et al., Radiology 2017;285(2):584-600).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GROWTH_MM = 1.5  # Lung-RADS v2022 growth threshold (mean diameter, within 12 months)


@dataclass(frozen=True, slots=True)
class Change:
    """One nodule's change; ``prior_id`` or ``current_id`` is ``None`` for new / resolved."""

    status: str  # new | grown | stable | shrunk | resolved
    prior_id: int | None
    current_id: int | None
    diameter_change_mm: float | None
    volume_doubling_days: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "prior_id": self.prior_id,
            "current_id": self.current_id,
            "diameter_change_mm": self.diameter_change_mm,
            "volume_doubling_days": self.volume_doubling_days,
        }


def volume_doubling_days(v1_mm3: float, v2_mm3: float, interval_days: float) -> float | None:
    """VDT in days; ``None`` when the volume did not grow (no doubling) or is invalid."""
    if v1_mm3 <= 0 or v2_mm3 <= v1_mm3 or interval_days <= 0:
        return None
    return round(interval_days * math.log(2) / math.log(v2_mm3 / v1_mm3), 1)


def compare(
    prior: list[dict[str, Any]], current: list[dict[str, Any]], interval_days: float
) -> list[Change]:
    """Match contract nodule dicts (DESIGN.md §3) of two studies and classify each change.

    Greedy nearest-centre matching, closest pairs first; deterministic.
    """
    pairs: list[tuple[float, int, int]] = []
    for i, p in enumerate(prior):
        for j, c in enumerate(current):
            d = math.dist(p["center_mm"], c["center_mm"])
            limit = max(10.0, 1.5 * max(p["mean_diameter_mm"], c["mean_diameter_mm"]))
            if d <= limit:
                pairs.append((d, i, j))
    pairs.sort()
    used_p: set[int] = set()
    used_c: set[int] = set()
    out: list[Change] = []
    for _, i, j in pairs:
        if i in used_p or j in used_c:
            continue
        used_p.add(i)
        used_c.add(j)
        p, c = prior[i], current[j]
        delta = round(float(c["mean_diameter_mm"]) - float(p["mean_diameter_mm"]), 1)
        status = "grown" if delta > GROWTH_MM else "shrunk" if delta < -GROWTH_MM else "stable"
        vdt = volume_doubling_days(float(p["volume_mm3"]), float(c["volume_mm3"]), interval_days)
        out.append(Change(status, int(p["id"]), int(c["id"]), delta, vdt))
    out += [
        Change("new", None, int(c["id"]), None, None)
        for j, c in enumerate(current)
        if j not in used_c
    ]
    out += [
        Change("resolved", int(p["id"]), None, None, None)
        for i, p in enumerate(prior)
        if i not in used_p
    ]
    out.sort(key=lambda ch: (ch.current_id is None, ch.current_id or 0, ch.prior_id or 0))
    return out
