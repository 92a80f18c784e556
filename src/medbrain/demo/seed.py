"""Seed an instance with synthetic demo data, once.

``seed_demo`` imports the generated FHIR Bundles through the ordinary importer, creates one
demo account per role and a handful of open, clearly synthetic findings (rule ids under
``demo.``) that cite real seeded resources, so every role's inbox shows something. A second
call finds the first demo patient (MRN ``DM000001``) and does nothing.

Demo accounts (username / password / role), also listed in the README:

============  ===================  ==========
username      password             role
============  ===================  ==========
doctor        doctor-demo          doctor
pharmacist    pharmacist-demo      pharmacist
nurse         nurse-demo           nurse
radiologist   radiologist-demo     radiologist
qc_officer    qc_officer-demo      qc_officer
admin         admin-demo           admin
patient       patient-demo         patient (linked to demo patient DM000001)
============  ===================  ==========

These passwords are public: never seed demo data into an instance that holds real patients.

References
----------
DESIGN.md §2 (Finding) and §4 (``make run`` seeds synthetic demo data once); RFC 9106
(Argon2id password hashes, via :func:`medbrain.api.security.hash_password`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medbrain.core.config import Settings
from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.demo.generator import (
    DEFAULT_ANCHOR,
    DEFAULT_PATIENTS,
    DEFAULT_SEED,
    demo_mrn,
    generate_bundles,
)
from medbrain.interop.fhir.importer import import_bundle
from medbrain.store import models as m

DEMO_SOURCE = (
    "演示数据:合成发现,仅用于界面演示,不是临床建议 / synthetic demo finding, not clinical advice"
)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    username: str
    password: str
    role: str
    display_name: str
    department: str | None = None


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("doctor", "doctor-demo", "doctor", "李建华 医生", "心内科"),
    DemoAccount("pharmacist", "pharmacist-demo", "pharmacist", "王静 药师", "药学部"),
    DemoAccount("nurse", "nurse-demo", "nurse", "张丽 护士", "心内科"),
    DemoAccount("radiologist", "radiologist-demo", "radiologist", "陈磊 放射科医师", "放射科"),
    DemoAccount("qc_officer", "qc_officer-demo", "qc_officer", "刘敏 质控员", "医务部"),
    DemoAccount("admin", "admin-demo", "admin", "系统管理员", None),
    DemoAccount("patient", "patient-demo", "patient", "演示患者", None),
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    """``seeded`` is False when demo data was already there (nothing was written)."""

    seeded: bool
    patients: int = 0
    imported: dict[str, int] = field(default_factory=dict)
    users: tuple[str, ...] = ()
    findings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeded": self.seeded,
            "patients": self.patients,
            "imported": dict(self.imported),
            "users": list(self.users),
            "findings": self.findings,
        }


def demo_present(session: Session) -> bool:
    return session.scalar(select(m.Patient.id).where(m.Patient.mrn == demo_mrn(0))) is not None


def seed_demo(
    session: Session,
    *,
    patients: int = DEFAULT_PATIENTS,
    seed: int = DEFAULT_SEED,
    anchor: datetime = DEFAULT_ANCHOR,
    audit: bool = True,
) -> SeedResult:
    """Import ``patients`` generated patients, demo accounts and demo findings, once.

    Runs in the caller's transaction; the caller commits. ``audit`` appends one
    ``demo.seed`` entry to the audit chain (as ``system``/``admin``).
    """
    if demo_present(session):
        return SeedResult(seeded=False)
    from medbrain.api.security import hash_password

    imported: Counter[str] = Counter()
    first_patient_id: int | None = None
    for bundle in generate_bundles(patients, seed, anchor=anchor):
        result = import_bundle(session, bundle, source=f"demo/{bundle['id']}", now=anchor)
        imported.update(result.imported)
        if first_patient_id is None and result.patient_ids:
            first_patient_id = result.patient_ids[0]

    created: list[str] = []
    existing = set(session.scalars(select(m.User.username)))
    for account in DEMO_ACCOUNTS:
        if account.username in existing:
            continue  # an operator's own account of that name is left alone
        display = account.display_name
        if account.role == "patient" and first_patient_id is not None:
            linked = session.get(m.Patient, first_patient_id)
            display = linked.name if linked is not None else display
        session.add(
            m.User(
                username=account.username,
                display_name=display,
                role=account.role,
                password_hash=hash_password(account.password),
                patient_id=first_patient_id if account.role == "patient" else None,
                department=account.department,
                active=True,
            )
        )
        created.append(account.username)
    session.flush()
    findings = _seed_findings(session, first_patient_id)
    if audit:
        from medbrain.audit import chain

        chain.append(
            session,
            who="system",
            role="admin",
            action="demo.seed",
            resource="Bundle/demo",
            detail={
                "patients": patients,
                "seed": seed,
                "findings": findings,
                "users": len(created),
            },
        )
    return SeedResult(
        seeded=True,
        patients=patients,
        imported=dict(sorted(imported.items())),
        users=tuple(created),
        findings=findings,
    )


# ---------------------------------------------------------------------------------------
# Demo findings: one or more per role, each quoting the seeded resource it is about.


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _obs_quote(row: m.Observation) -> str:
    return f"{row.display} {_number(row.value_num)} {row.unit or ''}".strip()


def _top_observation(
    session: Session, codes: tuple[str, ...], *, lowest: bool = False
) -> m.Observation | None:
    order = m.Observation.value_num.asc() if lowest else m.Observation.value_num.desc()
    query = (
        select(m.Observation)
        .where(m.Observation.code.in_(codes), m.Observation.value_num.is_not(None))
        .order_by(order, m.Observation.id)
        .limit(1)
    )
    return session.scalar(query)


def _save(
    session: Session,
    finding: Finding,
    *,
    role: str,
    patient_id: int | None,
    encounter_id: int | None,
    subject: str | None,
) -> int:
    from medbrain.store.findings import save_findings

    save_findings(
        session,
        [finding],
        engine="demo",
        target_role=role,
        patient_id=patient_id,
        encounter_id=encounter_id,
        subject=subject,
    )
    return 1


def _seed_findings(session: Session, linked_patient_id: int | None) -> int:
    count = 0
    source = Evidence(source=DEMO_SOURCE)

    potassium = _top_observation(session, ("2823-3",))
    if potassium is not None:
        subject = f"Observation/{potassium.fhir_id}"
        count += _save(
            session,
            Finding(
                rule_id="demo.alerts.potassium-high",
                category="critical_value",
                severity=Severity.CRITICAL,
                message=f"血钾 {_number(potassium.value_num)} {potassium.unit},高于参考上限 {_number(potassium.ref_high)}(演示)",
                suggestion="复查血钾,心电监护,评估降钾治疗(演示)",
                evidence=(Evidence(resource=subject, quote=_obs_quote(potassium)), source),
                confidence=0.95,
                extra={"demo": True},
            ),
            role="doctor",
            patient_id=potassium.patient_id,
            encounter_id=potassium.encounter_id,
            subject=subject,
        )

    creatinine = _top_observation(session, ("14682-9",))
    if creatinine is not None:
        subject = f"Observation/{creatinine.fhir_id}"
        count += _save(
            session,
            Finding(
                rule_id="demo.alerts.creatinine-high",
                category="aki",
                severity=Severity.WARNING,
                message=f"血肌酐 {_number(creatinine.value_num)} {creatinine.unit},明显升高(演示)",
                suggestion="对照基线评估急性肾损伤,复核经肾排泄药物剂量(演示)",
                evidence=(Evidence(resource=subject, quote=_obs_quote(creatinine)), source),
                confidence=0.9,
                extra={"demo": True},
            ),
            role="doctor",
            patient_id=creatinine.patient_id,
            encounter_id=creatinine.encounter_id,
            subject=subject,
        )
        order = session.scalar(
            select(m.MedicationRequest)
            .where(m.MedicationRequest.patient_id == creatinine.patient_id)
            .order_by(m.MedicationRequest.id)
            .limit(1)
        )
        if order is not None:
            order_subject = f"MedicationRequest/{order.fhir_id}"
            dose = f"{_number(order.dose_value)}{order.dose_unit or ''} {order.route or ''} {order.frequency or ''}".strip()
            count += _save(
                session,
                Finding(
                    rule_id="demo.rx.renal-review",
                    category="renal",
                    severity=Severity.WARNING,
                    message=f"{order.drug} 与血肌酐 {_number(creatinine.value_num)} {creatinine.unit} 同时存在,请复核剂量(演示)",
                    suggestion="按肾功能核对剂量与给药间隔(演示)",
                    evidence=(
                        Evidence(resource=order_subject, quote=f"{order.drug} {dose}".strip()),
                        Evidence(resource=subject, quote=_obs_quote(creatinine)),
                        source,
                    ),
                    confidence=0.8,
                    extra={"demo": True, "drugs": [order.drug]},
                ),
                role="pharmacist",
                patient_id=order.patient_id,
                encounter_id=order.encounter_id,
                subject=order_subject,
            )

    glucose = _top_observation(session, ("14749-6",))
    if glucose is not None:
        subject = f"Observation/{glucose.fhir_id}"
        count += _save(
            session,
            Finding(
                rule_id="demo.nursing.glucose-high",
                category="trend",
                severity=Severity.WARNING,
                message=f"血糖 {_number(glucose.value_num)} {glucose.unit},请按医嘱加测指尖血糖(演示)",
                suggestion="餐前及睡前监测指尖血糖,异常时通知医生(演示)",
                evidence=(Evidence(resource=subject, quote=_obs_quote(glucose)), source),
                confidence=0.9,
                extra={"demo": True},
            ),
            role="nurse",
            patient_id=glucose.patient_id,
            encounter_id=glucose.encounter_id,
            subject=subject,
        )

    sodium = _top_observation(session, ("2951-2",), lowest=True)
    if sodium is not None:
        subject = f"Observation/{sodium.fhir_id}"
        count += _save(
            session,
            Finding(
                rule_id="demo.nursing.sodium-low",
                category="electrolyte",
                severity=Severity.WARNING,
                message=f"血钠 {_number(sodium.value_num)} {sodium.unit},低于参考下限,注意出入量及神志变化(演示)",
                suggestion="记录24小时出入量,按医嘱限水(演示)",
                evidence=(Evidence(resource=subject, quote=_obs_quote(sodium)), source),
                confidence=0.9,
                extra={"demo": True},
            ),
            role="nurse",
            patient_id=sodium.patient_id,
            encounter_id=sodium.encounter_id,
            subject=subject,
        )

    study = session.scalar(select(m.ImagingStudy).order_by(m.ImagingStudy.id).limit(1))
    if study is not None:
        subject = f"ImagingStudy/{study.fhir_id}"
        count += _save(
            session,
            Finding(
                rule_id="demo.imaging.awaiting-report",
                category="imaging",
                severity=Severity.INFO,
                message=f"{study.description} 待出具报告(演示)",
                suggestion="阅片并出具结构化报告(演示)",
                evidence=(Evidence(resource=subject, quote=study.description or ""), source),
                confidence=1.0,
                extra={"demo": True},
            ),
            role="radiologist",
            patient_id=study.patient_id,
            encounter_id=study.encounter_id,
            subject=subject,
        )

    admission = session.execute(
        select(m.Document, m.DocumentVersion)
        .join(m.DocumentVersion, m.DocumentVersion.document_id == m.Document.id)
        .where(m.Document.doc_type == "admission")
        .order_by(m.Document.id)
        .limit(1)
    ).first()
    if admission is not None:
        document, version = admission
        line = next(
            (x for x in version.text.splitlines() if x.startswith("主诉")), version.text[:40]
        )
        subject = f"DocumentReference/{document.fhir_id}"
        count += _save(
            session,
            Finding(
                rule_id="demo.qc.review-admission-note",
                category="content",
                severity=Severity.INFO,
                message="入院记录待质控抽查(演示)",
                suggestion="核对主诉、现病史与诊断的一致性(演示)",
                evidence=(Evidence(document="admission", resource=subject, quote=line), source),
                confidence=1.0,
                extra={"demo": True, "document": "admission", "section": "主诉"},
            ),
            role="qc_officer",
            patient_id=document.patient_id,
            encounter_id=document.encounter_id,
            subject=subject,
        )

    patients = session.scalar(select(func.count()).select_from(m.Patient)) or 0
    count += _save(
        session,
        Finding(
            rule_id="demo.admin.demo-data-present",
            category="data_quality",
            severity=Severity.INFO,
            message=f"本实例含 {patients} 名合成演示患者,不得录入真实患者数据(演示)",
            suggestion="正式使用前请新建实例或清空演示数据(演示)",
            evidence=(source,),
            confidence=1.0,
            extra={"demo": True},
        ),
        role="admin",
        patient_id=None,
        encounter_id=None,
        subject=None,
    )

    if linked_patient_id is not None:
        latest = session.scalar(
            select(m.Observation)
            .where(
                m.Observation.patient_id == linked_patient_id,
                m.Observation.value_num.is_not(None),
                m.Observation.category == "laboratory",
            )
            .order_by(m.Observation.effective_at.desc(), m.Observation.id)
            .limit(1)
        )
        if latest is not None:
            subject = f"Observation/{latest.fhir_id}"
            count += _save(
                session,
                Finding(
                    rule_id="demo.patient.follow-up-reminder",
                    category="follow_up",
                    severity=Severity.INFO,
                    message=f"您最近一次检验 {_obs_quote(latest)},请按出院医嘱按时复诊(演示)",
                    suggestion="携带本次检验结果到门诊复诊(演示)",
                    evidence=(Evidence(resource=subject, quote=_obs_quote(latest)), source),
                    confidence=1.0,
                    extra={"demo": True},
                ),
                role="patient",
                patient_id=linked_patient_id,
                encounter_id=latest.encounter_id,
                subject=subject,
            )
    return count


def seed_instance(
    settings: Settings, *, patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED
) -> SeedResult:
    """``medbrain demo seed``: migrate the instance database if needed, then seed once."""
    from medbrain.store.db import transaction
    from medbrain.store.instance import open_instance

    instance = open_instance(settings)
    try:
        with transaction(instance.session_factory) as session:
            return seed_demo(session, patients=patients, seed=seed)
    finally:
        instance.dispose()
