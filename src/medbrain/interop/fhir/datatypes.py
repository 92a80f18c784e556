"""Reading FHIR R4 data types into plain Python values (times, codes, quantities, text).

Only structurally valid resources reach these helpers (see :mod:`.validation`), so they
deal with FHIR's optionality, not with malformed JSON.

References
----------
HL7 FHIR R4 (4.0.1) §2.24.0 Data Types: date, dateTime, instant (partial dates allowed,
a time requires a timezone), CodeableConcept, Coding, Quantity, Period, Reference.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from medbrain.core.errors import InputError

UCUM_SYSTEM = "http://unitsofmeasure.org"
LOINC_SYSTEM = "http://loinc.org"
V2_0203_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
ICD10_SYSTEMS = (
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
    "urn:oid:2.16.840.1.113883.6.3",
    "urn:oid:2.16.840.1.113883.6.90",
)

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def parse_datetime(value: Any, source: str, field: str) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC ``datetime``.

    A date without a time (``2024``, ``2024-03``, ``2024-03-05``) is read as 00:00 UTC on
    its first day; the original string stays in the stored resource.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(source, field, f"expected a FHIR dateTime string, got {value!r}")
    match = _PARTIAL.match(value)
    try:
        if match:
            year, month, day = (int(g) if g else 1 for g in match.groups())
            return datetime(year, month, day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(source, field, f"invalid date/time {value!r}") from None
    if parsed.tzinfo is None:
        raise InputError(source, field, f"a time needs a timezone (FHIR R4 §2.24.0.1): {value!r}")
    return parsed.astimezone(UTC)


def parse_date(value: Any, source: str, field: str) -> date | None:
    """A FHIR ``date`` (possibly partial: the first day of the year or month)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(source, field, f"expected a FHIR date string, got {value!r}")
    match = _PARTIAL.match(value)
    if not match:
        raise InputError(source, field, f"invalid date {value!r} (expected YYYY[-MM[-DD]])")
    year, month, day = (int(g) if g else 1 for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise InputError(source, field, f"invalid date {value!r}") from None


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def concept_text(concept: Any) -> str | None:
    """Text a person reads: ``text``, else the first coding's display, else its code."""
    if not isinstance(concept, dict):
        return None
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    for coding in codings(concept):
        display = coding.get("display")
        if isinstance(display, str) and display.strip():
            return display.strip()
    for coding in codings(concept):
        code = coding.get("code")
        if isinstance(code, str) and code:
            return code
    return None


def first_code(concept: Any, systems: tuple[str, ...] | None = None) -> str | None:
    """The code of the first coding (of one of ``systems`` when given)."""
    for coding in codings(concept):
        system = coding.get("system")
        if systems is not None and system not in systems:
            continue
        code = coding.get("code")
        if isinstance(code, str) and code:
            return code
    return None


def has_code(concept: Any, code: str) -> bool:
    return any(c.get("code") == code for c in codings(concept))


def quantity_value(quantity: Any) -> float | None:
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def quantity_unit(quantity: Any) -> str | None:
    """The UCUM code when the quantity is coded in UCUM, else the human unit."""
    if not isinstance(quantity, dict):
        return None
    code, unit = quantity.get("code"), quantity.get("unit")
    if quantity.get("system") == UCUM_SYSTEM and isinstance(code, str) and code:
        return code
    if isinstance(unit, str) and unit:
        return unit
    return code if isinstance(code, str) and code else None


def clip(value: str | None, max_chars: int) -> str | None:
    """Fit display text into its column; the full text stays in the stored resource."""
    if value is None or len(value) <= max_chars:
        return value
    return value[: max_chars - 1] + "…"
