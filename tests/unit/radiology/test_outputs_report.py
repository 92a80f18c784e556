"""PDF (zh/en, key images with yellow boxes) and FHIR R4 outputs of a reviewed CT report."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle
from PIL import Image

from medbrain.imaging.pipeline import detect_series
from medbrain.imaging.synthetic import generate_chest_ct
from medbrain.radiology.outputs.fhir import build_fhir_bundle
from medbrain.radiology.outputs.model import SignedReport, StudyInfo
from medbrain.radiology.outputs.pdf import YELLOW, build_pdf, key_image_png


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    scan = generate_chest_ct(
        3,
        shape=(40, 64, 64),
        spacing_mm=(5.0, 5.0, 5.0),
        n_nodules=3,
        diameter_range_mm=(8.0, 20.0),
    )
    result = detect_series(scan.series)
    nodules = (
        *({**n, "key": f"e{n['id']}", "source": "engine"} for n in result["nodules"][:2]),
        {**result["nodules"][2], "key": "a1", "source": "radiologist", "score": None},
    )
    report = SignedReport(
        version=3,
        status="signed",
        language="zh",
        findings="双肺多发结节。",
        impression="Lung-RADS 4B。",
        nodules=nodules,
        lung_rads=result["lung_rads"],
        detector="classical:1",
        signed_by="dr_li",
        signed_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    )
    study = StudyInfo(
        study_uid="1.2.3.4",
        series_uid=scan.series.series_uid,
        patient_name="张三",
        patient_id="MRN0001",
        patient_ref="Patient/7",
        study_date=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
        accession="ACC1",
        description="Chest CT",
        slices=40,
    )
    return {"hu": scan.series.hu, "report": report, "study": study}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_has_one_key_image_per_nodule_and_a_cjk_font(case: dict[str, Any], lang: str) -> None:
    report = replace(case["report"], language=lang)
    pdf = build_pdf(report, case["study"], case["hu"])
    assert pdf[:5] == b"%PDF-"
    assert pdf.count(b"/Subtype /Image") == len(report.nodules)
    assert b"STSong-Light" in pdf  # CJK text (names, zh report) needs the CID font
    assert (b"Chest CT lung nodule report" in pdf) == (lang == "en")  # document title


def test_pdf_without_nodules_or_pixels_still_builds(case: dict[str, Any]) -> None:
    empty = replace(case["report"], nodules=(), status="draft", signed_at=None)
    pdf = build_pdf(empty, case["study"], None)
    assert pdf[:5] == b"%PDF-" and b"/Subtype /Image" not in pdf


def test_key_image_draws_the_box_in_yellow() -> None:
    hu = np.full((32, 32), -900.0, dtype=np.float32)
    png = key_image_png(hu, [(8, 8, 15, 15)])
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    yellow = np.all(img == np.asarray(YELLOW, dtype=np.uint8), axis=-1)
    assert yellow.sum() > 50
    rows, _ = np.nonzero(yellow)
    scale = img.shape[0] / 32
    assert rows.min() < 8 * scale and rows.max() > 15 * scale
    assert not yellow[img.shape[0] // 2 - 2 : img.shape[0] // 2 + 2, 2:6].any()


def test_fhir_bundle_validates_and_carries_the_measurements(case: dict[str, Any]) -> None:
    report: SignedReport = case["report"]
    extra = [
        {
            "uid": "1.2.3.4.9",
            "modality": "SR",
            "number": 9001,
            "instances": [{"uid": "1.2.3.4.9.1", "sop_class": "1.2.840.10008.5.1.4.1.1.88.34"}],
        }
    ]
    bundle = build_fhir_bundle(report, case["study"], extra_series=extra, pdf=b"%PDF-1.4 x")
    Bundle.model_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    kinds = [r["resourceType"] for r in resources]
    assert kinds == ["DiagnosticReport", "ImagingStudy"] + ["Observation"] * len(report.nodules)
    diagnostic, imaging = resources[0], resources[1]
    assert diagnostic["status"] == "final"
    assert diagnostic["subject"] == {"reference": "Patient/7"}
    assert diagnostic["imagingStudy"] == [{"reference": bundle["entry"][1]["fullUrl"]}]
    assert [r["reference"] for r in diagnostic["result"]] == [
        e["fullUrl"] for e in bundle["entry"][2:]
    ]
    assert base64.b64decode(diagnostic["presentedForm"][0]["data"]) == b"%PDF-1.4 x"
    assert imaging["identifier"][0]["value"] == "urn:oid:1.2.3.4"
    assert [s["uid"] for s in imaging["series"]] == [case["study"].series_uid, "1.2.3.4.9"]
    for obs, nodule in zip(resources[2:], report.nodules, strict=True):
        values = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in obs["component"]
            if "valueQuantity" in c
        }
        assert values["103339001"] == pytest.approx(nodule["long_axis_mm"], abs=0.05)
        assert values["103340004"] == pytest.approx(nodule["short_axis_mm"], abs=0.05)
        assert values["118565006"] == pytest.approx(nodule["volume_mm3"], abs=0.05)
        side = obs["bodySite"]["coding"][0]["code"]
        assert side == ("3341006" if nodule["side"] == "right" else "44029006")


def test_fhir_draft_is_preliminary_and_ids_are_stable(case: dict[str, Any]) -> None:
    draft = replace(case["report"], status="draft", signed_at=None)
    first = build_fhir_bundle(draft, case["study"])
    second = build_fhir_bundle(draft, case["study"])
    assert first["entry"][0]["resource"]["status"] == "preliminary"
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
