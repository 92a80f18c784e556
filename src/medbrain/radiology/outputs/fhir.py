"""FHIR R4 resources of a reviewed CT report for the EMR: DiagnosticReport, ImagingStudy and
one Observation per kept nodule, in a ``collection`` Bundle, each validated with the
``fhir.resources`` R4B models (wire-compatible with R4 for these resources).

References inside the Bundle are ``urn:uuid:`` full URLs derived from the study UID and the
report version, so building twice gives the same ids.

References
----------
HL7 FHIR R4 DiagnosticReport, ImagingStudy, Observation; DICOM PS3.18 F (``urn:oid:`` UIDs);
LOINC 24627-2 "Chest CT"; SNOMED CT 27925004 Nodule, 103339001 Long axis, 103340004 Short axis,
81827009 Diameter, 118565006 Volume, 3341006 Right lung, 44029006 Left lung.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from medbrain.radiology.outputs.model import SignedReport, StudyInfo

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LUNG_RADS_SYSTEM = "urn:medbrain:lung-rads"


def _urn(study_uid: str, what: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, f'{study_uid}/{what}')}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _qty(value: Any, unit: str) -> dict[str, Any]:
    return {"value": round(float(value), 1), "unit": unit, "system": UCUM, "code": unit}


def _component(code: str, display: str, value: Any, unit: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "valueQuantity": _qty(value, unit),
    }


def _observation(
    n: dict[str, Any],
    report: SignedReport,
    study: StudyInfo,
    subject: dict[str, Any],
    imaging_ref: str,
) -> dict[str, Any]:
    right = n.get("side") == "right"
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final" if report.is_signed else "preliminary",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "imaging"}]}],
        "code": {
            "coding": [{"system": SNOMED, "code": "27925004", "display": "Nodule"}],
            "text": f"Lung nodule {n['key']}",
        },
        "subject": subject,
        "bodySite": {
            "coding": [
                {
                    "system": SNOMED,
                    "code": "3341006" if right else "44029006",
                    "display": "Right lung" if right else "Left lung",
                }
            ]
        },
        "derivedFrom": [{"reference": imaging_ref}],
        "component": [
            _component("103339001", "Long axis", n["long_axis_mm"], "mm"),
            _component("103340004", "Short axis", n["short_axis_mm"], "mm"),
            _component("81827009", "Diameter", n["mean_diameter_mm"], "mm"),
            _component("118565006", "Volume", n["volume_mm3"], "mm3"),
            {
                "code": {"text": "nodule type"},
                "valueString": str(n["type"]),
            },
        ],
        "note": [
            {"text": f"source: {n.get('source', 'engine')}; slice {int(n['center_voxel'][2]) + 1}"}
        ],
    }
    if report.signed_at is not None:
        obs["issued"] = _iso(report.signed_at)
    if study.study_date is not None:
        obs["effectiveDateTime"] = _iso(study.study_date)
    return obs


def build_fhir_bundle(
    report: SignedReport,
    study: StudyInfo,
    *,
    extra_series: list[dict[str, Any]] | None = None,
    pdf: bytes | None = None,
) -> dict[str, Any]:
    """A validated ``collection`` Bundle: DiagnosticReport, ImagingStudy, Observations.

    ``extra_series``: derived series to list in the ImagingStudy (``{"uid", "modality",
    "number", "instances": [{"uid", "sop_class"}]}``, e.g. the SR and SEG); ``pdf``: the
    report PDF, attached as ``presentedForm``.

    Raises
    ------
    ValueError
        When a built resource does not validate (a bug, not bad input).
    """
    subject: dict[str, Any] = (
        {"reference": study.patient_ref}
        if study.patient_ref
        else {
            "identifier": {"value": study.patient_id},
            "display": study.patient_name,
        }
    )
    imaging_url = _urn(study.study_uid, "ImagingStudy")
    report_url = _urn(study.study_uid, f"DiagnosticReport/v{report.version}")
    series: list[dict[str, Any]] = [
        {
            "uid": study.series_uid,
            "modality": {"system": DICOM_DCM, "code": "CT"},
            "numberOfInstances": study.slices,
            "description": study.description or "CT",
        }
    ]
    for extra in extra_series or []:
        series.append(
            {
                "uid": extra["uid"],
                "number": extra.get("number"),
                "modality": {"system": DICOM_DCM, "code": extra["modality"]},
                "numberOfInstances": len(extra.get("instances", [])),
                "instance": [
                    {
                        "uid": i["uid"],
                        "sopClass": {
                            "system": "urn:ietf:rfc:3986",
                            "code": f"urn:oid:{i['sop_class']}",
                        },
                    }
                    for i in extra.get("instances", [])
                ],
            }
        )
    imaging: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study.study_uid}"}],
        "status": "available",
        "modality": [{"system": DICOM_DCM, "code": "CT"}],
        "subject": subject,
        "numberOfSeries": len(series),
        "numberOfInstances": sum(s["numberOfInstances"] for s in series),
        "series": series,
    }
    if study.study_date is not None:
        imaging["started"] = _iso(study.study_date)
    if study.description:
        imaging["description"] = study.description
    if study.accession:
        imaging["identifier"].append({"type": {"text": "accession"}, "value": study.accession})
    observations = [
        (
            _urn(study.study_uid, f"Observation/v{report.version}/{n['key']}"),
            _observation(n, report, study, subject, imaging_url),
        )
        for n in report.nodules
    ]
    diagnostic: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "final" if report.is_signed else "preliminary",
        "category": [{"coding": [{"system": V2_0074, "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "24627-2", "display": "Chest CT"}]},
        "subject": subject,
        "imagingStudy": [{"reference": imaging_url}],
        "result": [{"reference": url} for url, _ in observations],
        "conclusion": report.impression,
        "conclusionCode": [
            {
                "coding": [
                    {
                        "system": LUNG_RADS_SYSTEM,
                        "code": str(report.lung_rads.get("category", "")),
                        "display": f"Lung-RADS {report.lung_rads.get('category', '')}",
                    }
                ]
            }
        ],
    }
    if report.signed_at is not None:
        diagnostic["issued"] = _iso(report.signed_at)
    if report.signed_by:
        diagnostic["resultsInterpreter"] = [{"display": report.signed_by}]
    if study.study_date is not None:
        diagnostic["effectiveDateTime"] = _iso(study.study_date)
    if pdf is not None:
        diagnostic["presentedForm"] = [
            {
                "contentType": "application/pdf",
                "language": "en" if report.language == "en" else "zh-CN",
                "data": base64.b64encode(pdf).decode("ascii"),
                "title": f"report v{report.version}",
            }
        ]
    entries = [(report_url, diagnostic), (imaging_url, imaging), *observations]
    for _, resource in entries:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
    get_fhir_model_class("Bundle").model_validate(bundle)
    return bundle
