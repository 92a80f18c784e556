"""What a hospital-defined QC condition (:mod:`medbrain.qc.dsl`) may read about a record.

Facts (names): ``sex`` (``"male"``/``"female"``/null), ``age_years``, ``stage``
(``"realtime"``/``"final"``), ``stay_hours`` (admission to discharge, or to the time of the
check), ``discharged`` (true/false), ``department`` (from meta, may be null).

Functions: ``has(kind)``, ``count(kind)`` (notes of a kind: admission, first_course, daily,
senior_round, post_op, rescue, surgery, discharge, consult, death, consent, …),
``section(kind, title)`` (the text under a heading of the first note of that kind, ``""``
when absent), ``text(document)`` (a whole document: admission, course, surgery, orders, …),
``contains(text, word)``, ``any_of(text, [words])``, ``length(text)``,
``hours_after_admit(kind)`` (hours from admission to the first note of that kind; null when
either is unknown).

``section`` and ``text`` remember the span they read, so a firing rule quotes it as its
evidence (DESIGN.md §3: every defect quotes the span it is about).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medbrain.qc.dsl import Expression, Function, Trace, parse
from medbrain.qc.model import Record

FACT_NAMES = ("sex", "age_years", "stage", "stay_hours", "discharged", "department")


@dataclass(slots=True)
class FactContext:
    """The record a condition is evaluated on, plus what the evaluation quoted."""

    record: Record
    admit: datetime | None
    trace: Trace = field(default_factory=Trace)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _has(ctx: FactContext, kind: Any) -> bool:
    return bool(ctx.record.notes(_str(kind))) if _str(kind) else False


def _count(ctx: FactContext, kind: Any) -> int:
    return len(ctx.record.notes(_str(kind))) if _str(kind) else 0


def _section(ctx: FactContext, kind: Any, title: Any) -> str:
    kind, title = _str(kind), _str(title)
    if not kind or not title:
        return ""
    for note in ctx.record.notes(kind):
        sec = note.section(title)
        if sec is not None:
            body = ctx.record.section_text(note, sec)
            stripped = body.strip()
            if stripped:
                start = sec.body_start + body.index(stripped[0])
                ctx.trace.spans.append((note.document, start, start + len(stripped), stripped))
            else:
                doc = ctx.record.documents[note.document]
                heading = doc.text[sec.start : sec.body_start].strip()
                ctx.trace.spans.append(
                    (note.document, sec.start, sec.start + len(heading), heading)
                )
            return stripped
    return ""


def _text(ctx: FactContext, doc_type: Any) -> str:
    doc = ctx.record.documents.get(_str(doc_type))
    if doc is None:
        return ""
    ctx.trace.spans.append((doc.doc_type, 0, len(doc.text), doc.text))
    return doc.text


def _contains(_ctx: FactContext, text: Any, word: Any) -> bool:
    return isinstance(text, str) and isinstance(word, str) and bool(word) and word in text


def _any_of(_ctx: FactContext, text: Any, words: Any) -> bool:
    if not isinstance(text, str) or not isinstance(words, list):
        return False
    return any(isinstance(w, str) and w and w in text for w in words)


def _length(_ctx: FactContext, value: Any) -> int | None:
    return len(value) if isinstance(value, str | list) else None


def _hours_after_admit(ctx: FactContext, kind: Any) -> float | None:
    if ctx.admit is None or not _str(kind):
        return None
    times = [n.time.when for n in ctx.record.notes(_str(kind)) if n.time is not None]
    if not times:
        return None
    return round((min(times) - ctx.admit).total_seconds() / 3600, 2)


FUNCTIONS: Mapping[str, Function] = {
    "has": Function((1, 1), _has, "has(kind): a note of this kind exists"),
    "count": Function((1, 1), _count, "count(kind): number of notes of this kind"),
    "section": Function((2, 2), _section, "section(kind, title): text under the heading"),
    "text": Function((1, 1), _text, "text(document): the whole document"),
    "contains": Function((2, 2), _contains, "contains(text, word)"),
    "any_of": Function((2, 2), _any_of, "any_of(text, [words])"),
    "length": Function((1, 1), _length, "length(text): number of characters"),
    "hours_after_admit": Function(
        (1, 1), _hours_after_admit, "hours_after_admit(kind): admission → first note"
    ),
}


def compile_condition(text: str) -> Expression:
    """Parse a QC condition against the QC facts and functions (raises ExpressionError)."""
    return parse(text, FUNCTIONS, FACT_NAMES)


def help_rows() -> list[dict[str, str]]:
    """The language reference shown in the rule editor."""
    rows = [{"name": name, "help": fn.help} for name, fn in sorted(FUNCTIONS.items())]
    return rows + [{"name": name, "help": "fact"} for name in FACT_NAMES]
