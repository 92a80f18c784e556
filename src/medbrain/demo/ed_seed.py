"""Synthetic ED board for the demo (and the ED-board benchmark): arrivals triaged by the real
engine, with door and step times relative to ``now`` so the board is live after ``make run``.

:func:`seed_ed_demo` is called once by :func:`medbrain.demo.seed.seed_demo`; it places the demo
patient account's record on the board (so the patient assistant has a queue position to
explain) and stores one pre-consultation for that record (so the doctor sees a draft on the
patient page). All content is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.store import models as m
from medbrain.store import triage_ed as store
from medbrain.triage import apply_decision, assess_document, default_knowledge
from medbrain.triage.ed import default_ed_knowledge
from medbrain.triage.preconsult import default_preconsult_knowledge, parse_answers, preconsult

SEEDER = "demo"


@dataclass(frozen=True)
class Arrival:
    label: str
    visit: dict[str, Any]
    door_minutes_ago: float
    triage_after: float = 2.0
    steps: dict[str, float] = field(default_factory=dict)  # step → minutes after the door
    disposition: str | None = None
    own_patient: bool = False


N = {"rr": 16, "spo2": 98, "temp_c": 36.7, "gcs": 15}

ARRIVALS: tuple[Arrival, ...] = (
    Arrival(
        "演示-胸痛",
        {
            "age_years": 58,
            "sex": "male",
            "complaint": "胸痛1小时,伴大汗",
            "vitals": {"hr": 104, "sbp": 102, "dbp": 64, **N},
            "arrival": "walk-in",
        },
        door_minutes_ago=14,
        triage_after=1,
        steps={"doctor": 4},
    ),
    Arrival(
        "演示-卒中",
        {
            "age_years": 71,
            "sex": "female",
            "complaint": "突发右侧肢体无力、言语不清40分钟",
            "vitals": {"hr": 86, "sbp": 176, "dbp": 92, **N},
            "arrival": "ambulance",
            "onset_minutes": 40,
        },
        door_minutes_ago=30,
        triage_after=1,
        steps={"doctor": 3, "ct": 19},
    ),
    Arrival(
        "演示-发热寒战",
        {
            "age_years": 66,
            "sex": "male",
            "complaint": "发热寒战一天,意识有点糊涂",
            "vitals": {
                "hr": 118,
                "sbp": 96,
                "dbp": 58,
                "rr": 24,
                "spo2": 94,
                "temp_c": 39.2,
                "gcs": 14,
            },
            "arrival": "ambulance",
        },
        door_minutes_ago=75,
        triage_after=2,
        steps={"doctor": 6, "lab": 50},
    ),
    Arrival(
        "演示-腹痛",
        {
            "age_years": 35,
            "sex": "female",
            "complaint": "腹痛3小时,呕吐两次",
            "vitals": {"hr": 92, "sbp": 122, "dbp": 76, **N},
            "arrival": "walk-in",
        },
        door_minutes_ago=52,
        triage_after=3,
    ),
    Arrival(
        "演示-哮喘",
        {
            "age_years": 24,
            "sex": "male",
            "complaint": "哮喘发作,喘息半天",
            "vitals": {
                "hr": 100,
                "sbp": 128,
                "dbp": 78,
                "rr": 22,
                "spo2": 95,
                "temp_c": 36.8,
                "gcs": 15,
            },
            "arrival": "walk-in",
        },
        door_minutes_ago=12,
        triage_after=2,
    ),
    Arrival(
        "演示-咽痛",
        {
            "age_years": 29,
            "sex": "female",
            "complaint": "咽痛2天,无发热",
            "vitals": {"hr": 76, "sbp": 116, "dbp": 72, **N},
            "arrival": "walk-in",
        },
        door_minutes_ago=40,
        triage_after=3,
    ),
    Arrival(
        "演示-擦伤",
        {
            "age_years": 41,
            "sex": "male",
            "complaint": "手背擦伤,不需要缝合",
            "vitals": {"hr": 80, "sbp": 124, "dbp": 80, **N},
            "arrival": "walk-in",
        },
        door_minutes_ago=95,
        triage_after=4,
    ),
    Arrival(
        "演示-外伤",
        {
            "age_years": 45,
            "sex": "male",
            "complaint": "车祸后胸部疼痛",
            "vitals": {
                "hr": 112,
                "sbp": 108,
                "dbp": 70,
                "rr": 22,
                "spo2": 96,
                "temp_c": 36.5,
                "gcs": 15,
            },
            "arrival": "ambulance",
        },
        door_minutes_ago=50,
        triage_after=1,
        steps={"doctor": 3, "team": 5, "ct": 22, "disposition": 45},
        disposition="admitted",
    ),
    Arrival(
        "演示患者",
        {
            "complaint": "头晕半天,走路有点不稳",
            "vitals": {"hr": 84, "sbp": 138, "dbp": 84, **N},
            "arrival": "walk-in",
        },
        door_minutes_ago=20,
        triage_after=2,
        own_patient=True,
    ),
)


def _add(
    session: Session,
    arrival: Arrival,
    now: datetime,
    *,
    patient_id: int | None = None,
    age_years: float | None = None,
    sex: str | None = None,
) -> int:
    triage = default_knowledge()
    ed = default_ed_knowledge()
    visit = dict(arrival.visit)
    if age_years is not None:
        visit.setdefault("age_years", age_years)
    if sex in ("male", "female"):
        visit.setdefault("sex", sex)
    suggested = assess_document(visit, triage, source="demo")
    decided = apply_decision(suggested, triage, suggested.level)
    door = now - timedelta(minutes=arrival.door_minutes_ago)
    row = store.create_visit(
        session,
        visit=visit,
        result=decided,
        suggested_level=suggested.level,
        label=arrival.label,
        door_at=door,
        triage_at=door + timedelta(minutes=arrival.triage_after),
        by=SEEDER,
        patient_id=patient_id,
    )
    allowed = ed.step_ids(row.pathway, triage)
    for step, minutes in sorted(arrival.steps.items(), key=lambda kv: kv[1]):
        if step not in allowed:
            continue  # this arrival's pathway came out differently: skip its steps
        store.record_step(
            session,
            row.id,
            step,
            door + timedelta(minutes=minutes),
            by=SEEDER,
            now=now,
            ed=ed,
            triage=triage,
            disposition=arrival.disposition if step == "disposition" else None,
        )
    return row.id


def seed_ed_demo(session: Session, now: datetime | None = None) -> dict[str, int]:
    """The demo ED board (nine arrivals) and one pre-consultation; returns counts."""
    now = now or datetime.now(UTC)
    patient_user = session.scalar(select(m.User).where(m.User.role == "patient"))
    own: m.Patient | None = None
    if patient_user is not None and patient_user.patient_id is not None:
        own = session.get(m.Patient, patient_user.patient_id)
    visits = 0
    for arrival in ARRIVALS:
        if arrival.own_patient:
            if own is None:
                continue
            age = None
            if own.birth_date is not None:
                age = (now.date() - own.birth_date).days / 365.25
            _add(session, arrival, now, patient_id=own.id, age_years=age, sex=own.sex)
        else:
            _add(session, arrival, now)
        visits += 1
    preconsults = 0
    if own is not None:
        knowledge = default_preconsult_knowledge()
        answers = parse_answers(
            {
                "complaint": "头晕半天,走路有点不稳",
                "onset": "lt24h",
                "severity": 4,
                "history": {"history": "高血压5年", "medicines": "氨氯地平 5mg 每日一次"},
            },
            knowledge,
            sex=own.sex,
        )
        answered = now - timedelta(minutes=45)
        guidance = preconsult(answers, default_knowledge(), knowledge, answered_at=answered)
        store.save_preconsult(
            session,
            patient_id=own.id,
            answers=answers.to_dict(),
            result={**guidance.to_dict(), "lang": "zh"},
            by=SEEDER,
            at=answered,
        )
        preconsults = 1
    return {"ed_visits": visits, "preconsults": preconsults}


def seed_ed_board(session: Session, count: int, now: datetime | None = None) -> int:
    """``count`` synthetic arrivals cycling through the demo ones (benchmark, load tests)."""
    now = now or datetime.now(UTC)
    plain = [a for a in ARRIVALS if not a.own_patient]
    for i in range(count):
        base = plain[i % len(plain)]
        arrival = Arrival(
            f"{base.label}-{i + 1}",
            base.visit,
            door_minutes_ago=base.door_minutes_ago + (i % 17),
            triage_after=base.triage_after,
            steps=base.steps,
            disposition=base.disposition,
        )
        _add(session, arrival, now)
    return count
