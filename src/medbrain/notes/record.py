"""Read a FHIR R4 Bundle of one patient into the facts a note may state.

Why a reader of its own: the notes engine is pure (no adapter imports), and a note needs
different things than the alert rules: display text, values with units exactly as recorded,
and the resource id of each fact, because every sentence of a draft cites its source.

Values are kept as the record has them (number and unit), never converted or rounded, so a
draft cannot state a value the record does not contain.

References
----------
HL7 FHIR R4 (4.0.1): Bundle, Patient, Encounter (period, reasonCode), Condition
(clinicalStatus, category encounter-diagnosis / problem-list-item), Observation (category
vital-signs / laboratory, valueQuantity, component, interpretation), MedicationRequest
(dosageInstruction.text), AllergyIntolerance, Procedure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from medbrain.core.errors import InputError

SKIPPED = frozenset({"entered-in-error", "cancelled"})
INACTIVE_CONDITION = frozenset({"inactive", "remission", "resolved", "refuted"})


@dataclass(frozen=True, slots=True)
class Fact:
    """One citable statement source: ``ref`` is ``ResourceType/id``."""

    ref: str
    label: str
    value: str = ""
    when: str = ""
    status: str = ""
    flag: str = ""  # interpretation code (H, L, HH, LL, A) for observations
    category: str = ""


@dataclass(frozen=True, slots=True)
class NoteRecord:
    patient_ref: str
    name: str
    sex: str  # male | female | unknown
    birth_date: date | None
    identifiers: tuple[str, ...]
    phones: tuple[str, ...]
    encounter: Fact | None
    encounter_start: str
    encounter_end: str
    conditions: tuple[Fact, ...]
    vitals: tuple[Fact, ...]
    labs: tuple[Fact, ...]
    medications: tuple[Fact, ...]
    allergies: tuple[Fact, ...]
    procedures: tuple[Fact, ...]

    def age_years(self, on: str) -> int | None:
        """Age on the date ``on`` (ISO), the one derived value a note states."""
        if self.birth_date is None or len(on) < 10:
            return None
        try:
            day = date.fromisoformat(on[:10])
        except ValueError:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _text(concept: Any) -> str:
    if not isinstance(concept, Mapping):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return str(concept["text"]).strip()
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and coding.get("display"):
            return str(coding["display"]).strip()
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and coding.get("code"):
            return str(coding["code"])
    return ""


def _code(concept: Any) -> str:
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or []:
            if isinstance(coding, Mapping) and coding.get("code"):
                return str(coding["code"])
    return ""


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _quantity(q: Any) -> str:
    if not isinstance(q, Mapping) or "value" not in q:
        return ""
    unit = q.get("unit") or q.get("code") or ""
    return f"{_number(q['value'])} {unit}".strip()


def _observation_value(resource: Mapping[str, Any]) -> str:
    if "valueQuantity" in resource:
        return _quantity(resource["valueQuantity"])
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in resource:
            return _number(resource[key])
    if "valueCodeableConcept" in resource:
        return _text(resource["valueCodeableConcept"])
    parts = []
    for component in resource.get("component") or []:
        if isinstance(component, Mapping):
            value = _quantity(component.get("valueQuantity"))
            if value:
                parts.append((_text(component.get("code")), value))
    if len(parts) == 2 and all(p[1].endswith("mmHg") for p in parts):
        return f"{parts[0][1].removesuffix(' mmHg')}/{parts[1][1]}"  # 150/92 mmHg
    return ", ".join(f"{label} {value}" for label, value in parts)


def _name(patient: Mapping[str, Any]) -> str:
    for name in patient.get("name") or []:
        if not isinstance(name, Mapping):
            continue
        if name.get("text"):
            return str(name["text"])
        family = str(name.get("family") or "")
        given = "".join(str(g) for g in name.get("given") or [])
        if family or given:
            return family + given
    return ""


def read_note_record(bundle: Any, source: str = "bundle") -> NoteRecord:
    """Parse ``bundle``; raise :class:`InputError` naming the field for what cannot be used."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InputError(source, "resourceType", "expected a FHIR R4 Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise InputError(source, "entry", "a Bundle needs an entry array")
    patients: list[tuple[int, Mapping[str, Any]]] = []
    by_type: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise InputError(source, f"entry[{i}].resource", "missing or without resourceType")
        if not resource.get("id"):
            raise InputError(
                source, f"entry[{i}].resource.id", "every resource needs an id (it is cited)"
            )
        if resource.get("status") in SKIPPED:
            continue
        if resource["resourceType"] == "Patient":
            patients.append((i, resource))
        by_type.setdefault(str(resource["resourceType"]), []).append((i, resource))
    if len(patients) != 1:
        raise InputError(source, "entry", f"expected exactly one Patient, found {len(patients)}")
    index, patient = patients[0]
    birth: date | None = None
    if patient.get("birthDate"):
        try:
            birth = date.fromisoformat(str(patient["birthDate"])[:10])
        except ValueError:
            raise InputError(
                source, f"entry[{index}].resource.birthDate", "not a date (YYYY-MM-DD)"
            ) from None
    sex = str(patient.get("gender") or "unknown")
    sex = sex if sex in ("male", "female") else "unknown"

    def ref(resource: Mapping[str, Any]) -> str:
        return f"{resource['resourceType']}/{resource['id']}"

    encounter: Fact | None = None
    start = end = ""
    for _, enc in by_type.get("Encounter", [])[:1]:
        period = enc.get("period") or {}
        start, end = str(period.get("start") or ""), str(period.get("end") or "")
        reasons = [_text(r) for r in enc.get("reasonCode") or [] if _text(r)]
        encounter = Fact(
            ref(enc), "；".join(reasons), when=start, status=str(enc.get("status") or "")
        )

    conditions = []
    for _, r in by_type.get("Condition", []):
        status = _code(r.get("clinicalStatus"))
        categories = [_code(c) for c in r.get("category") or []]
        when = str(r.get("onsetDateTime") or r.get("recordedDate") or "")
        conditions.append(
            Fact(
                ref(r),
                _text(r.get("code")),
                when=when,
                status=status,
                category=",".join(categories),
            )
        )

    vitals: list[Fact] = []
    labs: list[Fact] = []
    for _, r in by_type.get("Observation", []):
        obs_categories = {_code(c) for c in r.get("category") or []}
        interpretation = (r.get("interpretation") or [{}])[0]
        fact = Fact(
            ref(r),
            _text(r.get("code")),
            value=_observation_value(r),
            when=str(r.get("effectiveDateTime") or r.get("issued") or ""),
            flag=_code(interpretation),
            category="vital-signs" if "vital-signs" in obs_categories else "laboratory",
        )
        if fact.value:
            (vitals if fact.category == "vital-signs" else labs).append(fact)

    medications = []
    for _, r in by_type.get("MedicationRequest", []):
        dosage = "；".join(
            str(d.get("text"))
            for d in r.get("dosageInstruction") or []
            if isinstance(d, Mapping) and d.get("text")
        )
        name = _text(r.get("medicationCodeableConcept")) or str(
            (r.get("medicationReference") or {}).get("display") or ""
        )
        medications.append(
            Fact(
                ref(r),
                name,
                value=dosage,
                when=str(r.get("authoredOn") or ""),
                status=str(r.get("status") or ""),
            )
        )

    allergies = []
    for _, r in by_type.get("AllergyIntolerance", []):
        reactions = [
            _text(m)
            for reaction in r.get("reaction") or []
            for m in (reaction.get("manifestation") or [])
        ]
        allergies.append(
            Fact(ref(r), _text(r.get("code")), value="、".join(x for x in reactions if x))
        )

    procedures = [
        Fact(
            ref(r),
            _text(r.get("code")),
            when=str(r.get("performedDateTime") or ""),
            status=str(r.get("status") or ""),
        )
        for _, r in by_type.get("Procedure", [])
    ]

    def by_time(facts: list[Fact]) -> tuple[Fact, ...]:
        return tuple(sorted(facts, key=lambda f: (f.when, f.ref)))

    identifiers = tuple(
        str(i.get("value"))
        for i in patient.get("identifier") or []
        if isinstance(i, Mapping) and i.get("value")
    )
    phones = tuple(
        str(t.get("value"))
        for t in patient.get("telecom") or []
        if isinstance(t, Mapping) and t.get("system") == "phone" and t.get("value")
    )
    return NoteRecord(
        patient_ref=ref(patient),
        name=_name(patient),
        sex=sex,
        birth_date=birth,
        identifiers=identifiers,
        phones=phones,
        encounter=encounter,
        encounter_start=start,
        encounter_end=end,
        conditions=by_time(conditions),
        vitals=by_time(vitals),
        labs=by_time(labs),
        medications=by_time(medications),
        allergies=tuple(allergies),
        procedures=by_time(procedures),
    )
