"""Guideline choice and Brock inputs for stored CT studies (issue 4, reachability).

``ct_config(settings)`` is the hospital's rule set: ``MEDBRAIN_HOME/imaging/overrides.yaml``
(``guideline: lungrads | fleischner | china2021``, ``risk: low | high`` for the incidental
rule sets; re-read when the file changes) over ``MEDBRAIN_CT_GUIDELINE``, default
``lungrads``. A bad value is a :class:`~medbrain.core.errors.KnowledgeError` naming the file.

The newest earlier analysed study of the same patient (if dated) is compared
(``radiology_review.stored_prior`` + ``imaging.interval.with_followup``), so growth feeds
Lung-RADS and, with ``china2021``, the Chinese category. ``recorded_inputs(session, study, settings)`` reads the Brock inputs from the stored patient
(age at the study date, sex, and family history / emphysema only where recorded, see
``knowledge/imaging/brock_record.yaml``); ``apply_configured`` adds the configured guideline
and the Brock block to a ``ct detect`` result (the worker, demo seeding and the review use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from medbrain.core.config import Settings
from medbrain.core.errors import KnowledgeError
from medbrain.imaging.brock import BrockPatient
from medbrain.imaging.guidelines import age_on, apply_guideline, brock_from_record
from medbrain.imaging.interval import with_followup
from medbrain.imaging.risk import GUIDELINES
from medbrain.knowledge.loaders import load_yaml
from medbrain.knowledge.overrides import read_hospital_file
from medbrain.store import models as m
from medbrain.store.radiology_review import stored_prior

HOSPITAL_FILE = ("imaging", "overrides.yaml")
RISKS = ("low", "high")


@dataclass(frozen=True, slots=True)
class CtConfig:
    """The rule set a hospital chose and where that choice came from."""

    guideline: str
    risk: str
    source: str  # "overrides" | "environment" | "default"


def ct_config(settings: Settings) -> CtConfig:
    """The configured guideline (hospital file over ``MEDBRAIN_CT_GUIDELINE``) and risk."""
    path = settings.home.joinpath(*HOSPITAL_FILE)
    override = read_hospital_file(path) or {}
    guideline = override.get("guideline")
    source = "overrides"
    if guideline is None:
        guideline = settings.ct_guideline
        source = "default" if guideline == "lungrads" else "environment"
        where = "MEDBRAIN_CT_GUIDELINE"
    else:
        where = f"{path}: guideline"
    if guideline not in GUIDELINES:
        raise KnowledgeError(f"{where} must be one of {', '.join(GUIDELINES)}, got {guideline!r}")
    risk = override.get("risk", "high")
    if risk not in RISKS:
        raise KnowledgeError(f"{path}: risk must be low or high, got {risk!r}")
    return CtConfig(str(guideline), str(risk), source)


@lru_cache(maxsize=1)
def record_rules() -> dict[str, Any]:
    name = "imaging/brock_record.yaml"
    data = load_yaml(name)
    if not isinstance(data, dict) or "source" not in data:
        raise KnowledgeError(f"{name}: needs a mapping with a source")
    for key in ("family_history_lung_cancer", "emphysema"):
        block = data.get(key)
        if not isinstance(block, dict) or not {
            "condition_icd10_prefixes",
            "observation_codes",
        } <= set(block):
            raise KnowledgeError(f"{name}: {key} needs condition_icd10_prefixes, observation_codes")
    return data


def _yes_no(obs: m.Observation, rules: dict[str, Any]) -> bool | None:
    text = str(obs.value_text or "").strip().lower()
    if text in {str(v).lower() for v in rules["yes_values"]}:
        return True
    if text in {str(v).lower() for v in rules["no_values"]}:
        return False
    if obs.value_num is not None and obs.value_num in (0.0, 1.0):
        return obs.value_num == 1.0
    return None


def _recorded(
    session: Session, patient_id: int, key: str, rules: dict[str, Any]
) -> tuple[bool | None, str | None]:
    """(value, evidence reference) of one yes/no input; ``(None, None)`` when not recorded."""
    block = rules[key]
    observations = session.scalars(
        select(m.Observation).where(
            m.Observation.patient_id == patient_id,
            m.Observation.code.in_([str(c) for c in block["observation_codes"]]),
            m.Observation.status.not_in(["entered-in-error", "cancelled"]),
        )
    ).all()
    dated = sorted(
        observations,
        key=lambda o: (o.effective_at is not None, o.effective_at or datetime.min, o.id),
    )
    for obs in reversed(dated):
        value = _yes_no(obs, rules)
        if value is not None:
            return value, f"Observation/{obs.id}"
    ignored = {str(s) for s in rules.get("ignored_condition_statuses", [])}
    for cond in session.scalars(
        select(m.Condition).where(m.Condition.patient_id == patient_id).order_by(m.Condition.id)
    ):
        code = (cond.icd10_code or "").upper()
        if (cond.clinical_status or "") in ignored:
            continue
        if any(code.startswith(str(p).upper()) for p in block["condition_icd10_prefixes"]):
            return True, f"Condition/{cond.id}"
    return None, None


def study_date(study: m.ImagingStudy, settings: Settings) -> date | None:
    """The study's date in the hospital's time zone (acquisition, else arrival)."""
    when = study.started_at or study.received_at
    if when is None:
        return None
    try:
        zone = ZoneInfo(settings.timezone)
    except ZoneInfoNotFoundError:
        return when.date()
    return when.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class RecordedInputs:
    age_years: int | None
    sex: str | None
    family_history: bool | None
    emphysema: bool | None
    evidence: dict[str, str]

    def known(self) -> dict[str, Any]:
        return {
            "age_years": self.age_years,
            "sex": self.sex,
            "family_history_lung_cancer": self.family_history,
            "emphysema": self.emphysema,
        }


def recorded_inputs(session: Session, study: m.ImagingStudy, settings: Settings) -> RecordedInputs:
    """What the stored record says about the patient's Brock inputs (``None`` = unknown)."""
    return recorded_inputs_on(session, study, study_date(study, settings))


def recorded_inputs_on(session: Session, study: m.ImagingStudy, on: date | None) -> RecordedInputs:
    """:func:`recorded_inputs` with the study date given (age is taken on that date)."""
    rules = record_rules()
    patient = session.get(m.Patient, study.patient_id)
    if patient is None:
        return RecordedInputs(None, None, None, None, {})
    evidence = {"age": f"Patient/{patient.id}", "sex": f"Patient/{patient.id}"}
    family, family_ref = _recorded(session, patient.id, "family_history_lung_cancer", rules)
    emphysema, emphysema_ref = _recorded(session, patient.id, "emphysema", rules)
    if family_ref:
        evidence["family_history"] = family_ref
    if emphysema_ref:
        evidence["emphysema"] = emphysema_ref
    sex = patient.sex if patient.sex in ("male", "female") else None
    return RecordedInputs(age_on(patient.birth_date, on), sex, family, emphysema, evidence)


def live_brock(
    session: Session, study: m.ImagingStudy, on: date | None
) -> tuple[BrockPatient | None, list[str], dict[str, Any], dict[str, str]]:
    """Brock patient (or missing inputs), known inputs and evidence from the record as it is
    now: what the review shows after a clinician records an input."""
    inputs = recorded_inputs_on(session, study, on)
    patient, missing = brock_from_record(
        inputs.age_years, inputs.sex, inputs.family_history, inputs.emphysema
    )
    return patient, missing, inputs.known(), inputs.evidence


BROCK_OBSERVATIONS = {  # what the study page records: code, category, display (zh)
    "family_history": ("medbrain-brock-family-history", "social-history", "肺癌家族史"),
    "emphysema": ("medbrain-brock-emphysema", "imaging", "肺气肿"),
}


def record_brock_inputs(
    session: Session,
    study: m.ImagingStudy,
    values: dict[str, bool],
    at: datetime,
) -> list[str]:
    """Record yes/no Brock inputs (``family_history``, ``emphysema``) as Observations of the
    study's patient (the newest one wins when reading); returns their references."""
    refs: list[str] = []
    for key, value in values.items():
        code, category, display = BROCK_OBSERVATIONS[key]
        obs = m.Observation(
            patient_id=study.patient_id,
            category=category,
            code=code,
            display=display,
            value_text="yes" if value else "no",
            effective_at=at,
        )
        session.add(obs)
        session.flush()
        refs.append(f"Observation/{obs.id}")
    return refs


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def apply_configured(
    session: Session,
    settings: Settings,
    study: m.ImagingStudy,
    result: dict[str, Any],
    lang: str,
    slices: int,
) -> dict[str, Any]:
    """``result`` compared with the patient's newest earlier analysed study (growth used in
    Lung-RADS and the Chinese category, as ``ct detect --prior`` does), with the configured
    guideline and Brock from the stored patient."""
    cfg = ct_config(settings)
    prior = stored_prior(session, study)
    if prior is not None:
        prior_study, prior_nodules, days = prior
        result = with_followup(
            result,
            prior_nodules,
            prior_meta={"study_uid": prior_study.study_uid, "source": "store"},
            prior_date=_iso(study_date(prior_study, settings)),
            days=days,
            slices=slices,
            lang=lang,
        )
    on = study_date(study, settings)
    inputs = recorded_inputs_on(session, study, on)
    patient, missing = brock_from_record(
        inputs.age_years, inputs.sex, inputs.family_history, inputs.emphysema
    )
    out = apply_guideline(
        result,
        guideline=cfg.guideline,
        risk=cfg.risk,
        lang=lang,
        patient=patient,
        brock_missing=missing,
        brock_known=inputs.known(),
    )
    out["brock"] = {
        **out["brock"],
        "evidence": inputs.evidence,
        "from_record": True,
        "study_date": _iso(on),
    }
    out["guideline_source"] = cfg.source
    return out
