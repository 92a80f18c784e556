"""What MedBrain accepts and processes among incoming DICOM instances.

References
----------
DICOM PS3.5 §9.1 (UID encoding: digits and dots, at most 64 characters, no leading zero in a
component); PS3.4 Annex B.2.3 (C-STORE status: 0xA700 out of resources, 0xA900 data set does
not match SOP class, 0xC000 cannot understand); PS3.18 §10.5 (STOW-RS failure reasons, the same
codes); PS3.4 B.5 (storage SOP classes); PS3.16 CID 4031 (body part examined, "CHEST").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_SOP_CLASS_MISMATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"

# Storage SOP classes MedBrain stores (PS3.4 B.5); only CT Image Storage is processed.
STORAGE_SOP_CLASSES: dict[str, str] = {
    CT_IMAGE_STORAGE: "CT Image Storage",
    ENHANCED_CT_IMAGE_STORAGE: "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR Storage",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
}

# (0018,0015) Body Part Examined values that mean a chest CT (PS3.16 CID 4031 and common
# vendor spellings); an absent value is accepted (many scanners leave it empty).
CHEST_BODY_PARTS = frozenset(
    {"CHEST", "LUNG", "THORAX", "CHEST_ABDOMEN", "CHESTABDOMEN", "CHEST_TO_PELVIS", "CAP", "胸部"}
)
_CHEST_WORDS = ("CHEST", "LUNG", "THORA", "胸", "肺")


def valid_uid(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and bool(UID_RE.match(value))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an instance is refused: a DICOM status code and a message key (radiology_ingest)."""

    status: int
    key: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InstanceHeader:
    """The identifying attributes of one instance, checked (see :func:`check_header`)."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    modality: str
    patient_id: str
    patient_name: str
    patient_sex: str
    patient_birth_date: str
    accession: str
    study_date: str
    study_time: str
    study_description: str
    series_description: str
    body_part: str


def _text(ds: Any, keyword: str) -> str:
    value = getattr(ds, keyword, None) if ds is not None else None
    if value is None:
        return ""
    return str(value).strip()


def check_header(ds: Any) -> InstanceHeader | Refusal:
    """Read the attributes MedBrain files an instance by; refuse what it cannot file safely.

    The UIDs become directory and file names, so they must be well-formed (PS3.5 §9.1).
    """
    uids = {
        "SOPClassUID": _text(ds, "SOPClassUID"),
        "SOPInstanceUID": _text(ds, "SOPInstanceUID"),
        "StudyInstanceUID": _text(ds, "StudyInstanceUID"),
        "SeriesInstanceUID": _text(ds, "SeriesInstanceUID"),
    }
    for keyword, value in uids.items():
        if not value:
            return Refusal(STATUS_CANNOT_UNDERSTAND, "radiology_ingest.missing_attribute", keyword)
        if not valid_uid(value):
            return Refusal(STATUS_CANNOT_UNDERSTAND, "radiology_ingest.bad_uid", keyword)
    if uids["SOPClassUID"] not in STORAGE_SOP_CLASSES:
        return Refusal(
            STATUS_SOP_CLASS_MISMATCH, "radiology_ingest.unsupported_sop_class", uids["SOPClassUID"]
        )
    meta = getattr(ds, "file_meta", None)
    meta_sop = _text(meta, "MediaStorageSOPInstanceUID")
    if meta_sop and meta_sop != uids["SOPInstanceUID"]:
        return Refusal(
            STATUS_SOP_CLASS_MISMATCH,
            "radiology_ingest.meta_mismatch",
            "MediaStorageSOPInstanceUID",
        )
    return InstanceHeader(
        sop_class_uid=uids["SOPClassUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        modality=_text(ds, "Modality").upper(),
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_sex=_text(ds, "PatientSex").upper(),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        accession=_text(ds, "AccessionNumber"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined").upper(),
    )


def skip_reason(modality: str, sop_class_uid: str, body_part: str) -> str | None:
    """Message key saying why a stored series is not sent to the nodule detector, or None."""
    if modality != "CT" or sop_class_uid not in (CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE):
        return "radiology_ingest.skip_not_ct"
    if sop_class_uid == ENHANCED_CT_IMAGE_STORAGE:
        return "radiology_ingest.skip_enhanced_ct"
    part = body_part.strip().upper()
    if part and part not in CHEST_BODY_PARTS and not any(w in part for w in _CHEST_WORDS):
        return "radiology_ingest.skip_not_chest"
    return None


def is_settled(last_instance_at: datetime, now: datetime, settle_seconds: float) -> bool:
    """A series is complete once no instance arrived for ``settle_seconds``."""
    return now - last_instance_at >= timedelta(seconds=settle_seconds)


SEX_FROM_DICOM = {"M": "male", "F": "female", "O": "other"}


def patient_sex(dicom_sex: str) -> str:
    """(0010,0040) Patient's Sex M/F/O to MedBrain's male/female/other/unknown."""
    return SEX_FROM_DICOM.get(dicom_sex.strip().upper(), "unknown")


def patient_display_name(dicom_name: str) -> str:
    """PN ``Family^Given^Middle^Prefix^Suffix`` (PS3.5 §6.2) → ``Family Given`` / ``张伟``."""
    first = dicom_name.split("=")[0]  # alphabetic group; ideographic follows '='
    ideographic = dicom_name.split("=")[1] if "=" in dicom_name else ""
    source = ideographic or first
    parts = [p.strip() for p in source.split("^") if p.strip()]
    if not parts:
        return ""
    if all(_is_han(p) for p in parts):
        return "".join(parts)
    return " ".join(parts)


def _is_han(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


STUDY_STATUS_ORDER = ("processing", "received", "ready", "failed", "skipped")


def study_status(job_statuses: list[str], current: str) -> str:
    """The worklist status of a study from its series' job statuses.

    A signed study stays signed; otherwise the most "active" state wins (something still
    processing or waiting shows, then ready, then failed, then skipped).
    """
    if current == "signed":
        return current
    states = set(job_statuses)
    if "processing" in states:
        return "processing"
    if states & {"received", "waiting"}:
        return "received"
    for status in ("ready", "failed", "skipped"):
        if status in states:
            return status
    return current
