"""DICOM Comprehensive 3D SR with a TID 1500 Measurement Report of the reviewed nodules.

One TID 1410 Planar ROI Measurements group per kept nodule: the region is the nodule's
bounding box drawn as a closed polyline on the source instance through its centre (SCOORD,
PIXEL coordinates, column then row), with long axis, short axis, mean diameter and volume
(UCUM ``mm`` / ``mm3``), the finding site (right or left lung) and the nodule type as a
qualitative evaluation. Nodule types have no code in DICOM CID 6335 that matches the
Lung-RADS wording exactly, so they use the local coding scheme :data:`LOCAL_SCHEME` (PS3.16
§8.1: private coding schemes start with ``99``).

References
----------
PS3.16 TID 1500 Measurement Report, TID 1410 Planar ROI Measurements and Qualitative
Evaluations; PS3.3 A.35.13 Comprehensive 3D SR IOD; highdicom ``sr`` module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.sr import (
    CodedConcept,
    Comprehensive3DSR,
    FindingSite,
    ImageRegion,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    SourceImageForRegion,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from medbrain.radiology.outputs.geometry import key_slice, slice_order, with_study_attributes
from medbrain.radiology.outputs.model import SignedReport

LOCAL_SCHEME = "99MEDBRAIN"
CHEST_CT = CodedConcept("24627-2", "LN", "Chest CT")
RIGHT_LUNG = CodedConcept("3341006", "SCT", "Right lung")
LEFT_LUNG = CodedConcept("44029006", "SCT", "Left lung")
NODULE_TYPE = CodedConcept("nodule-type", LOCAL_SCHEME, "Nodule type")
NODULE_PRESENT = CodedConcept("nodule-present", LOCAL_SCHEME, "Reportable lung nodule")
MEAN_DIAMETER = CodedConcept("mean-diameter", LOCAL_SCHEME, "Mean diameter (Lung-RADS)")
SR_SERIES_NUMBER = 9001
MANUFACTURER = "MedBrain"


def _person(name: str | None) -> str:
    """A DICOM PN from a user name (``^`` separates family and given names)."""
    cleaned = "".join(ch for ch in (name or "radiologist") if ch.isalnum() or ch in "_-.")
    return (cleaned[:60] or "radiologist") + "^"


def _region(nodule: dict[str, Any], source: Dataset) -> ImageRegion:
    (i0, j0, _), (i1, j1, _) = nodule["bbox_voxel"]
    # SCOORD PIXEL points are (column, row) of the pixel's top-left corner system (PS3.3 C.18.6)
    x0, y0, x1, y1 = float(i0), float(j0), float(i1) + 1.0, float(j1) + 1.0
    data = np.asarray([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float32)
    return ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=data,
        source_image=SourceImageForRegion.from_source_image(source),
    )


def _group(
    nodule: dict[str, Any], source: Dataset, series_uid: str
) -> PlanarROIMeasurementsAndQualitativeEvaluations:
    mm = codes.UCUM.Millimeter
    measurements = [
        Measurement(name=codes.SCT.LongAxis, value=float(nodule["long_axis_mm"]), unit=mm),
        Measurement(name=codes.SCT.ShortAxis, value=float(nodule["short_axis_mm"]), unit=mm),
        Measurement(name=MEAN_DIAMETER, value=float(nodule["mean_diameter_mm"]), unit=mm),
        Measurement(
            name=codes.SCT.Volume,
            value=float(nodule["volume_mm3"]),
            unit=codes.UCUM.CubicMillimeter,
        ),
    ]
    site = RIGHT_LUNG if nodule.get("side") == "right" else LEFT_LUNG
    kind = str(nodule["type"])
    return PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(
            uid=hd.UID.from_uuid(_uuid_for(series_uid, str(nodule["key"]))),
            identifier=f"Nodule {nodule['key']}",
        ),
        referenced_region=_region(nodule, source),
        finding_type=codes.SCT.Nodule,
        finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        finding_sites=[FindingSite(anatomic_location=site)],
        measurements=measurements,
        qualitative_evaluations=[
            QualitativeEvaluation(NODULE_TYPE, CodedConcept(kind, LOCAL_SCHEME, kind))
        ],
    )


def _uuid_for(series_uid: str, key: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{series_uid}/{key}"))


def build_sr(
    report: SignedReport,
    sources: Sequence[Dataset],
    *,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> Comprehensive3DSR:
    """The TID 1500 SR of ``report``'s kept nodules, referencing ``sources`` (the CT series).

    ``sources`` may be read without pixel data; each nodule's region references the instance
    on its centre slice (slices ordered as :func:`~.geometry.slice_order`).
    """
    ordered = slice_order(with_study_attributes(sources))
    ct_series = str(ordered[0].SeriesInstanceUID)
    groups = [_group(n, ordered[key_slice(n, len(ordered))], ct_series) for n in report.nodules]
    measurements: list[Any] = list(groups)
    if not measurements:  # TID 1500 needs one group: a TID 1501 group saying "none"
        measurements.append(
            MeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(
                    uid=hd.UID.from_uuid(_uuid_for(ct_series, "none")),
                    identifier="No reportable nodule",
                ),
                finding_type=codes.SCT.Nodule,
                qualitative_evaluations=[QualitativeEvaluation(NODULE_PRESENT, codes.SCT.Absent)],
            )
        )
    context = ObservationContext(
        observer_person_context=ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=PersonObserverIdentifyingAttributes(
                name=_person(report.signed_by)
            ),
        )
    )
    content = MeasurementReport(
        observation_context=context,
        procedure_reported=CHEST_CT,
        imaging_measurements=measurements,
    )
    return Comprehensive3DSR(
        evidence=list(ordered),
        content=content[0],
        series_instance_uid=series_uid or hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=sop_uid or hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=report.is_signed,
        is_verified=report.is_signed,
        verifying_observer_name=_person(report.signed_by) if report.is_signed else None,
        verifying_organization="MedBrain" if report.is_signed else None,
        series_description=f"MedBrain nodule measurements v{report.version}",
    )
