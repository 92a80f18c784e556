"""Export a patient's record as a FHIR R4 ``searchset`` Bundle (``Patient/$everything``).

A row imported from FHIR is exported as the resource it came from (references already
rewritten to ``Type/id`` by the importer), so import → export → import is a no-op. A row
MedBrain created itself (no stored resource) is written out from its columns. A document is
exported as its latest version; earlier versions stay in the store.

The logical id of a row is its ``fhir_id``, or its store id when it has none.

References
----------
HL7 FHIR R4 (4.0.1): §2.36 Bundle (type ``searchset``, ``total``, ``entry.search.mode``),
Patient ``$everything`` operation (OperationDefinition Patient-everything, §8.1.23),
§2.24.0 Data Types.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from medbrain.core.errors import NotFoundError
from medbrain.interop.fhir.datatypes import LOINC_SYSTEM, UCUM_SYSTEM, V2_0203_SYSTEM
from medbrain.knowledge.loaders import document_types
from medbrain.store import models as m
from medbrain.store.med_admin_models import MedicationAdministration

_KIND_CLASS = {
    "outpatient": ("AMB", "ambulatory"),
    "inpatient": ("IMP", "inpatient encounter"),
    "emergency": ("EMER", "emergency"),
}
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ICD10 = "http://hl7.org/fhir/sid/icd-10"


def logical_id(row: Any) -> str:
    """The FHIR id MedBrain uses for ``row``: its ``fhir_id``, else its store id."""
    fhir_id = getattr(row, "fhir_id", None)
    return str(fhir_id) if fhir_id else str(row.id)


def find_patient(session: Session, logical: str) -> m.Patient | None:
    """A patient by FHIR logical id, else (for digits) by store id when it has no fhir_id."""
    row = session.scalar(select(m.Patient).where(m.Patient.fhir_id == logical))
    if row is None and logical.isdigit():
        row = session.get(m.Patient, int(logical))
        if row is not None and row.fhir_id and row.fhir_id != logical:
            return None
    return row


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ref(resource_type: str, row: Any) -> dict[str, str]:
    return {"reference": f"{resource_type}/{logical_id(row)}"}


def _with_id(resource: dict[str, Any], row: Any) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    out["id"] = logical_id(row)
    return out


def _prune(node: Any) -> Any:
    if isinstance(node, dict):
        pruned = {k: _prune(v) for k, v in node.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {}, "")}
    if isinstance(node, list):
        return [_prune(v) for v in node]
    return node


def _drop_none(resource: dict[str, Any]) -> dict[str, Any]:
    """Remove empty elements: FHIR forbids ``null``, empty strings, arrays and objects."""
    pruned: dict[str, Any] = _prune(resource)
    return pruned


def patient_resource(row: m.Patient) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    identifiers = [
        {"type": {"coding": [{"system": V2_0203_SYSTEM, "code": "MR"}]}, "value": row.mrn}
    ]
    if row.resident_id:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203_SYSTEM, "code": "NNCHN"}]},
                "value": row.resident_id,
            }
        )
    return _drop_none(
        {
            "resourceType": "Patient",
            "id": logical_id(row),
            "identifier": identifiers,
            "name": [{"use": "official", "text": row.name}] if row.name else None,
            "gender": row.sex if row.sex in ("male", "female", "other", "unknown") else "unknown",
            "birthDate": row.birth_date.isoformat() if row.birth_date else None,
            "telecom": [{"system": "phone", "value": row.phone}] if row.phone else None,
            "address": [{"text": row.address}] if row.address else None,
        }
    )


def _encounter(row: m.Encounter, patient: m.Patient) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    code, display = _KIND_CLASS.get(row.kind, ("AMB", "ambulatory"))
    return _drop_none(
        {
            "resourceType": "Encounter",
            "id": logical_id(row),
            "status": row.status
            if row.status
            in ("planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled")
            else "unknown",
            "class": {"system": _ACT_CODE, "code": code, "display": display},
            "serviceType": {"text": row.department} if row.department else None,
            "subject": _ref("Patient", patient),
            "period": {"start": _iso(row.admit_time), "end": _iso(row.discharge_time)},
            "reasonCode": [{"text": row.reason}] if row.reason else None,
        }
    )


def _condition(
    row: m.Condition, patient: m.Patient, encounters: dict[int, m.Encounter]
) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    coding = [{"system": _ICD10, "code": row.icd10_code}] if row.icd10_code else None
    return _drop_none(
        {
            "resourceType": "Condition",
            "id": logical_id(row),
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": row.clinical_status,
                    }
                ]
            }
            if row.clinical_status
            else None,
            "code": {"coding": coding, "text": row.text},
            "subject": _ref("Patient", patient),
            "encounter": _encounter_ref(row.encounter_id, encounters),
            "onsetDateTime": _iso(row.onset_at),
            "recordedDate": _iso(row.recorded_at),
        }
    )


def _encounter_ref(
    encounter_id: int | None, encounters: dict[int, m.Encounter]
) -> dict[str, str] | None:
    if encounter_id is None or encounter_id not in encounters:
        return None
    return _ref("Encounter", encounters[encounter_id])


def _quantity(value: float | None, unit: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {"value": value}
    if unit:
        out.update({"unit": unit, "system": UCUM_SYSTEM, "code": unit})
    return out


def _observation(
    row: m.Observation, patient: m.Patient, encounters: dict[int, m.Encounter]
) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    code_coding = [{"system": LOINC_SYSTEM, "code": row.code}] if row.code else None
    ref_range = None
    if row.ref_low is not None or row.ref_high is not None or row.ref_text:
        ref_range = [
            {
                "low": _quantity(row.ref_low, row.unit),
                "high": _quantity(row.ref_high, row.unit),
                "text": row.ref_text,
            }
        ]
    flag = (
        [{"coding": [{"system": _INTERPRETATION, "code": row.abnormal_flag}]}]
        if row.abnormal_flag
        else None
    )
    return _drop_none(
        {
            "resourceType": "Observation",
            "id": logical_id(row),
            "status": row.status or "final",
            "category": [{"coding": [{"system": _OBS_CATEGORY, "code": row.category}]}],
            "code": {"coding": code_coding, "text": row.display},
            "subject": _ref("Patient", patient),
            "encounter": _encounter_ref(row.encounter_id, encounters),
            "effectiveDateTime": _iso(row.effective_at),
            "valueQuantity": _quantity(row.value_num, row.unit),
            "valueString": row.value_text if row.value_num is None else None,
            "interpretation": flag,
            "referenceRange": ref_range,
        }
    )


def _medication_request(
    row: m.MedicationRequest, patient: m.Patient, encounters: dict[int, m.Encounter]
) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    dose = (
        [{"doseQuantity": {"value": row.dose_value, "unit": row.dose_unit}}]
        if row.dose_value is not None
        else None
    )
    return _drop_none(
        {
            "resourceType": "MedicationRequest",
            "id": logical_id(row),
            "status": row.status or "unknown",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"code": row.drug_code}] if row.drug_code else None,
                "text": row.drug,
            },
            "subject": _ref("Patient", patient),
            "encounter": _encounter_ref(row.encounter_id, encounters),
            "authoredOn": _iso(row.authored_at),
            "requester": {"display": row.prescriber} if row.prescriber else None,
            "dosageInstruction": [
                {
                    "route": {"text": row.route} if row.route else None,
                    "timing": {"code": {"text": row.frequency}} if row.frequency else None,
                    "doseAndRate": dose,
                }
            ],
            "dispenseRequest": {
                "quantity": {"value": row.quantity} if row.quantity is not None else None,
                "expectedSupplyDuration": {
                    "value": row.days,
                    "unit": "d",
                    "system": UCUM_SYSTEM,
                    "code": "d",
                }
                if row.days is not None
                else None,
            },
        }
    )


def _allergy(row: m.AllergyIntolerance, patient: m.Patient) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    return _drop_none(
        {
            "resourceType": "AllergyIntolerance",
            "id": logical_id(row),
            "category": [row.category]
            if row.category in ("food", "medication", "environment", "biologic")
            else None,
            "criticality": row.criticality
            if row.criticality in ("low", "high", "unable-to-assess")
            else None,
            "code": {"coding": [{"code": row.code}] if row.code else None, "text": row.substance},
            "patient": _ref("Patient", patient),
            "recordedDate": _iso(row.recorded_at),
            "reaction": [{"manifestation": [{"text": row.reaction}]}] if row.reaction else None,
        }
    )


def _procedure(
    row: m.Procedure, patient: m.Patient, encounters: dict[int, m.Encounter]
) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    return _drop_none(
        {
            "resourceType": "Procedure",
            "id": logical_id(row),
            "status": "completed",
            "code": {"coding": [{"code": row.code}] if row.code else None, "text": row.text},
            "subject": _ref("Patient", patient),
            "encounter": _encounter_ref(row.encounter_id, encounters),
            "performedDateTime": _iso(row.performed_at),
        }
    )


def _document(
    row: m.Document, patient: m.Patient, encounters: dict[int, m.Encounter]
) -> dict[str, Any] | None:
    if not row.versions:
        return None
    latest = row.versions[-1]
    if latest.resource:
        return _with_id(latest.resource, row)
    doc_type = document_types().get(row.doc_type)
    type_concept: dict[str, Any] = {"text": doc_type.zh if doc_type else row.title}
    if doc_type is not None:
        type_concept["coding"] = [
            {"system": LOINC_SYSTEM, "code": doc_type.loinc, "display": doc_type.en}
        ]
    encounter = _encounter_ref(row.encounter_id, encounters)
    return _drop_none(
        {
            "resourceType": "DocumentReference",
            "id": logical_id(row),
            "meta": {"versionId": str(latest.version)},
            "status": "current",
            "type": type_concept,
            "subject": _ref("Patient", patient),
            "date": _iso(latest.authored_at or latest.created_at),
            "author": [{"display": latest.author}] if latest.author else None,
            "description": row.title,
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(latest.text.encode()).decode(),
                        "title": row.title,
                    }
                }
            ],
            "context": {"encounter": [encounter]} if encounter else None,
        }
    )


def _imaging_study(
    row: m.ImagingStudy, patient: m.Patient, encounters: dict[int, m.Encounter]
) -> dict[str, Any]:
    if row.resource:
        return _with_id(row.resource, row)
    dicom = "http://dicom.nema.org/resources/ontology/DCM"
    return _drop_none(
        {
            "resourceType": "ImagingStudy",
            "id": logical_id(row),
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{row.study_uid}"}],
            "status": row.status
            if row.status in ("registered", "available", "cancelled", "entered-in-error", "unknown")
            else "unknown",
            "modality": [{"system": dicom, "code": row.modality}] if row.modality else None,
            "subject": _ref("Patient", patient),
            "encounter": _encounter_ref(row.encounter_id, encounters),
            "started": _iso(row.started_at),
            "description": row.description,
            "numberOfSeries": len(row.series),
            "series": [
                {
                    "uid": s.series_uid,
                    "modality": {"system": dicom, "code": s.modality or "OT"},
                    "description": s.description,
                    "numberOfInstances": s.instance_count,
                    "bodySite": {"display": s.body_part} if s.body_part else None,
                }
                for s in row.series
            ],
        }
    )


def _ordered(rows: Sequence[Any], *time_attrs: str) -> list[Any]:
    def key(row: Any) -> tuple[str, int]:
        for attr in time_attrs:
            value = getattr(row, attr, None)
            if value is not None:
                return (value.isoformat(), row.id)
        return ("", row.id)

    return sorted(rows, key=key)


def patient_everything(
    session: Session, patient_id: int, *, base_url: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """All of one patient's resources as an R4 ``searchset`` Bundle.

    Parameters
    ----------
    patient_id
        The store id of the patient (callers resolve FHIR ids with :func:`find_patient`).
    base_url
        The FHIR base (``https://host/fhir``); when given, entries get absolute
        ``fullUrl``s and the bundle a ``self`` link.
    now
        Sets ``Bundle.timestamp`` when given.

    Raises
    ------
    NotFoundError
        When no patient has this id.
    """
    patient = session.get(m.Patient, patient_id)
    if patient is None:
        raise NotFoundError(f"Patient/{patient_id}")

    def rows(model: Any, *options: Any) -> list[Any]:
        query = select(model).where(model.patient_id == patient_id).options(*options)
        return list(session.scalars(query))

    encounter_rows = _ordered(rows(m.Encounter), "admit_time")
    encounters = {e.id: e for e in encounter_rows}
    resources: list[dict[str, Any]] = [patient_resource(patient)]
    resources += [_encounter(e, patient) for e in encounter_rows]
    resources += [
        _condition(c, patient, encounters)
        for c in _ordered(rows(m.Condition), "recorded_at", "onset_at")
    ]
    resources += [
        _observation(o, patient, encounters) for o in _ordered(rows(m.Observation), "effective_at")
    ]
    resources += [
        _medication_request(r, patient, encounters)
        for r in _ordered(rows(m.MedicationRequest), "authored_at")
    ]
    resources += [  # imported only, so the stored resource is always there
        _with_id(a.resource, a)
        for a in _ordered(rows(MedicationAdministration), "given_at")
        if a.resource
    ]
    resources += [_allergy(a, patient) for a in _ordered(rows(m.AllergyIntolerance), "recorded_at")]
    resources += [
        _procedure(p, patient, encounters) for p in _ordered(rows(m.Procedure), "performed_at")
    ]
    for doc in _ordered(rows(m.Document, selectinload(m.Document.versions)), "created_at"):
        built = _document(doc, patient, encounters)
        if built is not None:
            resources.append(built)
    resources += [
        _imaging_study(s, patient, encounters)
        for s in _ordered(rows(m.ImagingStudy, selectinload(m.ImagingStudy.series)), "started_at")
    ]

    entries = []
    for resource in resources:
        entry: dict[str, Any] = {"resource": resource, "search": {"mode": "match"}}
        if base_url:
            entry["fullUrl"] = f"{base_url.rstrip('/')}/{resource['resourceType']}/{resource['id']}"
        entries.append(entry)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": f"everything-{logical_id(patient)}",
        "type": "searchset",
        "total": len(entries),
    }
    if now is not None:
        bundle["timestamp"] = _iso(now)
    if base_url:
        bundle["link"] = [
            {
                "relation": "self",
                "url": f"{base_url.rstrip('/')}/Patient/{logical_id(patient)}/$everything",
            }
        ]
    bundle["entry"] = entries
    return bundle
