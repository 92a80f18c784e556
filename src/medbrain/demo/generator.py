"""Seeded, reproducible synthetic patients as FHIR R4 transaction Bundles (one per patient).

The bundles are what a hospital system would send: Synthea-style ``urn:uuid`` fullUrls and
references, Chinese names and documents, valid 身份证 numbers (birth date and sex encoded
consistently), LOINC-coded laboratory results with UCUM units and reference ranges, ICD-10
diagnoses, orders with dose/route/frequency, allergies and imaging studies. Seeding runs
them through the ordinary importer, so the demo exercises the real import path.

Clinical content (scenarios, analytes, phrases) lives in the YAML files under
``medbrain/demo/data``; this module only draws from them. Patient ``i`` depends only on
``(seed, i)``: generating 10 or 60 patients gives the same first 10.

Nothing here is real patient data.

References
----------
GB 11643-1999 《公民身份号码》 (address code, birth date, sequence: odd = male, ISO 7064
MOD 11-2 check character); GB/T 2260 (address codes); 《病历书写基本规范》(卫医政发〔2010〕11号);
HL7 FHIR R4 (4.0.1) §2.36 Bundle (transaction), §2.3.0 references; LOINC 2.77; UCUM 2.1;
HL7 v2 table 0203 (identifier types MR, NNCHN).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError
from medbrain.core.identifiers import resident_id_check_char
from medbrain.knowledge.loaders import document_types

CST = timezone(timedelta(hours=8), "CST")
#: The "now" of the demo world: stays before it are finished, stays spanning it are current.
DEFAULT_ANCHOR = datetime(2026, 11, 20, 8, 0, tzinfo=CST)
DEFAULT_PATIENTS = 60
DEFAULT_SEED = 20251

SYSTEM_BASE = "http://medbrain.example/fhir"
MRN_SYSTEM = f"{SYSTEM_BASE}/sid/mrn"
DEPARTMENT_SYSTEM = f"{SYSTEM_BASE}/CodeSystem/department"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"

_UCUM_UNITS = frozenset(
    {
        "mg",
        "g",
        "mL",
        "ug",
        "kg",
        "mmol/L",
        "umol/L",
        "g/L",
        "U/L",
        "mg/L",
        "ng/L",
        "ng/mL",
        "pg/mL",
        "%",
        "10*9/L",
        "{INR}",
        "Cel",
        "/min",
        "mm[Hg]",
        "[iU]",
        "U",
    }
)
_UNIT_DISPLAY = {"10*9/L": "×10⁹/L", "umol/L": "μmol/L", "{INR}": "", "Cel": "℃", "/min": "次/分"}
_DOSE_UCUM = {"mg": "mg", "g": "g", "mL": "mL", "IU": "[iU]", "U": "[iU]"}
_FLAG_DISPLAY = {
    "H": "High",
    "L": "Low",
    "HH": "Critical high",
    "LL": "Critical low",
    "N": "Normal",
}
_ARROWS = {"H": "↑", "HH": "↑↑", "L": "↓", "LL": "↓↓"}
_CHRONIC_PREFIXES = (
    "I50",
    "N18",
    "E11",
    "J44",
    "I10",
    "I25",
    "I48",
    "I12",
    "D63",
    "M81",
    "E78",
    "M15",
    "M17",
    "K80.2",
    "D50",
    "E66",
    "I27",
)
# Timing.repeat for the order frequencies used in the scenarios (HL7 FHIR R4 §2.24.0.26).
_TIMING: dict[str, dict[str, Any]] = {
    "qd": {"frequency": 1, "period": 1, "periodUnit": "d"},
    "bid": {"frequency": 2, "period": 1, "periodUnit": "d"},
    "tid": {"frequency": 3, "period": 1, "periodUnit": "d"},
    "qid": {"frequency": 4, "period": 1, "periodUnit": "d"},
    "q8h": {"frequency": 1, "period": 8, "periodUnit": "h"},
    "q12h": {"frequency": 1, "period": 12, "periodUnit": "h"},
    "q1h": {"frequency": 1, "period": 1, "periodUnit": "h"},
    "qn": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]},
    "qw": {"frequency": 1, "period": 1, "periodUnit": "wk"},
    "qod": {"frequency": 1, "period": 2, "periodUnit": "d"},
    "st": {"count": 1},
}


# ---------------------------------------------------------------------------------------
# Data files


@dataclass(frozen=True, slots=True)
class DemoData:
    people: dict[str, Any]
    labs: dict[str, Any]
    scenarios: dict[str, Any]
    phrases: dict[str, Any]


def _load(name: str) -> dict[str, Any]:
    try:
        text = resources.files("medbrain.demo").joinpath("data", name).read_text(encoding="utf-8")
        data = yamlio.parse(text)
    except (FileNotFoundError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"demo data file {name}: {exc}") from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"demo data file {name}: top level must be a mapping")
    return data


@lru_cache(maxsize=1)
def load_demo_data() -> DemoData:
    """Read and check the demo data files; a broken file names itself and the key."""
    data = DemoData(
        people=_load("people.yaml"),
        labs=_load("labs.yaml"),
        scenarios=_load("scenarios.yaml"),
        phrases=_load("documents.yaml"),
    )
    analytes = data.labs.get("analytes", {})
    for panel, keys in data.labs.get("panels", {}).items():
        for key in keys:
            if key not in analytes:
                raise KnowledgeError(f"labs.yaml: panel {panel} names unknown analyte {key!r}")
    departments = data.people.get("departments", {})
    for group in ("inpatient", "visits"):
        for scenario in data.scenarios.get(group, []):
            where = f"scenarios.yaml: {group}/{scenario.get('id')}"
            if scenario.get("department") not in departments:
                raise KnowledgeError(f"{where}: unknown department {scenario.get('department')!r}")
            labs = scenario.get("labs") or {}
            for panel in [
                *labs.get("admission", []),
                *labs.get("follow_up", []),
                *labs.get("panels", []),
            ]:
                if panel not in data.labs["panels"]:
                    raise KnowledgeError(f"{where}: unknown panel {panel!r}")
            for key in labs.get("trend", {}):
                if key not in analytes:
                    raise KnowledgeError(f"{where}: trend names unknown analyte {key!r}")
            if "diagnosis" not in scenario or "icd10" not in scenario["diagnosis"]:
                raise KnowledgeError(f"{where}: needs diagnosis.icd10")
    return data


def demo_mrn(index: int) -> str:
    """The medical record number of demo patient ``index`` (0-based): DM000001, ..."""
    return f"DM{index + 1:06d}"


# ---------------------------------------------------------------------------------------
# Small helpers


def _iso(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat(timespec="seconds")


def _weighted(rng: random.Random, rows: Sequence[Sequence[Any]]) -> Any:
    cumulative = list(itertools.accumulate(float(r[1]) for r in rows))
    return rows[bisect.bisect(cumulative, rng.random() * cumulative[-1])][0]


def _draw(rng: random.Random, spec: Any, decimals: int) -> float:
    low, high = float(spec[0]), float(spec[1])
    return round(rng.uniform(low, high), decimals)


def _by_sex(spec: Any, sex: str) -> Any:
    return spec[sex] if isinstance(spec, dict) else spec


_QUOTED = re.compile(r'"([^"\n]*)"')
_LABEL_COLON = re.compile(r"(?<=[\u4e00-\u9fff]):")


def _chinese_punctuation(text: str) -> str:
    """Data files are typed with ASCII , ; and quotes; documents use full-width ones."""
    text = _QUOTED.sub(r"“\1”", text)
    return text.replace(",", "，").replace(";", "；")


def _fill(template: str, values: dict[str, Any], where: str) -> str:
    try:
        return _chinese_punctuation(template.format_map(values).replace("\n", ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise KnowledgeError(f"{where}: template placeholder {exc} cannot be filled") from None


def _unit_text(unit: str) -> str:
    return _UNIT_DISPLAY.get(unit, unit)


def _number_text(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


@dataclass(slots=True)
class _Person:
    sex: str
    age: int
    birth: date
    name: str
    family: str
    given: str
    resident_id: str
    phone: str
    region: dict[str, Any]
    address: str
    ethnicity: str
    occupation: str
    marital: str
    weight_kg: float
    allergies: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _LabValue:
    key: str
    zh: str
    value: float
    unit: str
    decimals: int
    flag: str | None
    ref: str


class _PatientBuilder:
    """Builds one patient's transaction Bundle."""

    def __init__(self, data: DemoData, rng: random.Random, index: int, anchor: datetime) -> None:
        self.data = data
        self.rng = rng
        self.index = index
        self.anchor = anchor
        self.entries: list[dict[str, Any]] = []
        self.patient_ref = ""
        self.baseline: dict[str, float] = {}  # a healthy value stays put from day to day

    # -- plumbing -----------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, resource: dict[str, Any]) -> str:
        resource_id = self.uuid()
        resource = {"resourceType": resource["resourceType"], "id": resource_id, **resource}
        url = f"urn:uuid:{resource_id}"
        self.entries.append(
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
        return url

    def bundle(self) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "id": f"medbrain-demo-{demo_mrn(self.index).lower()}",
            "type": "transaction",
            "entry": self.entries,
        }

    # -- person -------------------------------------------------------------------------

    def person(self, male_share: float, age_range: Sequence[int], used_ids: set[str]) -> _Person:
        rng, people = self.rng, self.data.people
        sex = "male" if rng.random() < male_share else "female"
        age = rng.randint(int(age_range[0]), int(age_range[1]))
        today = self.anchor.date()
        birth = today - timedelta(days=int(age * 365.25) + rng.randrange(30, 360))
        age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        family = str(_weighted(rng, people["surnames"]))
        chars = people["given_chars"][sex]
        given = rng.choice(chars) if rng.random() < 0.3 else "".join(rng.sample(chars, 2))
        region = rng.choice(people["regions"])
        while True:
            sequence = rng.randrange(1, 998)
            if (sequence % 2 == 1) != (sex == "male"):
                sequence += 1
            first17 = f"{region['code']}{birth:%Y%m%d}{sequence:03d}"
            resident_id = first17 + resident_id_check_char(first17)
            if resident_id not in used_ids:
                used_ids.add(resident_id)
                break
        phone = rng.choice(people["mobile_prefixes"]) + f"{rng.randrange(10**8):08d}"
        street = rng.choice(people["streets"])
        address = (
            f"{region['province']}{region['city'] if region['city'] != region['province'] else ''}"
            f"{region['district']}{street}{rng.randint(1, 300)}号"
            f"{rng.randint(1, 20)}栋{rng.randint(1, 4)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室"
        )
        occupations = people["occupations"]
        if age < 18:
            occupation = occupations["child"][0 if age < 6 else 1]
        elif age >= 60:
            occupation = occupations["retired"][0]
        else:
            occupation = rng.choice(occupations["adult"])
        if age < 18:
            marital = "child"
        elif age < 25 and rng.random() < 0.7:
            marital = "unmarried"
        else:
            marital = "widowed" if age > 75 and rng.random() < 0.3 else "married"
        if age < 14:
            weight = round((2 * age + 8) * rng.uniform(0.9, 1.12), 1)
        else:
            weight = _draw(rng, self.data.labs["vitals"]["weight"]["normal"][sex], 1)
        person = _Person(
            sex=sex,
            age=age,
            birth=birth,
            name=family + given,
            family=family,
            given=given,
            resident_id=resident_id,
            phone=phone,
            region=region,
            address=address,
            ethnicity=str(_weighted(rng, people["ethnicities"])),
            occupation=occupation,
            marital=marital,
            weight_kg=weight,
        )
        roll = rng.random()
        threshold = 0.0
        for allergy in self.data.scenarios.get("allergies", []):
            threshold += float(allergy["share"])
            if roll < threshold:
                person.allergies.append(allergy)
                break
        return person

    def patient_resource(self, person: _Person) -> None:
        region = person.region
        self.patient_ref = self.add(
            {
                "resourceType": "Patient",
                "identifier": [
                    {
                        "use": "usual",
                        "type": {
                            "coding": [
                                {
                                    "system": V2_0203,
                                    "code": "MR",
                                    "display": "Medical record number",
                                }
                            ],
                            "text": "病历号",
                        },
                        "system": MRN_SYSTEM,
                        "value": demo_mrn(self.index),
                    },
                    {
                        "use": "official",
                        "type": {
                            "coding": [
                                {
                                    "system": V2_0203,
                                    "code": "NNCHN",
                                    "display": "National Person Identifier (China)",
                                }
                            ],
                            "text": "居民身份证",
                        },
                        "value": person.resident_id,
                    },
                ],
                "name": [
                    {
                        "use": "official",
                        "text": person.name,
                        "family": person.family,
                        "given": [person.given],
                    }
                ],
                "telecom": [{"system": "phone", "value": person.phone, "use": "mobile"}],
                "gender": person.sex,
                "birthDate": person.birth.isoformat(),
                "address": [
                    {
                        "use": "home",
                        "text": person.address,
                        "state": region["province"],
                        "city": region["city"],
                        "district": region["district"],
                        "country": "CN",
                    }
                ],
                "maritalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                            "code": {"married": "M", "widowed": "W"}.get(person.marital, "U"),
                        }
                    ],
                    "text": {"married": "已婚", "widowed": "丧偶"}.get(person.marital, "未婚"),
                },
            }
        )

    # -- clinical building blocks ---------------------------------------------------------

    def department(self, code: str) -> dict[str, Any]:
        dept: dict[str, Any] = self.data.people["departments"][code]
        return dept

    def encounter(
        self,
        kind: str,
        dept_code: str,
        start: datetime,
        end: datetime | None,
        reason: str,
        bed: str | None = None,
    ) -> str:
        dept = self.department(dept_code)
        class_code = {"inpatient": "IMP", "outpatient": "AMB", "emergency": "EMER"}[kind]
        display = {"IMP": "inpatient encounter", "AMB": "ambulatory", "EMER": "emergency"}[
            class_code
        ]
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "status": "finished" if end is not None else "in-progress",
            "class": {"system": ACT_CODE, "code": class_code, "display": display},
            "type": [
                {"text": {"inpatient": "住院", "outpatient": "门诊", "emergency": "急诊"}[kind]}
            ],
            "serviceType": {
                "coding": [{"system": DEPARTMENT_SYSTEM, "code": dept_code, "display": dept["zh"]}],
                "text": dept["zh"],
            },
            "subject": {"reference": self.patient_ref},
            "participant": [
                {
                    "individual": {
                        "display": dept["attending"] if kind == "inpatient" else dept["resident"]
                    }
                }
            ],
            "period": {"start": _iso(start), **({"end": _iso(end)} if end else {})},
            "reasonCode": [{"text": reason}],
        }
        if kind == "inpatient":
            resource["location"] = [{"location": {"display": f"{dept['ward']} {bed}"}}]
        return self.add(resource)

    def condition(
        self,
        diagnosis: dict[str, Any],
        *,
        encounter: str | None,
        recorded: datetime,
        onset: datetime | date,
        active: bool,
        category: str,
    ) -> str:
        onset_text = _iso(onset) if isinstance(onset, datetime) else onset.isoformat()
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active" if active else "resolved",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": category,
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": ICD10, "code": diagnosis["icd10"]}],
                "text": diagnosis["zh"],
            },
            "subject": {"reference": self.patient_ref},
            "onsetDateTime": onset_text,
            "recordedDate": _iso(recorded),
        }
        if encounter:
            resource["encounter"] = {"reference": encounter}
        return self.add(resource)

    def lab_value(self, key: str, person: _Person, trend: dict[str, Any], step: int) -> _LabValue:
        spec = self.data.labs["analytes"][key]
        decimals = int(spec.get("decimals", 1))
        low, high = (float(v) for v in _by_sex(spec["range"], person.sex))
        if key in trend:
            series = trend[key]
            base = float(series[min(step, len(series) - 1)])
            value = round(base * (1 + self.rng.uniform(-0.025, 0.025)), decimals)
        else:
            if key not in self.baseline:
                self.baseline[key] = _draw(self.rng, _by_sex(spec["normal"], person.sex), 4)
            value = round(self.baseline[key] * (1 + self.rng.uniform(-0.03, 0.03)), decimals)
        critical = spec.get("critical") or [None, None]
        flag: str | None = "N"
        if value < low:
            flag = "LL" if critical[0] is not None and value <= float(critical[0]) else "L"
        elif value > high:
            flag = "HH" if critical[1] is not None and value >= float(critical[1]) else "H"
        ref = f"{_number_text(low, decimals)}-{_number_text(high, decimals)}"
        return _LabValue(key, spec["zh"], value, spec["unit"], decimals, flag, ref)

    def observation_lab(
        self, lab: _LabValue, person: _Person, encounter: str, when: datetime
    ) -> str:
        spec = self.data.labs["analytes"][lab.key]
        low, high = (float(v) for v in _by_sex(spec["range"], person.sex))
        unit = lab.unit

        def qty(value: float) -> dict[str, Any]:
            return {"value": value, "unit": unit, "system": UCUM, "code": unit}

        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {"system": OBS_CATEGORY, "code": "laboratory", "display": "Laboratory"}
                    ]
                }
            ],
            "code": {
                "coding": [{"system": LOINC, "code": spec["loinc"], "display": spec["en"]}],
                "text": spec["zh"],
            },
            "subject": {"reference": self.patient_ref},
            "encounter": {"reference": encounter},
            "effectiveDateTime": _iso(when),
            "issued": _iso(when + timedelta(minutes=50 + self.rng.randrange(40))),
            "valueQuantity": qty(lab.value),
            "referenceRange": [
                {
                    "low": qty(low),
                    "high": qty(high),
                    "text": f"{lab.ref} {_unit_text(unit)}".strip(),
                }
            ],
        }
        if lab.flag:
            resource["interpretation"] = [
                {
                    "coding": [
                        {
                            "system": INTERPRETATION,
                            "code": lab.flag,
                            "display": _FLAG_DISPLAY[lab.flag],
                        }
                    ]
                }
            ]
        return self.add(resource)

    def observation_vital(self, key: str, value: float, encounter: str, when: datetime) -> str:
        spec = self.data.labs["vitals"][key]
        unit = spec["unit"]
        return self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": OBS_CATEGORY,
                                "code": "vital-signs",
                                "display": "Vital Signs",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": LOINC, "code": spec["loinc"], "display": spec["en"]}],
                    "text": spec["zh"],
                },
                "subject": {"reference": self.patient_ref},
                "encounter": {"reference": encounter},
                "effectiveDateTime": _iso(when),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
        )

    def vitals(self, person: _Person, overrides: dict[str, Any], step: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, spec in self.data.labs["vitals"].items():
            if key == "weight":
                continue
            decimals = int(spec.get("decimals", 0))
            if key in overrides:
                series = overrides[key]
                base = float(series[min(step, len(series) - 1)])
                jitter = 0.2 if key == "temp" else base * 0.02
                out[key] = round(base + self.rng.uniform(-jitter, jitter), decimals)
            else:
                out[key] = _draw(self.rng, _by_sex(spec["normal"], person.sex), decimals)
            if decimals == 0:
                out[key] = float(int(out[key]))
        if person.age < 14 and "hr" not in overrides:
            out["hr"] = float(self.rng.randint(90, 120))
            out["rr"] = float(self.rng.randint(20, 28))
        return out

    def medication(
        self,
        spec: dict[str, Any],
        person: _Person,
        encounter: str,
        authored: datetime,
        *,
        active: bool,
        days: int | None,
        prescriber: str,
    ) -> str:
        if spec.get("if_beta_lactam_allergy") and any(
            a.get("beta_lactam") for a in person.allergies
        ):
            spec = spec["if_beta_lactam_allergy"]
        unit = str(spec["unit"])
        if "per_kg" in spec:
            dose = round(float(spec["per_kg"]) * person.weight_kg / 5) * 5 or float(spec["per_kg"])
        else:
            dose = float(spec["dose"])
        dose_value: float | int = int(dose) if float(dose).is_integer() else dose
        freq = str(spec["freq"])
        dose_quantity: dict[str, Any] = {"value": dose_value, "unit": unit}
        if unit in _DOSE_UCUM:
            dose_quantity.update({"system": UCUM, "code": _DOSE_UCUM[unit]})
        timing: dict[str, Any] = {"code": {"text": freq}}
        if freq in _TIMING:
            timing["repeat"] = dict(_TIMING[freq])
        dosage: dict[str, Any] = {
            "sequence": 1,
            "text": f"{dose_value}{unit} {spec['route']} {freq}",
            "timing": timing,
            "route": {"text": spec["route"]},
            "doseAndRate": [{"doseQuantity": dose_quantity}],
        }
        if freq == "prn":
            dosage["asNeededBoolean"] = True
        resource: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": "active" if active else "completed",
            "intent": "order",
            "medicationCodeableConcept": {"text": spec["drug"]},
            "subject": {"reference": self.patient_ref},
            "encounter": {"reference": encounter},
            "authoredOn": _iso(authored),
            "requester": {"display": prescriber},
            "dosageInstruction": [dosage],
        }
        supply = spec.get("days", days)
        dispense: dict[str, Any] = {}
        if supply:
            dispense["expectedSupplyDuration"] = {
                "value": int(supply),
                "unit": "天",
                "system": UCUM,
                "code": "d",
            }
        if spec.get("quantity"):
            dispense["quantity"] = {"value": int(spec["quantity"])}
        if dispense:
            resource["dispenseRequest"] = dispense
        return self.add(resource)

    def procedure(self, spec: dict[str, Any], encounter: str, start: datetime) -> str:
        return self.add(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {"coding": [{"system": ICD9CM, "code": spec["code"]}], "text": spec["zh"]},
                "subject": {"reference": self.patient_ref},
                "encounter": {"reference": encounter},
                "performedPeriod": {
                    "start": _iso(start),
                    "end": _iso(start + timedelta(minutes=75)),
                },
            }
        )

    def imaging(self, spec: dict[str, Any], encounter: str, start: datetime) -> str:
        modality = str(spec["modality"])
        per_series = {"CT": (180, 420), "MR": (20, 36), "DX": (1, 1), "US": (8, 24)}.get(
            modality, (1, 10)
        )
        series = []
        for number, description in enumerate(spec.get("series") or [spec["zh"]], start=1):
            series.append(
                {
                    "uid": f"2.25.{uuid.UUID(self.uuid()).int}",
                    "number": number,
                    "modality": {"system": DICOM_DCM, "code": modality},
                    "description": description,
                    "numberOfInstances": self.rng.randint(*per_series),
                    "bodySite": {"display": spec.get("body_part", "")},
                }
            )
        return self.add(
            {
                "resourceType": "ImagingStudy",
                "identifier": [
                    {
                        "system": "urn:dicom:uid",
                        "value": f"urn:oid:2.25.{uuid.UUID(self.uuid()).int}",
                    }
                ],
                "status": "available",
                "modality": [{"system": DICOM_DCM, "code": modality}],
                "subject": {"reference": self.patient_ref},
                "encounter": {"reference": encounter},
                "started": _iso(start),
                "numberOfSeries": len(series),
                "numberOfInstances": sum(s["numberOfInstances"] for s in series),
                "description": spec["zh"],
                "series": series,
            }
        )

    def allergy(self, person: _Person, recorded: datetime) -> None:
        for allergy in person.allergies:
            reaction = self.rng.choice(allergy["reactions"])
            self.add(
                {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "type": "allergy",
                    "category": [allergy["category"]],
                    "criticality": allergy["criticality"],
                    "code": {"text": allergy["substance"]},
                    "patient": {"reference": self.patient_ref},
                    "recordedDate": _iso(recorded),
                    "reaction": [{"manifestation": [{"text": reaction}]}],
                }
            )
            allergy_reaction = dict(allergy)
            allergy_reaction["reaction"] = reaction
            person.allergies[person.allergies.index(allergy)] = allergy_reaction

    def document(
        self, doc_type: str, text: str, encounter: str, when: datetime, author: str, start: datetime
    ) -> str:
        kind = document_types()[doc_type]
        return self.add(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "docStatus": "final",
                "type": {
                    "coding": [{"system": LOINC, "code": kind.loinc, "display": kind.en}],
                    "text": kind.zh,
                },
                "subject": {"reference": self.patient_ref},
                "date": _iso(when),
                "author": [{"display": author}],
                "description": kind.zh,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "language": "zh-CN",
                            "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                            "title": kind.zh,
                            "creation": _iso(when),
                        }
                    }
                ],
                "context": {
                    "encounter": [{"reference": encounter}],
                    "period": {"start": _iso(start)},
                },
            }
        )


# ---------------------------------------------------------------------------------------
# Documents


def _time_text(moment: datetime) -> str:
    return moment.astimezone(CST).strftime("%Y-%m-%d %H:%M")


def _labs_text(labs: list[_LabValue], *, only_abnormal: bool = False) -> str:
    parts = []
    for lab in labs:
        if only_abnormal and lab.flag in (None, "N"):
            continue
        arrow = _ARROWS.get(lab.flag or "", "")
        parts.append(
            f"{lab.zh} {_number_text(lab.value, lab.decimals)}{_unit_text(lab.unit)}{arrow}"
        )
    return "、".join(parts)


class _Writer:
    """Chinese clinical document text from a scenario and the generated facts."""

    def __init__(self, data: DemoData, rng: random.Random) -> None:
        self.phrases = data.phrases
        self.rng = rng

    def past_history(self, person: _Person, comorbidities: list[str]) -> str:
        parts = comorbidities or [self.phrases["past_none"]]
        parts.append(self.phrases["past_default"])
        if person.allergies:
            allergy = person.allergies[0]
            parts.append(
                _fill(
                    self.phrases["allergy"],
                    {
                        "substance": allergy["substance"],
                        "reaction": allergy.get("reaction", allergy["reactions"][0]),
                    },
                    "documents.yaml: allergy",
                )
            )
        else:
            parts.append(self.phrases["no_allergy"])
        parts.append(self.phrases["vaccination"])
        return "".join(parts)

    def personal(self, person: _Person) -> str:
        birthplace = f"{person.region['province']}{person.region['city'] if person.region['city'] != person.region['province'] else ''}"
        values = {"birthplace": birthplace, "birth_order": self.rng.randint(1, 2)}
        if person.age < 18:
            return _fill(
                self.phrases["personal"]["child"], values, "documents.yaml: personal.child"
            )
        if person.sex == "male" and self.rng.random() < 0.45:
            values.update(
                smoke_years=max(5, person.age - self.rng.randint(18, 30)),
                cigarettes=self.rng.choice([10, 15, 20, 30]),
                smoke_status=self.rng.choice(self.phrases["smoke_status"]),
            )
            return _fill(
                self.phrases["personal"]["smoker"], values, "documents.yaml: personal.smoker"
            )
        return _fill(
            self.phrases["personal"]["nonsmoker"], values, "documents.yaml: personal.nonsmoker"
        )

    def marital(self, person: _Person) -> str:
        values = {
            "marriage_age": self.rng.randint(22, 30),
            "children": self.rng.choice(self.phrases["children"]),
        }
        return _fill(self.phrases["marital"][person.marital], values, "documents.yaml: marital")

    def menstrual(self, person: _Person, admit: datetime) -> str | None:
        if person.sex != "female" or person.age < 12:
            return None
        values: dict[str, Any] = {"menarche": self.rng.randint(12, 15)}
        if person.age >= 52:
            values["menopause"] = self.rng.randint(48, 53)
            return _fill(
                self.phrases["menstrual"]["postmenopausal"], values, "documents.yaml: menstrual"
            )
        values["lmp"] = (admit - timedelta(days=self.rng.randint(5, 25))).strftime("%Y-%m-%d")
        return _fill(
            self.phrases["menstrual"]["premenopausal"], values, "documents.yaml: menstrual"
        )

    def family(self) -> str:
        return str(self.rng.choice(self.phrases["family"]))


def _sections(
    title: str, header: list[str], sections: list[tuple[str, str | None]], signature: str
) -> str:
    lines = [title, *(_LABEL_COLON.sub("：", line) for line in header), ""]
    lines += [f"{label}：{_chinese_punctuation(text)}" for label, text in sections if text]
    lines += ["", f"医师签名：{signature}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Patients


def _scenario_values(
    rng: random.Random, scenario: dict[str, Any], person: _Person
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "age": person.age,
        "sex": "男" if person.sex == "male" else "女",
        "years": rng.randint(2, 12),
        "months": rng.randint(2, 12),
    }
    for key, spec in (scenario.get("params") or {}).items():
        if isinstance(spec, list) and len(spec) == 2 and all(isinstance(v, int) for v in spec):
            values[key] = rng.randint(spec[0], spec[1])
        elif isinstance(spec, list):
            values[key] = rng.choice(spec)
    return values


def _lab_days(last_day: int) -> list[int]:
    return [d for d in (0, 1, 2, 3, 5, 7, 9, 11, 13) if d <= last_day]


def _build_inpatient(
    builder: _PatientBuilder, scenario: dict[str, Any], current: bool, used_ids: set[str]
) -> _Person:
    rng, anchor = builder.rng, builder.anchor
    writer = _Writer(builder.data, rng)
    where = f"scenarios.yaml: inpatient/{scenario['id']}"
    person = builder.person(float(scenario.get("male_share", 0.5)), scenario["age"], used_ids)
    builder.patient_resource(person)
    stay_days = rng.randint(*scenario["stay_days"])
    if current:
        admit = anchor - timedelta(days=rng.randint(1, 3), hours=rng.randint(0, 12))
        discharge: datetime | None = None
        last_day = (anchor - admit).days
    else:
        admit = anchor - timedelta(days=rng.randint(stay_days + 2, 150), hours=rng.randint(0, 12))
        admit = admit.replace(minute=rng.choice([5, 15, 20, 30, 40, 50]), second=0, microsecond=0)
        discharge = (admit + timedelta(days=stay_days)).replace(
            hour=rng.randint(9, 11), minute=rng.choice([0, 15, 30])
        )
        last_day = stay_days
    values = _scenario_values(rng, scenario, person)
    dept_code = scenario["department"]
    dept = builder.department(dept_code)
    resident, attending = dept["resident"], dept["attending"]
    patient_word = "患儿" if person.age < 14 else "患者"

    # Comorbidities (problem list) and allergy, recorded at admission.
    comorbid_text: list[str] = []
    comorbid_dx: list[dict[str, Any]] = []
    for comorbidity in scenario.get("comorbidities") or []:
        if rng.random() < float(comorbidity.get("p", 0.5)):
            years = rng.randint(2, 15)
            comorbid_text.append(_fill(comorbidity["history"], {**values, "years": years}, where))
            comorbid_dx.append(comorbidity)
            builder.condition(
                comorbidity,
                encounter=None,
                recorded=admit + timedelta(hours=2),
                onset=date(max(person.birth.year + 18, admit.year - years), 1, 1),
                active=True,
                category="problem-list-item",
            )
    builder.allergy(person, admit + timedelta(hours=1))

    via = scenario.get("via_emergency")
    if via:
        ed_start = admit - timedelta(hours=rng.randint(2, 4))
        ed_ref = builder.encounter("emergency", "emergency", ed_start, admit, via["zh"])
        builder.condition(
            via,
            encounter=ed_ref,
            recorded=ed_start + timedelta(minutes=20),
            onset=ed_start - timedelta(hours=values.get("hours", 2)),
            active=False,
            category="encounter-diagnosis",
        )
        ed = builder.department("emergency")
        ed_text = _sections(
            "急诊病历",
            [f"就诊时间:{_time_text(ed_start)}  科室:急诊科"],
            [
                ("主诉", _fill(scenario["chief_complaint"], values, where) + "。"),
                ("现病史", _fill(scenario["history"], values, where)),
                ("初步诊断", via["zh"]),
                ("处理", f"心电监护,急查心电图、心肌标志物,请{dept['zh']}会诊后收入院。"),
            ],
            ed["resident"],
        )
        builder.document(
            "outpatient",
            ed_text,
            ed_ref,
            ed_start + timedelta(minutes=30),
            ed["resident"],
            ed_start,
        )

    bed = f"{rng.randint(1, 45)}床"
    encounter = builder.encounter(
        "inpatient", dept_code, admit, discharge, scenario["diagnosis"]["zh"], bed
    )
    chronic = str(scenario["diagnosis"]["icd10"]).startswith(_CHRONIC_PREFIXES)
    builder.condition(
        scenario["diagnosis"],
        encounter=encounter,
        recorded=admit + timedelta(hours=3),
        onset=admit - timedelta(days=rng.randint(1, 5)),
        active=current or chronic,
        category="encounter-diagnosis",
    )

    # Vital signs (daily) and weight.
    vital_trend = (scenario.get("vitals") or {}).get("trend", {})
    day0_vitals: dict[str, float] = {}
    for step, day in enumerate(_lab_days(last_day)):
        moment = (
            admit + timedelta(minutes=40)
            if day == 0
            else (admit + timedelta(days=day)).replace(hour=8, minute=rng.randint(0, 30))
        )
        if moment >= anchor:
            break
        vitals = builder.vitals(person, vital_trend, step)
        if day == 0:
            day0_vitals = vitals
        for key, value in vitals.items():
            builder.observation_vital(key, value, encounter, moment)
    builder.observation_vital("weight", person.weight_kg, encounter, admit + timedelta(minutes=45))
    values.update({k: (int(v) if k != "temp" else v) for k, v in day0_vitals.items()})

    # Laboratory results.
    lab_spec = scenario.get("labs") or {}
    trend = lab_spec.get("trend", {})
    panels = builder.data.labs["panels"]
    labs_by_day: dict[int, list[_LabValue]] = {}
    for step, day in enumerate(_lab_days(last_day)):
        drawn = (
            admit + timedelta(minutes=90)
            if day == 0
            else (admit + timedelta(days=day)).replace(hour=6, minute=rng.randint(10, 50))
        )
        if drawn >= anchor:
            break
        names = lab_spec.get("admission", []) if day == 0 else lab_spec.get("follow_up", [])
        keys = list(dict.fromkeys(k for panel in names for k in panels[panel]))
        if day == 0:
            keys += [k for k in trend if k not in keys]
        results = [builder.lab_value(key, person, trend, step) for key in keys]
        for lab in results:
            builder.observation_lab(lab, person, encounter, drawn)
        labs_by_day[day] = results

    # Orders, procedures, imaging.
    for spec in scenario.get("meds") or []:
        start_day = int(spec.get("day", 0))
        authored = admit + timedelta(days=start_day, hours=1, minutes=rng.randint(0, 40))
        if authored >= anchor or start_day > last_day:
            continue
        builder.medication(
            spec,
            person,
            encounter,
            authored,
            active=current,
            days=max(1, last_day - start_day),
            prescriber=resident,
        )
    procedure_texts = []
    for spec in scenario.get("procedures") or []:
        start = (admit + timedelta(days=int(spec["day"]))).replace(
            hour=10 + rng.randint(0, 5), minute=0
        )
        if start < anchor and int(spec["day"]) <= last_day:
            builder.procedure(spec, encounter, start)
            procedure_texts.append(f"{start:%Y-%m-%d}行{spec['zh']}")
    if scenario.get("imaging"):
        spec = scenario["imaging"]
        start = admit + timedelta(days=int(spec.get("day", 0)), hours=2)
        if start < anchor:
            builder.imaging(spec, encounter, start)

    # Documents.
    diagnoses = [scenario["diagnosis"]["zh"], *[c["zh"] for c in comorbid_dx]]
    diagnosis_text = " ".join(f"{n}.{d}" for n, d in enumerate(diagnoses, start=1))
    cc = _fill(scenario["chief_complaint"], values, where)
    exam_general = (
        f"T {values.get('temp', 36.5)}℃ P {values.get('hr', 80)}次/分 R {values.get('rr', 18)}次/分 "
        f"BP {values.get('sbp', 120)}/{values.get('dbp', 80)}mmHg。"
    )
    exam = exam_general + _fill(scenario["exam"], values, where)
    day0_labs = labs_by_day.get(0, [])
    aux = "".join(
        [
            _fill(scenario.get("aux", ""), values, where),
            f"入院化验:{_labs_text(day0_labs)}。" if day0_labs else "",
        ]
    )
    past = writer.past_history(person, comorbid_text)
    record_time = admit + timedelta(hours=3, minutes=rng.randint(0, 50))
    header = [
        f"姓名:{person.name}  性别:{values['sex']}  年龄:{person.age}岁",
        f"民族:{person.ethnicity}  职业:{person.occupation}  科室:{dept['zh']}  床号:{bed}",
        f"住址:{person.address}",
        f"入院时间:{_time_text(admit)}  记录时间:{_time_text(record_time)}",
        f"病史陈述者:{builder.data.phrases['informant']['child' if person.age < 14 else 'adult']}",
    ]
    admission = _sections(
        "入院记录",
        header,
        [
            ("主诉", cc + "。"),
            ("现病史", _fill(scenario["history"], values, where)),
            ("既往史", past),
            ("个人史", writer.personal(person)),
            ("婚育史", writer.marital(person)),
            ("月经史", writer.menstrual(person, admit)),
            ("家族史", writer.family()),
            ("体格检查", exam),
            ("辅助检查", aux),
            ("初步诊断", diagnosis_text),
        ],
        resident,
    )
    builder.document("admission", admission, encounter, record_time, resident, admit)

    first_time = admit + timedelta(hours=2, minutes=rng.randint(0, 50))
    features = [
        f"{'老年' if person.age >= 65 else '儿童' if person.age < 14 else '中青年' if person.age < 45 else '中年'}{values['sex']}性,{scenario.get('onset', '急性起病')}。",
        f"主诉:{cc}。",
        f"既往史:{''.join(comorbid_text) or '既往体健。'}"
        + (f"{person.allergies[0]['substance']}过敏。" if person.allergies else ""),
        f"查体:{exam}",
        f"辅助检查:{aux or '待完善。'}",
    ]
    first_course = _sections(
        "首次病程记录",
        [
            f"记录时间:{_time_text(first_time)}",
            f"{patient_word}{person.name},{values['sex']},{person.age}岁,因“{cc}”于{_time_text(admit)}入院。",
        ],
        [
            ("病例特点", " ".join(f"{n}.{t}" for n, t in enumerate(features, start=1))),
            ("诊断依据", _fill(scenario["basis"], values, where)),
            ("鉴别诊断", _fill(scenario["differential"], values, where)),
            ("初步诊断", diagnosis_text),
            ("诊疗计划", _fill(scenario["plan"], values, where)),
        ],
        resident,
    )
    builder.document("first_course", first_course, encounter, first_time, resident, admit)

    course_notes = scenario.get("course") or []
    for n, day in enumerate(range(1, last_day)):
        if n >= len(course_notes):
            break
        when = (admit + timedelta(days=day)).replace(hour=10, minute=rng.randint(0, 59))
        if when >= anchor:
            break
        day_labs = labs_by_day.get(day) or []
        lab_sentence = f"今日复查:{_labs_text(day_labs)}。" if day_labs else ""
        signer = attending if "主治医师查房" in course_notes[n] else resident
        text = _sections(
            "日常病程记录",
            [f"记录时间:{_time_text(when)}"],
            [
                ("病情记录", _fill(course_notes[n], values, where) + lab_sentence),
                ("处理意见", str(rng.choice(builder.data.phrases["daily_plan"]))),
            ],
            signer,
        )
        builder.document("course", text, encounter, when, signer, admit)

    if discharge is not None:
        last_labs = labs_by_day[max(labs_by_day)] if labs_by_day else []
        treatment = _fill(scenario["treatment"], values, where)
        if procedure_texts:
            treatment += "住院期间" + ",".join(procedure_texts) + "。"
        if last_labs:
            treatment += f"出院前复查:{_labs_text(last_labs)}。"
        discharge_text = _sections(
            "出院记录",
            [
                f"姓名:{person.name}  性别:{values['sex']}  年龄:{person.age}岁  科室:{dept['zh']}",
                f"入院时间:{_time_text(admit)}  出院时间:{_time_text(discharge)}  住院天数:{stay_days}天",
            ],
            [
                ("入院情况", f"{patient_word}因“{cc}”入院。查体:{exam}"),
                ("入院诊断", diagnosis_text),
                ("诊疗经过", treatment),
                ("出院诊断", diagnosis_text),
                ("出院情况", _fill(scenario["discharge_status"], values, where)),
                ("出院医嘱", _fill(scenario["discharge_advice"], values, where)),
            ],
            resident,
        )
        builder.document(
            "discharge",
            discharge_text,
            encounter,
            discharge - timedelta(minutes=30),
            resident,
            admit,
        )
    return person


def _build_visit(
    builder: _PatientBuilder,
    visit: dict[str, Any],
    person: _Person,
    start: datetime,
) -> None:
    rng = builder.rng
    where = f"scenarios.yaml: visits/{visit['id']}"
    values = _scenario_values(rng, visit, person)
    kind = str(visit["kind"])
    dept_code = visit["department"]
    dept = builder.department(dept_code)
    end = start + timedelta(
        minutes=rng.randint(15, 40) if kind == "outpatient" else rng.randint(120, 360)
    )
    encounter = builder.encounter(kind, dept_code, start, end, visit["diagnosis"]["zh"])
    builder.condition(
        visit["diagnosis"],
        encounter=encounter,
        recorded=start + timedelta(minutes=15),
        onset=start - timedelta(days=rng.randint(1, 30)),
        active=True,
        category="encounter-diagnosis",
    )
    vitals = builder.vitals(person, visit.get("vitals") or {}, 0)
    for key in ("temp", "hr", "sbp", "dbp"):
        builder.observation_vital(key, vitals[key], encounter, start + timedelta(minutes=5))
    values.update({k: (int(v) if k != "temp" else v) for k, v in vitals.items()})
    lab_spec = visit.get("labs") or {}
    results: list[_LabValue] = []
    if lab_spec:
        panels = builder.data.labs["panels"]
        keys = list(dict.fromkeys(k for panel in lab_spec.get("panels", []) for k in panels[panel]))
        drawn = start + timedelta(minutes=20)
        results = [builder.lab_value(key, person, lab_spec.get("trend", {}), 0) for key in keys]
        for lab in results:
            builder.observation_lab(lab, person, encounter, drawn)
    for spec in visit.get("meds") or []:
        builder.medication(
            spec,
            person,
            encounter,
            start + timedelta(minutes=25),
            active=False,
            days=spec.get("days"),
            prescriber=dept["resident"],
        )
    for spec in visit.get("procedures") or []:
        builder.procedure(spec, encounter, start + timedelta(minutes=40))
    if visit.get("imaging"):
        builder.imaging(visit["imaging"], encounter, start + timedelta(minutes=45))
    writer = _Writer(builder.data, rng)
    text = _sections(
        "急诊病历" if kind == "emergency" else "门诊病历",
        [
            f"就诊时间:{_time_text(start)}  科室:{dept['zh']}",
            f"姓名:{person.name}  性别:{values['sex']}  年龄:{person.age}岁",
        ],
        [
            ("主诉", _fill(visit["chief_complaint"], values, where) + "。"),
            ("现病史", _fill(visit["history"], values, where)),
            ("既往史", writer.past_history(person, [])),
            ("体格检查", _fill(visit["exam"], values, where)),
            ("辅助检查", f"{_labs_text(results)}。" if results else None),
            ("初步诊断", visit["diagnosis"]["zh"]),
            ("处理", _fill(visit["plan"], values, where)),
        ],
        dept["resident"],
    )
    builder.document(
        "outpatient", text, encounter, end - timedelta(minutes=5), dept["resident"], start
    )


def _visit_fits(visit: dict[str, Any], person: _Person) -> bool:
    low, high = visit.get("age", [0, 120])
    if not low <= person.age <= high:
        return False
    return not (visit.get("female_only") and person.sex != "female")


def generate_patient_bundle(
    index: int,
    *,
    seed: int = DEFAULT_SEED,
    anchor: datetime = DEFAULT_ANCHOR,
    used_ids: set[str] | None = None,
) -> dict[str, Any]:
    """The transaction Bundle of demo patient ``index`` (0-based); depends on (seed, index).

    ``used_ids`` collects the 身份证 numbers already handed out, so a batch never repeats one.
    """
    data = load_demo_data()
    scenarios = list(data.scenarios["inpatient"])
    visits = list(data.scenarios["visits"])
    random.Random(seed).shuffle(scenarios)
    rng = random.Random(seed * 1_000_003 + index)
    builder = _PatientBuilder(data, rng, index, anchor)
    used_ids = used_ids if used_ids is not None else set()
    # Every sixth patient is seen only in clinics; the others have a hospital stay.
    if index % 6 == 5:
        ambulatory = [v for v in visits if v["kind"] == "outpatient"]
        visit = ambulatory[(index // 6) % len(ambulatory)]
        person = builder.person(0.0 if visit.get("female_only") else 0.5, visit["age"], used_ids)
        builder.patient_resource(person)
        builder.allergy(person, anchor - timedelta(days=400))
        start = (anchor - timedelta(days=rng.randint(3, 120))).replace(
            hour=rng.randint(8, 16), minute=rng.choice([0, 10, 20, 30, 40, 50])
        )
        _build_visit(builder, visit, person, start)
        others = [v for v in visits if v is not visit and _visit_fits(v, person)]
        if others and rng.random() < 0.6:
            extra = rng.choice(others)
            start2 = (anchor - timedelta(days=rng.randint(130, 360))).replace(
                hour=rng.randint(8, 20), minute=rng.choice([5, 25, 45])
            )
            _build_visit(builder, extra, person, start2)
        return builder.bundle()
    inpatient_number = index - index // 6
    scenario = scenarios[inpatient_number % len(scenarios)]
    current = inpatient_number % 4 == 1
    person = _build_inpatient(builder, scenario, current, used_ids)
    # Some inpatients were also seen in a clinic or the emergency department months ago.
    if rng.random() < 0.35:
        candidates = [v for v in visits if _visit_fits(v, person)]
        if candidates:
            visit = rng.choice(candidates)
            start = (anchor - timedelta(days=rng.randint(160, 400))).replace(
                hour=rng.randint(8, 20), minute=rng.choice([0, 20, 40])
            )
            _build_visit(builder, visit, person, start)
    return builder.bundle()


def generate_bundles(
    patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED, *, anchor: datetime = DEFAULT_ANCHOR
) -> list[dict[str, Any]]:
    """``patients`` transaction Bundles, one per patient, reproducible for a given seed."""
    if patients < 1:
        raise ValueError("patients must be at least 1")
    used_ids: set[str] = set()
    return [
        generate_patient_bundle(i, seed=seed, anchor=anchor, used_ids=used_ids)
        for i in range(patients)
    ]
