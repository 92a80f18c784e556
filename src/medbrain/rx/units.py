"""Dose arithmetic: parse dose text, convert units, count administrations per day.

Pure functions over a :class:`~medbrain.rx.knowledge.Vocab`; nothing here knows about
prescriptions. Amounts are carried in the drug's own unit (mg, µg, IU, mL or pieces).

References
----------
UCUM (Unified Code for Units of Measure) for unit spellings; HL7 FHIR R4 ``Timing.repeat``
(frequency per period) for the per-day arithmetic; 《处方管理办法》(2007) 第六条 for Chinese
and Latin frequency abbreviations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medbrain.rx.knowledge import Drug, Vocab, normalize_text

_NUMBER = r"(\d+(?:\.\d+)?)"
_DOSE_TEXT = re.compile(rf"^{_NUMBER}(?:[-~～至到]{_NUMBER})?([^\d].*)?$")
_STRENGTH_IN_NAME = re.compile(rf"{_NUMBER}(万u|万iu|万单位|mg|g|ug|µg|μg|mcg|iu|u|ml)(?![a-z])")
_Q_HOURS = re.compile(r"^q(\d+(?:\.\d+)?)h$")
_EVERY_HOURS = re.compile(r"^每(\d+(?:\.\d+)?)小时(?:1|一)次$")
_TIMES_PER_DAY = re.compile(r"^(?:每日|一日|每天|1日)(\d+)次$|^(\d+)次/(?:日|天|d)$|^(\d+)次每日$")

#: Canonical unit families.
MASS, IU, VOLUME, COUNT, PER_KG = "mass", "iu", "volume", "count", "per_kg"


class UnitProblem(ValueError):
    """A dose or unit that cannot be read (the caller names the field)."""


@dataclass(frozen=True, slots=True)
class ParsedDose:
    """A dose as written: the (upper) value and the normalised unit spelling."""

    value: float
    unit: str
    family: str
    factor: float  # to mg (mass), IU (iu), mL (volume); 1 for count and per-kg


def unit_family(unit: str, vocab: Vocab) -> tuple[str, float]:
    """Classify a normalised unit spelling; raise :class:`UnitProblem` if unknown."""
    if unit in vocab.mass_units:
        return MASS, vocab.mass_units[unit]
    if unit in vocab.iu_units:
        return IU, vocab.iu_units[unit]
    if unit in vocab.volume_units:
        return VOLUME, vocab.volume_units[unit]
    if unit in vocab.count_units:
        return COUNT, 1.0
    if unit in vocab.per_kg_units:
        return PER_KG, 1.0
    raise UnitProblem(f"unknown unit {unit!r}")


def parse_dose(dose: object, unit: object, vocab: Vocab) -> ParsedDose:
    """Read ``dose`` (number or text such as ``"0.5g"``, ``"1-2片"``) with optional ``unit``.

    A range ``a-b`` is read as its upper bound, the amount the prescriber allows.
    """
    unit_text = normalize_text(str(unit)) if unit not in (None, "") else ""
    if isinstance(dose, bool):
        raise UnitProblem("must be a number or dose text")
    if isinstance(dose, int | float):
        value = float(dose)
    elif isinstance(dose, str):
        text = normalize_text(dose)
        match = _DOSE_TEXT.match(text)
        if not match:
            if text.startswith("-"):
                raise UnitProblem(f"must be positive, got {dose!r}")
            raise UnitProblem(f"cannot read dose text {dose!r}")
        low = float(match.group(1))
        value = float(match.group(2)) if match.group(2) else low
        if match.group(2) and value < low:
            raise UnitProblem(f"range upper bound is below lower bound in {dose!r}")
        written_unit = (match.group(3) or "").strip()
        if written_unit:
            if unit_text and unit_text != written_unit:
                raise UnitProblem(f"dose text unit {written_unit!r} disagrees with unit {unit!r}")
            unit_text = written_unit
    else:
        raise UnitProblem("must be a number or dose text")
    if value != value or value in (float("inf"), float("-inf")):
        raise UnitProblem("must be a finite number")
    if value <= 0:
        raise UnitProblem(f"must be positive, got {value:g}")
    if not unit_text:
        raise UnitProblem("unit is missing")
    family, factor = unit_family(unit_text, vocab)
    return ParsedDose(value=value, unit=unit_text, family=family, factor=factor)


def strength_from_text(text: str, drug: Drug, vocab: Vocab) -> float | None:
    """A strength written in a name or spec (``"阿莫西林胶囊(0.25g)"``) in the drug's unit."""
    match = _STRENGTH_IN_NAME.search(normalize_text(text))
    if not match:
        return None
    value = float(match.group(1))
    try:
        family, factor = unit_family(match.group(2), vocab)
    except UnitProblem:
        return None
    return convert_amount(value * factor, family, drug)


def convert_amount(amount: float, family: str, drug: Drug) -> float | None:
    """Convert ``amount`` (mg, IU or mL by ``family``) into the drug's unit; None if impossible."""
    if family == MASS:
        if drug.unit == "mg":
            return amount
        if drug.unit == "ug":
            return amount * 1000.0
        return None
    if family == IU:
        if drug.unit == "IU":
            return amount
        if drug.iu_per_unit:
            return amount / drug.iu_per_unit
        return None
    if family == VOLUME and drug.unit == "ml":
        return amount
    return None


def per_day(code: object, vocab: Vocab) -> tuple[str, float | None]:
    """Normalise a frequency and return (code, administrations per day or None for prn/once).

    Raises :class:`UnitProblem` for an unknown frequency.
    """
    if not isinstance(code, str) or not code.strip():
        raise UnitProblem("must be a frequency code such as qd, bid, tid, q8h, qw, prn")
    text = normalize_text(code).replace(".", "")
    if text in vocab.frequencies:
        return text, vocab.frequencies[text]
    match = _Q_HOURS.match(text) or _EVERY_HOURS.match(text)
    if match:
        hours = float(match.group(1))
        if hours <= 0:
            raise UnitProblem(f"interval must be positive in {code!r}")
        return text, 24.0 / hours
    match = _TIMES_PER_DAY.match(text)
    if match:
        times = float(next(g for g in match.groups() if g))
        if times <= 0:
            raise UnitProblem(f"times per day must be positive in {code!r}")
        return text, times
    raise UnitProblem(f"unknown frequency {code!r}")


def canonical_route(route: object, vocab: Vocab) -> str:
    """Map a route spelling (po, 口服, ivgtt, 静滴 …) to its canonical name."""
    if not isinstance(route, str):
        raise UnitProblem("must be route text such as po, iv, im, sc")
    key = normalize_text(route)
    if key in vocab.routes:
        return vocab.routes[key]
    raise UnitProblem(f"unknown route {route!r}")


def form_from_name(name: str, vocab: Vocab) -> str | None:
    """The dosage form named in a drug name (``"阿莫西林胶囊"`` → ``"capsule"``)."""
    text = normalize_text(name)
    for word, form in vocab.form_words:
        if word in text:
            return form
    return None
