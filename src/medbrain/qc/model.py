"""Value objects for one inpatient record as the QC engine sees it.

A :class:`Record` holds :class:`Document` s (one per file: ``admission``, ``course``, ...);
each document holds one or more :class:`Note` s (a 日常病程记录 file holds many dated notes);
each note holds :class:`Section` s found under its headings. Every object keeps character
offsets into its document's original text, so a defect can quote the exact span.

References
----------
国家卫生部《病历书写基本规范》(卫医政发〔2010〕11号), 第三章 住院病历书写内容及要求
(第十七条 住院病历的组成; 第十八—十九条 入院记录; 第二十二条 病程记录).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Stamp:
    """A time read from the text, with where it was written.

    ``date_only`` is true when the text gave a date without a time of day
    (``2024.3.5``); deadline checks then give the writer the benefit of the doubt.
    """

    when: datetime
    document: str
    start: int
    end: int
    quote: str
    date_only: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """One heading and the text under it, as offsets into the document text."""

    title: str  # canonical title (主诉, 现病史, ...)
    heading: str  # the heading as written
    start: int  # start of the heading
    body_start: int
    end: int


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature line: ``label`` (医师签名, 患者签名, ...) and the signed name ("" if blank)."""

    label: str
    name: str
    start: int
    end: int
    role: str  # "doctor" | "patient"


@dataclass(frozen=True, slots=True)
class Note:
    """One dated record inside a document (the whole document when it is not split)."""

    document: str
    kind: str  # admission, first_course, daily, senior_round, post_op, rescue, ...
    title: str
    start: int
    end: int
    body_start: int
    time: Stamp | None
    sections: tuple[Section, ...] = ()
    signatures: tuple[Signature, ...] = ()

    def section(self, *titles: str) -> Section | None:
        """The first section with one of ``titles``; a combined heading as written
        (``月经及婚育史``) counts for each title it contains."""
        for sec in self.sections:
            if sec.title in titles:
                return sec
        for sec in self.sections:
            if any(t in sec.heading for t in titles):
                return sec
        return None

    @property
    def doctor_signature(self) -> Signature | None:
        for sig in reversed(self.signatures):
            if sig.role == "doctor":
                return sig
        return None


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of the 医嘱 document."""

    time: Stamp | None
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LabResult:
    """One line of the 检验 document: ``2024-03-06 07:30 血钾 2.8 mmol/L ↓``."""

    time: Stamp | None
    name: str
    value: float
    unit: str
    flag: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Document:
    """One file of the record, decoded, with its notes."""

    doc_type: str
    name: str
    text: str
    norm: str  # same length as ``text``: full-width forms folded to ASCII
    notes: tuple[Note, ...]
    encoding: str = "utf-8"
    #: memo of derived facts (labelled times) read by several rules; never part of equality
    cache: dict[tuple[object, ...], object] = field(default_factory=dict, compare=False, repr=False)

    def quote(self, start: int, end: int) -> str:
        return self.text[start:end]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was listed but not read, and why (unknown type, empty, binary)."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Meta:
    """``meta.json``: optional facts given outside the documents."""

    admit_time: datetime | None = None
    discharge_time: datetime | None = None
    sex: str | None = None  # "male" | "female"
    age_years: int | None = None
    raw: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Record:
    """One inpatient stay: its documents, order and lab lines, and meta facts."""

    documents: dict[str, Document]
    meta: Meta
    orders: tuple[OrderLine, ...] = ()
    labs: tuple[LabResult, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    source: str = "record"
    by_kind: dict[str, tuple[Note, ...]] = field(default_factory=dict, compare=False, repr=False)
    #: memo of derived facts (patient sex/age, order status timeline) shared by the rules
    cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Note]] = {}
        for doc in self.documents.values():
            for note in doc.notes:
                index.setdefault(note.kind, []).append(note)
        object.__setattr__(self, "by_kind", {k: tuple(v) for k, v in index.items()})

    def notes(self, *kinds: str) -> list[Note]:
        """Notes of the given kinds (all notes when none given), in document order."""
        if not kinds:
            return [n for doc in self.documents.values() for n in doc.notes]
        if len(kinds) == 1:
            return list(self.by_kind.get(kinds[0], ()))
        return [n for doc in self.documents.values() for n in doc.notes if n.kind in kinds]

    def text_of(self, note: Note) -> str:
        return self.documents[note.document].text[note.start : note.end]

    def norm_of(self, note: Note) -> str:
        return self.documents[note.document].norm[note.start : note.end]

    def section_text(self, note: Note, section: Section) -> str:
        return self.documents[note.document].text[section.body_start : section.end]
