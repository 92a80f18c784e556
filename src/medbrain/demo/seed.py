"""Seed an instance with synthetic demo data, once.

``seed_demo`` imports the generated FHIR Bundles through the ordinary importer, creates one
demo account per role and stores what the real, pure engines find in that synthetic world, so
the clinical inboxes show genuine engine output (each finding's ``extra.demo`` is true):

* alerts (:func:`medbrain.alerts.evaluate_bundle`) over each patient's Bundle as of the demo
  world's anchor time: to the doctor, and those of a bedside category (critical value, early
  warning, sepsis) or of critical severity also to the nurse; subject ``Patient/<id>``;
* prescription review (:func:`medbrain.rx.review`) of each encounter's medication requests
  with the patient's allergies, diagnoses and that encounter's labs: to the pharmacist;
* the final QC check (:func:`medbrain.qc.check_record`) of each discharged inpatient stay's
  documents: to the QC officer; rx and QC findings have subject ``Encounter/<id>``.

At most :data:`MAX_FINDINGS_PER_PATIENT` findings per engine and patient (or encounter) are
kept. A record an engine rejects is skipped and counted (``finding_counts["rx/skipped"]``).
A second call finds the first demo patient (MRN ``DM000001``) and does nothing.

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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.core.config import Settings
from medbrain.core.findings import Finding, Severity
from medbrain.demo.ed_seed import seed_ed_demo
from medbrain.demo.generator import (
    DEFAULT_ANCHOR,
    DEFAULT_PATIENTS,
    DEFAULT_SEED,
    demo_mrn,
    generate_bundles,
)
from medbrain.demo.radiology_seed import seed_radiology_demo
from medbrain.insurance.pipeline import insurance_knowledge
from medbrain.interop.fhir.importer import import_bundle
from medbrain.store import models as m
from medbrain.store.alert_tracking import seed_demo_tracked_alerts
from medbrain.store.batch_runs import seed_demo_batch_runs
from medbrain.store.insurance import seed_insurance_demo
from medbrain.store.ops import seed_demo_ops
from medbrain.store.qc_proposals import seed_demo_proposals
from medbrain.store.qc_workflow import seed_demo_qc
from medbrain.store.rx_stewardship import seed_demo_stewardship


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
    DemoAccount("director", "director-demo", "director", "赵国强 院长", "院办"),
    DemoAccount(
        "insurance_officer", "insurance_officer-demo", "insurance_officer", "孙悦 医保办", "医保办"
    ),
    DemoAccount("materials", "materials-demo", "materials", "周涛 物资管理", "设备物资部"),
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
    finding_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeded": self.seeded,
            "patients": self.patients,
            "imported": dict(self.imported),
            "users": list(self.users),
            "findings": self.findings,
            "finding_counts": dict(self.finding_counts),
        }


def _seed_workflows(session: Session, anchor: datetime) -> None:
    """Fill each capability's own pages, so a new user sees them working after ``make run``."""
    seed_ed_demo(session)  # the live ED board and one pre-consultation (issue 9)
    seed_insurance_demo(session, insurance_knowledge())  # insurance review queue (issue 11)
    seed_demo_ops(session, anchor)  # 3 years of department-day history, consumables (issue 11)
    seed_demo_tracked_alerts(session)  # critical values to acknowledge on /alerts/my (issue 10)
    seed_demo_qc(session)  # QC notices and dashboard runs for the inpatient stays (issue 7)
    seed_demo_proposals(session, anchor)  # manual QC findings and mined rules (issue 7)
    seed_demo_batch_runs(session, anchor)  # stored batch runs: /rx/batch, /qc/batch (6, 7)
    seed_demo_stewardship(session)  # doses given and culture samples for /rx/stewardship (issue 6)


def demo_present(session: Session) -> bool:
    return session.scalar(select(m.Patient.id).where(m.Patient.mrn == demo_mrn(0))) is not None


def seed_demo(
    session: Session,
    *,
    patients: int = DEFAULT_PATIENTS,
    seed: int = DEFAULT_SEED,
    anchor: datetime = DEFAULT_ANCHOR,
    audit: bool = True,
    review_threshold: float | None = None,
) -> SeedResult:
    """Import ``patients`` generated patients, demo accounts and engine findings, once.

    Runs in the caller's transaction; the caller commits. ``audit`` appends one
    ``demo.seed`` entry to the audit chain (as ``system``/``admin``). ``review_threshold``
    defaults to the configured one (``MEDBRAIN_REVIEW_THRESHOLD``).
    """
    if demo_present(session):
        return SeedResult(seeded=False)
    from medbrain.api.security import hash_password

    if review_threshold is None:
        review_threshold = Settings.from_env().review_threshold
    imported: Counter[str] = Counter()
    first_patient_id: int | None = None
    bundles = list(generate_bundles(patients, seed, anchor=anchor))
    for bundle in bundles:
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
    by_engine = _seed_findings(session, bundles, anchor, review_threshold)
    from medbrain.demo.rare_seed import seed_rare_demo  # loads the HPO index: only here

    # a record the rare-disease screen flags, for the doctor's inbox (issue 10)
    by_engine["rare/doctor"] = seed_rare_demo(session, anchor)
    _seed_workflows(session, anchor)
    stored = {k: v for k, v in sorted(by_engine.items()) if not k.endswith("/skipped")}
    findings = sum(stored.values())
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
                "by_engine": stored,
                "users": len(created),
            },
        )
    return SeedResult(
        seeded=True,
        patients=patients,
        imported=dict(sorted(imported.items())),
        users=tuple(created),
        findings=findings,
        finding_counts=dict(sorted(by_engine.items())),
    )


# ---------------------------------------------------------------------------------------
# Findings: the real pure engines (alerts, rx, qc) run over the generated Bundles.

#: Alert categories a bedside nurse acts on; alerts of these categories, or of critical
#: severity, go to the nurse's inbox as well as the doctor's.
NURSE_ALERT_CATEGORIES = frozenset({"critical_value", "early_warning", "sepsis"})
#: Most findings one engine stores for one patient (keeps the inboxes readable).
MAX_FINDINGS_PER_PATIENT = 12

Entry = dict[str, Any]


def _encounter_ref(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "DocumentReference":
        refs = (resource.get("context") or {}).get("encounter") or [{}]
        return str(refs[0].get("reference")) if refs[0].get("reference") else None
    ref = (resource.get("encounter") or {}).get("reference")
    return str(ref) if ref else None


def _sub_bundle(bundle: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": bundle.get("id"),
        "type": "collection",
        "entry": entries,
    }


def _demo(findings: Any) -> list[Finding]:
    """Engine findings, marked as computed over synthetic demo data."""
    return [replace(f, extra={**f.extra, "demo": True}) for f in findings]


@dataclass(slots=True)
class _Engines:
    alerts: Any
    rx: Any
    qc: Any
    review_threshold: float
    counts: Counter[str] = field(default_factory=Counter)


def _seed_findings(
    session: Session, bundles: list[dict[str, Any]], anchor: datetime, review_threshold: float
) -> Counter[str]:
    """Run alerts (per patient, as of ``anchor``), rx (per encounter with orders) and qc (per
    discharged inpatient stay) and store their findings; returns counts per ``engine/role``."""
    from medbrain.alerts import load_alert_knowledge
    from medbrain.qc import load_qc_knowledge
    from medbrain.rx import load_rx_knowledge

    engines = _Engines(
        alerts=load_alert_knowledge(None),
        rx=load_rx_knowledge(None),
        qc=load_qc_knowledge(None),
        review_threshold=review_threshold,
    )
    for bundle in bundles:
        _seed_patient(session, engines, bundle, anchor)
    session.flush()
    return engines.counts


def _seed_patient(
    session: Session, engines: _Engines, bundle: dict[str, Any], anchor: datetime
) -> None:
    from medbrain.alerts import evaluate_bundle
    from medbrain.core.errors import InputError
    from medbrain.qc import check_record
    from medbrain.qc.parse import record_from_json
    from medbrain.rx import review
    from medbrain.store.findings import save_findings

    entries: list[Entry] = list(bundle.get("entry") or [])
    resources = [e["resource"] for e in entries]
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None:
        return
    patient_id = session.scalar(select(m.Patient.id).where(m.Patient.fhir_id == patient["id"]))
    if patient_id is None:
        return
    source = f"demo/{bundle.get('id')}"

    def store(findings: list[Finding], engine: str, role: str, **where: Any) -> None:
        findings = findings[:MAX_FINDINGS_PER_PATIENT]
        if findings:
            save_findings(session, findings, engine=engine, target_role=role, **where)
            engines.counts[f"{engine}/{role}"] += len(findings)

    # Alerts: the whole record as of the demo world's "now".
    try:
        report = evaluate_bundle(
            bundle,
            engines.alerts,
            now=anchor,
            lang="zh",
            source=source,
            review_threshold=engines.review_threshold,
        )
    except InputError:
        engines.counts["alerts/skipped"] += 1
    else:
        alerts = _demo(report.alerts)
        where = {"patient_id": patient_id, "subject": f"Patient/{patient['id']}"}
        store(alerts, "alerts", "doctor", **where)
        bedside = [
            f
            for f in alerts
            if f.category in NURSE_ALERT_CATEGORIES or f.severity is Severity.CRITICAL
        ]
        store(bedside, "alerts", "nurse", **where)

    shared = [
        e
        for e, r in zip(entries, resources, strict=True)
        if r.get("resourceType") in ("Patient", "AllergyIntolerance")
        or (r.get("resourceType") == "Condition" and _encounter_ref(r) is None)
    ]
    for encounter in (r for r in resources if r.get("resourceType") == "Encounter"):
        ref = f"urn:uuid:{encounter['id']}"
        own = [e for e, r in zip(entries, resources, strict=True) if _encounter_ref(r) == ref]
        encounter_id = session.scalar(
            select(m.Encounter.id).where(m.Encounter.fhir_id == encounter["id"])
        )
        where = {
            "patient_id": patient_id,
            "encounter_id": encounter_id,
            "subject": f"Encounter/{encounter['id']}",
        }
        # Rx: this encounter's orders with the patient's allergies, diagnoses and labs.
        if any(e["resource"].get("resourceType") == "MedicationRequest" for e in own):
            prescription = _sub_bundle(
                bundle,
                shared
                + [
                    e
                    for e in own
                    if e["resource"].get("resourceType")
                    in ("Condition", "Observation", "MedicationRequest")
                ]
                + [
                    e
                    for e in entries
                    if e["resource"].get("resourceType") == "Encounter"
                    and e["resource"].get("id") == encounter["id"]
                ],
            )
            try:
                result = review(
                    prescription,
                    engines.rx,
                    lang="zh",
                    source=f"{source}/Encounter/{encounter['id']}",
                    review_threshold=engines.review_threshold,
                )
            except InputError:
                engines.counts["rx/skipped"] += 1  # e.g. a route the engine cannot read
            else:
                store(_demo(result.findings), "rx", "pharmacist", **where)
        # QC: the final check of a discharged inpatient stay's documents.
        inpatient = (encounter.get("class") or {}).get("code") == "IMP"
        if inpatient and encounter.get("status") == "finished":
            documents = [e for e in own if e["resource"].get("resourceType") == "DocumentReference"]
            if not documents:
                continue
            record_bundle = _sub_bundle(
                bundle,
                [e for e in entries if e["resource"] is patient or e["resource"] is encounter]
                + documents,
            )
            try:
                record = record_from_json(
                    record_bundle, f"{source}/Encounter/{encounter['id']}", engines.qc.vocabulary
                )
                qc = check_record(
                    record,
                    engines.qc,
                    stage="final",
                    lang="zh",
                    review_threshold=engines.review_threshold,
                )
            except InputError:
                engines.counts["qc/skipped"] += 1
            else:
                store(_demo([*qc.defects, *qc.needs_review]), "qc", "qc_officer", **where)


def seed_instance(
    settings: Settings, *, patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED
) -> SeedResult:
    """``medbrain demo seed``: migrate the instance database if needed, then seed once."""
    from medbrain.store.db import transaction
    from medbrain.store.instance import open_instance

    instance = open_instance(settings)
    try:
        with transaction(instance.session_factory) as session:
            result = seed_demo(
                session,
                patients=patients,
                seed=seed,
                review_threshold=settings.review_threshold,
            )
            if result.seeded:
                seed_radiology_demo(session, settings)  # analysed demo chest CTs (issue 5)
            return result
    finally:
        instance.dispose()
