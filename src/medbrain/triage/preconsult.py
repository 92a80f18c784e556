"""Pre-consultation (预问诊) and where-to-go (智能导诊) for a patient (pure).

The patient describes the complaint in everyday Chinese (or English), says when it began and
how bad it is, ticks any red-flag questions and may answer a few history questions.
:func:`preconsult` returns where to go (care and department, with the cited reasons of the
complaint rules that decided it) and a structured history-of-present-illness draft for the
doctor, every line citing the patient's own answers.

Safety rule: a ticked red flag, or a red flag / emergency level that the triage engine finds in
the free text, ALWAYS answers "go to the emergency department now (call 120)", whatever
department the complaint maps to. The department is never allowed to lower that.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (Table 1 complaint criteria).
《医疗机构诊疗科目名录》(卫医发〔1994〕第27号) (department codes).
NICE NG143 Fever in under 5s (Table 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.triage import assess_document
from medbrain.triage.knowledge import TriageKnowledge

LANGS = ("zh", "en")
MAX_ANSWER_CHARS = 500
MAX_COMPLAINT_CHARS = 500


@dataclass(frozen=True, slots=True)
class RedFlag:
    id: str
    rule: str
    label: Mapping[str, str]
    probe: Mapping[str, str]
    source: str
    section: str
    probe_age_years: float | None = None
    ask_age_lt_years: float | None = None

    def asked(self, age_years: float | None) -> bool:
        """Whether to ask this question of a patient of ``age_years`` (unknown age: ask)."""
        limit = self.ask_age_lt_years
        return limit is None or age_years is None or age_years < limit


@dataclass(frozen=True, slots=True)
class PreconsultKnowledge:
    version: str
    onset: Mapping[str, tuple[int, Mapping[str, str]]]
    red_flags: tuple[RedFlag, ...]
    history: Mapping[str, Mapping[str, str]]
    source_label: Mapping[str, str]

    def flag(self, flag_id: str) -> RedFlag:
        return next(f for f in self.red_flags if f.id == flag_id)

    def asked(self, age_years: float | None) -> tuple[RedFlag, ...]:
        """The red-flag questions for a patient of this age."""
        return tuple(f for f in self.red_flags if f.asked(age_years))


def _texts(where: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or any(not isinstance(value.get(k), str) for k in LANGS):
        raise KnowledgeError(f"triage/preconsult.yaml: {where} needs zh and en")
    return {k: value[k] for k in LANGS}


def build_preconsult_knowledge(data: Mapping[str, Any]) -> PreconsultKnowledge:
    """Validate the ``preconsult.yaml`` mapping; a bad row fails naming its id."""
    onset: dict[str, tuple[int, Mapping[str, str]]] = {}
    for row in data.get("onset") or []:
        minutes = row.get("minutes")
        if not isinstance(minutes, int) or minutes < 0:
            raise KnowledgeError(f"triage/preconsult.yaml: onset {row.get('id')}: bad minutes")
        onset[str(row["id"])] = (minutes, _texts(f"onset {row['id']}", row.get("label")))
    flags: list[RedFlag] = []
    for row in data.get("red_flags") or []:
        where = f"red flag {row.get('id')}"
        for key in ("id", "rule", "source", "section"):
            if not row.get(key):
                raise KnowledgeError(f"triage/preconsult.yaml: {where} needs {key}")
        if row.get("enabled", True) is False:
            continue
        age = row.get("probe_age_years")
        ask_lt = row.get("ask_age_lt_years")
        flags.append(
            RedFlag(
                id=str(row["id"]),
                rule=str(row["rule"]),
                label=_texts(f"{where} label", row.get("label")),
                probe=_texts(f"{where} probe", row.get("probe")),
                source=str(row["source"]),
                section=str(row["section"]),
                probe_age_years=float(age) if age is not None else None,
                ask_age_lt_years=float(ask_lt) if ask_lt is not None else None,
            )
        )
    if not onset or not flags:
        raise KnowledgeError("triage/preconsult.yaml: needs onset choices and red flags")
    history = {
        str(r["id"]): _texts(f"history {r.get('id')}", r.get("label"))
        for r in data.get("history") or []
    }
    return PreconsultKnowledge(
        version=str(data.get("version", "")),
        onset=onset,
        red_flags=tuple(flags),
        history=history,
        source_label=_texts("source_label", data.get("source_label")),
    )


@lru_cache(maxsize=1)
def default_preconsult_knowledge() -> PreconsultKnowledge:
    text = (
        resources.files("medbrain.knowledge")
        .joinpath("triage")
        .joinpath("preconsult.yaml")
        .read_text(encoding="utf-8")
    )
    data = yamlio.parse(text)
    if not isinstance(data, dict):
        raise KnowledgeError("triage/preconsult.yaml: top level must be a mapping")
    return build_preconsult_knowledge(data)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Answers:
    """A patient's validated answers (the patient's age, sex and pregnancy come in too)."""

    complaint: str
    onset: str | None = None
    severity: int | None = None
    red_flags: tuple[str, ...] = ()
    history: Mapping[str, str] | None = None
    age_years: float | None = None
    sex: str | None = None
    pregnant: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "complaint": self.complaint,
            "onset": self.onset,
            "severity": self.severity,
            "red_flags": list(self.red_flags),
            "history": dict(self.history or {}),
            "pregnant": self.pregnant,
        }


def parse_answers(
    document: Any,
    knowledge: PreconsultKnowledge,
    *,
    age_years: float | None = None,
    sex: str | None = None,
    source: str = "preconsult",
) -> Answers:
    """Validate the answers; raise :class:`InputError` naming the first bad field."""
    if not isinstance(document, dict):
        raise InputError(source, "", "the answers must be an object")
    complaint = document.get("complaint")
    if not isinstance(complaint, str) or not complaint.strip():
        raise InputError(source, "complaint", "is empty; describe what is wrong in your words")
    if len(complaint) > MAX_COMPLAINT_CHARS:
        raise InputError(source, "complaint", f"is longer than {MAX_COMPLAINT_CHARS} characters")
    onset = document.get("onset") or None
    if onset is not None and onset not in knowledge.onset:
        raise InputError(
            source, "onset", f"must be one of {', '.join(knowledge.onset)}, got {onset!r}"
        )
    severity_raw = document.get("severity")
    severity: int | None = None
    if severity_raw not in (None, ""):
        try:
            severity = int(str(severity_raw))
        except ValueError:
            raise InputError(source, "severity", f"must be 0-10, got {severity_raw!r}") from None
        if not 0 <= severity <= 10:
            raise InputError(source, "severity", f"must be 0-10, got {severity}")
    flags_raw = document.get("red_flags") or []
    if not isinstance(flags_raw, list) or any(not isinstance(f, str) for f in flags_raw):
        raise InputError(source, "red_flags", "must be a list of red-flag ids")
    known = {f.id for f in knowledge.red_flags}
    for flag in flags_raw:
        if flag not in known:
            raise InputError(source, "red_flags", f"unknown red flag {flag!r}")
    history_raw = document.get("history") or {}
    if not isinstance(history_raw, dict):
        raise InputError(source, "history", "must map question ids to answers")
    history: dict[str, str] = {}
    for key, value in history_raw.items():
        if key not in knowledge.history:
            raise InputError(source, f"history.{key}", "is not a known question")
        if not isinstance(value, str):
            raise InputError(source, f"history.{key}", "must be text")
        if len(value) > MAX_ANSWER_CHARS:
            raise InputError(source, f"history.{key}", f"is longer than {MAX_ANSWER_CHARS}")
        if value.strip():
            history[key] = value.strip()
    pregnant = document.get("pregnant", False)
    if not isinstance(pregnant, bool):
        raise InputError(source, "pregnant", "must be true or false")
    if pregnant and sex == "male":
        raise InputError(source, "pregnant", "is true but the record's sex is male")
    return Answers(
        complaint=complaint.strip(),
        onset=onset,
        severity=severity,
        red_flags=tuple(f for f in (r.id for r in knowledge.red_flags) if f in flags_raw),
        history=history,
        age_years=age_years,
        sex=sex,
        pregnant=pregnant,
    )


# --------------------------------------------------------------------------- guidance


@dataclass(frozen=True, slots=True)
class Guidance:
    """Where to go, why, and the HPI draft for the doctor."""

    go_to_ed: bool
    care: str
    department: Mapping[str, str]
    specialty: Mapping[str, str] | None
    level: int
    red_flags: tuple[str, ...]
    reasons: tuple[str, ...]
    hpi: tuple[Mapping[str, str], ...]
    engine_rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "go_to_ed": self.go_to_ed,
            "care": self.care,
            "department": dict(self.department),
            "specialty": dict(self.specialty) if self.specialty else None,
            "level": self.level,
            "red_flags": list(self.red_flags),
            "reasons": list(self.reasons),
            "hpi": [dict(x) for x in self.hpi],
            "rules": list(self.engine_rules),
        }


def _hpi(
    answers: Answers, knowledge: PreconsultKnowledge, lang: str, cite: str
) -> tuple[Mapping[str, str], ...]:
    zh = lang == "zh"
    lines: list[Mapping[str, str]] = []

    def add(section: str, text: str) -> None:
        lines.append({"section": section, "text": text, "source": cite})

    onset_label = knowledge.onset[answers.onset][1][lang] if answers.onset else None
    chief = answers.complaint + (f"({onset_label})" if onset_label and zh else "")
    if onset_label and not zh:
        chief += f" (began {onset_label})"
    add("主诉" if zh else "Chief complaint", chief)
    hpi: list[str] = []
    if onset_label:
        hpi.append(f"起病时间:{onset_label}" if zh else f"Onset: {onset_label}")
    if answers.severity is not None:
        hpi.append(
            f"严重程度自评 {answers.severity}/10" if zh else f"Severity {answers.severity}/10"
        )
    for key in ("character", "location", "timing", "associated"):
        if answers.history and key in answers.history:
            hpi.append(f"{knowledge.history[key][lang]}:{answers.history[key]}")
    ticked = [knowledge.flag(f).label[lang] for f in answers.red_flags]
    denied = [
        f.label[lang] for f in knowledge.asked(answers.age_years) if f.id not in answers.red_flags
    ]
    if ticked:
        hpi.append(("自述危险信号:" if zh else "Red flags reported: ") + ";".join(ticked))
    if denied:
        hpi.append(("否认:" if zh else "Denies: ") + ";".join(denied))
    add("现病史" if zh else "History of present illness", ("。" if zh else ". ").join(hpi))
    for key, title in (
        ("history", ("既往史", "Past history")),
        ("medicines", ("用药史", "Medicines")),
        ("allergies", ("过敏史", "Allergies")),
    ):
        if answers.history and key in answers.history:
            add(title[0] if zh else title[1], answers.history[key])
    return tuple(lines)


def preconsult(
    answers: Answers,
    triage: TriageKnowledge,
    knowledge: PreconsultKnowledge,
    lang: str = "zh",
    answered_at: datetime | None = None,
) -> Guidance:
    """Where to go (care, department, reasons) and the structured HPI draft.

    The triage engine reads the complaint (with onset and severity as pain score); red flags
    ticked by the patient force the emergency department, as does any engine red flag or
    emergency care. Raises :class:`InputError` only for answers :func:`parse_answers` let by.
    """
    lang = "en" if lang == "en" else "zh"
    visit: dict[str, Any] = {"complaint": answers.complaint}
    if answers.age_years is not None:
        visit["age_years"] = answers.age_years
    if answers.sex in ("male", "female"):
        visit["sex"] = answers.sex
    if answers.pregnant:
        visit["pregnant"] = True
    if answers.onset is not None:
        visit["onset_minutes"] = knowledge.onset[answers.onset][0]
    if answers.severity is not None:
        visit["vitals"] = {"pain_score": answers.severity}
    result = assess_document(visit, triage, lang=lang, source="preconsult")
    ticked = tuple(knowledge.flag(f) for f in answers.red_flags)
    go_to_ed = bool(ticked) or bool(result.red_flags) or result.care == "emergency"
    reasons = list(result.reasons)
    for flag in ticked:
        cite = triage.cite(flag.source, flag.section, lang)
        reasons.insert(0, f"{flag.label[lang]} [{flag.id}; {cite}]")
    emergency = triage.departments[str(triage.routing["emergency"])]
    if go_to_ed:
        department = {
            "code": emergency.code,
            "name_zh": emergency.name_zh,
            "name_en": emergency.name_en,
        }
        care = "emergency"
        level = min([result.level, 2] if ticked else [result.level])
    else:
        department = result.department.to_dict()
        care = result.care
        level = result.level
    specialty = result.specialty.to_dict() if result.specialty else None
    if go_to_ed and specialty is None and result.department.code != emergency.code:
        specialty = result.department.to_dict()
    date = f" {answered_at.date().isoformat()}" if answered_at is not None else ""
    cite = f"{knowledge.source_label[lang]}{date}"
    return Guidance(
        go_to_ed=go_to_ed,
        care=care,
        department=department,
        specialty=specialty,
        level=level,
        red_flags=tuple(f.label[lang] for f in ticked) + tuple(result.red_flags),
        reasons=tuple(reasons),
        hpi=_hpi(answers, knowledge, lang, cite),
        engine_rules=tuple(c.rule_id for c in result.criteria),
    )
