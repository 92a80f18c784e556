"""Value objects of a parsed prescription (DESIGN.md §3 ``medbrain rx review``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from medbrain.rx.knowledge import Drug


@dataclass(frozen=True, slots=True)
class Patient:
    """The patient facts the review uses; units are in the field names."""

    age_years: float | None = None
    sex: str | None = None  # "male" | "female"
    weight_kg: float | None = None
    height_cm: float | None = None
    pregnant: bool = False
    lactating: bool = False
    allergies: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    labs: Mapping[str, float] = field(default_factory=dict)
    child_pugh: str | None = None  # "A" | "B" | "C", as given
    ascites: int | None = None  # Child–Pugh points 1–3 (none / mild / moderate–severe)
    encephalopathy: int | None = None  # Child–Pugh points 1–3 (none / I–II / III–IV)


@dataclass(frozen=True, slots=True)
class Item:
    """One prescription line, with its dose converted into the drug's unit when possible.

    ``dose_amount`` is per administration in the drug's unit (``drug.unit``); ``per_day`` is
    administrations per day (None for prn/once); ``dose_note`` says why a dose could not be
    converted (then dose checks report it instead of passing silently).
    """

    index: int
    drug_text: str
    drug: Drug | None
    route: str | None
    route_text: str | None
    frequency: str | None
    per_day: float | None
    days: float | None
    quantity: float | None
    quantity_unit: str | None
    dose_value: float | None
    dose_unit: str | None
    dose_amount: float | None
    dose_note: str | None
    form: str | None
    group: str | None
    piece_strength: float | None  # drug units per counted piece, when known
    resolution: str | None = None

    @property
    def field(self) -> str:
        return f"items[{self.index}]"

    @property
    def daily_amount(self) -> float | None:
        """Average amount per day (weekly regimens spread over 7 days)."""
        if self.dose_amount is None:
            return None
        if self.per_day is None:
            return self.dose_amount
        return self.dose_amount * self.per_day


@dataclass(frozen=True, slots=True)
class Prescription:
    patient: Patient
    items: tuple[Item, ...]
    department: str | None = None
    prescriber_level: str | None = None
    setting: str = "outpatient"  # outpatient | emergency | inpatient
    consultation: bool = False
    supply_reason: str | None = None  # 延长用量理由 (《处方管理办法》第十九条)
    note: str | None = None  # free-text remark (e.g. 术后预防用药), read as an indication
    source: str = "prescription"
