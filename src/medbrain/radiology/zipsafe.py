"""Check an uploaded zip before extracting anything: no traversal, no bombs, no surprises.

A zip is inspected from its central directory first (names, declared sizes); every member is
then extracted with a running byte count, so a member lying about its size is still stopped.

References
----------
PKWARE APPNOTE 6.3.10 §4.4 (central directory, sizes, external attributes); OWASP "Zip Slip"
(path traversal in archive entries); CWE-409 (decompression bombs).
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from medbrain.core.errors import InputError

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_members: int = 5000
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: float = 200.0  # uncompressed / compressed, per member and overall


class ZipRefused(InputError):
    """A zip MedBrain will not extract; ``key`` is a radiology_ingest message key."""

    def __init__(self, source: str, key: str, detail: str) -> None:
        self.key = key
        self.detail = detail
        super().__init__(source, key, detail)


def _member_path(name: str) -> PurePosixPath | None:
    """The safe relative path of a member, or None for a directory entry."""
    if "\x00" in name:
        raise ValueError("NUL in name")
    norm = name.replace("\\", "/")
    if norm.endswith("/"):
        return None
    p = PurePosixPath(norm)
    if p.is_absolute() or (p.parts and ":" in p.parts[0]) or ".." in p.parts or not p.parts:
        raise ValueError(name)
    return p


def safe_members(zf: zipfile.ZipFile, source: str, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """The regular-file members of ``zf``, after checking names and declared sizes."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ZipRefused(source, "radiology_ingest.zip_too_many", str(len(infos)))
    out: list[zipfile.ZipInfo] = []
    total = 0
    compressed = 0
    for info in infos:
        try:
            path = _member_path(info.filename)
        except ValueError:
            raise ZipRefused(source, "radiology_ingest.zip_traversal", info.filename) from None
        if path is None:
            continue
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise ZipRefused(source, "radiology_ingest.zip_symlink", info.filename)
        if info.flag_bits & 0x1:
            raise ZipRefused(source, "radiology_ingest.zip_encrypted", info.filename)
        total += info.file_size
        compressed += info.compress_size
        if (
            info.file_size > limits.max_ratio * max(info.compress_size, 1)
            and info.file_size > CHUNK
        ):
            raise ZipRefused(source, "radiology_ingest.zip_bomb", info.filename)
        out.append(info)
    if total > limits.max_total_bytes:
        raise ZipRefused(source, "radiology_ingest.zip_too_large", str(total))
    if total > limits.max_ratio * max(compressed, 1) and total > CHUNK:
        raise ZipRefused(source, "radiology_ingest.zip_bomb", source)
    if not out:
        raise ZipRefused(source, "radiology_ingest.zip_empty", source)
    return out


def extract_zip(file: BinaryIO | Path, dest: Path, source: str, limits: ZipLimits) -> list[Path]:
    """Extract the regular files of a zip into ``dest`` (flattened to numbered names).

    Names inside the archive are never used as paths: members are written as
    ``dest/00000.dcm`` ... so no entry can escape ``dest`` whatever the checks above missed.
    Raises :class:`ZipRefused` (nothing is left in ``dest`` then; the caller owns ``dest``).
    """
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ZipRefused(source, "radiology_ingest.not_zip", source) from None
    written: list[Path] = []
    with zf:
        members = safe_members(zf, source, limits)
        total = 0
        dest.mkdir(parents=True, exist_ok=True)
        try:
            for n, info in enumerate(members):
                target = dest / f"{n:05d}.dcm"
                count = 0
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(CHUNK):
                        count += len(chunk)
                        total += len(chunk)
                        if total > limits.max_total_bytes or (
                            count > CHUNK and count > limits.max_ratio * max(info.compress_size, 1)
                        ):
                            raise ZipRefused(source, "radiology_ingest.zip_bomb", info.filename)
                        out.write(chunk)
                written.append(target)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            _remove(dest)
            raise ZipRefused(source, "radiology_ingest.zip_corrupt", str(exc)) from None
        except ZipRefused:
            _remove(dest)
            raise
    return written


def _remove(dest: Path) -> None:
    for path in dest.iterdir():
        if path.is_file():
            os.unlink(path)
