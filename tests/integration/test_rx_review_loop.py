"""The pharmacist ↔ prescriber review loop on SQLite and PostgreSQL (``database_url``).

A prescription (one inpatient encounter) with warfarin + ibuprofen (critical interaction) and
amoxicillin without an infection diagnosis (warning) goes through the queue: return with a
reason, the prescriber's change or justification, approval; every step is stored, written to
the history and to the audit chain. A rule disabled in the hospital configuration no longer
fires on the next review.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from medbrain.audit.verify import verify
from medbrain.core.errors import ConflictError, InputError
from medbrain.store import models as m
from medbrain.store import rx_review as store
from medbrain.store.rx_models import RxFindingOutcome, RxReview, RxReviewEvent, RxRuleConfig

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PHARMACIST = store.Actor("pharm", "pharmacist")
DOCTOR = store.Actor("dr.li", "doctor")
INTERACTION = "rx.interaction.warfarin-nsaid"
NO_INFECTION = "rx.antimicrobial.no-infection-diagnosis"


def _add_prescription(session: Session) -> int:
    patient = m.Patient(mrn="RX0001", name="测试患者", sex="male", birth_date=date(1955, 1, 1))
    session.add(patient)
    session.flush()
    encounter = m.Encounter(
        patient_id=patient.id, kind="inpatient", department="心内科", admit_time=T0
    )
    session.add(encounter)
    session.flush()
    session.add_all(
        [
            m.Condition(patient_id=patient.id, encounter_id=encounter.id, text="心房颤动"),
            m.Condition(patient_id=patient.id, encounter_id=encounter.id, text="骨关节炎"),
            m.Observation(
                patient_id=patient.id, code="29463-7", display="体重", value_num=65.0,
                unit="kg", effective_at=T0,
            ),
            m.Observation(
                patient_id=patient.id, code="14682-9", display="肌酐", value_num=80.0,
                unit="umol/L", effective_at=T0,
            ),
        ]
    )  # fmt: skip
    for n, (drug, dose, unit, freq) in enumerate(
        [
            ("华法林钠片", 3, "mg", "qd"),
            ("布洛芬缓释胶囊", 0.3, "g", "bid"),
            ("阿莫西林胶囊", 0.5, "g", "tid"),
        ]
    ):
        session.add(
            m.MedicationRequest(
                patient_id=patient.id, encounter_id=encounter.id, drug=drug, dose_value=dose,
                dose_unit=unit, route="po", frequency=freq, days=5, prescriber="李建华",
                authored_at=T0 + timedelta(minutes=n),
            )
        )  # fmt: skip
    return encounter.id


def _sync(session: Session, now: datetime = T0) -> int:
    key, knowledge = store.current_knowledge(session)
    return store.sync_queue(session, knowledge, key, now)


@pytest.fixture
def review_id(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session, session.begin():
        encounter_id = _add_prescription(session)
        assert _sync(session) == 1
        row = session.scalar(select(RxReview).where(RxReview.encounter_id == encounter_id))
        assert row is not None
        return row.id


def _outcomes(session: Session, review: int) -> dict[str, str]:
    rows = session.scalars(select(RxFindingOutcome).where(RxFindingOutcome.review_id == review))
    return {o.rule_id: o.status for o in rows}


def _audit_actions(session: Session, review: int) -> list[str]:
    return list(
        session.scalars(
            select(m.AuditEntry.action)
            .where(m.AuditEntry.resource == f"RxReview/{review}")
            .order_by(m.AuditEntry.seq)
        )
    )


def test_return_then_prescriber_change_counts_the_finding_as_accepted(
    session_factory: sessionmaker[Session], review_id: int
) -> None:
    with session_factory() as session, session.begin():
        view = store.queue(session)[0]
        assert view.review.id == review_id and view.review.verdict == "block"
        assert _outcomes(session, review_id) == {INTERACTION: "open", NO_INFECTION: "open"}
        with pytest.raises(InputError, match="reason"):
            store.return_to_prescriber(session, review_id, PHARMACIST, "  ", T0)
        store.return_to_prescriber(session, review_id, PHARMACIST, "华法林合用布洛芬出血风险", T0)
    with session_factory() as session, session.begin():
        inbox = store.prescriber_inbox(
            session, display_name="李建华 医生", department=None, everyone=False
        )
        assert [v.review.id for v in inbox] == [review_id]
        assert inbox[0].review.return_reason == "华法林合用布洛芬出血风险"
        other = store.prescriber_inbox(
            session, display_name="王晓东 医生", department="消化内科", everyone=False
        )
        assert other == []
        with pytest.raises(ConflictError):  # only a queued prescription can be approved
            store.approve(session, review_id, PHARMACIST, T0)
        ibuprofen = next(r for r in inbox[0].requests if r.drug == "布洛芬缓释胶囊")
        key, knowledge = store.current_knowledge(session)
        store.modify(
            session,
            review_id,
            DOCTOR,
            [store.ItemChange(request_id=ibuprofen.id, cancel=True)],
            knowledge,
            key,
            T0 + timedelta(hours=1),
            note="停用布洛芬",
        )
    with session_factory() as session, session.begin():
        row = session.get(RxReview, review_id)
        assert row is not None and row.status == "resubmitted" and row.verdict == "warn"
        # The interaction went away with the change; the antibiotic finding stays open.
        assert _outcomes(session, review_id) == {INTERACTION: "accepted", NO_INFECTION: "open"}
        store.approve(session, review_id, PHARMACIST, T0 + timedelta(hours=2), note="已与医师沟通")
    with session_factory() as session, session.begin():
        row = session.get(RxReview, review_id)
        assert row is not None and row.status == "approved" and row.decided_by == "pharm"
        assert _outcomes(session, review_id)[NO_INFECTION] == "overridden"
        events = session.scalars(
            select(RxReviewEvent.action).where(RxReviewEvent.review_id == review_id)
        )
        assert list(events) == ["return", "modify", "approve"]
        assert _audit_actions(session, review_id) == ["rx.return", "rx.modify", "rx.approve"]
        stats = {s.rule_id: s for s in store.rule_stats(session)}
        assert stats[INTERACTION].accepted == 1 and stats[INTERACTION].override_rate == 0.0
        assert stats[NO_INFECTION].overridden == 1 and stats[NO_INFECTION].override_rate == 1.0
        assert verify(session, None).ok


def test_open_critical_finding_blocks_approval_until_overridden_with_reason(
    session_factory: sessionmaker[Session], review_id: int
) -> None:
    with session_factory() as session, session.begin():
        with pytest.raises(ConflictError, match=INTERACTION):
            store.approve(session, review_id, PHARMACIST, T0)
        outcome = session.scalar(
            select(RxFindingOutcome).where(RxFindingOutcome.rule_id == INTERACTION)
        )
        assert outcome is not None
        with pytest.raises(InputError):
            store.override_finding(session, review_id, outcome.id, PHARMACIST, "", T0)
        store.override_finding(session, review_id, outcome.id, PHARMACIST, "短期合用,已监测INR", T0)
        with pytest.raises(ConflictError):  # decided once
            store.override_finding(session, review_id, outcome.id, PHARMACIST, "again", T0)
        store.approve(session, review_id, PHARMACIST, T0)
    with session_factory() as session:
        assert _outcomes(session, review_id) == {
            INTERACTION: "overridden",
            NO_INFECTION: "overridden",
        }
        assert _audit_actions(session, review_id) == ["rx.override", "rx.approve"]


def test_prescriber_justification_overrides_open_findings_and_requeues(
    session_factory: sessionmaker[Session], review_id: int
) -> None:
    with session_factory() as session, session.begin():
        store.return_to_prescriber(session, review_id, PHARMACIST, "请确认抗菌药物指征", T0)
        with pytest.raises(InputError):
            store.justify(session, review_id, DOCTOR, "", T0)
        store.justify(session, review_id, DOCTOR, "术前预防用药,已会诊", T0)
    with session_factory() as session, session.begin():
        row = session.get(RxReview, review_id)
        assert row is not None and row.status == "resubmitted"
        assert row.prescriber_note == "术前预防用药,已会诊"
        assert set(_outcomes(session, review_id).values()) == {"overridden"}
        assert [v.review.id for v in store.queue(session)] == [review_id]
        with pytest.raises(ConflictError):  # not returned any more
            store.justify(session, review_id, DOCTOR, "again", T0)


def test_disabled_rule_no_longer_fires_on_the_next_review(
    session_factory: sessionmaker[Session], review_id: int
) -> None:
    with session_factory() as session, session.begin():
        document = store.rule_config_change(
            store.config_document(session), rule_id=NO_INFECTION, enabled=False
        )
        document = store.threshold_change(document, "supply_days.outpatient", "5")
        store.save_rule_config(session, document, PHARMACIST, T0, change={"rule": NO_INFECTION})
    with session_factory() as session, session.begin():
        key, knowledge = store.current_knowledge(session)
        assert key.startswith("config/")
        assert knowledge.policy.supply_days["outpatient"] == 5
        assert NO_INFECTION in knowledge.policy.disabled_rules
        assert _sync(session, T0 + timedelta(hours=1)) == 1
        assert _sync(session, T0 + timedelta(hours=2)) == 0  # nothing changed since
        row = session.get(RxReview, review_id)
        assert row is not None
        assert [f["rule_id"] for f in row.findings] == [INTERACTION]
        assert _outcomes(session, review_id)[NO_INFECTION] == "resolved"
        configured = session.scalar(
            select(func.count()).select_from(m.AuditEntry).where(
                m.AuditEntry.action == "rx.rules.configure"
            )
        )  # fmt: skip
        assert configured == 1


def test_configuration_that_does_not_build_is_refused_and_not_stored(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        with pytest.raises(InputError, match="severity"):
            store.rule_config_change({}, rule_id=INTERACTION, severity="fatal")
        with pytest.raises(InputError, match="between"):
            store.threshold_change({}, "supply_days.outpatient", "0", "en")
        with pytest.raises(InputError, match="review_threshold"):
            store.save_rule_config(session, {"policy": {"review_threshold": 3}}, PHARMACIST, T0)
        assert session.scalar(select(func.count()).select_from(RxRuleConfig)) == 0


def test_unreadable_change_is_refused_and_leaves_the_prescription_returned(
    session_factory: sessionmaker[Session], review_id: int
) -> None:
    with session_factory() as session, session.begin():
        store.return_to_prescriber(session, review_id, PHARMACIST, "剂量单位请核对", T0)
    with session_factory() as session:
        warfarin = next(
            r for r in store.get_review(session, review_id).requests if r.drug == "华法林钠片"
        )
        key, knowledge = store.current_knowledge(session)
    with session_factory() as session:
        # As the page does: the change and its refusal share one transaction, rolled back.
        with pytest.raises(InputError) as caught, session.begin():
            store.modify(
                session,
                review_id,
                DOCTOR,
                [store.ItemChange(request_id=warfarin.id, unit="furlong")],
                knowledge,
                key,
                T0,
            )
        assert caught.value.field == "items[0].unit"
    with session_factory() as session:
        row = session.get(RxReview, review_id)
        assert row is not None and row.status == "returned"
        assert set(_outcomes(session, review_id).values()) == {"open"}
        unit = session.scalar(
            select(m.MedicationRequest.dose_unit).where(m.MedicationRequest.id == warfarin.id)
        )
        assert unit == "mg"
