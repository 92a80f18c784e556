"""One demo inpatient whose record points to cardiac amyloidosis (the brief's second seed case).

A 76-year-old man on the cardiology ward with heart failure with preserved ejection
fraction, left ventricular hypertrophy, bilateral carpal tunnel syndrome, lumbar spinal
stenosis and proteinuria: each common on its own, together the ESC 2021 red flags. The
record is imported like any FHIR bundle and screened by the real engine
(:func:`medbrain.store.rare_labs.screen_patient`), so the doctor's inbox shows what the
screen raises after ``make run``. All content is synthetic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.interop.fhir.importer import import_bundle
from medbrain.rare import default_rare_knowledge, load_index
from medbrain.store import models as m
from medbrain.store.rare_labs import screen_patient

MRN = "DMR00001"
PATIENT_ID = "demo-rare-patient-1"
DIAGNOSES = (
    ("I50.9", "射血分数保留的心力衰竭"),
    ("I51.7", "左心室肥厚"),
    ("G56.0", "双侧腕管综合征"),
    ("M48.0", "腰椎管狭窄"),
)
#: (id, LOINC, value, UCUM unit): proteinuria; blood counts normal.
LABS = (
    ("up", "2889-4", 0.42, "g/24h"),
    ("hb", "718-7", 131.0, "g/L"),
    ("plt", "777-3", 206.0, "10*9/L"),
)


def seed_rare_demo(session: Session, anchor: datetime) -> int:
    """Import and screen the demo patient once; returns the number of findings raised."""
    if session.scalar(select(m.Patient.id).where(m.Patient.mrn == MRN)) is not None:
        return 0
    result = import_bundle(session, _bundle(anchor), source="demo/rare", now=anchor)
    rows = screen_patient(
        session,
        result.patient_ids[0],
        load_index(),
        default_rare_knowledge(),
        now=anchor,
        extra={"demo": True},
    )
    return len(rows)


def _bundle(anchor: datetime) -> dict[str, Any]:
    admitted = anchor - timedelta(days=2)
    patient = f"urn:uuid:{PATIENT_ID}"
    encounter = "urn:uuid:demo-rare-encounter-1"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient,
            "resource": {
                "resourceType": "Patient",
                "id": PATIENT_ID,
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MR",
                                }
                            ]
                        },
                        "value": MRN,
                    }
                ],
                "name": [{"text": "欧阳振华"}],
                "gender": "male",
                "birthDate": "1950-06-12",
            },
        },
        {
            "fullUrl": encounter,
            "resource": {
                "resourceType": "Encounter",
                "id": "demo-rare-encounter-1",
                "status": "in-progress",
                "class": {"code": "IMP"},
                "subject": {"reference": patient},
                "serviceType": {"text": "心内科"},
                "period": {"start": admitted.isoformat()},
            },
        },
    ]
    for n, (code, text) in enumerate(DIAGNOSES):
        entries.append(
            {
                "fullUrl": f"urn:uuid:demo-rare-condition-{n}",
                "resource": {
                    "resourceType": "Condition",
                    "id": f"demo-rare-condition-{n}",
                    "code": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}],
                        "text": text,
                    },
                    "subject": {"reference": patient},
                    "encounter": {"reference": encounter},
                },
            }
        )
    for key, loinc, value, unit in LABS:
        entries.append(
            {
                "fullUrl": f"urn:uuid:demo-rare-{key}",
                "resource": {
                    "resourceType": "Observation",
                    "id": f"demo-rare-{key}",
                    "status": "final",
                    "category": [{"coding": [{"code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                    "subject": {"reference": patient},
                    "encounter": {"reference": encounter},
                    "effectiveDateTime": (admitted + timedelta(hours=3)).isoformat(),
                    "valueQuantity": {"value": value, "unit": unit},
                },
            }
        )
    return {"resourceType": "Bundle", "id": "demo-rare", "type": "collection", "entry": entries}
