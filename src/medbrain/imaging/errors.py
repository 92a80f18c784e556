"""Errors the CT imaging engine raises on bad input.

Every class subclasses :class:`medbrain.core.errors.InputError`, so the CLI turns each into
exit 2 plus one stderr line naming the file and the problem, and the API into a 422.

References
----------
DICOM PS3.3 C.7.3.1 (General Series: (0008,0060) Modality), C.7.6.2 (Image Plane).
"""

from __future__ import annotations

from medbrain.core.errors import InputError


class NotCTError(InputError):
    """(0008,0060) Modality is not ``CT``."""


class SingleImageError(InputError):
    """One 2D image where a volume (a series of slices) is required."""


class MixedSeriesError(InputError):
    """More than one (0020,000E) Series Instance UID, or inconsistent geometry, in one folder."""


class MissingSlicesError(InputError):
    """A gap between consecutive slices larger than twice the nominal spacing."""


class UnreadableImageError(InputError):
    """A file that is not DICOM/NIfTI, or whose pixel data cannot be decoded."""


class NoLungsError(InputError):
    """No aerated lung volume found: the scan is not a chest CT, or it is truncated."""
