"""A small synthetic hospital for API, browser and benchmark tests.

Four patients with Chinese names, one user per role (the ``patient`` user is 李四), documents
with versions, lab series with abnormal flags, medications, conditions, an allergy, and one
open finding per clinical role about 张三. All data is invented.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache

from sqlalchemy.orm import Session

from medbrain.api.security import CLINICAL_ROLES, ROLES, hash_password
from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.interop.fhir.names import name_keys
from medbrain.store.findings import save_findings
from medbrain.store.models import (
    AllergyIntolerance,
    Condition,
    Document,
    DocumentVersion,
    Encounter,
    MedicationRequest,
    Observation,
    Patient,
    User,
)

BASE_TIME = datetime(2025, 3, 1, 1, 30, tzinfo=UTC)

PATIENTS: tuple[tuple[str, str, str, str, date], ...] = (
    # key, name, mrn, sex, birth date
    ("zhangsan", "张三", "MRN0001", "male", date(1958, 4, 12)),
    ("lisi", "李四", "MRN0002", "female", date(1971, 9, 3)),
    ("wangxiaoming", "王小明", "MRN0003", "male", date(1990, 1, 20)),
    ("zengxiaohua", "曾小华", "MRN0004", "female", date(1985, 6, 30)),
)

ADMISSION_V1 = "主诉:反复咳嗽、咳痰3天,发热1天。\n现病史:患者3天前受凉后出现咳嗽。"
ADMISSION_V2 = ADMISSION_V1 + "\n既往史:高血压病史10年,规律服用氨氯地平。"


def password_of(role: str) -> str:
    return f"{role}-test-pass"


@cache
def password_hash_of(role: str) -> str:
    """Argon2 is slow on purpose (≈ 0.4 s here); hash each test password once per process."""
    return hash_password(password_of(role))


@dataclass
class World:
    patients: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    documents: dict[str, int] = field(default_factory=dict)

    @property
    def own_patient_id(self) -> int:
        """The record the ``patient`` user may read."""
        return self.patients["lisi"]

    @property
    def other_patient_id(self) -> int:
        return self.patients["zhangsan"]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _labs(patient_id: int, encounter_id: int, potassium: list[float]) -> list[Observation]:
    rows = []
    for day, value in enumerate(potassium):
        flag = "HH" if value >= 6.5 else "H" if value > 5.3 else "L" if value < 3.5 else "N"
        rows.append(
            Observation(
                patient_id=patient_id,
                encounter_id=encounter_id,
                code="2823-3",
                display="血钾",
                value_num=value,
                unit="mmol/L",
                ref_low=3.5,
                ref_high=5.3,
                abnormal_flag=flag,
                effective_at=BASE_TIME + timedelta(days=day, hours=2),
            )
        )
    for day, value in enumerate([112.0, 104.0, 98.0]):
        rows.append(
            Observation(
                patient_id=patient_id,
                encounter_id=encounter_id,
                code="718-7",
                display="血红蛋白",
                value_num=value,
                unit="g/L",
                ref_low=115.0,
                ref_high=150.0,
                abnormal_flag="L",
                effective_at=BASE_TIME + timedelta(days=day, hours=2),
            )
        )
    rows.append(
        Observation(
            patient_id=patient_id,
            encounter_id=encounter_id,
            code="2160-0",
            display="肌酐",
            value_num=80.0,
            unit="umol/L",
            ref_low=57.0,
            ref_high=111.0,
            abnormal_flag="N",
            effective_at=BASE_TIME + timedelta(hours=2),
        )
    )
    return rows


def seed_world(session: Session, *, users: bool = True) -> World:
    """Insert the synthetic hospital; the caller commits."""
    world = World()
    for key, name, mrn, sex, birth in PATIENTS:
        keys = name_keys(name, family=name[0])
        patient = Patient(
            mrn=mrn,
            name=name,
            name_pinyin=keys.pinyin,
            name_initials=keys.initials,
            sex=sex,
            birth_date=birth,
            phone="13800138000",
        )
        session.add(patient)
        session.flush()
        world.patients[key] = patient.id
        encounter = Encounter(
            patient_id=patient.id,
            kind="inpatient",
            department="呼吸内科",
            status="finished",
            reason="社区获得性肺炎",
            admit_time=BASE_TIME,
            discharge_time=BASE_TIME + timedelta(days=6),
        )
        session.add(encounter)
        session.flush()
        document = Document(
            patient_id=patient.id,
            encounter_id=encounter.id,
            doc_type="admission",
            title="入院记录",
            created_at=BASE_TIME,
        )
        session.add(document)
        session.flush()
        world.documents[key] = document.id
        texts = [ADMISSION_V1, ADMISSION_V2] if key == "zhangsan" else [ADMISSION_V1]
        for number, text in enumerate(texts, start=1):
            session.add(
                DocumentVersion(
                    document_id=document.id,
                    version=number,
                    text=text,
                    content_sha256=_sha(text),
                    author="李医生",
                    authored_at=BASE_TIME + timedelta(hours=number),
                )
            )
        session.add_all(_labs(patient.id, encounter.id, [4.1, 5.0, 5.9]))
        session.add(
            MedicationRequest(
                patient_id=patient.id,
                encounter_id=encounter.id,
                drug="阿莫西林胶囊",
                dose_value=0.5,
                dose_unit="g",
                route="po",
                frequency="tid",
                days=5,
                status="active",
                authored_at=BASE_TIME,
            )
        )
        session.add(
            Condition(
                patient_id=patient.id,
                encounter_id=encounter.id,
                icd10_code="J18.9",
                text="社区获得性肺炎",
                clinical_status="active",
                recorded_at=BASE_TIME,
            )
        )
        if key == "zhangsan":
            session.add(
                AllergyIntolerance(
                    patient_id=patient.id,
                    substance="青霉素",
                    category="medication",
                    criticality="high",
                    reaction="皮疹",
                )
            )
    session.flush()
    if users:
        for role in ROLES:
            user = User(
                username=role,
                display_name=f"测试{role}",
                role=role,
                password_hash=password_hash_of(role),
                patient_id=world.own_patient_id if role == "patient" else None,
            )
            session.add(user)
            session.flush()
            world.users[role] = user.id
    for role in CLINICAL_ROLES:
        finding = Finding(
            rule_id=f"test.{role}.example",
            category="interaction",
            severity=Severity.CRITICAL if role == "pharmacist" else Severity.WARNING,
            message=f"{role} 的测试发现:华法林与布洛芬合用增加出血风险",
            suggestion="停用布洛芬,改用对乙酰氨基酚",
            evidence=(Evidence(source="药品说明书(测试)"),),
            confidence=0.6 if role == "doctor" else 0.95,
            needs_review=role == "doctor",
        )
        [row] = save_findings(
            session,
            [finding],
            engine="rx",
            target_role=role,
            patient_id=world.patients["zhangsan"],
        )
        world.findings[role] = row.id
    session.flush()
    return world
