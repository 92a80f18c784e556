"""Triage input and result value objects, and validation of a visit document.

A visit is the JSON object of DESIGN.md §3 (``medbrain triage assess``). :func:`parse_visit`
turns it into a frozen :class:`Visit`, refusing physiologically impossible values with an
:class:`~medbrain.core.errors.InputError` that names the field (``vitals.spo2``), and listing
fields it does not know in :attr:`Visit.ignored_fields` instead of dropping them silently.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (objective indicators: HR, SBP,
SpO₂, axillary temperature, POCT glucose/potassium).
Royal College of Physicians. National Early Warning Score (NEWS) 2, 2017 (RR, SpO₂ scale 1/2,
air or oxygen, SBP, pulse, consciousness ACVPU, temperature).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medbrain.core.errors import InputError

VITAL_FIELDS = (
    "hr",
    "sbp",
    "dbp",
    "rr",
    "spo2",
    "temp_c",
    "gcs",
    "glucose_mmol_l",
    "potassium_mmol_l",
    "pain_score",
)
INTEGER_VITALS = frozenset({"gcs"})
ACVPU = ("A", "C", "V", "P", "U")
SEXES = ("male", "female", "other", "unknown")
SEX_ALIASES = {"m": "male", "f": "female", "男": "male", "女": "female", "未知": "unknown"}
ARRIVALS = ("walk-in", "ambulance", "other")
TOP_FIELDS = frozenset(
    {
        "age_years",
        "age_months",
        "sex",
        "complaint",
        "vitals",
        "arrival",
        "pregnant",
        "onset_minutes",
        "hypercapnic",
        "id",
    }
)
VITALS_EXTRA = frozenset({"on_oxygen", "consciousness", "avpu"})
MAX_COMPLAINT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Vitals:
    """Vital signs at triage; every field optional (``None`` = not measured).

    ``consciousness`` is the ACVPU letter (A alert, C new confusion, V voice, P pain,
    U unresponsive); ``on_oxygen`` says whether supplemental oxygen is being given.
    """

    hr: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    rr: float | None = None
    spo2: float | None = None
    temp_c: float | None = None
    gcs: int | None = None
    glucose_mmol_l: float | None = None
    potassium_mmol_l: float | None = None
    pain_score: float | None = None
    consciousness: str | None = None
    on_oxygen: bool = False

    def value(self, name: str) -> float | str | None:
        result: float | str | None = getattr(self, name)
        return result

    def present(self) -> tuple[str, ...]:
        names = [*VITAL_FIELDS, "consciousness"]
        return tuple(n for n in names if getattr(self, n) is not None)


@dataclass(frozen=True, slots=True)
class Visit:
    """One person arriving for triage (DESIGN.md §3 input)."""

    complaint: str
    age_years: float | None = None
    sex: str | None = None
    vitals: Vitals = field(default_factory=Vitals)
    arrival: str | None = None
    pregnant: bool = False
    onset_minutes: float | None = None
    hypercapnic: bool = False
    ignored_fields: tuple[str, ...] = ()

    @property
    def age_months(self) -> float | None:
        return None if self.age_years is None else self.age_years * 12.0


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name_zh: str
    name_en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "name_zh": self.name_zh, "name_en": self.name_en}


@dataclass(frozen=True, slots=True)
class Criterion:
    """One rule that fired: its id, the level it asks for, and the cited reason."""

    rule_id: str
    level: int
    reason: str
    source: str
    red_flag: bool = False
    pathway: str | None = None
    kind: str = "complaint"  # "complaint" | "vital" | "score" | "pathway"


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The DESIGN.md §3 output plus confidence, findings and pathway details."""

    level: int
    level_name: str
    level_title: str
    zone: str
    zone_name: str
    max_wait_minutes: int
    care: str
    department: Department
    pathway: str | None
    red_flags: tuple[str, ...]
    reasons: tuple[str, ...]
    news2: int | None
    qsofa: int | None
    confidence: float
    needs_review: bool
    criteria: tuple[Criterion, ...]
    actions: tuple[str, ...] = ()
    pathway_detail: Mapping[str, Any] = field(default_factory=dict)
    specialty: Department | None = None
    ignored_fields: tuple[str, ...] = ()
    findings: tuple[dict[str, Any], ...] = ()
    decision: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level,
            "level_name": self.level_name,
            "level_title": self.level_title,
            "zone": self.zone,
            "zone_name": self.zone_name,
            "max_wait_minutes": self.max_wait_minutes,
            "care": self.care,
            "department": self.department.to_dict(),
            "pathway": self.pathway,
            "red_flags": list(self.red_flags),
            "reasons": list(self.reasons),
            "news2": self.news2,
            "qsofa": self.qsofa,
            "confidence": self.confidence,
            "needs_review": self.needs_review,
            "actions": list(self.actions),
            "pathway_detail": dict(self.pathway_detail),
            "specialty": self.specialty.to_dict() if self.specialty else None,
            "rules": [c.rule_id for c in self.criteria],
            "findings": list(self.findings),
        }
        if self.ignored_fields:
            out["ignored_fields"] = list(self.ignored_fields)
        if self.decision is not None:
            out["decision"] = dict(self.decision)
        return out


def _number(source: str, where: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InputError(source, where, f"must be a number, got {raw!r}")
    value = float(raw)
    if math.isnan(value) or math.isinf(value):
        raise InputError(source, where, f"must be a finite number, got {raw!r}")
    return value


def _check_range(
    source: str, where: str, value: float, limits: Mapping[str, tuple[float, float]], key: str
) -> None:
    lo, hi = limits[key]
    if not lo <= value <= hi:
        raise InputError(
            source,
            where,
            f"{value:g} is physiologically impossible (plausible range {lo:g}–{hi:g})",
        )


def _flag(source: str, where: str, raw: Any) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise InputError(source, where, f"must be true or false, got {raw!r}")
    return raw


def parse_visit(
    document: Any,
    plausible: Mapping[str, tuple[float, float]],
    source: str = "visit",
) -> Visit:
    """Validate a visit document; raise :class:`InputError` naming the first bad field.

    Parameters
    ----------
    document
        The decoded JSON object (DESIGN.md §3).
    plausible
        ``{field: (lo, hi)}`` limits outside which a value is physiologically impossible
        (from ``knowledge/triage/vitals.yaml``).
    source
        File name or ``body``, used in error messages.
    """
    if not isinstance(document, dict):
        raise InputError(source, "", "a visit must be a JSON object")
    ignored = sorted(f"{k}" for k in document if k not in TOP_FIELDS)

    complaint = document.get("complaint")
    if complaint is None:
        raise InputError(source, "complaint", "is required (the chief complaint in words)")
    if not isinstance(complaint, str):
        raise InputError(source, "complaint", f"must be text, got {complaint!r}")
    if not complaint.strip():
        raise InputError(source, "complaint", "is empty; describe the chief complaint")
    if len(complaint) > MAX_COMPLAINT_CHARS:
        raise InputError(source, "complaint", f"is longer than {MAX_COMPLAINT_CHARS} characters")

    age_years: float | None = None
    if document.get("age_years") is not None:
        age_years = _number(source, "age_years", document["age_years"])
        _check_range(source, "age_years", age_years, plausible, "age_years")
    if document.get("age_months") is not None:
        months = _number(source, "age_months", document["age_months"])
        _check_range(source, "age_months", months, plausible, "age_months")
        age_years = months / 12.0

    sex = document.get("sex")
    if sex is not None:
        key = sex.strip().lower() if isinstance(sex, str) else None
        sex = SEX_ALIASES.get(key or "", key)
        if sex not in SEXES:
            raise InputError(
                source, "sex", f"must be one of {', '.join(SEXES)}, got {document['sex']!r}"
            )

    arrival = document.get("arrival")
    if arrival is not None and (not isinstance(arrival, str) or arrival not in ARRIVALS):
        raise InputError(
            source, "arrival", f"must be one of {', '.join(ARRIVALS)}, got {arrival!r}"
        )

    pregnant = _flag(source, "pregnant", document.get("pregnant"))
    if pregnant and sex == "male":
        raise InputError(source, "pregnant", "is true but sex is male")
    hypercapnic = _flag(source, "hypercapnic", document.get("hypercapnic"))

    onset: float | None = None
    if document.get("onset_minutes") is not None:
        onset = _number(source, "onset_minutes", document["onset_minutes"])
        _check_range(source, "onset_minutes", onset, plausible, "onset_minutes")

    vitals, vitals_ignored = _parse_vitals(source, document.get("vitals"), plausible)
    return Visit(
        complaint=complaint.strip(),
        age_years=age_years,
        sex=sex,
        vitals=vitals,
        arrival=arrival,
        pregnant=pregnant,
        onset_minutes=onset,
        hypercapnic=hypercapnic,
        ignored_fields=tuple(ignored + vitals_ignored),
    )


def _parse_vitals(
    source: str, raw: Any, plausible: Mapping[str, tuple[float, float]]
) -> tuple[Vitals, list[str]]:
    if raw is None:
        return Vitals(), []
    if not isinstance(raw, dict):
        raise InputError(source, "vitals", "must be an object of vital signs")
    values: dict[str, Any] = {}
    for name in VITAL_FIELDS:
        if raw.get(name) is None:
            continue
        where = f"vitals.{name}"
        value = _number(source, where, raw[name])
        _check_range(source, where, value, plausible, name)
        if name in INTEGER_VITALS:
            if value != int(value):
                raise InputError(source, where, f"must be a whole number, got {value:g}")
            values[name] = int(value)
        else:
            values[name] = value
    if "sbp" in values and "dbp" in values and values["dbp"] >= values["sbp"]:
        raise InputError(
            source,
            "vitals.dbp",
            f"{values['dbp']:g} is not below the systolic pressure {values['sbp']:g}",
        )
    level = raw.get("consciousness", raw.get("avpu"))
    if level is not None:
        key = "vitals.consciousness" if "consciousness" in raw else "vitals.avpu"
        if not isinstance(level, str) or level.upper() not in ACVPU:
            raise InputError(source, key, f"must be one of A, C, V, P, U, got {level!r}")
        values["consciousness"] = level.upper()
    values["on_oxygen"] = _flag(source, "vitals.on_oxygen", raw.get("on_oxygen"))
    ignored = sorted(f"vitals.{k}" for k in raw if k not in VITAL_FIELDS and k not in VITALS_EXTRA)
    return Vitals(**values), ignored
