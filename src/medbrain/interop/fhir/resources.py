"""Per-resource staging: one validated FHIR R4 resource → MedBrain column values.

Each ``_stage_<type>`` function reads the resource (already validated against its R4B
model), applies MedBrain's own checks (身份证 checksum and consistency, dates, required
patient reference) and fills a :class:`Staged` item. Nothing here touches the database;
references to patients and encounters are only parsed (:class:`Ref`) and resolved later
by :mod:`medbrain.interop.fhir.importer`.

References
----------
HL7 FHIR R4 (4.0.1): §2.3.0 references (literal, absolute, conditional), §2.24.0 data types;
resources Patient, Encounter (class: v3 ActEncounterCode), Condition, Observation
(interpretation: v3 ObservationInterpretation), MedicationRequest (Dosage, Timing),
MedicationAdministration (effective[x], request), AllergyIntolerance, Procedure, DocumentReference,
ImagingStudy; HL7 v2.9 table 0203
(``MR``, ``NNCHN``); GB 11643-1999 《公民身份号码》; 《处方管理办法》(2007) 第六条 (frequency
abbreviations).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from medbrain.core.errors import InputError
from medbrain.core.identifiers import parse_resident_id
from medbrain.interop.fhir import datatypes as dt
from medbrain.interop.fhir.names import has_han, name_keys
from medbrain.knowledge.loaders import document_type_by_title, document_types

LITERAL_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)
_CONDITIONAL_REF = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)\?identifier=(.+)$")
_TAG = re.compile(r"<[^>]+>")
_GENDERS = frozenset({"male", "female", "other", "unknown"})

# Encounter.class (v3 ActCode) → MedBrain encounter kind. Home health and virtual visits
# are ambulatory contacts. Reference: FHIR R4 ValueSet v3-ActEncounterCode.
_ENCOUNTER_KIND = {
    "AMB": "outpatient",
    "HH": "outpatient",
    "VR": "outpatient",
    "FLD": "outpatient",
    "EMER": "emergency",
    "OBSENC": "emergency",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "SS": "inpatient",
    "PRENC": "outpatient",
}
# Observation.interpretation (v3 ObservationInterpretation) → MedBrain abnormal flag.
_FLAGS = {
    "N": "N",
    "L": "L",
    "H": "H",
    "LL": "LL",
    "HH": "HH",
    "A": "A",
    "AA": "A",
    "LU": "L",
    "HU": "H",
    "<": "L",
    ">": "H",
}
# Several document types share LOINC 11506-3 (progress note): without a title, a progress
# note is a daily one.
_LOINC_TIE_BREAK = {"11506-3": "course"}
# Timing.repeat (frequency per period) → the Latin abbreviations used on Chinese orders
# (《处方管理办法》2007 第六条).
_FREQUENCIES = {
    (1, 1.0, "d"): "qd",
    (2, 1.0, "d"): "bid",
    (3, 1.0, "d"): "tid",
    (4, 1.0, "d"): "qid",
    (1, 4.0, "h"): "q4h",
    (1, 6.0, "h"): "q6h",
    (1, 8.0, "h"): "q8h",
    (1, 12.0, "h"): "q12h",
    (1, 1.0, "wk"): "qw",
    (1, 2.0, "d"): "qod",
}
_DAYS_PER_UNIT = {"d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0, "h": 1 / 24}


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a Patient or Encounter, as found in the bundle.

    Exactly one of ``fhir_id`` (literal reference) or ``identifier`` (conditional or
    identifier-only reference to a patient in the store) is set.
    """

    field: str
    raw: str
    resource_type: str
    fhir_id: str | None = None
    in_bundle: bool = False
    identifier: tuple[str | None, str] | None = None


@dataclass(slots=True)
class Staged:
    """One supported resource, validated and turned into column values."""

    index: int
    resource_type: str
    fhir_id: str
    resource: dict[str, Any]
    values: dict[str, Any]
    prefix: str
    patient: Ref | None = None
    encounter: Ref | None = None
    text: str | None = None
    series: list[dict[str, Any]] = field(default_factory=list)
    identifier_fields: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StagingContext:
    """What staging one resource needs to know about the rest of the bundle."""

    source: str
    now: datetime
    keys: dict[str, tuple[str, str]]  # fullUrl or "Type/id" → (type, id)
    medications: dict[str, dict[str, Any]]
    patient_identifiers: dict[tuple[str | None, str], str]


def _reference(
    ctx: StagingContext, container: Any, field_name: str, expected: str, prefix: str
) -> Ref | None:
    """Parse ``container[field_name]`` as a reference to ``expected`` (Patient/Encounter)."""
    if not isinstance(container, dict):
        return None
    value = container.get(field_name)
    if isinstance(value, list):  # e.g. DocumentReference.context.encounter (0..*)
        value = value[0] if value else None
        field_name = f"{field_name}[0]"
    if not isinstance(value, dict):
        return None
    where = f"{prefix}.{field_name}"
    raw = value.get("reference")
    if raw is None:
        ident = value.get("identifier")
        if (
            isinstance(ident, dict)
            and isinstance(ident.get("value"), str)
            and expected == "Patient"
        ):
            return _identifier_ref(ctx, f"{where}.identifier", ident.get("system"), ident["value"])
        raise InputError(ctx.source, where, f"reference to a {expected} has no 'reference'")
    where = f"{where}.reference"
    if not isinstance(raw, str):
        raise InputError(ctx.source, where, "reference must be a string")
    if raw in ctx.keys:
        resource_type, fhir_id = ctx.keys[raw]
        if resource_type != expected:
            raise InputError(ctx.source, where, f"must reference a {expected}, got {raw}")
        return Ref(where, raw, expected, fhir_id=fhir_id, in_bundle=True)
    if raw.startswith("#"):
        raise InputError(ctx.source, where, "contained resources are not supported here")
    if raw.startswith("urn:"):
        raise InputError(ctx.source, where, f"{raw} does not match any fullUrl in this bundle")
    conditional = _CONDITIONAL_REF.match(raw)
    if conditional:
        if conditional.group(1) != expected:
            raise InputError(ctx.source, where, f"must reference a {expected}, got {raw}")
        token = unquote(conditional.group(2).split("&", 1)[0])
        system, _, ident_value = token.rpartition("|")
        return _identifier_ref(ctx, where, system or None, ident_value)
    literal = LITERAL_REFERENCE.search(raw)
    if literal is None:
        raise InputError(ctx.source, where, f"cannot read reference {raw!r}")
    if literal.group(1) != expected:
        raise InputError(ctx.source, where, f"must reference a {expected}, got {raw}")
    fhir_id = literal.group(2)
    in_bundle = f"{expected}/{fhir_id}" in ctx.keys
    return Ref(where, raw, expected, fhir_id=fhir_id, in_bundle=in_bundle)


def _identifier_ref(ctx: StagingContext, where: str, system: str | None, value: str) -> Ref:
    found = ctx.patient_identifiers.get((system, value))
    if found is not None:
        return Ref(where, value, "Patient", fhir_id=found, in_bundle=True)
    return Ref(where, value, "Patient", identifier=(system, value))


def _require_patient(ctx: StagingContext, item: Staged, field_name: str) -> None:
    ref = _reference(ctx, item.resource, field_name, "Patient", item.prefix)
    if ref is None:
        raise InputError(
            ctx.source,
            f"{item.prefix}.{field_name}",
            f"a {item.resource_type} must reference its Patient ({field_name})",
        )
    item.patient = ref


def _time(ctx: StagingContext, item: Staged, *names: str) -> datetime | None:
    """The first present dateTime among ``names`` (``effectivePeriod.start`` style paths)."""
    for name in names:
        node: Any = item.resource
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return dt.parse_datetime(node, ctx.source, f"{item.prefix}.{name}")
    return None


def _stage_patient(ctx: StagingContext, item: Staged) -> None:
    res, prefix, source = item.resource, item.prefix, ctx.source
    gender = res.get("gender") or "unknown"
    if gender not in _GENDERS:
        raise InputError(
            source, f"{prefix}.gender", f"must be male, female, other or unknown, got {gender!r}"
        )
    birth = dt.parse_date(res.get("birthDate"), source, f"{prefix}.birthDate")
    if birth is not None and birth > ctx.now.date():
        raise InputError(source, f"{prefix}.birthDate", f"birth date {birth} lies in the future")
    mrn: str | None = None
    resident_id: str | None = None
    for k, ident in enumerate(res.get("identifier") or []):
        value = ident.get("value")
        where = f"{prefix}.identifier[{k}].value"
        if not isinstance(value, str) or not value.strip():
            continue
        if dt.has_code(ident.get("type"), "MR") and mrn is None:
            if len(value) > 64:
                raise InputError(source, where, "medical record number longer than 64 characters")
            mrn = value.strip()
            item.identifier_fields["mrn"] = where
        elif dt.has_code(ident.get("type"), "NNCHN"):
            try:
                parsed = parse_resident_id(value)
            except ValueError as exc:
                raise InputError(source, where, str(exc)) from None
            if birth is not None and birth != parsed.birth_date:
                raise InputError(
                    source,
                    where,
                    f"身份证出生日期 {parsed.birth_date} 与 birthDate {birth} 不一致 / "
                    f"resident ID birth date {parsed.birth_date} does not match birthDate {birth}",
                )
            if gender in ("male", "female") and gender != parsed.sex:
                raise InputError(
                    source,
                    where,
                    f"身份证性别({parsed.sex})与 gender({gender})不一致 / "
                    f"resident ID encodes sex {parsed.sex}, but gender is {gender}",
                )
            resident_id = parsed.number
            item.identifier_fields["resident_id"] = where
    if mrn is None:
        mrn = item.fhir_id  # no MR identifier: the logical id is the only stable number
        item.identifier_fields["mrn"] = f"{prefix}.id"
    name, family = _person_name(res.get("name"))
    keys = name_keys(name, family)
    item.values = {
        "mrn": mrn,
        "name": dt.clip(name, 128) or "",
        "name_pinyin": keys.pinyin,
        "name_initials": keys.initials,
        "sex": gender,
        "birth_date": birth,
        "resident_id": resident_id,
        "phone": dt.clip(_phone(res.get("telecom")), 32),
        "address": dt.clip(_address(res.get("address")), 256),
    }


def _person_name(names: Any) -> tuple[str, str | None]:
    """The official (else first) HumanName as displayed: 张伟, or ``John Smith``."""
    if not isinstance(names, list) or not names:
        return "", None
    chosen = next((n for n in names if n.get("use") == "official"), names[0])
    family = chosen.get("family") if isinstance(chosen.get("family"), str) else None
    given = [g for g in chosen.get("given") or [] if isinstance(g, str)]
    text = chosen.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip(), family
    if has_han((family or "") + "".join(given)):
        return ((family or "") + "".join(given)).strip(), family
    return " ".join([*given, family or ""]).strip(), family


def _phone(telecom: Any) -> str | None:
    phones = [t for t in telecom or [] if isinstance(t, dict) and t.get("system") == "phone"]
    phones.sort(key=lambda t: 0 if t.get("use") == "mobile" else 1)
    for phone in phones:
        if isinstance(phone.get("value"), str) and phone["value"].strip():
            return str(phone["value"]).strip()
    return None


def _address(addresses: Any) -> str | None:
    if not isinstance(addresses, list) or not addresses:
        return None
    addr = addresses[0]
    if isinstance(addr.get("text"), str) and addr["text"].strip():
        return str(addr["text"]).strip()
    parts = [addr.get(k) for k in ("state", "city", "district")] + list(addr.get("line") or [])
    words: list[str] = []
    for part in parts:  # 北京市 is both state and city: say it once
        if isinstance(part, str) and part and (not words or words[-1] != part):
            words.append(part)
    joiner = "" if has_han("".join(words)) else ", "
    return joiner.join(words) or None


def _stage_encounter(ctx: StagingContext, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "subject")
    start = _time(ctx, item, "period.start")
    end = _time(ctx, item, "period.end")
    if start is not None and end is not None and end < start:
        raise InputError(
            ctx.source, f"{item.prefix}.period.end", "discharge/end time is before the start"
        )
    encounter_class = res.get("class") or {}
    kind = _ENCOUNTER_KIND.get(str(encounter_class.get("code", "")).upper(), "outpatient")
    department = dt.concept_text(res.get("serviceType"))
    if department is None:
        for loc in res.get("location") or []:
            display = (loc.get("location") or {}).get("display")
            if isinstance(display, str) and display:
                department = display
                break
    if department is None and res.get("type"):
        department = dt.concept_text(res["type"][0])
    reasons = [dt.concept_text(c) for c in res.get("reasonCode") or []]
    item.values = {
        "kind": kind,
        "department": dt.clip(department, 64),
        "status": dt.clip(str(res.get("status") or "unknown"), 32),
        "reason": "; ".join(r for r in reasons if r) or None,
        "admit_time": start,
        "discharge_time": end,
    }


def _icd10(concept: Any) -> str | None:
    code = dt.first_code(concept, dt.ICD10_SYSTEMS)
    if code is not None:
        return code
    for coding in dt.codings(concept):
        system = str(coding.get("system") or "").lower()
        if ("icd-10" in system or "icd10" in system) and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None


def _stage_condition(ctx: StagingContext, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(ctx, res, "encounter", "Encounter", item.prefix)
    code = _icd10(res.get("code"))
    item.values = {
        "icd10_code": dt.clip(code, 16),
        "text": dt.clip(dt.concept_text(res.get("code")) or code or "未注明诊断", 256),
        "clinical_status": dt.clip(dt.first_code(res.get("clinicalStatus")), 32),
        "onset_at": _time(ctx, item, "onsetDateTime", "onsetPeriod.start"),
        "recorded_at": _time(ctx, item, "recordedDate"),
    }


def _stage_observation(ctx: StagingContext, item: Staged) -> None:
    res, prefix = item.resource, item.prefix
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(ctx, res, "encounter", "Encounter", prefix)
    concept = res.get("code")
    code = dt.first_code(concept, (dt.LOINC_SYSTEM,)) or dt.first_code(concept)
    display = dt.concept_text(concept) or code or "unknown"
    categories = res.get("category") or []
    category = (dt.first_code(categories[0]) if categories else None) or "laboratory"

    value_num: float | None = None
    value_text: str | None = None
    unit: str | None = None
    if "valueQuantity" in res:
        value_num = dt.quantity_value(res["valueQuantity"])
        unit = dt.quantity_unit(res["valueQuantity"])
    elif "valueInteger" in res:
        value_num = float(res["valueInteger"])
    elif "valueString" in res:
        value_text = str(res["valueString"])
    elif "valueCodeableConcept" in res:
        value_text = dt.concept_text(res["valueCodeableConcept"])
    elif "valueBoolean" in res:
        value_text = "true" if res["valueBoolean"] else "false"
    elif res.get("component"):
        parts = []
        for comp in res["component"]:
            quantity = comp.get("valueQuantity")
            number = dt.quantity_value(quantity)
            if number is None:
                continue
            label = dt.concept_text(comp.get("code")) or "?"
            parts.append(f"{label} {number:g} {dt.quantity_unit(quantity) or ''}".strip())
        value_text = "; ".join(parts) or None

    ref_low = ref_high = None
    ref_text = None
    ranges = res.get("referenceRange") or []
    if ranges:
        first = ranges[0]
        ref_low = dt.quantity_value(first.get("low"))
        ref_high = dt.quantity_value(first.get("high"))
        ref_text = first.get("text") if isinstance(first.get("text"), str) else None
        if ref_low is not None and ref_high is not None and ref_low > ref_high:
            raise InputError(
                ctx.source,
                f"{prefix}.referenceRange[0]",
                f"low {ref_low:g} is above high {ref_high:g}",
            )
    flag: str | None = None
    for interpretation in res.get("interpretation") or []:
        code_value = dt.first_code(interpretation)
        if code_value is not None and code_value.upper() in _FLAGS:
            flag = _FLAGS[code_value.upper()]
            break
    if flag is None and value_num is not None and (ref_low is not None or ref_high is not None):
        if ref_low is not None and value_num < ref_low:
            flag = "L"
        elif ref_high is not None and value_num > ref_high:
            flag = "H"
        else:
            flag = "N"
    item.values = {
        "category": dt.clip(category, 32),
        "code": dt.clip(code or display, 64),
        "display": dt.clip(display, 256),
        "value_num": value_num,
        "value_text": value_text,
        "unit": dt.clip(unit, 32),
        "ref_low": ref_low,
        "ref_high": ref_high,
        "ref_text": dt.clip(ref_text, 128),
        "abnormal_flag": flag,
        "effective_at": _time(
            ctx, item, "effectiveDateTime", "effectiveInstant", "effectivePeriod.start", "issued"
        ),
        "status": dt.clip(str(res.get("status") or "unknown"), 32),
    }


def _frequency(timing: Any) -> str | None:
    if not isinstance(timing, dict):
        return None
    code = timing.get("code")
    if code is not None:
        text = dt.first_code(code) or dt.concept_text(code)
        if text:
            return text.lower()
    repeat = timing.get("repeat") or {}
    frequency, period, unit = (
        repeat.get("frequency"),
        repeat.get("period"),
        repeat.get("periodUnit"),
    )
    if isinstance(frequency, int) and isinstance(period, int | float) and isinstance(unit, str):
        known = _FREQUENCIES.get((frequency, float(period), unit))
        return known or f"{frequency}/{period:g}{unit}"
    return None


def _days(duration: Any) -> int | None:
    if not isinstance(duration, dict):
        return None
    value = dt.quantity_value(duration)
    unit = duration.get("code") or duration.get("unit") or "d"
    if value is None:
        return None
    factor = _DAYS_PER_UNIT.get(str(unit), 1.0 if str(unit).startswith("d") else None)
    return round(value * factor) if factor is not None else None


def _stage_medication_request(ctx: StagingContext, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(ctx, res, "encounter", "Encounter", item.prefix)
    drug, drug_code = _medication(ctx, res)
    dosage = (res.get("dosageInstruction") or [{}])[0]
    dose_value = dose_unit = None
    for dose_rate in dosage.get("doseAndRate") or []:
        quantity = dose_rate.get("doseQuantity") or (dose_rate.get("doseRange") or {}).get("low")
        if quantity:
            dose_value = dt.quantity_value(quantity)
            dose_unit = quantity.get("unit") or quantity.get("code")
            break
    frequency = _frequency(dosage.get("timing"))
    if frequency is None and dosage.get("asNeededBoolean"):
        frequency = "prn"
    dispense = res.get("dispenseRequest") or {}
    days = _days(dispense.get("expectedSupplyDuration"))
    if days is None:
        days = _days(((dosage.get("timing") or {}).get("repeat") or {}).get("boundsDuration"))
    item.values = {
        "drug": dt.clip(drug or dosage.get("text") or "未注明药品", 256),
        "drug_code": dt.clip(drug_code, 64),
        "dose_value": dose_value,
        "dose_unit": dt.clip(dose_unit, 32),
        "route": dt.clip(dt.concept_text(dosage.get("route")), 32),
        "frequency": dt.clip(frequency, 32),
        "days": days,
        "quantity": dt.quantity_value(dispense.get("quantity")),
        "status": dt.clip(str(res.get("status") or "unknown"), 32),
        "prescriber": dt.clip((res.get("requester") or {}).get("display"), 128),
        "authored_at": _time(ctx, item, "authoredOn"),
    }


def _medication(ctx: StagingContext, res: dict[str, Any]) -> tuple[str | None, str | None]:
    """(name, code) of ``medication[x]``: a concept, or a Medication in the bundle."""
    if "medicationCodeableConcept" in res:
        concept = res["medicationCodeableConcept"]
        return dt.concept_text(concept), dt.first_code(concept)
    reference = res.get("medicationReference") or {}
    target = ctx.medications.get(str(reference.get("reference")))
    if target is not None:
        return dt.concept_text(target.get("code")), dt.first_code(target.get("code"))
    return reference.get("display") or reference.get("reference"), None


def _stage_medication_administration(ctx: StagingContext, item: Staged) -> None:
    """A dose actually given: when (effective[x]), what, by which route, for which order.

    ``context`` may reference an EpisodeOfCare, which MedBrain does not store; only an
    Encounter reference links the dose to a stay.
    """
    res = item.resource
    _require_patient(ctx, item, "subject")
    context = res.get("context")
    raw = context.get("reference") if isinstance(context, dict) else None
    if isinstance(raw, str) and (
        ctx.keys.get(raw, ("",))[0] == "Encounter" or raw.split("/")[-2:-1] == ["Encounter"]
    ):
        item.encounter = _reference(ctx, res, "context", "Encounter", item.prefix)
    drug, drug_code = _medication(ctx, res)
    dosage = res.get("dosage") or {}
    dose = dosage.get("dose") if isinstance(dosage, dict) else None
    request = (res.get("request") or {}).get("reference")
    request_id = None
    if isinstance(request, str):
        match = LITERAL_REFERENCE.search(request)
        if match and match.group(1) == "MedicationRequest":
            request_id = match.group(2)
    given_at = _time(ctx, item, "effectiveDateTime", "effectivePeriod.start")
    given_end = _time(ctx, item, "effectivePeriod.end")
    if given_at is not None and given_end is not None and given_end < given_at:
        raise InputError(ctx.source, f"{item.prefix}.effectivePeriod.end", "ends before it starts")
    item.values = {
        "drug": dt.clip(drug or dosage.get("text") or "未注明药品", 256),
        "drug_code": dt.clip(drug_code, 64),
        "dose_value": dt.quantity_value(dose),
        "dose_unit": dt.clip((dose or {}).get("unit") or (dose or {}).get("code"), 32),
        "route": dt.clip(dt.concept_text(dosage.get("route")), 32),
        "status": dt.clip(str(res.get("status") or "unknown"), 32),
        "request_fhir_id": dt.clip(request_id, 128),
        "given_at": given_at,
        "given_end": given_end,
    }


def _stage_allergy(ctx: StagingContext, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "patient")
    reactions = res.get("reaction") or []
    substance = dt.concept_text(res.get("code"))
    if substance is None and reactions:
        substance = dt.concept_text(reactions[0].get("substance"))
    manifestations = [dt.concept_text(mf) for r in reactions for mf in r.get("manifestation") or []]
    categories = res.get("category") or []
    item.values = {
        "substance": dt.clip(substance or "未注明过敏原", 256),
        "code": dt.clip(dt.first_code(res.get("code")), 64),
        "category": dt.clip(categories[0] if categories else None, 32),
        "criticality": dt.clip(res.get("criticality"), 32),
        "reaction": dt.clip("、".join(x for x in manifestations if x) or None, 256),
        "recorded_at": _time(ctx, item, "recordedDate", "onsetDateTime"),
    }


def _stage_procedure(ctx: StagingContext, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(ctx, res, "encounter", "Encounter", item.prefix)
    item.values = {
        "code": dt.clip(dt.first_code(res.get("code")), 64),
        "text": dt.clip(dt.concept_text(res.get("code")) or "未注明操作", 256),
        "performed_at": _time(ctx, item, "performedDateTime", "performedPeriod.start"),
    }


def _document_type(res: dict[str, Any]) -> tuple[str, str]:
    """(MedBrain document type code, title) from DocumentReference.type and description."""
    concept = res.get("type")
    candidates = [dt.concept_text(concept), res.get("description")]
    candidates += [c.get("display") for c in dt.codings(concept)]
    for title in candidates:
        if isinstance(title, str) and title.strip():
            found = document_type_by_title(title)
            if found is not None:
                return found.code, str(res.get("description") or found.zh)
    types = document_types()
    for code in [c.get("code") for c in dt.codings(concept)]:
        matching = [t for t in types.values() if t.loinc == code]
        if matching:
            chosen = next(
                (t for t in matching if t.code == _LOINC_TIE_BREAK.get(str(code))), matching[0]
            )
            return chosen.code, str(res.get("description") or chosen.zh)
    other = types.get("other")
    title = res.get("description") or dt.concept_text(concept) or (other.zh if other else "文书")
    return (other.code if other else "other"), str(title)


def _document_text(ctx: StagingContext, item: Staged) -> str:
    res, prefix = item.resource, item.prefix
    for k, content in enumerate(res.get("content") or []):
        attachment = content.get("attachment") or {}
        data = attachment.get("data")
        if not isinstance(data, str):
            continue
        where = f"{prefix}.content[{k}].attachment.data"
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(ctx.source, where, "not valid base64") from None
        content_type = str(attachment.get("contentType") or "text/plain")
        if not content_type.startswith("text/"):
            raise InputError(
                ctx.source,
                f"{prefix}.content[{k}].attachment.contentType",
                f"only text documents can be imported, got {content_type!r}",
            )
        charset = "utf-8"
        match = re.search(r"charset=([\w\-]+)", content_type, re.IGNORECASE)
        if match:
            charset = match.group(1)
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            raise InputError(ctx.source, where, f"not {charset} text") from None
    div = (res.get("text") or {}).get("div")
    if isinstance(div, str) and div.strip():
        return html.unescape(_TAG.sub("", div)).strip()
    raise InputError(
        ctx.source,
        f"{prefix}.content",
        "no inline text: attachment.data is missing (MedBrain does not fetch attachment URLs)",
    )


def _stage_document(ctx: StagingContext, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(
        ctx, res.get("context"), "encounter", "Encounter", f"{item.prefix}.context"
    )
    doc_type, title = _document_type(res)
    authors = [a.get("display") for a in res.get("author") or [] if isinstance(a, dict)]
    item.text = _document_text(ctx, item)
    item.values = {
        "doc_type": doc_type,
        "title": dt.clip(title, 128) or "",
        "author": dt.clip(next((a for a in authors if a), None), 128),
        "authored_at": _time(ctx, item, "date"),
    }


def _dicom_uid(identifiers: Any) -> str | None:
    for ident in identifiers or []:
        value = ident.get("value")
        if ident.get("system") == "urn:dicom:uid" and isinstance(value, str):
            return value.removeprefix("urn:oid:")
    return None


def _stage_imaging_study(ctx: StagingContext, item: Staged) -> None:
    res, prefix = item.resource, item.prefix
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(ctx, res, "encounter", "Encounter", prefix)
    study_uid = _dicom_uid(res.get("identifier")) or item.fhir_id
    if len(study_uid) > 64:
        raise InputError(ctx.source, f"{prefix}.identifier", "DICOM UID longer than 64 characters")
    modalities = res.get("modality") or []
    series = []
    for k, entry in enumerate(res.get("series") or []):
        uid = entry.get("uid")
        if not isinstance(uid, str) or len(uid) > 64:
            raise InputError(ctx.source, f"{prefix}.series[{k}].uid", "missing or too long")
        series.append(
            {
                "series_uid": uid,
                "modality": dt.clip((entry.get("modality") or {}).get("code"), 16),
                "body_part": dt.clip(
                    (entry.get("bodySite") or {}).get("display")
                    or (entry.get("bodySite") or {}).get("code"),
                    64,
                ),
                "description": dt.clip(entry.get("description"), 256),
                "instance_count": int(
                    entry.get("numberOfInstances") or len(entry.get("instance") or [])
                ),
            }
        )
    modality = modalities[0].get("code") if modalities else None
    if modality is None and series:
        modality = series[0]["modality"]
    item.series = series
    item.values = {
        "study_uid": study_uid,
        "modality": dt.clip(modality, 16),
        "description": dt.clip(res.get("description"), 256),
        "started_at": _time(ctx, item, "started"),
        "status": dt.clip(str(res.get("status") or "unknown"), 32),
    }


#: Resource type → function that fills a :class:`Staged` item (or raises InputError).
STAGERS: dict[str, Callable[[StagingContext, Staged], None]] = {
    "Patient": _stage_patient,
    "Encounter": _stage_encounter,
    "Condition": _stage_condition,
    "Observation": _stage_observation,
    "MedicationRequest": _stage_medication_request,
    "MedicationAdministration": _stage_medication_administration,
    "AllergyIntolerance": _stage_allergy,
    "Procedure": _stage_procedure,
    "DocumentReference": _stage_document,
    "ImagingStudy": _stage_imaging_study,
}
