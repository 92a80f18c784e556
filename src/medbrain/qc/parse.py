"""Read Chinese inpatient records into documents, notes, sections, times and signatures.

Real records vary: UTF-8 or GBK files, full- and half-width punctuation, headings with or
without a colon (``主诉:``, ``主诉：``, ``【主诉】``, ``一、主诉``), and dates written as
``2024-03-05 14:30``, ``2024/3/5 14:30``, ``2024年3月5日14时30分`` or ``2024.3.5``. The
parser never changes the text it quotes: it works on a same-length *folded* copy (full-width
ASCII forms mapped to ASCII) and reports offsets into the original.

Layering: :func:`decode` and :func:`parse_document` are pure text functions;
:func:`read_record_dir` and :func:`record_from_mapping` are the thin readers the CLI and the
API call.

References
----------
国家卫生部《病历书写基本规范》(卫医政发〔2010〕11号): 第九条 (日期和时间一律使用阿拉伯数字,
24 小时制); 第十八—十九条 (入院记录及其项目); 第二十二条 (病程记录: 首次病程记录、日常病程
记录、上级医师查房记录 …); 第二十三—二十六条 (知情同意书须患者或其近亲属签字).
GB 18030-2022 (GBK superset) for legacy-encoded files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.qc.model import (
    Document,
    LabResult,
    Meta,
    Note,
    OrderLine,
    Record,
    Section,
    Signature,
    Skipped,
    Stamp,
)

DOCUMENT_TYPES = (
    "admission",
    "course",
    "surgery",
    "discharge",
    "orders",
    "labs",
    "consult",
    "death",
    "consent",
    "nursing",
)
MAX_DOCUMENT_CHARS = 2_000_000

# ---------------------------------------------------------------------------------------------
# Vocabulary (knowledge/qc/sections.yaml)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Headings, note titles, time and signature labels the parser recognises."""

    heading_re: re.Pattern[str]
    alias_to_title: Mapping[str, str]
    note_titles: tuple[tuple[str, re.Pattern[str]], ...]
    note_title_re: re.Pattern[str]
    default_note_kind: Mapping[str, str]
    time_labels: Mapping[str, tuple[str, ...]]
    signature_re: re.Pattern[str]
    signature_roles: Mapping[str, str]
    version: str
    #: headings also recognised inside a line, after a colon, blank or sentence punctuation
    #: (``拟诊讨论:诊断依据:…。鉴别诊断:…``, ``助手:何飞 麻醉方式:腰硬联合麻醉``)
    inline_heading_re: re.Pattern[str] | None = None
    #: any known heading run on inside a line with a colon (``…第3周期治疗现病史:患者…。
    #: 既往史:…``): after sentence punctuation or a blank any alias, after other text only
    #: aliases of three or more characters (``CT结论:`` or ``入院查体:`` stay body text).
    #: The distinct alias lengths, longest first: a colon is checked against the words
    #: that end right before it (much cheaper than searching a pattern at every offset).
    runon_lengths: tuple[int, ...] = ()
    #: the characters an alias ends with (a cheap pre-check before each colon)
    heading_last: frozenset[str] = frozenset()
    #: characters a heading line can begin with (after blanks): a cheap pre-check that
    #: spares the heading pattern most body lines
    heading_first: frozenset[str] = frozenset()


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def build_vocabulary(data: Mapping[str, Any]) -> Vocabulary:
    """Validate and compile ``sections.yaml`` (already merged with any overrides)."""
    try:
        sections: Mapping[str, list[str]] = data["sections"]
        alias_to_title = {
            alias: title for title, aliases in sections.items() for alias in [title, *aliases]
        }
        alts = _alternation(alias_to_title)
        heading_re = re.compile(
            r"^[ \t]*(?:[(]?[一二三四五六七八九十\d]{1,2}[)、.][ \t]*)?"
            rf"(?:[【\[](?P<hb>{alts})[】\]][ \t]*:?[ \t]*|(?P<h>{alts})[ \t]*(?::[ \t]*|$|[ \t]+))",
            re.M,
        )
        inline_titles = [str(t) for t in data.get("inline_sections") or ()]
        unknown = [t for t in inline_titles if t not in sections]
        if unknown:
            raise KnowledgeError(f"qc/sections.yaml: inline_sections not in sections: {unknown}")
        inline_alts = _alternation(a for t in inline_titles for a in [t, *sections[t]])
        inline_heading_re = (
            re.compile(rf"(?<=[:;,。;、 \t])(?P<h>{inline_alts})[ \t]*:[ \t]*")
            if inline_titles
            else None
        )
        titles = tuple((str(r["kind"]), re.compile(str(r["pattern"]))) for r in data["note_titles"])
        note_title_re = re.compile("|".join(f"(?:{p.pattern})" for _, p in titles))
        labels = {k: tuple(v) for k, v in data["time_labels"].items()}
        roles = {w: role for role, words in data["signature_labels"].items() for w in words}
        signature_re = re.compile(
            rf"(?P<label>{_alternation(roles)})[ \t]*:[ \t]*"
            r"(?:(?P<name>[\u4e00-\u9fff]{2,4}(?:[ \t]*/[ \t]*[\u4e00-\u9fff]{2,4})*)"
            r"(?![\u4e00-\u9fff]*[ \t]*:))?"
        )
        return Vocabulary(
            heading_re=heading_re,
            alias_to_title=alias_to_title,
            note_titles=titles,
            note_title_re=note_title_re,
            default_note_kind=dict(data.get("default_note_kind") or {}),
            time_labels=labels,
            signature_re=signature_re,
            signature_roles=roles,
            version=str(data.get("version", "")),
            inline_heading_re=inline_heading_re,
            runon_lengths=tuple(sorted({len(a) for a in alias_to_title if a}, reverse=True)),
            heading_last=frozenset(a[-1] for a in alias_to_title if a),
            heading_first=frozenset(a[0] for a in alias_to_title if a)
            | frozenset("([【一二三四五六七八九十"),
        )
    except (KeyError, TypeError, AttributeError, re.error) as exc:
        raise KnowledgeError(f"qc/sections.yaml: malformed ({exc!r})") from None


def read_knowledge_yaml(name: str) -> Any:
    """Read ``medbrain/knowledge/qc/<name>``; a missing or malformed file names itself."""
    try:
        text = (
            resources.files("medbrain.knowledge").joinpath("qc").joinpath(name).read_text("utf-8")
        )
        return yamlio.parse(text)
    except FileNotFoundError:
        raise KnowledgeError(f"knowledge file qc/{name} is missing") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"knowledge file qc/{name} is not valid YAML: {exc}") from None


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    return build_vocabulary(read_knowledge_yaml("sections.yaml"))


# ---------------------------------------------------------------------------------------------
# Text: decoding, folding, timestamps

_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FOLD.update({0x3000: 0x20, 0x3001: 0x3001, 0xFF0C: 0x2C})


_WIDE_RE = re.compile("[\uff01-\uff5e\u3000]")


def fold(text: str) -> str:
    """Map full-width ASCII forms (``：２０２４``) to ASCII, keeping every offset."""
    return text.translate(_FOLD) if _WIDE_RE.search(text) else text


@lru_cache(maxsize=512)
def _label_re(label: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(label)}[ \t]*:?[ \t]*")


def decode(raw: bytes) -> tuple[str, str] | None:
    """Decode a document: UTF-8 (BOM allowed) first, then GB 18030 (a GBK superset).

    Returns ``(text, encoding)``, or ``None`` for binary content (NUL bytes, undecodable,
    or mostly control characters).
    """
    if b"\x00" in raw[:4096]:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t\f")
        if controls > max(2, len(text[:4096]) // 50):
            return None
        return text.replace("\r\n", "\n").replace("\r", "\n"), (
            "utf-8" if encoding == "utf-8-sig" else "gbk"
        )
    return None


_TS_RE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})[ \t]*(?:[-/.]|年)[ \t]*(?P<mo>\d{1,2})[ \t]*(?:[-/.]|月)"
    r"[ \t]*(?P<d>\d{1,2})(?!\d)[ \t]*(?:日|号)?"
    r"(?:[ \t]*(?:T|[ \t])?[ \t]*(?P<h>\d{1,2})[ \t]*(?:(?::|时|時|点|點)[ \t]*(?P<mi>\d{1,2})"
    r"(?:[ \t]*分|:\d{1,2}(?:\.\d+)?)?|时|時|点|點))?"
)


def parse_stamp(text: str) -> tuple[datetime, bool] | None:
    """Parse one timestamp written in any of the accepted styles; ``None`` if none or invalid."""
    match = _TS_RE.search(fold(text))
    if match is None:
        return None
    return _to_datetime(match)


def _to_datetime(match: re.Match[str]) -> tuple[datetime, bool] | None:
    year, month, day, hour, minute = match.group("y", "mo", "d", "h", "mi")
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour) if hour else 0, int(minute) if minute else 0
        )
    except ValueError:
        return None
    return when, hour is None


def find_stamps(doc_name: str, text: str, norm: str, start: int, end: int) -> list[Stamp]:
    """Every valid timestamp in ``norm[start:end]`` with its exact quote from ``text``."""
    out: list[Stamp] = []
    for match in _TS_RE.finditer(norm, start, end):
        parsed = _to_datetime(match)
        if parsed is None:
            continue
        s, e = match.span()
        quote_end = e
        while quote_end > s and text[quote_end - 1] in " \t":
            quote_end -= 1
        out.append(Stamp(parsed[0], doc_name, s, quote_end, text[s:quote_end], parsed[1]))
    return out


def labelled_stamp(
    doc: Document | tuple[str, str, str], labels: Iterable[str], start: int, end: int
) -> Stamp | None:
    """The time written after the first of ``labels`` (in priority order) that carries one
    (``入院时间:2024-03-05 10:20``)."""
    if isinstance(doc, Document):
        key = ("labelled", tuple(labels), start, end)
        if key in doc.cache:
            return doc.cache[key]  # type: ignore[return-value]
        found = _labelled_stamp(doc.name, doc.text, doc.norm, key[1], start, end)
        doc.cache[key] = found
        return found
    return _labelled_stamp(*doc, labels, start, end)


@lru_cache(maxsize=256)
def _any_label_re(labels: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(_alternation(labels)) if labels else re.compile(r"(?!)")


def _labelled_stamp(
    name: str, text: str, norm: str, labels: Iterable[str], start: int, end: int
) -> Stamp | None:
    labels = tuple(labels)
    if _any_label_re(labels).search(norm, start, end) is None:
        return None  # none of the labels is written here: skip the per-label scans
    for label in labels:
        for match in _label_re(label).finditer(norm, start, end):
            pos = match.end()
            stamps = find_stamps(name, text, norm, pos, min(end, pos + 40))
            if stamps and stamps[0].start == pos:
                return stamps[0]
    return None


# ---------------------------------------------------------------------------------------------
# Documents → notes → sections, signatures


def _line_spans(norm: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        nl = norm.find("\n", pos, end)
        stop = end if nl < 0 else nl
        spans.append((pos, stop))
        pos = stop + 1
    return spans


def _note_kind(vocab: Vocabulary, title: str, default: str) -> str:
    for kind, pattern in vocab.note_titles:
        if pattern.search(title):
            return kind
    return default


_SPLIT_TYPES = ("course", "death", "consult")
# A note title is a short phrase without sentence punctuation ending like a title.
_TITLE_SHAPE_RE = re.compile(
    r"[\u4e00-\u9fff()()\s]{0,14}(?:记录|讨论|小结|查房|病程)[\u4e00-\u9fff()()]{0,4}"
)


def _split_points(
    doc_type: str, name: str, text: str, norm: str, vocab: Vocabulary
) -> list[tuple[int, str, Stamp | None]]:
    """Lines that open a new note: a timestamp and/or a known note title, nothing else."""
    points: list[tuple[int, str, Stamp | None]] = []
    # every timestamp of the document at once, bucketed by line (a timestamp never spans
    # a line break, so this equals searching line by line)
    by_line: dict[int, list[Stamp]] = {}
    if doc_type != "consent":
        by_line = _stamps_by_line(Document(doc_type, name, text, norm, ()))
    for s, e in _line_spans(norm, 0, len(norm)):
        line = norm[s:e].strip()
        if not line or len(line) > 60:
            continue
        if doc_type == "consent":
            if "同意书" in line and len(line) <= 30 and ":" not in line:
                points.append((s, text[s:e].strip(), None))
            continue
        stamps = by_line.get(s, [])
        rest = line
        for st in stamps:
            rest = rest.replace(norm[st.start : st.end].strip(), " ")
        rest = rest.strip(" \t-—:").replace("【", "").replace("】", "").strip()
        titled = (
            _TITLE_SHAPE_RE.fullmatch(rest) is not None
            and vocab.note_title_re.search(rest) is not None
        )
        if stamps and (not rest or titled) and (doc_type == "course" or titled):
            points.append((s, rest, stamps[0]))
        elif titled and not stamps and doc_type in _SPLIT_TYPES:
            points.append((s, rest, None))
    return points


_RUN_ON_AFTER = frozenset("。;;!! \t\n")


def _run_on_headings(
    vocab: Vocabulary,
    norm: str,
    found: list[tuple[int, int, int, int, str]],
    taken: list[tuple[int, int]],
    end: int,
) -> None:
    """Add the headings run on inside lines (``…治疗现病史:患者…``) to ``found``."""
    titles = vocab.alias_to_title
    last = vocab.heading_last
    colon = norm.find(":", found[0][3], end)
    while colon >= 0:
        q = colon
        while q > 0 and norm[q - 1] in " \t":
            q -= 1
        if q == 0 or norm[q - 1] not in last:
            colon = norm.find(":", colon + 1, end)
            continue
        for length in vocab.runon_lengths:
            s = q - length
            word = norm[s:q]
            if s < 0 or word not in titles:
                continue
            if length < 3 and (s == 0 or norm[s - 1] not in _RUN_ON_AFTER):
                continue
            if any(a <= s < b for a, b in taken):
                break
            # a sub-heading of the section it runs on in (个人史:出生史:…) is body text
            inside = max((h for h in found if h[0] < s), default=None)
            if inside is not None and titles[inside[4]] == titles[word]:
                break
            body = colon + 1
            while body < end and norm[body] in " \t":
                body += 1
            found.append((s, s, q, body, word))
            taken.append((s, body))
            break
        colon = norm.find(":", colon + 1, end)


def _sections(vocab: Vocabulary, text: str, norm: str, start: int, end: int) -> tuple[Section, ...]:
    heads: list[re.Match[str]] = []
    first = vocab.heading_first
    match_heading = vocab.heading_re.match
    pos = start
    if pos > 0 and norm[pos - 1] != "\n":  # a note body starting mid-line
        nl = norm.find("\n", pos, end)
        pos = end if nl < 0 else nl + 1
    while pos < end:
        p = pos
        while p < end and norm[p] in " \t":
            p += 1
        if p < end and (norm[p] in first or norm[p].isdecimal()):
            match = match_heading(norm, pos, end)
            if match is not None:
                heads.append(match)
        nl = norm.find("\n", pos, end)
        if nl < 0:
            break
        pos = nl + 1
    # (start of the whole heading, start and end of its word, body start, word)
    found: list[tuple[int, int, int, int, str]] = []
    for match in heads:
        group = "h" if match.group("h") else "hb"
        found.append(
            (match.start(), match.start(group), match.end(group), match.end(), match.group(group))
        )
    inline = vocab.inline_heading_re
    if inline is not None and found:
        # inline sub-headings only inside a note that already has line headings
        taken = [(h[0], h[3]) for h in found]
        for match in inline.finditer(norm, found[0][3], end):
            s = match.start("h")
            if not any(a <= s < b for a, b in taken):
                found.append((s, s, match.end("h"), match.end(), match.group("h")))
                taken.append((s, match.end()))
        if vocab.runon_lengths:
            found.sort()
            _run_on_headings(vocab, norm, found, taken, end)
        found.sort()
    out: list[Section] = []
    for index, (_, word_start, word_end, body_start, word) in enumerate(found):
        stop = found[index + 1][0] if index + 1 < len(found) else end
        heading = text[word_start:word_end]
        title = vocab.alias_to_title[word]
        # a heading line's own text ends at the next heading; trim trailing blank lines
        while stop > body_start and norm[stop - 1] in " \t\n":
            stop -= 1
        out.append(Section(title, heading, word_start, body_start, max(stop, body_start)))
    return tuple(out)


_BARE_NAME_RE = re.compile(
    r"^[ \t]*(?P<name>[\u4e00-\u9fff]{2,3}(?:/[\u4e00-\u9fff]{2,3})?)[ \t]*$", re.M
)


def _last_lines(norm: str, start: int, end: int) -> tuple[int, int, bool] | None:
    """The span of the last non-blank line in ``norm[start:end]`` and whether another
    non-blank line precedes it (as :func:`_line_spans` would cut them)."""
    stop = end
    while stop > start:
        nl = norm.rfind("\n", start, stop)
        line_start = nl + 1 if nl >= 0 else start
        if norm[line_start:stop].strip():
            more = bool(norm[start:line_start].strip())
            return line_start, stop, more
        if nl < 0:
            return None
        stop = nl
    return None


def _signatures(
    vocab: Vocabulary, norm: str, start: int, end: int, body_start: int
) -> tuple[Signature, ...]:
    out: list[Signature] = []
    for match in vocab.signature_re.finditer(norm, body_start, end):
        label = match.group("label")
        name = (match.group("name") or "").replace(" ", "")
        stop = match.end("name") if match.group("name") else match.end("label")
        out.append(Signature(label, name, match.start(), stop, vocab.signature_roles[label]))
    if not any(sig.role == "doctor" for sig in out):
        last = _last_lines(norm, body_start, end)
        if last is not None:
            s, e, more = last
            bare = _BARE_NAME_RE.match(norm, s, e)
            if bare and bare.end() == e and more:
                out.append(
                    Signature(
                        "", bare.group("name"), bare.start("name"), bare.end("name"), "doctor"
                    )
                )
    return tuple(out)


def parse_document(
    doc_type: str, name: str, text: str, vocab: Vocabulary | None = None, encoding: str = "utf-8"
) -> Document:
    """Split one document into notes, and each note into sections and signatures."""
    vocab = vocab or default_vocabulary()
    norm = fold(text)
    default_kind = vocab.default_note_kind.get(doc_type, doc_type)
    points = (
        _split_points(doc_type, name, text, norm, vocab)
        if doc_type in (*_SPLIT_TYPES, "consent")
        else []
    )
    if not points or (points[0][0] > 0 and norm[: points[0][0]].strip()):
        # text before the first dated title belongs to an untitled first note
        points.insert(0, (0, "", None))
    notes: list[Note] = []
    for index, (s, title, stamp) in enumerate(points):
        e = points[index + 1][0] if index + 1 < len(points) else len(text)
        nl = norm.find("\n", s, e)
        body_start = s if not title and stamp is None else (e if nl < 0 else nl + 1)
        kind = _note_kind(vocab, title, default_kind) if title else default_kind
        if doc_type not in _SPLIT_TYPES and doc_type != "consent":
            kind = doc_type
        recorded = labelled_stamp((name, text, norm), vocab.time_labels["recorded"], s, e)
        time = recorded or stamp
        if time is None and doc_type in ("consent",):
            time = labelled_stamp((name, text, norm), vocab.time_labels["signed"], s, e)
        notes.append(
            Note(
                document=doc_type,
                kind=kind,
                title=title.strip(),
                start=s,
                end=e,
                body_start=body_start,
                time=time,
                sections=_sections(vocab, text, norm, body_start, e),
                signatures=_signatures(vocab, norm, s, e, body_start),
            )
        )
    return Document(doc_type, name, text, norm, tuple(notes), encoding)


_NUM_RE = re.compile(r"(?P<v>[<>]?\d+(?:\.\d+)?)")
_LAB_RE = re.compile(
    r"(?P<name>[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9+\-()]*?)[ \t]*[:]?[ \t]*"
    r"(?P<v>[<>]?-?\d+(?:\.\d+)?)[ \t]*(?P<unit>[A-Za-z%/μµ0-9^*.×]*)[ \t]*(?P<flag>↑↑|↓↓|↑|↓|H|L|危急值?)?"
)


def _stamps_by_line(doc: Document) -> dict[int, list[Stamp]]:
    """Every timestamp of ``doc`` keyed by the start of its line (one scan of the text; a
    timestamp never spans a line break, so this equals searching line by line)."""
    by_line: dict[int, list[Stamp]] = {}
    for stamp in find_stamps(doc.name, doc.text, doc.norm, 0, len(doc.norm)):
        by_line.setdefault(doc.norm.rfind("\n", 0, stamp.start) + 1, []).append(stamp)
    return by_line


def parse_orders(doc: Document) -> tuple[OrderLine, ...]:
    """One :class:`OrderLine` per non-empty line; the time is the line's first timestamp."""
    out: list[OrderLine] = []
    last: Stamp | None = None
    by_line = _stamps_by_line(doc)
    for s, e in _line_spans(doc.norm, 0, len(doc.norm)):
        if not doc.norm[s:e].strip():
            continue
        stamps = by_line.get(s, [])
        stamp = stamps[0] if stamps else last
        last = stamp
        out.append(OrderLine(stamp, doc.text[s:e].strip(), s, e))
    return tuple(out)


def parse_labs(doc: Document) -> tuple[LabResult, ...]:
    """Lab lines ``<time> <name> <value> [unit] [↑|↓|H|L|危急]``; a dated heading line sets
    the time of the undated lines under it."""
    out: list[LabResult] = []
    last: Stamp | None = None
    by_line = _stamps_by_line(doc)
    for s, e in _line_spans(doc.norm, 0, len(doc.norm)):
        stamps = by_line.get(s, [])
        pos = s
        if stamps:
            last = stamps[0]
            pos = stamps[0].end
        for match in _LAB_RE.finditer(doc.norm, pos, e):
            try:
                value = float(match.group("v").lstrip("<>"))
            except ValueError:
                continue
            out.append(
                LabResult(
                    time=last,
                    name=match.group("name"),
                    value=value,
                    unit=match.group("unit") or "",
                    flag=match.group("flag") or "",
                    start=match.start("name"),
                    end=match.end(),
                )
            )
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Records


_SEX = {
    "male": "male",
    "m": "male",
    "男": "male",
    "female": "female",
    "f": "female",
    "女": "female",
}


def parse_meta(raw: Any, source: str = "meta.json") -> Meta:
    """Validate ``meta.json``; a field of the wrong type is an :class:`InputError`."""
    if raw is None:
        return Meta()
    if not isinstance(raw, dict):
        raise InputError(source, "", "must be a JSON object")
    times: dict[str, datetime | None] = {}
    for key in ("admit_time", "discharge_time"):
        value = raw.get(key)
        if value in (None, ""):
            times[key] = None
            continue
        parsed = parse_stamp(str(value))
        if parsed is None:
            raise InputError(source, key, f"not a date/time: {value!r}")
        times[key] = parsed[0]
    sex_raw = raw.get("sex")
    sex = None
    if sex_raw not in (None, ""):
        sex = _SEX.get(str(sex_raw).strip().lower())
        if sex is None:
            raise InputError(source, "sex", f"must be male or female, got {sex_raw!r}")
    age_raw = raw.get("age_years")
    age = None
    if age_raw not in (None, ""):
        if isinstance(age_raw, bool) or not isinstance(age_raw, int | float | str):
            raise InputError(source, "age_years", "must be a number")
        try:
            age = int(float(age_raw))
        except ValueError:
            raise InputError(source, "age_years", f"must be a number, got {age_raw!r}") from None
        if not 0 <= age <= 150:
            raise InputError(source, "age_years", f"out of range: {age}")
    return Meta(times["admit_time"], times["discharge_time"], sex, age, dict(raw))


def build_record(
    texts: Mapping[str, tuple[str, str, str]],
    meta: Meta,
    skipped: Iterable[Skipped] = (),
    vocab: Vocabulary | None = None,
    source: str = "record",
) -> Record:
    """Assemble a record from ``{doc_type: (file name, text, encoding)}``."""
    vocab = vocab or default_vocabulary()
    documents: dict[str, Document] = {}
    for doc_type in DOCUMENT_TYPES:
        if doc_type in texts:
            name, text, encoding = texts[doc_type]
            documents[doc_type] = parse_document(doc_type, name, text, vocab, encoding)
    orders = parse_orders(documents["orders"]) if "orders" in documents else ()
    labs = parse_labs(documents["labs"]) if "labs" in documents else ()
    return Record(documents, meta, orders, labs, tuple(skipped), source)


def read_record_dir(path: Path, vocab: Vocabulary | None = None) -> Record:
    """Read a RECORD directory (DESIGN.md §3): one file per document type plus ``meta.json``.

    Files whose stem is not a known document type, empty files and binary files are listed
    in ``Record.skipped``, never silently dropped. A missing directory is an InputError.
    """
    if not path.exists():
        raise InputError(str(path), "", "no such directory")
    if not path.is_dir():
        raise InputError(str(path), "", "not a directory; expected a RECORD directory")
    texts: dict[str, tuple[str, str, str]] = {}
    skipped: list[Skipped] = []
    meta = Meta()
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_file():
            skipped.append(Skipped(entry.name, "not a regular file"))
            continue
        if entry.name == "meta.json":
            try:
                raw_meta = json.loads(entry.read_bytes().decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(str(entry), "", f"malformed JSON: {exc}") from None
            meta = parse_meta(raw_meta, str(entry))
            continue
        stem = entry.name.split(".", 1)[0]
        if stem not in DOCUMENT_TYPES:
            skipped.append(Skipped(entry.name, "unknown document type"))
            continue
        if stem in texts:
            skipped.append(Skipped(entry.name, f"second file for document type {stem}"))
            continue
        raw = entry.read_bytes()
        decoded = decode(raw)
        if not raw.strip():
            skipped.append(Skipped(entry.name, "empty file"))
        elif decoded is None:
            skipped.append(Skipped(entry.name, "binary or undecodable content"))
        elif len(decoded[0]) > MAX_DOCUMENT_CHARS:
            skipped.append(Skipped(entry.name, f"larger than {MAX_DOCUMENT_CHARS} characters"))
        elif not decoded[0].strip():
            skipped.append(Skipped(entry.name, "empty file"))
        else:
            texts[stem] = (entry.name, decoded[0], decoded[1])
    return build_record(texts, meta, skipped, vocab, str(path))


def record_from_mapping(body: Any, source: str = "body", vocab: Vocabulary | None = None) -> Record:
    """Read the API/JSON form ``{"documents": {"admission": "..."}, "meta": {...}}``."""
    if not isinstance(body, dict):
        raise InputError(source, "", "must be a JSON object with documents and meta")
    documents = body.get("documents")
    if not isinstance(documents, dict) or not documents:
        raise InputError(source, "documents", "must be a non-empty object of document texts")
    texts: dict[str, tuple[str, str, str]] = {}
    skipped: list[Skipped] = []
    for key in sorted(documents):
        value = documents[key]
        if key not in DOCUMENT_TYPES:
            skipped.append(Skipped(str(key), "unknown document type"))
        elif not isinstance(value, str):
            raise InputError(source, f"documents.{key}", "must be a string")
        elif not value.strip():
            skipped.append(Skipped(str(key), "empty document"))
        elif len(value) > MAX_DOCUMENT_CHARS:
            skipped.append(Skipped(str(key), f"larger than {MAX_DOCUMENT_CHARS} characters"))
        else:
            texts[key] = (key, value.replace("\r\n", "\n").replace("\r", "\n"), "utf-8")
    meta = parse_meta(body.get("meta"), f"{source}: meta")
    return build_record(texts, meta, skipped, vocab, source)


def record_from_json(
    document: Any, source: str = "body", vocab: Vocabulary | None = None
) -> Record:
    """A JSON input: a FHIR R4 Bundle (Composition/DocumentReference) or the API form
    ``{"documents": {...}, "meta": {...}}``."""
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        from medbrain.qc.fhir import record_from_bundle

        return record_from_bundle(document, source, vocab)
    return record_from_mapping(document, source, vocab)
