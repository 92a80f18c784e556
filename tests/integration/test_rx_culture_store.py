"""Culture before therapeutic antimicrobials from the store, on SQLite and PostgreSQL: which
Observations count (listed LOINC or a culture name), the window before the first antimicrobial
order, the grade groups, and prophylaxis-only stays left out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from medbrain.rx import load_rx_knowledge
from medbrain.store import models as m
from medbrain.store.rx_stewardship import stewardship_report

ADMIT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ORDER = ADMIT + timedelta(hours=4)
PIPTAZ = ("注射用哌拉西林钠他唑巴坦钠", 4.5, "g", "iv", "q8h")  # 限制
MEROPENEM = ("注射用美罗培南", 1.0, "g", "iv", "q8h")  # 特殊
CEFAZOLIN = ("注射用头孢唑林钠", 2.0, "g", "iv", "st")


def _stay(
    session: Session,
    n: int,
    dx: str,
    drug: tuple[str, float, str, str, str],
    cultures: list[tuple[str, str, float]],
) -> None:
    """One inpatient stay with one antimicrobial order at ORDER and culture observations
    ``(code, display, hours after ORDER)``."""
    patient = m.Patient(mrn=f"CUL{n}", name=f"患者{n}", sex="male", birth_date=date(1970, 1, 1))
    session.add(patient)
    session.flush()
    enc = m.Encounter(
        patient_id=patient.id, kind="inpatient", department="呼吸内科", admit_time=ADMIT,
        discharge_time=ADMIT + timedelta(days=5),
    )  # fmt: skip
    session.add(enc)
    session.flush()
    session.add(m.Condition(patient_id=patient.id, encounter_id=enc.id, text=dx,
                            clinical_status="active"))  # fmt: skip
    name, dose, unit, route, freq = drug
    session.add(
        m.MedicationRequest(
            patient_id=patient.id, encounter_id=enc.id, drug=name, dose_value=dose,
            dose_unit=unit, route=route, frequency=freq, days=1 if freq == "st" else 5,
            status="active", prescriber="陈医生", authored_at=ORDER,
        )
    )  # fmt: skip
    for code, display, hours in cultures:
        session.add(
            m.Observation(
                patient_id=patient.id, encounter_id=enc.id, category="laboratory", code=code,
                display=display, value_text="无菌生长", effective_at=ORDER + timedelta(hours=hours),
            )
        )  # fmt: skip


def test_culture_rate_from_stored_orders_and_observations(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        _stay(session, 1, "重症肺炎", MEROPENEM, [("600-7", "Blood culture", -1)])  # counts
        _stay(session, 2, "社区获得性肺炎", PIPTAZ, [("L-1", "痰培养", -0.5)])  # by name
        _stay(session, 3, "社区获得性肺炎", PIPTAZ, [("600-7", "血培养", 2)])  # after
        _stay(session, 4, "尿路感染", MEROPENEM, [("33959-8", "降钙素原", -1)])  # not culture
        _stay(session, 5, "腹股沟疝, 围手术期预防用药", CEFAZOLIN, [])  # prophylaxis only
    with session_factory() as session:
        report = stewardship_report(
            session, load_rx_knowledge(None), date(2026, 3, 1), date(2026, 3, 31)
        )
    assert report["skipped"] == 0
    groups = {g["group"]: g for g in report["culture"]["groups"]}
    assert (groups["all"]["episodes"], groups["all"]["cultured"]) == (4, 2)
    assert groups["all"]["rate_pct"] == 50.0 and groups["all"]["meets_target"] is True
    assert (groups["特殊"]["episodes"], groups["特殊"]["cultured"]) == (2, 1)
    assert groups["特殊"]["meets_target"] is False  # 50 % < 80 %
    assert (groups["限制"]["episodes"], groups["限制"]["cultured"]) == (2, 1)
    assert report["inpatient"]["with_antimicrobial"] == 5  # prophylaxis still counts as use
