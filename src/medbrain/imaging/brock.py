"""Brock (PanCan) probability of malignancy for one nodule, when the patient data are known.

Coefficients live in ``knowledge/imaging/brock_2013.yaml`` (full model without spiculation,
because this engine does not assess spiculation). Upper-lobe location comes from the lobes
fitted by :mod:`medbrain.imaging.lobes` (RUL/LUL); ``upper_lobe=None`` (lobe unknown) gives no
probability rather than a guess. :func:`brock_for_nodules` builds the ``ct detect`` block.

References
----------
McWilliams A et al. Probability of Cancer in Pulmonary Nodules Detected on First Screening
CT. N Engl J Med 2013;369(10):910-919.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medbrain.core.errors import KnowledgeError
from medbrain.knowledge.loaders import load_yaml

TERMS = (
    "age_minus_62",
    "female",
    "family_history_lung_cancer",
    "emphysema",
    "size_transformed",
    "upper_lobe",
    "part_solid",
    "ground_glass",
    "count_minus_4",
)


@dataclass(frozen=True, slots=True)
class BrockInput:
    """Patient and nodule data for the Brock model; ``mean_diameter_mm`` as measured."""

    age_years: float
    female: bool
    family_history_lung_cancer: bool
    emphysema: bool
    mean_diameter_mm: float
    type: str
    nodule_count: int
    upper_lobe: bool | None


@lru_cache(maxsize=1)
def brock_table() -> dict[str, Any]:
    data = load_yaml("imaging/brock_2013.yaml")
    coefficients = data.get("coefficients") if isinstance(data, dict) else None
    if not isinstance(coefficients, dict) or set(coefficients) != set(TERMS):
        raise KnowledgeError(f"imaging/brock_2013.yaml: coefficients must be exactly {TERMS}")
    if "intercept" not in data or "source" not in data:
        raise KnowledgeError("imaging/brock_2013.yaml: needs intercept and source")
    return dict(data)


def brock_probability(x: BrockInput) -> float | None:
    """Probability of malignancy in [0, 1], or ``None`` when an input is unknown or invalid."""
    if x.upper_lobe is None or x.mean_diameter_mm <= 0 or x.type == "calcified":
        return None
    table = brock_table()
    c: dict[str, float] = {k: float(v) for k, v in table["coefficients"].items()}
    terms = {
        "age_minus_62": x.age_years - 62.0,
        "female": float(x.female),
        "family_history_lung_cancer": float(x.family_history_lung_cancer),
        "emphysema": float(x.emphysema),
        "size_transformed": (x.mean_diameter_mm / 10.0) ** -0.5 - 1.58113883,
        "upper_lobe": float(x.upper_lobe),
        "part_solid": float(x.type == "part-solid"),
        "ground_glass": float(x.type == "ground-glass"),
        "count_minus_4": float(x.nodule_count) - 4.0,
    }
    logit = float(table["intercept"]) + sum(c[k] * terms[k] for k in TERMS)
    return 1.0 / (1.0 + math.exp(-logit))


# --- per-exam Brock block for `ct detect` (helper ct-lobes) ---

UPPER_LOBES = frozenset({"RUL", "LUL"})


@dataclass(frozen=True, slots=True)
class BrockPatient:
    """Patient data the Brock model needs besides the nodules."""

    age_years: float
    female: bool
    family_history_lung_cancer: bool
    emphysema: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "age_years": self.age_years,
            "sex": "female" if self.female else "male",
            "family_history_lung_cancer": self.family_history_lung_cancer,
            "emphysema": self.emphysema,
        }


def brock_for_nodules(nodules: list[dict[str, Any]], patient: BrockPatient) -> dict[str, Any]:
    """Brock probability per listed nodule (contract dicts: ``type``, ``mean_diameter_mm``,
    ``lobe``). Upper lobe = RUL or LUL; a nodule without a lobe gets ``None`` and a reason.
    The nodule count is the number of nodules listed (PanCan counts all nodules)."""
    table = brock_table()
    rows: list[dict[str, Any]] = []
    for n in nodules:
        lobe = n.get("lobe")
        upper = None if lobe is None else lobe in UPPER_LOBES
        p = brock_probability(
            BrockInput(
                age_years=patient.age_years,
                female=patient.female,
                family_history_lung_cancer=patient.family_history_lung_cancer,
                emphysema=patient.emphysema,
                mean_diameter_mm=float(n["mean_diameter_mm"]),
                type=str(n["type"]),
                nodule_count=len(nodules),
                upper_lobe=upper,
            )
        )
        reason = None
        if p is None:
            reason = "calcified" if n["type"] == "calcified" else "lobe"
        rows.append(
            {
                "id": n["id"],
                "probability": None if p is None else round(p, 4),
                "upper_lobe": upper,
                "reason": reason,
            }
        )
    return {
        "model": "PanCan full model without spiculation (McWilliams 2013)",
        "patient": patient.to_dict(),
        "nodules": rows,
        "source": str(table["source"]).strip(),
        "needs_review": bool(table.get("needs_review", True)),
    }
