"""Read a FHIR R4 Bundle of one patient into frozen value objects the rules can use.

Only what the alert rules need is kept: the Patient's sex and birth date, Observations whose
LOINC code is in ``analytes.yaml`` (converted to the analyte's canonical unit), active
MedicationRequests and active Conditions. Observations with other codes are listed in
``ignored`` (reported, never silently dropped).

Refused, with :class:`~medbrain.core.errors.InputError` naming ``entry[i]...``: a document that
is not a Bundle, a bundle without exactly one Patient, resources about another patient, a
quantity without a unit where the unit matters, an unknown unit, a value outside the analyte's
plausibility limits (K⁺ 50 mmol/L), a non-numeric value and a missing or malformed time.

References
----------
HL7 FHIR R4 (4.0.1): Bundle, Patient, Observation (valueQuantity, component, effective[x]),
MedicationRequest, Condition; Observation vital signs profile. UCUM unit codes (Quantity.code
when Quantity.system is http://unitsofmeasure.org).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from medbrain.alerts.knowledge import AlertKnowledge, Analyte
from medbrain.core.errors import InputError

LOINC_SYSTEM = "http://loinc.org"
SKIPPED_STATUSES = frozenset({"entered-in-error", "cancelled", "registered"})
INACTIVE_CONDITION = frozenset({"inactive", "remission", "resolved"})
REFUTED_CONDITION = frozenset({"refuted", "entered-in-error"})
ACTIVE_MEDICATION = frozenset({"active", "on-hold", "draft"})
NEGATIVE_TERMS = (
    "negative",
    "no growth",
    "not detected",
    "阴性",
    "无菌生长",
    "未生长",
    "未检出",
    "260385009",
    "264868006",
)
GRAM_STAIN_TERMS = (
    "革兰阴性",
    "革兰阳性",
    "革兰氏阴性",
    "革兰氏阳性",
    "gram-negative",
    "gram negative",
    "gram-positive",
    "gram positive",
)
ACVPU = ("A", "C", "V", "P", "U")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One observed value of one analyte, in the analyte's canonical unit.

    ``raw_value`` and ``raw_unit`` are exactly as written in the bundle, so the evidence quote
    reproduces the input; ``value`` is converted (e.g. creatinine mg/dL → µmol/L).
    """

    analyte: str
    value: float
    unit: str
    raw_value: str
    raw_unit: str
    time: datetime
    resource: str
    field: str
    label: str
    coded: str | None = None

    @property
    def quote(self) -> str:
        if self.coded is not None:
            return f"{self.label} {self.coded}"
        return f"{self.label} {self.raw_value} {self.raw_unit}".strip()

    def text(self) -> str:
        """The value as written, with its unit (for messages)."""
        if self.coded is not None:
            return self.coded
        return f"{self.raw_value} {self.raw_unit}".strip()


@dataclass(frozen=True, slots=True)
class Medication:
    resource: str
    text: str
    codes: tuple[str, ...]
    search: str  # lower-cased names and codes, for term matching


@dataclass(frozen=True, slots=True)
class Problem:
    resource: str
    text: str
    codes: tuple[str, ...]
    search: str


@dataclass(frozen=True, slots=True)
class PatientInfo:
    resource: str
    sex: str | None  # "male" | "female" | None
    birth_date: date | None

    def age_years(self, now: datetime) -> int | None:
        if self.birth_date is None:
            return None
        today = now.date()
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient's data as the alert rules see it; every series is sorted by time."""

    patient: PatientInfo
    series: Mapping[str, tuple[Measurement, ...]]
    medications: tuple[Medication, ...]
    conditions: tuple[Problem, ...]
    ignored: tuple[str, ...]

    def values(self, analyte: str) -> tuple[Measurement, ...]:
        return self.series.get(analyte, ())

    @property
    def latest_time(self) -> datetime | None:
        times = [s[-1].time for s in self.series.values() if s]
        return max(times) if times else None


def parse_time(source: str, field: str, raw: Any) -> datetime:
    """An ISO 8601 FHIR dateTime; a date alone means midnight, no offset means UTC."""
    if not isinstance(raw, str) or not raw:
        raise InputError(source, field, "missing or non-text date/time")
    try:
        if len(raw) == 10:
            parsed = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(source, field, f"not an ISO 8601 date/time: {raw!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _codings(concept: Any) -> list[Mapping[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"]:
        return str(concept["text"])
    for coding in _codings(concept):
        if isinstance(coding.get("display"), str) and coding["display"]:
            return str(coding["display"])
        if isinstance(coding.get("code"), str):
            return str(coding["code"])
    return ""


def _first_known(concept: Any, by_code: Mapping[str, Analyte]) -> tuple[Analyte | None, list[str]]:
    """The first coding in ``concept`` that names a known analyte, and the codes seen.

    LOINC codings (system ``http://loinc.org`` or no system) and a hospital's own lab codes
    (``local_codes`` in ``analytes.yaml``, matched on system and code) are recognised.
    """
    codes: list[str] = []
    if not isinstance(concept, dict):
        return None, codes
    for coding in concept.get("coding") or ():
        if not isinstance(coding, dict):
            continue
        code = coding.get("code")
        if not isinstance(code, str):
            continue
        system = coding.get("system") or LOINC_SYSTEM
        analyte = by_code.get(f"{system}|{code}")
        if analyte is not None:
            return analyte, codes
        codes.append(code)
    return None, codes


def _format_number(value: float | int) -> str:
    """The number as JSON wrote it (``2.0`` stays ``2.0``), for quoting the input exactly."""
    return str(value) if isinstance(value, int) else repr(value)


class _Reader:
    def __init__(self, knowledge: AlertKnowledge, source: str) -> None:
        self.knowledge = knowledge
        self.source = source
        self.patient_refs: set[str] = set()
        self._times: dict[str, datetime] = {}

    def time(self, field: str, raw: Any) -> datetime:
        """:func:`parse_time`, remembering strings already parsed (vital-sign sets share one)."""
        if isinstance(raw, str):
            known = self._times.get(raw)
            if known is not None:
                return known
            parsed = parse_time(self.source, field, raw)
            self._times[raw] = parsed
            return parsed
        return parse_time(self.source, field, raw)

    def fail(self, field: str, problem: str) -> InputError:
        return InputError(self.source, field, problem)

    def check_subject(self, resource: Mapping[str, Any], where: str, key: str = "subject") -> None:
        ref = resource.get(key)
        if ref is None:
            return
        reference = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(reference, str) and reference not in self.patient_refs:
            raise self.fail(
                f"{where}.{key}.reference",
                f"refers to {reference}, not to the bundle's patient (one patient per bundle)",
            )

    def effective_time(self, resource: Mapping[str, Any], where: str) -> datetime:
        if "effectiveDateTime" in resource:
            return self.time(f"{where}.effectiveDateTime", resource["effectiveDateTime"])
        if "effectiveInstant" in resource:
            return parse_time(
                self.source, f"{where}.effectiveInstant", resource["effectiveInstant"]
            )
        period = resource.get("effectivePeriod")
        if isinstance(period, dict) and (period.get("start") or period.get("end")):
            key = "start" if period.get("start") else "end"
            return parse_time(self.source, f"{where}.effectivePeriod.{key}", period[key])
        if "issued" in resource:
            return parse_time(self.source, f"{where}.issued", resource["issued"])
        raise self.fail(
            f"{where}.effectiveDateTime", "observation has no time (effective[x] or issued)"
        )

    def quantity(
        self,
        analyte: Analyte,
        holder: Mapping[str, Any],
        where: str,
        time: datetime,
        resource_ref: str,
    ) -> Measurement | None:
        field = f"{where}.valueQuantity"
        if analyte.kind == "coded":
            return self.coded(analyte, holder, where, time, resource_ref)
        if "valueQuantity" not in holder:
            if "valueInteger" in holder or "valueDecimal" in holder:
                key = "valueInteger" if "valueInteger" in holder else "valueDecimal"
                quantity: Any = {"value": holder[key]}
                field = f"{where}.{key}"
            elif ("valueCodeableConcept" in holder and analyte.id == "gcs") or holder.get(
                "dataAbsentReason"
            ) is not None:
                return None
            else:
                value_keys = [k for k in holder if k.startswith("value")]
                if value_keys:
                    raise self.fail(
                        f"{where}.{value_keys[0]}", f"{analyte.en} needs a numeric valueQuantity"
                    )
                return None
        else:
            quantity = holder["valueQuantity"]
        if not isinstance(quantity, dict):
            raise self.fail(field, "must be an object")
        raw = quantity.get("value")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise self.fail(f"{field}.value", f"{analyte.en} value must be a number, got {raw!r}")
        code = quantity.get("code")
        label_unit = quantity.get("unit")
        unit_key = code if isinstance(code, str) and code else label_unit
        if not isinstance(unit_key, str) or not unit_key.strip():
            if analyte.unit_required:
                raise self.fail(
                    f"{field}.unit",
                    f"{analyte.en} {_format_number(raw)} has no unit (expected e.g. {analyte.unit})",
                )
            rule = analyte.units.get(analyte.unit)
            unit_key = ""
        else:
            unit_key = unit_key.strip()
            rule = analyte.units.get(unit_key)
            if rule is None:
                lowered = {u.lower(): r for u, r in analyte.units.items()}
                rule = lowered.get(unit_key.lower())
            if rule is None and isinstance(label_unit, str) and label_unit.strip() != unit_key:
                rule = analyte.units.get(label_unit.strip())
            if rule is None:
                accepted = ", ".join(sorted(analyte.units))
                raise self.fail(
                    f"{field}.{'code' if unit_key == code else 'unit'}",
                    f"unit {unit_key!r} is not recognised for {analyte.en} (accepted: {accepted})",
                )
        assert rule is not None
        value = rule.to_canonical(float(raw))
        if analyte.plausible is not None:
            low, high = analyte.plausible
            if not low <= value <= high:
                raise self.fail(
                    f"{field}.value",
                    f"{analyte.en} {_format_number(raw)} {unit_key} is not a possible value "
                    f"(plausible {low:g}–{high:g} {analyte.unit})",
                )
        shown_unit = label_unit if isinstance(label_unit, str) and label_unit else unit_key
        # Quantity.comparator (<, <=, >=, >): quoted as written; the bound is used as the value.
        comparator = quantity.get("comparator")
        comparator = comparator if comparator in ("<", "<=", ">=", ">") else ""
        return Measurement(
            analyte=analyte.id,
            value=value,
            unit=analyte.unit,
            raw_value=f"{comparator}{_format_number(raw)}",
            raw_unit=shown_unit,
            time=time,
            resource=resource_ref,
            field=field,
            label=analyte.label,
        )

    def coded(
        self,
        analyte: Analyte,
        holder: Mapping[str, Any],
        where: str,
        time: datetime,
        resource_ref: str,
    ) -> Measurement | None:
        texts: list[str] = []
        field = where
        if "valueCodeableConcept" in holder:
            concept = holder["valueCodeableConcept"]
            field = f"{where}.valueCodeableConcept"
            texts.append(_concept_text(concept))
            texts.extend(str(c.get("code", "")) for c in _codings(concept))
        elif "valueString" in holder:
            field = f"{where}.valueString"
            texts.append(str(holder["valueString"]))
        interpretation = holder.get("interpretation")
        interp_codes = [
            str(c.get("code", "")).upper()
            for concept in (interpretation if isinstance(interpretation, list) else [])
            for c in _codings(concept)
        ]
        texts = [t for t in texts if t]
        if not texts and not interp_codes:
            return None
        shown = texts[0] if texts else "/".join(interp_codes)
        if analyte.id == "avpu":
            letter = _acvpu(texts)
            if letter is None:
                raise self.fail(field, f"ACVPU value {shown!r} is not one of A, C, V, P, U")
            value = float(ACVPU.index(letter))
            shown = letter if not texts else shown
        else:
            joined = " ".join(texts).lower()
            # "革兰阴性杆菌" / "Gram-negative rods" name an organism: a positive culture.
            for gram in GRAM_STAIN_TERMS:
                joined = joined.replace(gram, " ")
            negative = "NEG" in interp_codes or any(term in joined for term in NEGATIVE_TERMS)
            positive = "POS" in interp_codes or not negative
            value = 1.0 if positive else 0.0
        return Measurement(
            analyte=analyte.id,
            value=value,
            unit="",
            raw_value=shown,
            raw_unit="",
            time=time,
            resource=resource_ref,
            field=field,
            label=analyte.label,
            coded=shown,
        )


def _acvpu(texts: Sequence[str]) -> str | None:
    for text in texts:
        stripped = text.strip()
        upper = stripped.upper()
        if upper in ACVPU:
            return upper
        lowered = stripped.lower()
        for letter, words in (
            ("A", ("alert", "清醒")),
            ("C", ("confus", "new confusion", "意识模糊", "谵妄")),
            ("V", ("voice", "对声音")),
            ("P", ("pain", "对疼痛")),
            ("U", ("unresponsive", "无反应", "昏迷")),
        ):
            if any(word in lowered for word in words):
                return letter
    return None


def _entries(bundle: Any, source: str) -> list[Any]:
    if not isinstance(bundle, dict):
        raise InputError(source, "", "expected a FHIR Bundle (a JSON object)")
    if bundle.get("resourceType") != "Bundle":
        raise InputError(
            source, "resourceType", f"expected 'Bundle', got {bundle.get('resourceType')!r}"
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InputError(source, "entry", "must be a list")
    return entries


def read_bundle(bundle: Any, knowledge: AlertKnowledge, source: str = "bundle") -> PatientRecord:
    """Read one patient's FHIR R4 Bundle (parsed JSON) into a :class:`PatientRecord`.

    Raises
    ------
    InputError
        Naming ``entry[i].resource...`` and the problem (see module docstring).
    """
    reader = _Reader(knowledge, source)
    entries = _entries(bundle, source)
    resources: list[tuple[int, Mapping[str, Any]]] = []
    patient: PatientInfo | None = None
    for index, entry in enumerate(entries):
        where = f"entry[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise InputError(source, f"{where}.resource", "missing or not an object")
        resource = entry["resource"]
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise InputError(source, f"{where}.resource.resourceType", "missing")
        if rtype == "Patient":
            if patient is not None:
                raise InputError(
                    source,
                    f"{where}.resource",
                    "a second Patient: the bundle must hold one patient",
                )
            patient = _patient(resource, f"{where}.resource", source)
            reader.patient_refs.add(patient.resource)
            if isinstance(entry.get("fullUrl"), str):
                reader.patient_refs.add(entry["fullUrl"])
        resources.append((index, resource))
    if patient is None:
        raise InputError(source, "entry", "no Patient resource: the bundle must hold one patient")

    collected: dict[str, list[Measurement]] = {}
    medications: list[Medication] = []
    conditions: list[Problem] = []
    ignored: list[str] = []
    by_code = knowledge.by_code
    for index, resource in resources:
        rtype = resource["resourceType"]
        where = f"entry[{index}].resource"
        ref = f"{rtype}/{resource.get('id', f'entry{index}')}"
        if rtype == "Observation":
            if resource.get("status") in SKIPPED_STATUSES:
                continue
            reader.check_subject(resource, where)
            analyte, codes = _first_known(resource.get("code"), by_code)
            components = resource.get("component")
            measured: list[Measurement] = []
            component_analytes: list[tuple[Analyte, int, Mapping[str, Any]]] = []
            if isinstance(components, list):
                for cindex, component in enumerate(components):
                    if not isinstance(component, dict):
                        continue
                    canalyte, _ = _first_known(component.get("code"), by_code)
                    if canalyte is not None:
                        component_analytes.append((canalyte, cindex, component))
            if analyte is None and not component_analytes:
                label = ",".join(codes) or _concept_text(resource.get("code")) or "no code"
                ignored.append(f"{ref} ({label})")
                continue
            time = reader.effective_time(resource, where)
            if analyte is not None:
                m = reader.quantity(analyte, resource, where, time, ref)
                if m is not None:
                    measured.append(m)
            for canalyte, cindex, component in component_analytes:
                m = reader.quantity(canalyte, component, f"{where}.component[{cindex}]", time, ref)
                if m is not None:
                    measured.append(m)
            for m in measured:
                collected.setdefault(m.analyte, []).append(m)
        elif rtype == "MedicationRequest":
            if resource.get("status", "active") not in ACTIVE_MEDICATION:
                continue
            reader.check_subject(resource, where)
            concept = resource.get("medicationCodeableConcept")
            texts = [_concept_text(concept)]
            texts.extend(str(c.get("display", "")) for c in _codings(concept))
            reference = resource.get("medicationReference")
            if isinstance(reference, dict) and isinstance(reference.get("display"), str):
                texts.append(reference["display"])
            med_codes = tuple(str(c.get("code", "")) for c in _codings(concept) if c.get("code"))
            texts = [t for t in texts if t]
            medications.append(
                Medication(
                    resource=ref,
                    text=texts[0] if texts else ref,
                    codes=med_codes,
                    search=" ".join([*texts, *med_codes]).lower(),
                )
            )
        elif rtype == "Condition":
            clinical = {str(c.get("code")) for c in _codings(resource.get("clinicalStatus"))}
            verification = {
                str(c.get("code")) for c in _codings(resource.get("verificationStatus"))
            }
            if clinical & INACTIVE_CONDITION or verification & REFUTED_CONDITION:
                continue
            reader.check_subject(resource, where)
            concept = resource.get("code")
            texts = [_concept_text(concept)]
            texts.extend(str(c.get("display", "")) for c in _codings(concept))
            cond_codes = tuple(str(c.get("code", "")) for c in _codings(concept) if c.get("code"))
            texts = [t for t in texts if t]
            conditions.append(
                Problem(
                    resource=ref,
                    text=texts[0] if texts else ref,
                    codes=cond_codes,
                    search=" ".join([*texts, *cond_codes]).lower(),
                )
            )
    series = {
        key: tuple(sorted(values, key=lambda m: (m.time, m.resource)))
        for key, values in collected.items()
    }
    return PatientRecord(
        patient=patient,
        series=series,
        medications=tuple(medications),
        conditions=tuple(conditions),
        ignored=tuple(ignored),
    )


def _patient(resource: Mapping[str, Any], where: str, source: str) -> PatientInfo:
    gender = resource.get("gender")
    sex = gender if gender in ("male", "female") else None
    birth: date | None = None
    raw = resource.get("birthDate")
    if raw is not None:
        if not isinstance(raw, str):
            raise InputError(source, f"{where}.birthDate", "must be a date string")
        try:
            birth = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            birth = None
        if birth is None:
            raise InputError(source, f"{where}.birthDate", f"not a full date (YYYY-MM-DD): {raw!r}")
    return PatientInfo(
        resource=f"Patient/{resource.get('id', 'unknown')}", sex=sex, birth_date=birth
    )
