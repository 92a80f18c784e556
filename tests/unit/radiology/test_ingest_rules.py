"""Pure ingestion rules: zip safety, header checks, what gets analysed, study status."""

from __future__ import annotations

import io
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from medbrain.radiology.ingest_rules import (
    CT_IMAGE_STORAGE,
    STATUS_CANNOT_UNDERSTAND,
    STATUS_SOP_CLASS_MISMATCH,
    InstanceHeader,
    Refusal,
    check_header,
    is_settled,
    patient_display_name,
    patient_sex,
    skip_reason,
    study_status,
    valid_uid,
)
from medbrain.radiology.zipsafe import ZipLimits, ZipRefused, extract_zip

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def _zip(entries: dict[str, bytes], *, symlink: str | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    buffer.seek(0)
    return buffer


def test_zip_members_are_extracted_under_flattened_names(tmp_path: Path) -> None:
    files = extract_zip(
        _zip({"a/IM1.dcm": b"one", "b/c/IM2": b"two", "dir/": b""}), tmp_path, "u.zip", ZipLimits()
    )
    assert [f.name for f in files] == ["00000.dcm", "00001.dcm"]
    assert [f.read_bytes() for f in files] == [b"one", b"two"]
    assert all(f.parent == tmp_path for f in files)


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm", "..\\evil.dcm"]
)
def test_zip_path_traversal_is_refused_before_anything_is_written(
    tmp_path: Path, name: str
) -> None:
    dest = tmp_path / "out"
    with pytest.raises(ZipRefused) as err:
        extract_zip(_zip({"ok.dcm": b"x", name: b"y"}), dest, "u.zip", ZipLimits())
    assert err.value.key == "radiology_ingest.zip_traversal"
    assert not dest.exists() or not any(dest.iterdir())
    assert not (tmp_path / "evil.dcm").exists()


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ZipRefused) as err:
        extract_zip(_zip({"ok.dcm": b"x"}, symlink="link.dcm"), tmp_path, "u.zip", ZipLimits())
    assert err.value.key == "radiology_ingest.zip_symlink"


def test_zip_bomb_by_ratio_is_refused(tmp_path: Path) -> None:
    bomb = _zip({"zeros.dcm": b"\0" * (8 * 1024 * 1024)})
    assert len(bomb.getvalue()) < 100_000  # ratio far above 200
    with pytest.raises(ZipRefused) as err:
        extract_zip(bomb, tmp_path / "out", "bomb.zip", ZipLimits())
    assert err.value.key == "radiology_ingest.zip_bomb"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_zip_total_size_limit(tmp_path: Path) -> None:
    import os

    data = {f"f{i}.dcm": os.urandom(4096) for i in range(4)}
    with pytest.raises(ZipRefused) as err:
        extract_zip(_zip(data), tmp_path, "big.zip", ZipLimits(max_total_bytes=10_000))
    assert err.value.key == "radiology_ingest.zip_too_large"
    with pytest.raises(ZipRefused) as err:
        extract_zip(_zip(data), tmp_path, "many.zip", ZipLimits(max_members=3))
    assert err.value.key == "radiology_ingest.zip_too_many"


@pytest.mark.parametrize(
    ("payload", "key"),
    [(b"not a zip at all", "radiology_ingest.not_zip"), (None, "radiology_ingest.zip_empty")],
)
def test_not_a_zip_or_empty_zip(tmp_path: Path, payload: bytes | None, key: str) -> None:
    source = io.BytesIO(payload) if payload is not None else _zip({"only/": b""})
    with pytest.raises(ZipRefused) as err:
        extract_zip(source, tmp_path, "u.zip", ZipLimits())
    assert err.value.key == key


def _ds(**overrides: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.1"
    ds.Modality = "CT"
    ds.PatientID = "MRN1"
    ds.PatientName = "Zhang^Wei"
    for key, value in overrides.items():
        setattr(ds, key, value)
    return ds


def test_check_header_reads_identifiers() -> None:
    header = check_header(_ds(BodyPartExamined="CHEST", PatientSex="F"))
    assert isinstance(header, InstanceHeader)
    assert (header.study_uid, header.series_uid, header.sop_instance_uid) == (
        "1.2.3.4",
        "1.2.3.4.1",
        "1.2.3.4.5",
    )
    assert header.body_part == "CHEST"
    assert header.patient_sex == "F"


@pytest.mark.parametrize(
    ("overrides", "status", "key"),
    [
        ({"SOPInstanceUID": "1.2.3/../../x"}, STATUS_CANNOT_UNDERSTAND, "radiology_ingest.bad_uid"),
        ({"StudyInstanceUID": "1.02.3"}, STATUS_CANNOT_UNDERSTAND, "radiology_ingest.bad_uid"),
        ({"SeriesInstanceUID": ""}, STATUS_CANNOT_UNDERSTAND, "radiology_ingest.missing_attribute"),
        (
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.481.1"},  # RT Image: not accepted
            STATUS_SOP_CLASS_MISMATCH,
            "radiology_ingest.unsupported_sop_class",
        ),
    ],
)
def test_check_header_refusals(overrides: dict[str, object], status: int, key: str) -> None:
    refusal = check_header(_ds(**overrides))
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.key) == (status, key)


def test_valid_uid() -> None:
    assert valid_uid("1.2.840.10008.5.1.4.1.1.2")
    assert not valid_uid("1.2.0.x")
    assert not valid_uid("1." + "1" * 64)
    assert not valid_uid("..")


def test_skip_reasons() -> None:
    assert skip_reason("CT", CT_IMAGE_STORAGE, "") is None
    assert skip_reason("CT", CT_IMAGE_STORAGE, "CHEST") is None
    assert skip_reason("CT", CT_IMAGE_STORAGE, "LUNG") is None
    assert skip_reason("MR", "1.2.840.10008.5.1.4.1.1.4", "CHEST") == "radiology_ingest.skip_not_ct"
    assert skip_reason("CT", CT_IMAGE_STORAGE, "HEAD") == "radiology_ingest.skip_not_chest"


def test_settling() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    assert not is_settled(last, last + timedelta(seconds=9), 10)
    assert is_settled(last, last + timedelta(seconds=10), 10)
    assert is_settled(last, last, 0)


def test_study_status() -> None:
    assert study_status(["ready", "processing"], "received") == "processing"
    assert study_status(["ready", "waiting"], "ready") == "received"
    assert study_status(["ready", "skipped"], "received") == "ready"
    assert study_status(["skipped", "failed"], "received") == "failed"
    assert study_status(["skipped"], "received") == "skipped"
    assert study_status(["processing"], "signed") == "signed"


def test_patient_fields() -> None:
    assert patient_display_name("Zhang^Wei") == "Zhang Wei"
    assert patient_display_name("Zhang^Wei=张^伟") == "张伟"
    assert patient_display_name("") == ""
    assert patient_sex("F") == "female"
    assert patient_sex("") == "unknown"
