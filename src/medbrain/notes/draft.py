"""Deterministic drafts of admission, progress and discharge notes, every sentence cited.

Why deterministic first: the template generator is the default and must produce a usable
note on its own (DESIGN.md §5); the LLM only rewords it. Each sentence is built from named
resources and lists them as ``sources``; where the record lacks something a note needs, the
draft says so ("记录中无过敏史信息,请医师核实") instead of writing a normal-sounding default
such as "否认药物过敏史", which would be a fact the record does not contain.

The only derived value is the age, computed from ``Patient.birthDate`` and the admission
date, and cited to both.

References
----------
《病历书写基本规范》(卫医政发〔2010〕11号) 第十八条 入院记录, 第二十二条 病程记录;
Weed LL. Medical records that guide and teach. NEJM 1968;278:593-600 (SOAP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from medbrain.core import yamlio
from medbrain.core.errors import InputError
from medbrain.notes.record import Fact, NoteRecord

NoteType = Literal["admission", "first_course", "progress", "discharge"]
NOTE_TYPES: tuple[NoteType, ...] = ("admission", "first_course", "progress", "discharge")
_LIST_SECTIONS = frozenset({"diagnosis", "assessment", "discharge_diagnosis", "discussion"})


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    sentences: tuple[Sentence, ...]
    lang: str = "zh"

    @property
    def text(self) -> str:
        joiner = "\n" if self.key in _LIST_SECTIONS else "" if self.lang == "zh" else " "
        return joiner.join(s.text for s in self.sentences)

    @property
    def sources(self) -> list[str]:
        seen: dict[str, None] = {}
        for sentence in self.sentences:
            for ref in sentence.sources:
                seen.setdefault(ref)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "text": self.text,
            "sources": self.sources,
            "sentences": [{"text": s.text, "sources": list(s.sources)} for s in self.sentences],
        }


@dataclass(frozen=True, slots=True)
class NoteDraft:
    note_type: NoteType
    lang: str
    sections: tuple[Section, ...]
    generator: str = "template"
    notice: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.note_type,
            "lang": self.lang,
            "sections": [s.to_dict() for s in self.sections],
            "generator": self.generator,
        }
        if self.notice:
            data["notice"] = self.notice
        data.update(self.extra)
        return data


@lru_cache(maxsize=1)
def _phrases() -> dict[str, Any]:
    raw = resources.files("medbrain.notes").joinpath("phrases.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yamlio.parse(raw)
    return data


class _Writer:
    def __init__(self, record: NoteRecord, lang: str) -> None:
        self.record = record
        self.lang = lang
        self.p = _phrases()

    def title(self, key: str) -> str:
        return str(self.p["titles"][key][self.lang])

    def say(self, key: str, sources: Sequence[str], **values: str) -> Sentence:
        return Sentence(str(self.p["sentences"][key][self.lang]).format(**values), tuple(sources))

    def missing(self, key: str) -> Sentence:
        return Sentence(str(self.p["missing"][key][self.lang]))

    def section(
        self, key: str, sentences: Sequence[Sentence], missing: str | None = None
    ) -> Section:
        if not sentences and missing:
            sentences = [self.missing(missing)]
        return Section(key, self.title(key), tuple(sentences), self.lang)

    @staticmethod
    def day(when: str) -> str:
        return when[:10]

    @staticmethod
    def moment(when: str) -> str:
        return when[:16].replace("T", " ")

    # -- building blocks ------------------------------------------------------------------

    def patient(self) -> list[Sentence]:
        r = self.record
        sex = str(self.p["sex"][r.sex][self.lang])
        name = r.name or r.patient_ref
        age = r.age_years(r.encounter_start)
        if age is not None and r.encounter is not None:
            return [
                self.say(
                    "patient", [r.patient_ref, r.encounter.ref], name=name, sex=sex, age=str(age)
                )
            ]
        return [self.say("patient_no_age", [r.patient_ref], name=name, sex=sex)]

    def admitted(self) -> list[Sentence]:
        r = self.record
        if r.encounter is None or not r.encounter_start:
            return []
        return [self.say("admitted", [r.encounter.ref], date=self.moment(r.encounter_start))]

    def complaint(self) -> list[Sentence]:
        enc = self.record.encounter
        return [self.say("complaint", [enc.ref], reason=enc.label)] if enc and enc.label else []

    def hpi(self) -> list[Sentence]:
        enc = self.record.encounter
        if not enc or not enc.label or not self.record.encounter_start:
            return []
        return [
            self.say(
                "hpi", [enc.ref], reason=enc.label, date=self.moment(self.record.encounter_start)
            )
        ]

    def is_past(self, fact: Fact) -> bool:
        return (
            "encounter-diagnosis" not in fact.category
            and bool(fact.when)
            and fact.when[:10] < self.record.encounter_start[:10]
        )

    def past(self) -> list[Sentence]:
        out = []
        for c in self.record.conditions:
            if self.is_past(c):
                key = "condition_past" if c.when else "condition_past_undated"
                out.append(self.say(key, [c.ref], label=c.label, date=self.day(c.when)))
        return out

    def allergies(self) -> list[Sentence]:
        out = []
        for a in self.record.allergies:
            reaction = (
                str(self.p["sentences"]["reaction"][self.lang]).format(reaction=a.value)
                if a.value
                else ""
            )
            out.append(self.say("allergy", [a.ref], label=a.label, reaction=reaction))
        return out

    def vitals(self, which: Literal["first", "last"]) -> list[Sentence]:
        chosen: dict[str, Fact] = {}
        for v in self.record.vitals:
            if which == "last" or v.label not in chosen:
                chosen[v.label] = v
        return [
            self.say("vital", [v.ref], date=self.moment(v.when), label=v.label, value=v.value)
            for v in sorted(chosen.values(), key=lambda f: (f.when, f.ref))
        ]

    def labs(self, latest_only: bool = False) -> list[Sentence]:
        facts: Sequence[Fact] = self.record.labs
        if latest_only:
            latest: dict[str, Fact] = {}
            for lab in facts:
                latest[lab.label] = lab
            facts = sorted(latest.values(), key=lambda f: (f.when, f.ref))
        out = []
        for lab in facts:
            flag = str(self.p["flags"].get(lab.flag, {}).get(self.lang, "")) if lab.flag else ""
            out.append(
                self.say(
                    "lab",
                    [lab.ref],
                    date=self.moment(lab.when),
                    label=lab.label,
                    value=lab.value,
                    flag=flag,
                )
            )
        return out

    def diagnoses(self) -> list[Sentence]:
        active = [
            c
            for c in self.record.conditions
            if c.status not in ("inactive", "resolved", "remission", "refuted")
        ]
        # encounter diagnoses first, then the chronic problems
        active.sort(key=lambda c: ("encounter-diagnosis" not in c.category, c.when, c.ref))
        return [
            self.say("diagnosis", [c.ref], n=str(i), label=c.label) for i, c in enumerate(active, 1)
        ]

    def medications(self, status: set[str]) -> list[Sentence]:
        return [
            self.say("medication", [m.ref], label=m.label, dosage=m.value)
            for m in self.record.medications
            if m.status in status and m.label
        ]

    def procedures(self) -> list[Sentence]:
        return [
            self.say("procedure", [p.ref], label=p.label, date=self.moment(p.when))
            for p in self.record.procedures
            if p.label
        ]

    def abnormal_labs(self) -> list[Sentence]:
        """Results flagged abnormal by the laboratory (interpretation H/L/A...), in time order."""
        return [s for s, lab in zip(self.labs(), self.record.labs, strict=True) if lab.flag]

    def basis(self) -> list[Sentence]:
        """诊断依据 for each encounter diagnosis: the complaint and the abnormal results.

        Which finding supports which diagnosis is clinical knowledge the record does not hold,
        so the draft lists the facts next to the diagnosis and the physician edits the link.
        """
        enc = self.record.encounter
        abnormal = [lab for lab in self.record.labs if lab.flag]
        evidence_refs = ([enc.ref] if enc and enc.label else []) + [lab.ref for lab in abnormal]
        if not evidence_refs:
            return []
        sep = "；" if self.lang == "zh" else "; "
        parts = ([enc.label] if enc and enc.label else []) + [
            str(self.p["sentences"]["abnormal"][self.lang]).format(
                label=lab.label,
                value=lab.value,
                flag=str(self.p["flags"].get(lab.flag, {}).get(self.lang, "")),
            )
            for lab in abnormal
        ]
        return [
            self.say("basis", [c.ref, *evidence_refs], label=c.label, evidence=sep.join(parts))
            for c in self.record.conditions
            if "encounter-diagnosis" in c.category
        ]

    def stay_medications(self) -> list[Sentence]:
        meds = [m for m in self.record.medications if m.label]
        if not meds:
            return []
        sep = "、" if self.lang == "zh" else ", "
        return [self.say("stay", [m.ref for m in meds], meds=sep.join(m.label for m in meds))]


def admission_day(record: NoteRecord) -> NoteRecord:
    """The record as known on the admission day.

    首次病程记录 is written within 8 hours of admission (《病历书写基本规范》第二十二条), so
    it must not cite results or procedures from later days; facts without a time are kept.
    """
    day = record.encounter_start[:10]
    if not day:
        return record

    def known(facts: tuple[Fact, ...]) -> tuple[Fact, ...]:
        return tuple(f for f in facts if not f.when or f.when[:10] <= day)

    return replace(
        record,
        conditions=known(record.conditions),
        vitals=known(record.vitals),
        labs=known(record.labs),
        medications=known(record.medications),
        procedures=known(record.procedures),
    )


def draft_note(record: NoteRecord, note_type: str, lang: str = "zh") -> NoteDraft:
    """The template draft of ``note_type`` for ``record`` (pure; no clock, no network)."""
    if note_type not in NOTE_TYPES:
        raise InputError(
            "--type", "type", f"must be one of {', '.join(NOTE_TYPES)}, got {note_type!r}"
        )
    if lang not in ("zh", "en"):
        raise InputError("--lang", "lang", f"must be zh or en, got {lang!r}")
    w = _Writer(record, lang)
    active = {"active", "on-hold", "draft"}
    if note_type == "admission":
        w = _Writer(admission_day(record), lang)  # 入院记录: written within 24 hours
        sections = [
            w.section("general", w.patient() + w.admitted()),
            w.section("complaint", w.complaint(), "complaint"),
            w.section("hpi", w.hpi(), "complaint"),
            w.section("past", w.past(), "past"),
            w.section("allergy", w.allergies(), "allergy"),
            w.section("exam", w.vitals("first"), "exam"),
            w.section("tests", w.labs(), "tests"),
            w.section("diagnosis", w.diagnoses(), "diagnosis"),
            w.section("plan", w.medications(active | {"completed"}), "plan"),
        ]
    elif note_type == "first_course":
        w = _Writer(admission_day(record), lang)
        sections = [
            w.section(
                "features", w.patient() + w.hpi() + w.past() + w.vitals("first") + w.abnormal_labs()
            ),
            w.section(
                "discussion", w.diagnoses() + w.basis() + [w.missing("differential")], "diagnosis"
            ),
            w.section("first_plan", w.procedures() + w.medications(active | {"completed"}), "plan"),
        ]
    elif note_type == "progress":
        sections = [
            w.section("subjective", w.complaint(), "complaint"),
            w.section("objective", w.vitals("last") + w.labs(latest_only=True), "exam"),
            w.section("assessment", w.diagnoses(), "diagnosis"),
            w.section("soap_plan", w.medications(active), "plan"),
        ]
    else:
        discharged = (
            [w.say("discharged", [record.encounter.ref], date=w.moment(record.encounter_end))]
            if record.encounter is not None and record.encounter_end
            else []
        )
        sections = [
            w.section(
                "admission_status",
                w.patient() + w.admitted() + w.complaint() + w.vitals("first"),
                "complaint",
            ),
            w.section("course", w.procedures() + w.stay_medications(), "course"),
            w.section("discharge_diagnosis", w.diagnoses(), "diagnosis"),
            w.section("discharge_status", w.vitals("last") + discharged, "exam"),
            w.section("discharge_orders", w.medications(active), "plan"),
        ]
    return NoteDraft(note_type=note_type, lang=lang, sections=tuple(sections))
