"""Import FHIR R4 Bundles into the store: validated, all-or-nothing, idempotent.

The import runs in three steps so that nothing is written unless everything is right:

1. :func:`prepare_bundle` (pure, no database): validates the Bundle and every entry with the
   ``fhir.resources`` R4B models, applies MedBrain's own checks (身份证 checksum, dates,
   required patient references) and turns each supported resource into column values.
   References given as ``urn:uuid:`` fullUrls or ``Type/id`` are rewritten to ``Type/id``
   so the stored resources can be exported as they are.
2. resolution (reads only): references to patients and encounters that are not in the
   Bundle are looked up in the store; an unknown one is an error naming the entry.
3. writing, inside a SAVEPOINT of the caller's transaction: rows are inserted, updated when
   the resource changed, or left alone when it is identical (counted ``unchanged``). A
   changed DocumentReference adds a :class:`~medbrain.store.models.DocumentVersion`; the
   earlier text is never overwritten.

Identity is the resource's logical id: ``resource.id``, else the id in a transaction
entry's ``request.url``, else the UUID of a ``urn:uuid:`` fullUrl, else a SHA-256 of the
resource's canonical JSON (such resources cannot be updated, only re-imported unchanged).

Resource types that are valid FHIR R4 but not stored by MedBrain (Claim, Organization, ...)
are validated, then skipped and counted under ``skipped``. A ``resourceType`` that is not a
FHIR R4 resource type at all is an error naming its entry: it is malformed input, not an
unsupported feature.

References
----------
HL7 FHIR R4 (4.0.1): §2.36 Bundle (bdl-* invariants, fullUrl resolution §2.36.4.1,
transaction processing §3.1.0.11.2), §2.3.0 Resource references (relative, absolute,
conditional ``Type?identifier=system|value``); HL7 v2.9 table 0203 (identifier type codes
``MR`` medical record number, ``NNxxx`` national person identifier, ``NNCHN`` for China);
GB 11643-1999 《公民身份号码》 (ISO 7064 MOD 11-2 check character).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from medbrain.core.errors import InputError
from medbrain.core.identifiers import parse_resident_id
from medbrain.interop.fhir import datatypes as dt
from medbrain.interop.fhir.names import has_han, name_keys
from medbrain.interop.fhir.validation import validate_envelope, validate_resource
from medbrain.knowledge.loaders import document_type_by_title, document_types
from medbrain.store import models as m

#: Resource types MedBrain stores, in the order they are written (targets before sources).
SUPPORTED_TYPES: tuple[str, ...] = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "AllergyIntolerance",
    "Procedure",
    "DocumentReference",
    "ImagingStudy",
)
#: Bundle.type values accepted; responses, history and messages carry no importable state.
BUNDLE_TYPES = frozenset({"collection", "transaction", "batch", "searchset", "document"})

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_LITERAL_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
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
_CHUNK = 500


# ---------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Counts per resource type; ``patient_ids`` are the store ids of the bundle's patients."""

    bundle: str
    imported: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]
    skipped: dict[str, int]
    patient_ids: tuple[int, ...] = ()

    @property
    def stored_total(self) -> int:
        """Resources MedBrain stores from this bundle (imported + updated + unchanged)."""
        return (
            sum(self.imported.values()) + sum(self.updated.values()) + sum(self.unchanged.values())
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``medbrain import --json`` document (DESIGN.md §3), plus ``bundle``."""
        return {
            "imported": dict(self.imported),
            "updated": dict(self.updated),
            "unchanged": dict(self.unchanged),
            "skipped": dict(self.skipped),
            "bundle": self.bundle,
        }


# ---------------------------------------------------------------------------------------
# Staging (pure)


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
class PreparedBundle:
    """The outcome of :func:`prepare_bundle`: everything needed to write, nothing written."""

    source: str
    bundle_id: str
    staged: dict[str, list[Staged]]
    skipped: Counter[str]

    @property
    def resource_count(self) -> int:
        return sum(len(v) for v in self.staged.values()) + sum(self.skipped.values())


@dataclass(slots=True)
class _Context:
    source: str
    now: datetime
    keys: dict[str, tuple[str, str]]  # fullUrl or "Type/id" → (type, id)
    medications: dict[str, dict[str, Any]]
    patient_identifiers: dict[tuple[str | None, str], str]


def prepare_bundle(
    bundle: Any, *, source: str = "bundle", now: datetime | None = None
) -> PreparedBundle:
    """Validate ``bundle`` and stage its supported resources; touches no database.

    Parameters
    ----------
    bundle
        The parsed JSON of a FHIR R4 Bundle (collection, transaction, batch, searchset or
        document).
    source
        Names the input in error messages (file name, ``body``).
    now
        Reference time for plausibility checks (a birth date may not lie in the future).

    Raises
    ------
    InputError
        Naming ``entry[i].resource.<field>`` and the problem, for the first invalid entry.
    """
    now = now or datetime.now(UTC)
    if not isinstance(bundle, dict):
        raise InputError(source, "", "expected a FHIR Bundle (a JSON object)")
    if bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType")
        raise InputError(source, "resourceType", f"expected 'Bundle', got {got!r}")
    validate_envelope(source, bundle)
    if bundle.get("type") not in BUNDLE_TYPES:
        raise InputError(
            source,
            "type",
            f"Bundle.type {bundle.get('type')!r} cannot be imported; expected one of "
            + ", ".join(sorted(BUNDLE_TYPES)),
        )
    raw_entries = bundle.get("entry") or []

    # Pass 1: validate every resource, find its identity, index fullUrls.
    entries: list[tuple[int, str, str, dict[str, Any]]] = []
    keys: dict[str, tuple[str, str]] = {}
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(raw_entries):
        prefix = f"entry[{index}]"
        resource = entry.get("resource")
        request = entry.get("request") or {}
        method = request.get("method")
        if method not in (None, "POST", "PUT"):
            raise InputError(
                source,
                f"{prefix}.request.method",
                f"{method} is not supported by import (only POST and PUT create or update)",
            )
        if not isinstance(resource, dict):
            raise InputError(source, f"{prefix}.resource", "entry has no resource")
        validate_resource(source, f"{prefix}.resource", resource)
        resource_type = str(resource["resourceType"])
        fhir_id = _identity(source, prefix, entry, resource)
        key = (resource_type, fhir_id)
        if key in seen:
            raise InputError(
                source,
                f"{prefix}.resource.id",
                f"duplicate {resource_type}/{fhir_id} (also entry[{seen[key]}])",
            )
        seen[key] = index
        keys[f"{resource_type}/{fhir_id}"] = key
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url:
            keys[full_url] = key
        entries.append((index, resource_type, fhir_id, resource))

    ctx = _Context(
        source=source,
        now=now,
        keys=keys,
        medications={},
        patient_identifiers={},
    )
    for _, resource_type, fhir_id, resource in entries:
        if resource_type == "Medication":
            ctx.medications[f"Medication/{fhir_id}"] = resource
        elif resource_type == "Patient":
            for ident in resource.get("identifier") or []:
                value = ident.get("value")
                if isinstance(value, str) and value:
                    ctx.patient_identifiers[(ident.get("system"), value)] = fhir_id
                    ctx.patient_identifiers.setdefault((None, value), fhir_id)

    # Pass 2: stage supported resources.
    staged: dict[str, list[Staged]] = {t: [] for t in SUPPORTED_TYPES}
    skipped: Counter[str] = Counter()
    for index, resource_type, fhir_id, resource in entries:
        if resource_type not in staged:
            skipped[resource_type] += 1
            continue
        normalized = _rewrite_references(resource, keys)
        normalized["id"] = fhir_id
        item = Staged(
            index=index,
            resource_type=resource_type,
            fhir_id=fhir_id,
            resource=normalized,
            values={},
            prefix=f"entry[{index}].resource",
        )
        _STAGERS[resource_type](ctx, item)
        staged[resource_type].append(item)

    bundle_id = bundle.get("id")
    if not isinstance(bundle_id, str) or not bundle_id:
        canonical = json.dumps(bundle, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        bundle_id = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return PreparedBundle(source=source, bundle_id=bundle_id, staged=staged, skipped=skipped)


def _identity(source: str, prefix: str, entry: dict[str, Any], resource: dict[str, Any]) -> str:
    resource_type = resource["resourceType"]
    candidates: list[tuple[str, str]] = []
    if isinstance(resource.get("id"), str):
        candidates.append((f"{prefix}.resource.id", resource["id"]))
    request = entry.get("request") or {}
    url = request.get("url")
    if request.get("method") == "PUT" and isinstance(url, str):
        match = _LITERAL_REF.search(url.split("?", 1)[0])
        if match and match.group(1) == resource_type:
            candidates.append((f"{prefix}.request.url", match.group(2)))
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str):
        if full_url.startswith("urn:uuid:"):
            candidates.append((f"{prefix}.fullUrl", full_url[9:]))
        else:
            match = _LITERAL_REF.search(full_url)
            if match and match.group(1) == resource_type:
                candidates.append((f"{prefix}.fullUrl", match.group(2)))
    if candidates:
        where, value = candidates[0]
        if not _FHIR_ID.match(value):
            raise InputError(source, where, f"not a valid FHIR id: {value!r}")
        return value
    canonical = json.dumps(resource, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _rewrite_references(node: Any, keys: dict[str, tuple[str, str]]) -> Any:
    """Deep copy of ``node`` with references to bundle entries written as ``Type/id``."""
    if isinstance(node, dict):
        out = {k: _rewrite_references(v, keys) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in keys:
            out["reference"] = "/".join(keys[ref])
        return out
    if isinstance(node, list):
        return [_rewrite_references(v, keys) for v in node]
    return node


def _reference(
    ctx: _Context, container: Any, field_name: str, expected: str, prefix: str
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
    literal = _LITERAL_REF.search(raw)
    if literal is None:
        raise InputError(ctx.source, where, f"cannot read reference {raw!r}")
    if literal.group(1) != expected:
        raise InputError(ctx.source, where, f"must reference a {expected}, got {raw}")
    fhir_id = literal.group(2)
    in_bundle = f"{expected}/{fhir_id}" in ctx.keys
    return Ref(where, raw, expected, fhir_id=fhir_id, in_bundle=in_bundle)


def _identifier_ref(ctx: _Context, where: str, system: str | None, value: str) -> Ref:
    found = ctx.patient_identifiers.get((system, value))
    if found is not None:
        return Ref(where, value, "Patient", fhir_id=found, in_bundle=True)
    return Ref(where, value, "Patient", identifier=(system, value))


def _require_patient(ctx: _Context, item: Staged, field_name: str) -> None:
    ref = _reference(ctx, item.resource, field_name, "Patient", item.prefix)
    if ref is None:
        raise InputError(
            ctx.source,
            f"{item.prefix}.{field_name}",
            f"a {item.resource_type} must reference its Patient ({field_name})",
        )
    item.patient = ref


def _time(ctx: _Context, item: Staged, *names: str) -> datetime | None:
    """The first present dateTime among ``names`` (``effectivePeriod.start`` style paths)."""
    for name in names:
        node: Any = item.resource
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return dt.parse_datetime(node, ctx.source, f"{item.prefix}.{name}")
    return None


def _stage_patient(ctx: _Context, item: Staged) -> None:
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


def _stage_encounter(ctx: _Context, item: Staged) -> None:
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


def _stage_condition(ctx: _Context, item: Staged) -> None:
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


def _stage_observation(ctx: _Context, item: Staged) -> None:
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


def _stage_medication_request(ctx: _Context, item: Staged) -> None:
    res = item.resource
    _require_patient(ctx, item, "subject")
    item.encounter = _reference(ctx, res, "encounter", "Encounter", item.prefix)
    drug: str | None
    drug_code: str | None = None
    if "medicationCodeableConcept" in res:
        drug = dt.concept_text(res["medicationCodeableConcept"])
        drug_code = dt.first_code(res["medicationCodeableConcept"])
    else:
        reference = res.get("medicationReference") or {}
        target = ctx.medications.get(str(reference.get("reference")))
        if target is not None:
            drug = dt.concept_text(target.get("code"))
            drug_code = dt.first_code(target.get("code"))
        else:
            drug = reference.get("display") or reference.get("reference")
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


def _stage_allergy(ctx: _Context, item: Staged) -> None:
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


def _stage_procedure(ctx: _Context, item: Staged) -> None:
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


def _document_text(ctx: _Context, item: Staged) -> str:
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


def _stage_document(ctx: _Context, item: Staged) -> None:
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


def _stage_imaging_study(ctx: _Context, item: Staged) -> None:
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


_STAGERS = {
    "Patient": _stage_patient,
    "Encounter": _stage_encounter,
    "Condition": _stage_condition,
    "Observation": _stage_observation,
    "MedicationRequest": _stage_medication_request,
    "AllergyIntolerance": _stage_allergy,
    "Procedure": _stage_procedure,
    "DocumentReference": _stage_document,
    "ImagingStudy": _stage_imaging_study,
}

_MODELS: dict[str, type[Any]] = {
    "Patient": m.Patient,
    "Encounter": m.Encounter,
    "Condition": m.Condition,
    "Observation": m.Observation,
    "MedicationRequest": m.MedicationRequest,
    "AllergyIntolerance": m.AllergyIntolerance,
    "Procedure": m.Procedure,
    "DocumentReference": m.Document,
    "ImagingStudy": m.ImagingStudy,
}


# ---------------------------------------------------------------------------------------
# Resolution (reads only)

T = TypeVar("T")


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


# A resolved patient/encounter: ("bundle", fhir_id) or ("store", row id).
Target = tuple[str, str | int]


@dataclass(slots=True)
class _Plan:
    existing: dict[str, dict[str, Any]]
    patient_of: dict[int, Target]  # id(Staged) → patient
    encounter_of: dict[int, Target | None]


def _load_existing(session: Session, prepared: PreparedBundle) -> dict[str, dict[str, Any]]:
    existing: dict[str, dict[str, Any]] = {}
    for resource_type, items in prepared.staged.items():
        model = _MODELS[resource_type]
        rows: dict[str, Any] = {}
        ids = [s.fhir_id for s in items]
        for batch in _chunks(ids):
            query = select(model).where(model.fhir_id.in_(batch))
            if model is m.Document:
                query = query.options(selectinload(m.Document.versions))
            elif model is m.ImagingStudy:
                query = query.options(selectinload(m.ImagingStudy.series))
            for row in session.scalars(query):
                rows[row.fhir_id] = row
        existing[resource_type] = rows
    return existing


def _resolve(session: Session, prepared: PreparedBundle) -> _Plan:
    source = prepared.source
    existing = _load_existing(session, prepared)
    staged = prepared.staged
    all_items = [s for items in staged.values() for s in items]

    # Patients and encounters referenced but not in the bundle: look them up in the store.
    patient_ids = {
        s.patient.fhir_id
        for s in all_items
        if s.patient and s.patient.fhir_id and not s.patient.in_bundle
    }
    idents = {s.patient.identifier[1] for s in all_items if s.patient and s.patient.identifier}
    encounter_ids = {
        s.encounter.fhir_id
        for s in all_items
        if s.encounter and s.encounter.fhir_id and not s.encounter.in_bundle
    }
    store_patients: dict[str, int] = {}
    for batch in _chunks(sorted(pid for pid in patient_ids if pid)):
        for row_id, fhir_id in session.execute(
            select(m.Patient.id, m.Patient.fhir_id).where(m.Patient.fhir_id.in_(batch))
        ):
            if fhir_id:
                store_patients[fhir_id] = row_id
    by_identifier: dict[str, int] = {}
    for batch in _chunks(sorted(idents)):
        for row_id, mrn, resident in session.execute(
            select(m.Patient.id, m.Patient.mrn, m.Patient.resident_id).where(
                or_(m.Patient.mrn.in_(batch), m.Patient.resident_id.in_(batch))
            )
        ):
            by_identifier[mrn] = row_id
            if resident:
                by_identifier[resident] = row_id
    store_encounters: dict[str, tuple[int, int]] = {}
    for batch in _chunks(sorted(e for e in encounter_ids if e)):
        for row_id, fhir_id, patient_id in session.execute(
            select(m.Encounter.id, m.Encounter.fhir_id, m.Encounter.patient_id).where(
                m.Encounter.fhir_id.in_(batch)
            )
        ):
            if fhir_id:
                store_encounters[fhir_id] = (row_id, patient_id)

    def patient_target(ref: Ref) -> Target:
        if ref.in_bundle and ref.fhir_id is not None:
            return ("bundle", ref.fhir_id)
        if ref.fhir_id is not None and ref.fhir_id in store_patients:
            return ("store", store_patients[ref.fhir_id])
        if ref.identifier is not None and ref.identifier[1] in by_identifier:
            return ("store", by_identifier[ref.identifier[1]])
        shown = ref.raw if ref.identifier is None else f"identifier {ref.raw!r}"
        raise InputError(
            source, ref.field, f"Patient {shown} is neither in this bundle nor in the store"
        )

    patient_of: dict[int, Target] = {}
    for item in all_items:
        if item.patient is not None:
            patient_of[id(item)] = patient_target(item.patient)

    # The store row id of each bundle patient that already exists (re-imports).
    existing_patient_row: dict[str, int] = {
        fid: int(row.id) for fid, row in existing["Patient"].items()
    }

    def same_patient(a: Target, b: Target) -> bool:
        def row_id(t: Target) -> str | int:
            if t[0] == "bundle":
                return existing_patient_row.get(str(t[1]), f"new:{t[1]}")
            return t[1]

        return a == b or row_id(a) == row_id(b)

    bundle_encounters = {s.fhir_id: s for s in staged["Encounter"]}
    encounter_of: dict[int, Target | None] = {}
    for item in all_items:
        ref = item.encounter
        if ref is None:
            encounter_of[id(item)] = None
            continue
        if ref.in_bundle and ref.fhir_id in bundle_encounters:
            target: Target = ("bundle", str(ref.fhir_id))
            owner = patient_of[id(bundle_encounters[str(ref.fhir_id)])]
        elif ref.fhir_id in store_encounters:
            row_id, owner_row = store_encounters[str(ref.fhir_id)]
            target, owner = ("store", row_id), ("store", owner_row)
        else:
            raise InputError(
                source, ref.field, f"Encounter {ref.raw} is neither in this bundle nor in the store"
            )
        if not same_patient(owner, patient_of[id(item)]):
            raise InputError(
                source, ref.field, f"Encounter {ref.raw} belongs to a different patient"
            )
        encounter_of[id(item)] = target

    _check_patient_identifiers(session, prepared)
    _check_imaging_uids(session, prepared)
    return _Plan(existing=existing, patient_of=patient_of, encounter_of=encounter_of)


def _check_patient_identifiers(session: Session, prepared: PreparedBundle) -> None:
    """MRN and 身份证 are unique: refuse a bundle that would give one to two patients."""
    source = prepared.source
    for column, label in (("mrn", "medical record number"), ("resident_id", "resident ID")):
        owners: dict[str, Staged] = {}
        for item in prepared.staged["Patient"]:
            value = item.values.get(column)
            if not value:
                continue
            if value in owners:
                raise InputError(
                    source,
                    item.identifier_fields[column],
                    f"{label} also used by entry[{owners[value].index}]",
                )
            owners[value] = item
        attr = getattr(m.Patient, column)
        for batch in _chunks(sorted(owners)):
            for fhir_id, value in session.execute(
                select(m.Patient.fhir_id, attr).where(attr.in_(batch))
            ):
                item = owners[value]
                if fhir_id != item.fhir_id:
                    other = f"Patient/{fhir_id}" if fhir_id else "a patient registered in MedBrain"
                    raise InputError(
                        source,
                        item.identifier_fields[column],
                        f"{label} already belongs to {other}",
                    )


def _check_imaging_uids(session: Session, prepared: PreparedBundle) -> None:
    source = prepared.source
    studies = {s.values["study_uid"]: s for s in prepared.staged["ImagingStudy"]}
    series_owner: dict[str, Staged] = {}
    for item in prepared.staged["ImagingStudy"]:
        for k, series in enumerate(item.series):
            other = series_owner.get(series["series_uid"])
            if other is not None and other is not item:
                raise InputError(
                    source, f"{item.prefix}.series[{k}].uid", f"also used by entry[{other.index}]"
                )
            series_owner[series["series_uid"]] = item
    for batch in _chunks(sorted(studies)):
        for fhir_id, uid in session.execute(
            select(m.ImagingStudy.fhir_id, m.ImagingStudy.study_uid).where(
                m.ImagingStudy.study_uid.in_(batch)
            )
        ):
            if fhir_id != studies[uid].fhir_id:
                raise InputError(
                    source, f"{studies[uid].prefix}.identifier", f"study UID {uid} already stored"
                )
    for batch in _chunks(sorted(series_owner)):
        for uid, study_fhir_id in session.execute(
            select(m.ImagingSeries.series_uid, m.ImagingStudy.fhir_id)
            .join(m.ImagingStudy, m.ImagingSeries.study_id == m.ImagingStudy.id)
            .where(m.ImagingSeries.series_uid.in_(batch))
        ):
            if study_fhir_id != series_owner[uid].fhir_id:
                raise InputError(
                    source,
                    f"{series_owner[uid].prefix}.series",
                    f"series UID {uid} already belongs to another study",
                )


# ---------------------------------------------------------------------------------------
# Writing


def import_bundle(
    session: Session, bundle: Any, *, source: str = "bundle", now: datetime | None = None
) -> ImportResult:
    """Validate and import one FHIR R4 Bundle into the caller's transaction.

    Nothing is written if any entry is invalid; importing the same bundle again changes
    nothing and reports every resource as ``unchanged``. See the module docstring.
    """
    return import_prepared(session, prepare_bundle(bundle, source=source, now=now))


def import_prepared(session: Session, prepared: PreparedBundle) -> ImportResult:
    """Write a bundle already checked by :func:`prepare_bundle` (all-or-nothing)."""
    plan = _resolve(session, prepared)
    imported: Counter[str] = Counter()
    updated: Counter[str] = Counter()
    unchanged: Counter[str] = Counter()
    with session.begin_nested():
        patient_rows = _write_patients(session, prepared, plan, imported, updated, unchanged)
        encounter_rows = _write_simple(
            session, "Encounter", prepared, plan, patient_rows, {}, imported, updated, unchanged
        )
        for resource_type in (
            "Condition",
            "Observation",
            "MedicationRequest",
            "AllergyIntolerance",
            "Procedure",
        ):
            _write_simple(
                session,
                resource_type,
                prepared,
                plan,
                patient_rows,
                encounter_rows,
                imported,
                updated,
                unchanged,
            )
        _write_documents(
            session, prepared, plan, patient_rows, encounter_rows, imported, updated, unchanged
        )
        _write_imaging(
            session, prepared, plan, patient_rows, encounter_rows, imported, updated, unchanged
        )
        session.flush()
    return ImportResult(
        bundle=f"Bundle/{prepared.bundle_id}",
        imported=dict(sorted(imported.items())),
        updated=dict(sorted(updated.items())),
        unchanged=dict(sorted(unchanged.items())),
        skipped=dict(sorted(prepared.skipped.items())),
        patient_ids=tuple(patient_rows[s.fhir_id] for s in prepared.staged["Patient"]),
    )


def _row_id(target: Target | None, bundle_rows: dict[str, int]) -> int | None:
    if target is None:
        return None
    kind, value = target
    return bundle_rows[str(value)] if kind == "bundle" else int(value)


def _write_patients(
    session: Session,
    prepared: PreparedBundle,
    plan: _Plan,
    imported: Counter[str],
    updated: Counter[str],
    unchanged: Counter[str],
) -> dict[str, int]:
    rows: dict[str, m.Patient] = {}
    existing = plan.existing["Patient"]
    for item in prepared.staged["Patient"]:
        row = existing.get(item.fhir_id)
        if row is None:
            row = m.Patient(fhir_id=item.fhir_id, resource=item.resource, **item.values)
            session.add(row)
            imported["Patient"] += 1
        elif row.resource == item.resource:
            unchanged["Patient"] += 1
        else:
            for key, value in item.values.items():
                setattr(row, key, value)
            row.resource = item.resource
            updated["Patient"] += 1
        rows[item.fhir_id] = row
    session.flush()
    return {fid: row.id for fid, row in rows.items()}


def _write_simple(
    session: Session,
    resource_type: str,
    prepared: PreparedBundle,
    plan: _Plan,
    patient_rows: dict[str, int],
    encounter_rows: dict[str, int],
    imported: Counter[str],
    updated: Counter[str],
    unchanged: Counter[str],
) -> dict[str, int]:
    model = _MODELS[resource_type]
    has_encounter = hasattr(model, "encounter_id")
    existing = plan.existing[resource_type]
    rows: dict[str, Any] = {}
    for item in prepared.staged[resource_type]:
        values = dict(item.values)
        values["patient_id"] = _row_id(plan.patient_of[id(item)], patient_rows)
        if has_encounter:
            values["encounter_id"] = _row_id(plan.encounter_of.get(id(item)), encounter_rows)
        row = existing.get(item.fhir_id)
        if row is None:
            row = model(fhir_id=item.fhir_id, resource=item.resource, **values)
            session.add(row)
            imported[resource_type] += 1
        elif row.resource == item.resource and row.patient_id == values["patient_id"]:
            unchanged[resource_type] += 1
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.resource = item.resource
            updated[resource_type] += 1
        rows[item.fhir_id] = row
    session.flush()
    return {fid: row.id for fid, row in rows.items()}


def _write_documents(
    session: Session,
    prepared: PreparedBundle,
    plan: _Plan,
    patient_rows: dict[str, int],
    encounter_rows: dict[str, int],
    imported: Counter[str],
    updated: Counter[str],
    unchanged: Counter[str],
) -> None:
    """A DocumentReference is a Document; each distinct content is a new version."""
    existing = plan.existing["DocumentReference"]
    for item in prepared.staged["DocumentReference"]:
        text = item.text or ""
        version_values = {
            "text": text,
            "content_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "author": item.values["author"],
            "authored_at": item.values["authored_at"],
            "resource": item.resource,
        }
        doc_values = {
            "patient_id": _row_id(plan.patient_of[id(item)], patient_rows),
            "encounter_id": _row_id(plan.encounter_of.get(id(item)), encounter_rows),
            "doc_type": item.values["doc_type"],
            "title": item.values["title"],
        }
        doc = existing.get(item.fhir_id)
        if doc is None:
            doc = m.Document(fhir_id=item.fhir_id, **doc_values)
            doc.versions.append(m.DocumentVersion(version=1, **version_values))
            session.add(doc)
            imported["DocumentReference"] += 1
            continue
        latest = doc.versions[-1] if doc.versions else None
        if latest is not None and latest.resource == item.resource:
            unchanged["DocumentReference"] += 1
            continue
        for key, value in doc_values.items():
            setattr(doc, key, value)
        number = (latest.version if latest is not None else 0) + 1
        doc.versions.append(m.DocumentVersion(version=number, **version_values))
        updated["DocumentReference"] += 1


def _write_imaging(
    session: Session,
    prepared: PreparedBundle,
    plan: _Plan,
    patient_rows: dict[str, int],
    encounter_rows: dict[str, int],
    imported: Counter[str],
    updated: Counter[str],
    unchanged: Counter[str],
) -> None:
    """Series are upserted by UID and never deleted: their files may already be stored."""
    existing = plan.existing["ImagingStudy"]
    for item in prepared.staged["ImagingStudy"]:
        values = dict(item.values)
        values["patient_id"] = _row_id(plan.patient_of[id(item)], patient_rows)
        values["encounter_id"] = _row_id(plan.encounter_of.get(id(item)), encounter_rows)
        study = existing.get(item.fhir_id)
        if study is None:
            study = m.ImagingStudy(fhir_id=item.fhir_id, resource=item.resource, **values)
            study.series = [m.ImagingSeries(**s) for s in item.series]
            session.add(study)
            imported["ImagingStudy"] += 1
            continue
        if study.resource == item.resource:
            unchanged["ImagingStudy"] += 1
            continue
        for key, value in values.items():
            setattr(study, key, value)
        study.resource = item.resource
        by_uid = {s.series_uid: s for s in study.series}
        for series in item.series:
            row = by_uid.get(series["series_uid"])
            if row is None:
                study.series.append(m.ImagingSeries(**series))
            else:
                for key, value in series.items():
                    setattr(row, key, value)
        updated["ImagingStudy"] += 1
