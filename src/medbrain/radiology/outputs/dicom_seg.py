"""Binary DICOM Segmentation of the reviewed nodules, one segment per kept nodule.

Masks come from :func:`~.geometry.nodule_mask` (bbox-constrained threshold inside the inscribed
ellipsoid). Frames are the source CT instances in slice order; empty frames are omitted.

References
----------
PS3.3 A.51 Segmentation IOD, C.8.20 Segmentation Image Module; highdicom ``seg`` module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.seg import Segmentation, SegmentDescription
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from medbrain import __version__
from medbrain.radiology.outputs.geometry import nodule_mask, slice_order, with_study_attributes
from medbrain.radiology.outputs.model import SignedReport

SEG_SERIES_NUMBER = 9002


class NothingToSegment(ValueError):
    """A SEG needs at least one segment: the report keeps no nodule."""


def build_seg(
    report: SignedReport,
    sources: Sequence[Dataset],
    hu: NDArray[Any],
    *,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> Segmentation:
    """The SEG of ``report``'s kept nodules on ``hu`` (``[slice, row, col]``, slice-ordered).

    Raises
    ------
    NothingToSegment
        When no nodule is kept (a SEG with zero segments is not valid).
    """
    if not report.nodules:
        raise NothingToSegment("no nodule to segment")
    ordered = slice_order(with_study_attributes(sources))
    if len(ordered) != hu.shape[0]:
        raise ValueError(f"{len(ordered)} source instances for a volume of {hu.shape[0]} slices")
    labels = np.zeros(hu.shape, dtype=np.uint8)
    descriptions = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name="MedBrain lung nodule detection",
        version=report.detector or __version__,
        family=codes.cid7162.ArtificialIntelligence,
    )
    for number, nodule in enumerate(report.nodules, start=1):
        labels[nodule_mask(hu, nodule) & (labels == 0)] = number
        descriptions.append(
            SegmentDescription(
                segment_number=number,
                segment_label=f"Nodule {nodule['key']}",
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Nodule,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
                tracking_id=f"Nodule {nodule['key']}",
                tracking_uid=hd.UID(),
            )
        )
    return Segmentation(
        source_images=list(ordered),
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid or hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=sop_uid or hd.UID(),
        instance_number=1,
        manufacturer="MedBrain",
        manufacturer_model_name="MedBrain radiology review",
        software_versions=__version__,
        device_serial_number="0",
        series_description=f"MedBrain nodule masks v{report.version}",
    )
