"""De-identification of text sent to a model server that is not on this host.

Why: DESIGN.md §4 says patient data never leaves the machine. A hospital may still run its
GPU model server on another host; before a prompt goes there, direct identifiers are replaced
by stable placeholders (``[姓名1]``, ``[身份证1]``, ``[电话1]``, ``[地址1]``, ``[病案号1]``), and
the answer is re-identified on the way back, so the doctor sees real names again and the
server never saw them.

Recognizers follow presidio's shape (one small class per entity, a ``find`` that returns
spans, validation by checksum where the identifier has one). What each one replaces:

* **Known values** from the record (patient name, relatives, MRN, phone, address as stored
  in structured fields) are replaced wherever they occur. This is the reliable part.
* **身份证** (resident ID): 18 characters passing the ISO 7064 MOD 11-2 check and holding a
  valid birth date. *Decision:* an 18-digit number with a wrong check character is **not**
  replaced when it stands alone, because such numbers are mostly specimen barcodes, order or
  accession numbers that the draft must quote exactly; but it **is** replaced when a label
  such as ``身份证``/``证件号`` precedes it, because a mistyped ID still identifies the person
  (17 of 18 characters are right). The same label rule covers 15-digit first-generation IDs.
* **Phone numbers**: mainland mobile numbers (``1[3-9]`` + 9 digits, optional ``+86``, spaces
  or dashes) and landlines with an area code (``010-62345678``); any 7–12 digit number right
  after a label such as ``电话``/``手机``.
* **Addresses**: text after an address label (``住址:``), and administrative chains such as
  ``杭州市西湖区…`` or ``文三路100号`` without a label.
* **MRNs**: the code after ``病案号``/``住院号``/``门诊号``/``MRN`` and similar labels.
* **Chinese names** (heuristic): after a name label with a colon (``姓名:王小明``), or a
  common surname plus one or two characters followed by a sex marker (``张三,男``) or an
  honorific (``王先生``). Context is required on purpose: without it, clinical words that
  start with a surname character (高热, 黄疸) would be taken for names.

The heuristics reduce, not eliminate, what leaves the host; the known-value lists are the
primary mechanism, which is why callers pass the record's identifiers.

References
----------
GB 11643-1999 《公民身份号码》 (check character: ISO 7064:1983 MOD 11-2).
GB/T 2260 administrative division names (省/自治区, 市/州, 区/县/旗, 乡/镇/街道).
HIPAA Safe Harbor, 45 CFR §164.514(b)(2), the list of direct identifiers this follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, Protocol

from medbrain.core import yamlio
from medbrain.core.identifiers import parse_resident_id, validate_phone

Entity = Literal["NAME", "ID", "PHONE", "ADDRESS", "MRN"]

#: Placeholder label per entity; Chinese because the prompts and notes are Chinese first.
PLACEHOLDER_LABELS: dict[Entity, str] = {
    "NAME": "姓名",
    "ID": "身份证",
    "PHONE": "电话",
    "ADDRESS": "地址",
    "MRN": "病案号",
}
_LABEL_TO_ENTITY: dict[str, Entity] = {
    label: entity for entity, label in PLACEHOLDER_LABELS.items()
}

_HAN = "\u4e00-\u9fff"
# Models sometimes rewrite "[姓名1]" as "【姓名1】" or "[姓名 1]": accept those on the way back.
_PLACEHOLDER_RE = re.compile(r"[\[【]\s*(" + "|".join(_LABEL_TO_ENTITY) + r")\s*(\d+)\s*[\]】]")


@dataclass(frozen=True, slots=True)
class Span:
    """One identifier found in a text: ``text[start:end]`` is of kind ``entity``."""

    start: int
    end: int
    entity: Entity
    text: str
    recognizer: str


@dataclass(frozen=True, slots=True)
class KnownIdentifiers:
    """Identifiers the record holds in structured fields; replaced wherever they occur."""

    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    mrns: tuple[str, ...] = ()


class Recognizer(Protocol):
    """Finds spans of one entity kind in a text (presidio's ``EntityRecognizer`` in small)."""

    name: str

    def find(self, text: str) -> list[Span]: ...


@lru_cache(maxsize=1)
def _zh_data() -> dict[str, Any]:
    raw = resources.files("medbrain.llm").joinpath("deid_zh.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yamlio.parse(raw)
    return data


def _normalize(entity: str, value: str) -> str:
    """Key under which two spellings of the same identifier share one placeholder."""
    if entity in ("PHONE", "ID"):
        digits = re.sub(r"[\s()（）+-]", "", value).upper()
        return (
            digits[2:]
            if entity == "PHONE" and digits.startswith("86") and len(digits) > 11
            else digits
        )
    return re.sub(r"\s+", "", value)


class KnownValueRecognizer:
    """Exact occurrences of values taken from the record's structured fields."""

    def __init__(self, entity: Entity, values: Iterable[str]) -> None:
        self.entity: Entity = entity
        self.name = f"known.{entity.lower()}"
        cleaned = sorted(
            {v.strip() for v in values if v and len(v.strip()) >= 2}, key=len, reverse=True
        )
        # One pattern per value: with a single alternation a longer value would consume a
        # shorter one inside it, and if the longer span then loses to an overlapping
        # identifier, the shorter value would leak. Overlaps are settled by ``_resolve``.
        self._patterns = [re.compile(re.escape(v), re.IGNORECASE) for v in cleaned]

    def find(self, text: str) -> list[Span]:
        return [
            Span(m.start(), m.end(), self.entity, m.group(0), self.name)
            for pattern in self._patterns
            for m in pattern.finditer(text)
        ]


_ID_LABEL = r"(?:身份证号码|身份证号|身份证|公民身份号码|证件号码|证件号|ID\s*No\.?)"
_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])")
_ID_LABELLED = re.compile(_ID_LABEL + r"\s*[:：]?\s*(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")


class ResidentIdRecognizer:
    """身份证 numbers: checksum-valid anywhere; any 15/18-digit number after an ID label."""

    name = "zh.resident_id"

    def find(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for m in _ID18.finditer(text):
            try:
                parse_resident_id(m.group(1))
            except ValueError:
                continue
            spans.append(Span(m.start(1), m.end(1), "ID", m.group(1), self.name))
        for m in _ID_LABELLED.finditer(text):
            spans.append(Span(m.start(1), m.end(1), "ID", m.group(1), self.name + ".labelled"))
        return spans


_MOBILE = re.compile(r"(?<![\d+])((?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)((?:[(（]0\d{2,3}[)）]|0\d{2,3})[\s-]?[2-9]\d{6,7})(?!\d)")
_PHONE_LABELLED = re.compile(
    r"(?:电话|手机|手机号|联系电话|联系方式|座机|Tel|Phone|Mobile)\s*[:：]?\s*(\+?[\d][\d\s-]{5,16}\d)(?!\d)",
    re.IGNORECASE,
)


_FULLWIDTH_PARENS = str.maketrans("（）", "()")


class PhoneRecognizer:
    """Mainland mobile and landline numbers (validated), or any number after a phone label."""

    name = "zh.phone"

    def find(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for pattern in (_MOBILE, _LANDLINE):
            for m in pattern.finditer(text):
                try:
                    validate_phone(m.group(1).translate(_FULLWIDTH_PARENS))
                except ValueError:
                    continue
                spans.append(Span(m.start(1), m.end(1), "PHONE", m.group(1), self.name))
        for m in _PHONE_LABELLED.finditer(text):
            digits = re.sub(r"\D", "", m.group(1))
            if 7 <= len(digits) <= 13:
                spans.append(
                    Span(m.start(1), m.end(1), "PHONE", m.group(1), self.name + ".labelled")
                )
        return spans


_MRN_LABELLED = re.compile(
    r"(?:病案号|住院号|门诊号|病历号|登记号|就诊号|就诊卡号|医保卡号|医保号|ID号|MRN|Patient\s*ID)"
    r"\s*[:：#]?\s*([A-Za-z0-9][A-Za-z0-9-]{3,23})(?![A-Za-z0-9])",
    re.IGNORECASE,
)


class MrnRecognizer:
    """Medical record, admission and insurance numbers, recognised by their label."""

    name = "zh.mrn"

    def find(self, text: str) -> list[Span]:
        return [
            Span(m.start(1), m.end(1), "MRN", m.group(1), self.name)
            for m in _MRN_LABELLED.finditer(text)
        ]


_ADDRESS_LABELLED = re.compile(
    r"(?:家庭住址|现住址|户籍地址|户口地址|联系地址|通讯地址|居住地|住址|地址)\s*[:：]\s*"
    r"([^\s，,。；;、\n]{2,60})"
)
_H = f"[{_HAN}]"
_ADDRESS_CHAIN = re.compile(
    rf"(?P<prov>{_H}{{2,7}}?(?:省|自治区))?"
    rf"(?P<city>{_H}{{2,7}}?(?:市|自治州|盟))?"
    rf"(?P<dist>{_H}{{1,7}}?(?:区|县|旗))?"
    rf"(?P<town>{_H}{{1,8}}?(?:镇|乡|街道))?"
    rf"(?P<street>[{_HAN}\d]{{1,10}}(?:大街|大道|胡同|路|街|巷|弄|村))?"
    r"(?P<num>(?:[\d一二三四五六七八九十百零〇-]+(?:号院|号楼|号|弄|栋|幢|单元|室|楼|层|组))*)"
)


# Verbs the chain regex swallows at its left edge ("现住北京市…"): not part of the address.
_ADDRESS_LEADS = (
    "现住址",
    "现住",
    "家住",
    "居住在",
    "居住于",
    "居住",
    "住在",
    "住于",
    "来自",
    "位于",
)


_ADDRESS_ANCHOR = re.compile(r"[省市区县旗镇乡路街巷弄村]")


class AddressRecognizer:
    """Addresses after a label, or administrative chains (市+区, 路+门牌号) without one."""

    name = "zh.address"

    def find(self, text: str) -> list[Span]:
        spans = [
            Span(m.start(1), m.end(1), "ADDRESS", m.group(1), self.name + ".labelled")
            for m in _ADDRESS_LABELLED.finditer(text)
        ]
        if not _ADDRESS_ANCHOR.search(text):  # the chain regex is the costly part: skip it
            return spans
        for m in _ADDRESS_CHAIN.finditer(text):
            if m.end() == m.start():
                continue
            g = m.groupdict()
            admin = (g["city"] and g["dist"]) or (g["prov"] and g["city"])
            street = g["street"] and g["num"]
            if admin or street:
                start = m.start()
                lead = next((w for w in _ADDRESS_LEADS if m.group(0).startswith(w)), "")
                start += len(lead)
                spans.append(Span(start, m.end(), "ADDRESS", text[start : m.end()], self.name))
        return spans


class ChineseNameRecognizer:
    """Chinese personal names, only where context says a name stands there (see module doc)."""

    name = "zh.name"

    def __init__(self) -> None:
        data = _zh_data()
        surnames = data["surnames"]
        singles = "".join(surnames["single"].split())
        compounds = "|".join(surnames["compound"])
        labels = data["name_labels"]
        self._not_names = set(labels["not_names"])
        self._labels = set(labels["with_colon"]) | set(labels["before"])
        colon_labels = "|".join(sorted(labels["with_colon"], key=len, reverse=True))
        self._colon = re.compile(rf"(?:{colon_labels})\s*[:：]\s*([{_HAN}]{{2,4}})(?![{_HAN}])")
        honorifics = "|".join(labels["honorifics"])
        surname = f"(?:{compounds}|[{singles}])"
        # A candidate: surname + 1-2 given characters, then a sex marker or an honorific.
        self._sexed = re.compile(
            rf"({surname}[{_HAN}]{{1,2}}?)(?=[，,、\s(（]*[男女](?:性|[，,、\s)）;；]|$|\d))"
        )
        self._honorific = re.compile(rf"({surname}[{_HAN}]{{0,2}}?)(?:{honorifics})")
        self._before = tuple(labels["before"])

    def _clear_left(self, text: str, start: int) -> bool:
        """A name must not continue a longer word: start of text, non-Han, or a label word."""
        if start == 0 or not re.match(f"[{_HAN}]", text[start - 1]):
            return True
        return any(text.endswith(word, 0, start) for word in self._before)

    def find(self, text: str) -> list[Span]:
        spans = [
            Span(m.start(1), m.end(1), "NAME", m.group(1), self.name + ".labelled")
            for m in self._colon.finditer(text)
            if m.group(1) not in self._labels  # "姓名:姓名:" is an empty field, not a name
        ]
        for pattern, tag in ((self._sexed, ".sex"), (self._honorific, ".honorific")):
            for m in pattern.finditer(text):
                candidate = m.group(1)
                if any(candidate.startswith(word) for word in self._not_names):
                    continue
                if not self._clear_left(text, m.start(1)):
                    # "患者张三,男": try the text after a label word inside the match.
                    continue
                end = m.end(1) if tag == ".sex" else m.end(0)
                spans.append(Span(m.start(1), end, "NAME", text[m.start(1) : end], self.name + tag))
        return spans


def default_recognizers(known: KnownIdentifiers | None = None) -> list[Recognizer]:
    """Known values first (most reliable), then the pattern recognizers."""
    known = known or KnownIdentifiers()
    return [
        KnownValueRecognizer("NAME", known.names),
        KnownValueRecognizer("ID", known.ids),
        KnownValueRecognizer("PHONE", known.phones),
        KnownValueRecognizer("ADDRESS", known.addresses),
        KnownValueRecognizer("MRN", known.mrns),
        ResidentIdRecognizer(),
        PhoneRecognizer(),
        MrnRecognizer(),
        AddressRecognizer(),
        ChineseNameRecognizer(),
    ]


def _resolve(spans: Sequence[Span]) -> list[Span]:
    """Non-overlapping spans: the longest wins; at equal length, the earlier recognizer."""
    ranked = sorted(enumerate(spans), key=lambda p: (-(p[1].end - p[1].start), p[0]))
    taken: list[Span] = []
    for _, span in ranked:
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(taken, key=lambda s: s.start)


@dataclass
class Deidentifier:
    """Replaces identifiers by stable placeholders and puts them back in answers.

    One instance per LLM exchange (or per patient): the same value gets the same placeholder
    in every message of the exchange, so the model can refer to ``[姓名1]`` consistently.
    Not shared between patients, so placeholders never cross records.
    """

    known: KnownIdentifiers = field(default_factory=KnownIdentifiers)
    recognizers: list[Recognizer] = field(default_factory=list)
    _by_key: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False)
    _originals: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.recognizers:
            self.recognizers = default_recognizers(self.known)

    @property
    def mapping(self) -> dict[str, str]:
        """Placeholder → original text (first spelling seen)."""
        return dict(self._originals)

    def find(self, text: str) -> list[Span]:
        """All identifiers in ``text``, non-overlapping, in text order.

        A value recognised once (here by context, or earlier in this exchange) is an
        identifier wherever it occurs: "王先生" after a label and "王先生" mid-sentence are the
        same person, so every occurrence is replaced.
        """
        found: list[Span] = []
        for recognizer in self.recognizers:
            found.extend(recognizer.find(text))
        seen: dict[str, Entity] = {
            original: self._entity_of(ph) for ph, original in self._originals.items()
        }
        for span in found:
            seen.setdefault(span.text, span.entity)
        for entity in sorted(set(seen.values())):
            values = [value for value, kind in seen.items() if kind == entity]
            found.extend(KnownValueRecognizer(entity, values).find(text))
        return _resolve(found)

    def _entity_of(self, placeholder: str) -> Entity:
        return _LABEL_TO_ENTITY[placeholder.strip("[]").rstrip("0123456789")]

    def _placeholder(self, span: Span) -> str:
        key = (span.entity, _normalize(span.entity, span.text))
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        n = self._counts.get(span.entity, 0) + 1
        self._counts[span.entity] = n
        placeholder = f"[{PLACEHOLDER_LABELS[span.entity]}{n}]"
        self._by_key[key] = placeholder
        self._originals[placeholder] = span.text
        return placeholder

    def deidentify(self, text: str) -> str:
        """``text`` with every identifier replaced by its placeholder."""
        out: list[str] = []
        cursor = 0
        for span in self.find(text):
            out.append(text[cursor : span.start])
            out.append(self._placeholder(span))
            cursor = span.end
        out.append(text[cursor:])
        return "".join(out)

    def reidentify(self, text: str) -> str:
        """Put originals back; placeholders this instance never issued are left as they are."""

        def back(m: re.Match[str]) -> str:
            placeholder = f"[{m.group(1)}{m.group(2)}]"
            return self._originals.get(placeholder, m.group(0))

        return _PLACEHOLDER_RE.sub(back, text)

    def reidentify_json(self, value: Any) -> Any:
        """Re-identify every string inside a parsed JSON value."""
        if isinstance(value, str):
            return self.reidentify(value)
        if isinstance(value, list):
            return [self.reidentify_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.reidentify_json(v) for k, v in value.items()}
        return value


class StreamReidentifier:
    """Re-identifies a stream of text deltas, holding back a placeholder split across deltas."""

    _MAX_PLACEHOLDER = 12

    def __init__(self, deid: Deidentifier) -> None:
        self._deid = deid
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        cut = max(text.rfind("["), text.rfind("【"))
        if (
            cut >= 0
            and not re.search(r"[\]】]", text[cut:])
            and len(text) - cut < self._MAX_PLACEHOLDER
        ):
            self._pending = text[cut:]
            text = text[:cut]
        else:
            self._pending = ""
        return self._deid.reidentify(text)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self._deid.reidentify(rest)
