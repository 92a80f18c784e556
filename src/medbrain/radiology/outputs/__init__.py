"""Results out of a signed CT review (issue 5): PDF, DICOM SR/SEG, FHIR, C-STORE to a PACS.

Pure builders: they take the reviewed report (:class:`~.model.SignedReport`), the source CT
datasets and the volume, and return bytes, pydicom datasets or FHIR dicts. No database, no web
framework, no environment reads; the adapters (``store/radiology_review.py``,
``api/routers/radiology_viewer.py``) decide where the results go.

=====================  ==============================================================
module                 builds
=====================  ==============================================================
``model``              :class:`SignedReport` / :class:`StudyInfo`, the builders' input
``geometry``           slice order of the source instances, nodule masks, key slices
``dicom_sr``           Comprehensive 3D SR, TID 1500 Measurement Report (highdicom)
``dicom_seg``          binary DICOM Segmentation of the nodule masks (highdicom)
``pdf``                PDF report zh/en with key images (reportlab, CID font STSong-Light)
``fhir``               FHIR R4 DiagnosticReport + ImagingStudy + Observations (R4B models)
``pacs``               C-STORE SCU (pynetdicom) to a configured PACS
=====================  ==============================================================
"""

from medbrain.radiology.outputs.model import SignedReport, StudyInfo

__all__ = ["SignedReport", "StudyInfo"]
