"""Demo chest CTs (issue 5): synthetic series for demo patients, already analysed.

Patient ``DM000002`` has a prior study (a year before the anchor) and a current one of the
same synthetic anatomy in which one solid nodule grew from about 5 to 7.7 mm (``size_factors``),
so follow-up comparison and Lung-RADS growth have something to show;
the prior study is already signed by the demo radiologist (report text and Lung-RADS as the
engine drafted them; no SR/SEG written), so only current studies await review. Patient
``DM000003`` has one study. ``DM000002``'s record holds family history of lung cancer and
emphysema (Observations), so its CTs show a Brock probability; ``DM000003``'s does not, so its
study names the missing inputs. 128x128x80 voxels at 2.5 mm keep seeding to a few seconds.
All images are synthetic phantoms (``medbrain.imaging.synthetic``), never real patients.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.core.config import Settings
from medbrain.demo.generator import DEFAULT_ANCHOR, demo_mrn
from medbrain.imaging.synthetic import PLACEMENTS
from medbrain.store import models as m


@dataclass(frozen=True, slots=True)
class DemoCT:
    patient_index: int
    gen_seed: int
    uid_seed: int
    days_before_anchor: int
    diameter_range_mm: tuple[float, float]
    accession: str
    signed: bool = False  # signed by the demo radiologist two hours after acquisition
    brock_record: bool = False  # record family history / emphysema (Brock computable)
    placements: tuple[str, ...] = PLACEMENTS
    size_factors: tuple[float, ...] = ()  # nodules grown since the prior (same seed)


#: DM000002's pair: seed 4018 draws a 7.4 mm ground-glass, a 5.1 mm solid and a 5.8 mm
#: calcified nodule away from vessels; a year later the solid one is 1.5 times larger.
AWAY_FROM_VESSELS = ("peripheral", "central", "juxtapleural")
DEMO_CTS: tuple[DemoCT, ...] = (
    DemoCT(1, 4018, 905001, 365, (5.0, 9.0), "CT2025000101", signed=True, brock_record=True,
           placements=AWAY_FROM_VESSELS),
    DemoCT(1, 4018, 905002, 1, (5.0, 9.0), "CT2026000102", placements=AWAY_FROM_VESSELS,
           size_factors=(1.0, 1.5, 1.0)),
    DemoCT(2, 4343, 905003, 0, (4.0, 12.0), "CT2026000103"),
)  # fmt: skip
DEMO_RADIOLOGIST = "radiologist"  # the demo account (medbrain.demo.seed.DEMO_ACCOUNTS)
SHAPE = (80, 128, 128)
SPACING_MM = (2.5, 2.5, 2.5)


def _uid(seed: int, what: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["medbrain-demo-ct", str(seed), what]))


def seed_radiology_demo(
    session: Session, settings: Settings, *, anchor: datetime = DEFAULT_ANCHOR
) -> int:
    """Store and analyse the demo CTs in the caller's transaction; returns studies added."""
    import pydicom

    from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
    from medbrain.store import radiology as store

    added = 0
    work = Path(tempfile.mkdtemp(prefix="medbrain-demo-ct-"))
    try:
        for ct in DEMO_CTS:
            mrn = demo_mrn(ct.patient_index)
            patient = session.scalars(select(m.Patient).where(m.Patient.mrn == mrn)).first()
            study_uid = _uid(ct.uid_seed, "study")
            if patient is None or session.scalar(
                select(m.ImagingStudy.id).where(m.ImagingStudy.study_uid == study_uid)
            ):
                continue
            scan = generate_chest_ct(
                ct.gen_seed,
                shape=SHAPE,
                spacing_mm=SPACING_MM,
                n_nodules=3,
                diameter_range_mm=ct.diameter_range_mm,
                placements=ct.placements,
                size_factors=ct.size_factors,
            )
            files = write_dicom_series(
                scan.series,
                work / str(ct.uid_seed),
                seed=ct.uid_seed,
                series_uid=_uid(ct.uid_seed, "series"),
            )
            when = anchor - timedelta(days=ct.days_before_anchor)
            if ct.brock_record:
                _record_brock_inputs(session, patient, when - timedelta(days=7))
            datasets = []
            for path in files:
                ds = pydicom.dcmread(path)
                ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the description is Chinese
                ds.StudyInstanceUID = study_uid
                ds.PatientID = mrn
                ds.PatientName = (patient.name_pinyin or "DEMO").upper()
                ds.PatientSex = {"male": "M", "female": "F"}.get(patient.sex, "O")
                if patient.birth_date is not None:
                    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
                ds.StudyDate = ds.SeriesDate = when.strftime("%Y%m%d")
                ds.StudyTime = when.strftime("%H%M%S")
                ds.AccessionNumber = ct.accession
                ds.StudyDescription = "胸部低剂量CT (synthetic)"
                ds.SeriesDescription = "Lung 2.5mm"
                ds.BodyPartExamined = "CHEST"
                datasets.append(ds)
            result = store.ingest_instances(
                session, settings, datasets, source="demo", complete=True, now=when
            )
            for job_id in result.job_ids:
                store.process_in_session(session, settings, job_id)
            if ct.signed:
                _sign(session, study_uid, when + timedelta(hours=2), settings.default_lang)
            added += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return added


BROCK_RECORD = (  # (code, category, display, value): see knowledge/imaging/brock_record.yaml
    ("medbrain-brock-family-history", "social-history", "肺癌家族史(一级亲属)", "有"),
    ("medbrain-brock-emphysema", "imaging", "肺气肿", "无"),
)


def _record_brock_inputs(session: Session, patient: m.Patient, at: datetime) -> None:
    """Family history of lung cancer (yes) and emphysema (no), as a clinician would record
    them, so the demo patient's CTs show a Brock probability; the other demo patient has no
    such record and shows which inputs are missing."""
    for code, category, display, value in BROCK_RECORD:
        if session.scalar(
            select(m.Observation.id).where(
                m.Observation.patient_id == patient.id, m.Observation.code == code
            )
        ):
            continue
        session.add(
            m.Observation(
                patient_id=patient.id,
                category=category,
                code=code,
                display=display,
                value_text=value,
                effective_at=at,
            )
        )
    session.flush()


def _sign(session: Session, study_uid: str, at: datetime, lang: str) -> None:
    """Sign the engine's draft as the demo radiologist, dated ``at``."""
    from medbrain.store import radiology_review as review

    ctx = review.load_context(session, study_uid)
    if ctx.analysis is None:  # skipped (not analysable): nothing to sign
        return
    row, _ = review.sign(session, ctx, DEMO_RADIOLOGIST, lang)
    row.created_at = row.updated_at = row.signed_at = at
