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

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session, selectinload

from medbrain.core.errors import InputError
from medbrain.interop.fhir.resources import (
    LITERAL_REFERENCE,
    STAGERS,
    Ref,
    Staged,
    StagingContext,
)
from medbrain.interop.fhir.validation import validate_envelope, validate_resource
from medbrain.store import models as m
from medbrain.store.med_admin_models import MedicationAdministration

#: Resource types MedBrain stores, in the order they are written (targets before sources).
SUPPORTED_TYPES: tuple[str, ...] = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationAdministration",
    "AllergyIntolerance",
    "Procedure",
    "DocumentReference",
    "ImagingStudy",
)
#: Bundle.type values accepted; responses, history and messages carry no importable state.
BUNDLE_TYPES = frozenset({"collection", "transaction", "batch", "searchset", "document"})

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
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
    #: Encounters whose documents were added or got a new version (for the QC re-check hook).
    document_encounter_ids: tuple[int, ...] = ()

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

    ctx = StagingContext(
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
        STAGERS[resource_type](ctx, item)
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
        match = LITERAL_REFERENCE.search(url.split("?", 1)[0])
        if match and match.group(1) == resource_type:
            candidates.append((f"{prefix}.request.url", match.group(2)))
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str):
        if full_url.startswith("urn:uuid:"):
            candidates.append((f"{prefix}.fullUrl", full_url[9:]))
        else:
            match = LITERAL_REFERENCE.search(full_url)
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


_MODELS: dict[str, type[Any]] = {
    "Patient": m.Patient,
    "Encounter": m.Encounter,
    "Condition": m.Condition,
    "Observation": m.Observation,
    "MedicationRequest": m.MedicationRequest,
    "MedicationAdministration": MedicationAdministration,
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
            "MedicationAdministration",
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
        document_encounters = _write_documents(
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
        document_encounter_ids=document_encounters,
    )


def _row_id(target: Target | None, bundle_rows: dict[str, int]) -> int | None:
    if target is None:
        return None
    kind, value = target
    return bundle_rows[str(value)] if kind == "bundle" else int(value)


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new rows in one executemany (ORM bulk INSERT); returns fhir_id → row id.

    New rows never go through the unit of work: it costs more than the database round trips,
    and nothing later in the import needs them as objects.
    """
    if not rows:
        return {}
    result = session.execute(insert(model).returning(model.fhir_id, model.id), rows)
    return {str(fhir_id): int(row_id) for fhir_id, row_id in result}


def _write_patients(
    session: Session,
    prepared: PreparedBundle,
    plan: _Plan,
    imported: Counter[str],
    updated: Counter[str],
    unchanged: Counter[str],
) -> dict[str, int]:
    ids: dict[str, int] = {}
    new_rows: list[dict[str, Any]] = []
    existing = plan.existing["Patient"]
    for item in prepared.staged["Patient"]:
        row = existing.get(item.fhir_id)
        if row is None:
            new_rows.append({"fhir_id": item.fhir_id, "resource": item.resource, **item.values})
            imported["Patient"] += 1
            continue
        if row.resource == item.resource:
            unchanged["Patient"] += 1
        else:
            for key, value in item.values.items():
                setattr(row, key, value)
            row.resource = item.resource
            updated["Patient"] += 1
        ids[item.fhir_id] = row.id
    session.flush()
    ids.update(_insert(session, m.Patient, new_rows))
    return ids


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
    ids: dict[str, int] = {}
    new_rows: list[dict[str, Any]] = []
    for item in prepared.staged[resource_type]:
        values = dict(item.values)
        values["patient_id"] = _row_id(plan.patient_of[id(item)], patient_rows)
        if has_encounter:
            values["encounter_id"] = _row_id(plan.encounter_of.get(id(item)), encounter_rows)
        row = existing.get(item.fhir_id)
        if row is None:
            new_rows.append({"fhir_id": item.fhir_id, "resource": item.resource, **values})
            imported[resource_type] += 1
            continue
        if row.resource == item.resource and row.patient_id == values["patient_id"]:
            unchanged[resource_type] += 1
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.resource = item.resource
            updated[resource_type] += 1
        ids[item.fhir_id] = row.id
    session.flush()
    ids.update(_insert(session, model, new_rows))
    return ids


def _write_documents(
    session: Session,
    prepared: PreparedBundle,
    plan: _Plan,
    patient_rows: dict[str, int],
    encounter_rows: dict[str, int],
    imported: Counter[str],
    updated: Counter[str],
    unchanged: Counter[str],
) -> tuple[int, ...]:
    """A DocumentReference is a Document; each distinct content is a new version.

    Returns the encounters whose documents changed (new document or new version)."""
    existing = plan.existing["DocumentReference"]
    touched: set[int] = set()
    new_docs: list[dict[str, Any]] = []
    new_versions: list[tuple[str, dict[str, Any]]] = []
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
            if doc_values["encounter_id"] is not None:
                touched.add(doc_values["encounter_id"])
            new_docs.append({"fhir_id": item.fhir_id, **doc_values})
            new_versions.append((item.fhir_id, {"version": 1, **version_values}))
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
        if doc_values["encounter_id"] is not None:
            touched.add(doc_values["encounter_id"])
    session.flush()
    doc_ids = _insert(session, m.Document, new_docs)
    if new_versions:
        session.execute(
            insert(m.DocumentVersion),
            [{"document_id": doc_ids[fhir_id], **values} for fhir_id, values in new_versions],
        )
    return tuple(sorted(touched))


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
    new_studies: list[dict[str, Any]] = []
    new_series: list[tuple[str, dict[str, Any]]] = []
    for item in prepared.staged["ImagingStudy"]:
        values = dict(item.values)
        values["patient_id"] = _row_id(plan.patient_of[id(item)], patient_rows)
        values["encounter_id"] = _row_id(plan.encounter_of.get(id(item)), encounter_rows)
        study = existing.get(item.fhir_id)
        if study is None:
            new_studies.append({"fhir_id": item.fhir_id, "resource": item.resource, **values})
            new_series += [(item.fhir_id, s) for s in item.series]
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
    session.flush()
    study_ids = _insert(session, m.ImagingStudy, new_studies)
    if new_series:
        session.execute(
            insert(m.ImagingSeries),
            [{"study_id": study_ids[fhir_id], **values} for fhir_id, values in new_series],
        )
