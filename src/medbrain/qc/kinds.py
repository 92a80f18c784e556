"""The generic QC rule kinds: one small class per kind, parameterised by a rule row.

Each kind has ``kind``, reads the row's ``params`` and implements
``check(record, ctx) -> list[Finding]``. Rows in ``knowledge/qc/rules.yaml`` choose the kind,
category, stage, messages, deduction and parameters; no rule lives in an ``if`` chain here.

Kinds: ``required_document``, ``required_section``, ``deadline``, ``note_frequency``,
``chief_complaint``, ``consistency``, ``copy_paste``, ``signature``, ``consent``,
``lab_followup``, ``medication``.

References
----------
国家卫生部《病历书写基本规范》(卫医政发〔2010〕11号) 第八、十、十八、十九、二十二至二十六条;
《病案管理质量控制指标(2021年版)》(国卫办医函〔2021〕28号); STYLE.md §4 (presidio-style
recognizers) and §6 (DataQualityDashboard: one parameterised template per check kind).
Broder, A. Z. "On the resemblance and containment of documents", SEQUENCES 1997 (shingling,
Jaccard resemblance) for ``copy_paste``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, ClassVar

from medbrain.core.errors import KnowledgeError
from medbrain.core.findings import Evidence, Finding
from medbrain.qc.model import Document, Note, Record, Section, Stamp
from medbrain.qc.parse import find_stamps, labelled_stamp
from medbrain.qc.registry import QCKnowledge, RuleRow

# ---------------------------------------------------------------------------------------------
# Context: events read once per record


@dataclass(frozen=True, slots=True)
class Events:
    """Key moments of the stay, each with the text it was read from."""

    admit: Stamp | None
    discharge: Stamp | None
    death: Stamp | None
    surgery_start: Stamp | None
    surgery_end: Stamp | None
    latest: datetime | None
    raw_discharge: Stamp | None  # as written, even when it is before admission

    def get(self, name: str) -> Stamp | None:
        value = getattr(self, name, None)
        return value if isinstance(value, Stamp) else None


def _meta_stamp(key: str, when: datetime | None, raw: Mapping[str, object]) -> Stamp | None:
    if when is None:
        return None
    quote = str(raw.get(key, when.isoformat(sep=" ", timespec="minutes")))
    return Stamp(when, "meta", 0, 0, quote, False)


def _first_labelled(
    record: Record, kb: QCKnowledge, label: str, doc_types: Iterable[str]
) -> Stamp | None:
    labels = kb.vocabulary.time_labels.get(label, ())
    for doc_type in doc_types:
        doc = record.documents.get(doc_type)
        if doc is None:
            continue
        stamp = labelled_stamp(doc, labels, 0, len(doc.norm))
        if stamp is not None:
            return stamp
    return None


_CLOCK = r"(?P<h>\d{1,2})[ \t]*(?::|时|時|点)[ \t]*(?P<mi>\d{1,2})[ \t]*分?"
# "08:40-10:30", "9时00分至10时50分", "2024-07-03 09:35-2024-07-03 10:20", "开始时间 09:10
# 结束时间 10:05": the operation's end written after its start on the same line
_END_TIME_RE = re.compile(
    rf"[ \t]*(?:(?:-|~|—|–|至|到)[ \t]*|.{{0,20}}?结束(?:时间)?[ \t]*:?[ \t]*)(?:{_CLOCK})?"
)
_START_TIME_RE = re.compile(rf"[ \t]*(?:开始(?:时间)?[ \t]*:?[ \t]*)(?:{_CLOCK})?")


def _time_after(doc: Document, stamp: Stamp | None, pattern: re.Pattern[str]) -> Stamp | None:
    """A time written right after ``stamp`` (a range's end, or a labelled clock time on the
    same date); ``None`` when there is none."""
    if stamp is None or stamp.document != doc.name:
        return None
    line_end = doc.norm.find("\n", stamp.end)
    line_end = len(doc.norm) if line_end < 0 else line_end
    match = pattern.match(doc.norm, stamp.end, line_end)
    if match is None:
        return None
    if match.group("h") is None:
        # a full date-time after the separator ("… 至 2024年8月15日0时25分")
        full = find_stamps(doc.name, doc.text, doc.norm, match.end(), line_end)
        if full and full[0].start == match.end() and not full[0].date_only:
            return full[0]
        return None
    try:
        when = stamp.when.replace(hour=int(match.group("h")), minute=int(match.group("mi")))
    except ValueError:
        return None
    if not stamp.date_only and when < stamp.when:
        when += timedelta(days=1)  # an operation that runs past midnight
    s, e = match.start("h"), match.end()
    while e > s and doc.text[e - 1] in " \t":
        e -= 1
    return Stamp(when, doc.name, s, e, doc.text[s:e], False)


def read_events(record: Record, kb: QCKnowledge, now: datetime | None) -> Events:
    """Admission, discharge, death and surgery times: meta.json first, then the documents."""
    meta = record.meta
    admit = _meta_stamp("admit_time", meta.admit_time, meta.raw) or _first_labelled(
        record, kb, "admit", ("admission", "discharge", "death")
    )
    raw_discharge = _meta_stamp("discharge_time", meta.discharge_time, meta.raw) or _first_labelled(
        record, kb, "discharge", ("discharge",)
    )
    discharge = raw_discharge
    if discharge is not None and admit is not None and discharge.when < admit.when:
        discharge = None  # impossible; reported by qc.consistency.time-order
    death = _first_labelled(record, kb, "death", ("death",))
    if death is not None and admit is not None and death.when < admit.when:
        death = None
    surgery_start = _first_labelled(record, kb, "surgery_start", ("surgery",))
    surgery_end = _first_labelled(record, kb, "surgery_end", ("surgery",))
    surgery_doc = record.documents.get("surgery")
    if surgery_doc is not None:
        surgery_start = _time_after(surgery_doc, surgery_start, _START_TIME_RE) or surgery_start
        surgery_end = _time_after(surgery_doc, surgery_end, _END_TIME_RE) or surgery_end
    latest = now
    if latest is None:
        stamps: list[datetime] = [
            n.time.when for doc in record.documents.values() for n in doc.notes if n.time
        ]
        stamps += [o.time.when for o in record.orders if o.time]
        stamps += [lab.time.when for lab in record.labs if lab.time]
        stamps += [s.when for s in (admit, discharge, death, surgery_end) if s]
        latest = max(stamps) if stamps else None
    return Events(admit, discharge, death, surgery_start, surgery_end, latest, raw_discharge)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What every rule sees besides the record: stage, language, knowledge, events."""

    knowledge: QCKnowledge
    stage: str
    lang: str
    events: Events

    def name(self, key: str) -> str:
        return self.knowledge.name(key, self.lang)


class _Fmt(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _hours(delta: timedelta) -> str:
    value = delta.total_seconds() / 3600
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _fmt_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------------------------
# Base class


class RuleKind:
    """A rule kind bound to one row; subclasses implement :meth:`check`."""

    kind: ClassVar[str] = ""
    required_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, row: RuleRow) -> None:
        self.row = row
        self.params: Mapping[str, Any] = row.params

    @classmethod
    def validate(cls, row: RuleRow) -> None:
        missing = [p for p in cls.required_params if p not in row.params]
        if missing:
            raise KnowledgeError(f"qc/rules.yaml {row.rule_id}: params need {', '.join(missing)}")

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        raise NotImplementedError

    def hit(
        self,
        ctx: CheckContext,
        *,
        doc_type: str,
        section: str = "",
        quote: str | None = None,
        span: tuple[int, int] | None = None,
        missing: str | None = None,
        confidence: float | None = None,
        **fmt: object,
    ) -> Finding:
        """Build a finding: message and suggestion from the row's templates, exact quote."""
        return self._build(ctx, doc_type, section, quote, span, missing, confidence, fmt)

    def stamp_hit(
        self,
        ctx: CheckContext,
        stamp: Stamp,
        section: str = "",
        doc_type: str | None = None,
        **fmt: object,
    ) -> Finding:
        """A finding about a written time: quotes the time (``meta`` when from meta.json)."""
        meta = stamp.document == "meta"
        doc = "meta" if meta else (doc_type or stamp.document)
        span = None if meta else (stamp.start, stamp.end)
        return self._build(ctx, doc, section, stamp.quote, span, None, None, fmt)

    def _build(
        self,
        ctx: CheckContext,
        doc_type: str,
        section: str,
        quote: str | None,
        span: tuple[int, int] | None,
        missing: str | None,
        confidence: float | None,
        fmt: Mapping[str, object],
    ) -> Finding:
        lang = "en" if ctx.lang == "en" else "zh"
        values = _Fmt(fmt)
        if quote is not None:
            values.setdefault("quote", quote)
        if missing is not None:
            values.setdefault("missing", missing)
        evidence = [Evidence(source=self.row.source)]
        if quote:
            evidence.append(Evidence(document=doc_type, quote=quote))
        extra: dict[str, Any] = {
            "document": doc_type,
            "section": section,
            "deduction": self.row.deduction,
            "veto": self.row.veto,
        }
        if span is not None:
            extra["span"] = [span[0], span[1]]
        if missing is not None:
            extra["missing"] = missing
        return Finding(
            rule_id=self.row.rule_id,
            category=self.row.category,
            severity=self.row.severity,
            message=self.row.message[lang].format_map(values),
            suggestion=self.row.suggestion[lang].format_map(values),
            evidence=tuple(evidence),
            confidence=self.row.confidence if confidence is None else confidence,
            extra=extra,
        )


def _note_quote(record: Record, note: Note) -> tuple[str, tuple[int, int]]:
    """A short exact quote that identifies a note: its time, else its first line."""
    if note.time is not None and note.time.document != "meta":
        return note.time.quote, (note.time.start, note.time.end)
    doc = record.documents[note.document]
    start = note.start
    while start < note.end and doc.text[start] in " \t\n":
        start += 1
    end = doc.text.find("\n", start, note.end)
    end = note.end if end < 0 else end
    end = min(end, start + 40)
    return doc.text[start:end], (start, end)


def _kinds(params: Mapping[str, Any], key: str = "note_kinds") -> tuple[str, ...]:
    value = params.get(key) or ()
    return (value,) if isinstance(value, str) else tuple(value)


# ---------------------------------------------------------------------------------------------
# Completeness


class RequiredDocument(RuleKind):
    """A note kind that must exist (optionally only when another is present or ordered).

    In the real-time stage the note is required only once its own deadline has passed
    (``realtime_after: {event, hours}``), so a doctor is not told off before time is up.
    """

    kind = "required_document"
    required_params = ("note_kind",)

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        p = self.params
        note_kind = str(p["note_kind"])
        if record.notes(note_kind):
            return []
        if any(record.notes(k) for k in p.get("unless_present", ())):
            return []
        when_present = tuple(p.get("when_present", ()))
        when_orders = tuple(p.get("when_orders_contain", ()))
        if when_present or when_orders:
            triggered = any(record.notes(k) for k in when_present) or any(
                w in o.text for o in record.orders for w in when_orders
            )
            if not triggered:
                return []
        admit, end = ctx.events.admit, ctx.events.discharge or ctx.events.death
        min_stay = p.get("min_stay_hours")
        if min_stay is not None and admit is not None:
            stop = end.when if end else ctx.events.latest
            if stop is not None and stop - admit.when < timedelta(hours=float(min_stay)):
                return []
        if ctx.stage == "realtime":
            after = p.get("realtime_after")
            if after is not None:
                event = ctx.events.get(str(after.get("event")))
                if event is None or ctx.events.latest is None:
                    return []
                if ctx.events.latest - event.when <= timedelta(hours=float(after["hours"])):
                    return []
        return [self.hit(ctx, doc_type=_home_document(note_kind), missing=ctx.name(note_kind))]


def _home_document(note_kind: str) -> str:
    if note_kind in (
        "first_course",
        "daily",
        "senior_round",
        "post_op",
        "rescue",
        "death_discussion",
    ):
        return "course"
    return note_kind


def _section_body(record: Record, note: Note, section: Section) -> str:
    """The text under a heading without the signature lines that follow it."""
    doc = record.documents[note.document]
    text = doc.norm[section.body_start : section.end]
    for sig in sorted(note.signatures, key=lambda g: -g.start):
        if section.body_start <= sig.start < section.end:
            s, e = sig.start - section.body_start, sig.end - section.body_start
            text = text[:s] + text[e:]
    return text


class RequiredSection(RuleKind):
    """A section that a note kind must have, non-empty (e.g. 入院记录 → 既往史).

    ``section`` is a title or a list of alternatives; ``only_sex``/``min_age_years`` limit
    the rule to some patients (月经史 for women). A section that says only "无" is empty
    unless ``none_ok`` or ``none_ok_below_age_years`` says "none" is a true answer there.
    """

    kind = "required_section"
    required_params = ("note_kind", "section")

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        p = self.params
        only_sex = p.get("only_sex")
        if only_sex is not None and patient_sex(record, ctx.knowledge) != only_sex:
            return []
        min_age = p.get("min_age_years")
        if min_age is not None:
            age = patient_age(record)
            if age is not None and age < int(min_age):
                return []
        titles = _kinds(p, "section")
        out: list[Finding] = []
        for note in record.notes(str(p["note_kind"])):
            section = note.section(*titles)
            label = "/".join(titles)
            body = "" if section is None else _section_body(record, note, section)
            if section is None:
                out.append(self._missing(ctx, note, label))
            elif not body.strip(" \t\n:;,.。，；、-—/无") and not (
                "无" in body and self._none_ok(record)
            ):
                doc = record.documents[note.document]
                quote = doc.text[section.start : section.body_start].strip()
                span = (section.start, section.start + len(quote))
                values = {
                    "document": ctx.name(note.kind),
                    "section": ctx.name(f"section.{section.title}"),
                }
                out.append(
                    self._build(ctx, note.document, section.title, quote, span, None, None, values)
                )
        return out

    def _none_ok(self, record: Record) -> bool:
        """Whether a plain "无" is a true answer here: ``none_ok`` (辅助检查: none were
        done before admission) or ``none_ok_below_age_years`` (a newborn's 既往史)."""
        if self.params.get("none_ok"):
            return True
        below = self.params.get("none_ok_below_age_years")
        age = patient_age(record)
        return below is not None and age is not None and age < float(below)

    def _missing(self, ctx: CheckContext, note: Note, label: str) -> Finding:
        values = {"document": ctx.name(note.kind), "section": ctx.name(f"section.{label}")}
        return self._build(ctx, note.document, label, None, None, label, None, values)


# ---------------------------------------------------------------------------------------------
# Timeliness


def _start_time(
    record: Record, ctx: CheckContext, spec: Mapping[str, Any], note: Note
) -> tuple[Stamp | None, str]:
    if "event" in spec:
        event = str(spec["event"])
        name = {"discharge": "discharge_event", "death": "death_event"}.get(event, event)
        return ctx.events.get(event), ctx.name(name)
    field = str(spec["field"])
    labels = ctx.knowledge.vocabulary.time_labels.get(field, ())
    doc = record.documents[note.document]
    return labelled_stamp(doc, labels, note.start, note.end), ctx.name(field)


def _lenient_delta(start: Stamp, end: Stamp) -> timedelta:
    """Elapsed time, reading a date-only start as late as possible and a date-only end as
    early as possible, so imprecise dates never produce a false 'late'."""
    s = start.when + timedelta(hours=23, minutes=59) if start.date_only else start.when
    return end.when - s


_CLOCK_ONLY_RE = re.compile(r"(?<![\d年月日:.-])(\d{1,2})(?:时|時|点|:)(\d{1,2})分?")


def _last_time_in_body(record: Record, note: Note) -> Stamp | None:
    """The latest time written in a note's body before the note's own time: full date-times,
    and clock times ("02时50分") on the date of the date-time before them. A narrative
    (抢救经过) ends with the time the event ended."""
    doc = record.documents[note.document]
    stamps = find_stamps(doc.name, doc.text, doc.norm, note.body_start, note.end)
    if not stamps:
        return None
    best: Stamp | None = None
    limit = note.time.when if note.time else datetime.max
    for index, stamp in enumerate(stamps):
        stop = stamps[index + 1].start if index + 1 < len(stamps) else note.end
        candidates = [stamp]
        for match in _CLOCK_ONLY_RE.finditer(doc.norm, stamp.end, stop):
            try:
                when = stamp.when.replace(hour=int(match.group(1)), minute=int(match.group(2)))
            except ValueError:
                continue
            if when < stamp.when:
                when += timedelta(days=1)
            s, e = match.span()
            candidates.append(Stamp(when, doc.name, s, e, doc.text[s:e], False))
        for cand in candidates:
            if (
                not cand.date_only
                and cand.when <= limit
                and (best is None or cand.when > best.when)
            ):
                best = cand
    return best


class Deadline(RuleKind):
    """A note must be written within N hours (or minutes) of an event.

    ``start``: ``{event: admit|discharge|death|surgery_end|surgery_start}`` or
    ``{field: <time label key>}`` read inside the target note; ``target``: note kind;
    ``target_time``: the note's recorded time (default) or ``{field: ...}``;
    ``first_only``; ``when_contains`` / ``unless_contains`` select target notes by text.
    A missing target is left to ``required_document``.
    """

    kind = "deadline"
    required_params = ("start", "target")

    @classmethod
    def validate(cls, row: RuleRow) -> None:
        super().validate(row)
        if "hours" not in row.params and "minutes" not in row.params:
            raise KnowledgeError(f"qc/rules.yaml {row.rule_id}: deadline needs hours or minutes")

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        p = self.params
        limit = (
            timedelta(hours=float(p["hours"]))
            if "hours" in p
            else timedelta(minutes=float(p["minutes"]))
        )
        notes = sorted(
            record.notes(str(p["target"])),
            key=lambda n: n.time.when if n.time else datetime.max,
        )
        when_contains = tuple(p.get("when_contains", ()))
        unless_contains = tuple(p.get("unless_contains", ()))
        out: list[Finding] = []
        for note in notes:
            text = record.norm_of(note)
            if when_contains and not any(w in text for w in when_contains):
                continue
            if any(w in text for w in unless_contains):
                continue
            start, start_name = _start_time(record, ctx, p["start"], note)
            if start is None and p.get("start_fallback") == "last_time_in_note":
                start = _last_time_in_body(record, note)
            if "target_time" in p:
                end, _ = _start_time(record, ctx, p["target_time"], note)
            else:
                end = note.time
                if end is None and "target_time_fallback" in p:
                    end, _ = _start_time(record, ctx, p["target_time_fallback"], note)
            if start is not None and end is not None:
                delta = _lenient_delta(start, end)
                if delta > limit:
                    out.append(
                        self.stamp_hit(
                            ctx,
                            end,
                            section=ctx.name(note.kind),
                            doc_type=note.document,
                            target=ctx.name(note.kind),
                            start=start_name,
                            hours=p.get("hours", ""),
                            minutes=p.get("minutes", ""),
                            actual_hours=_hours(delta),
                            actual_minutes=int(delta.total_seconds() // 60),
                        )
                    )
            if p.get("first_only"):
                break
        return out


class NoteFrequency(RuleKind):
    """Progress notes at least every N days, N set by the patient's status (病危/病重/稳定).

    The status comes from the orders (``病危``/``病重``, until ``停病危``…). Gaps are counted
    in calendar days between the dates of consecutive notes (``count_by: calendar_day``, as
    the standard's "每天/至少2天/至少3天" is applied in practice) or in hours
    (``count_by: hours``), from the first progress note to discharge/death (final) or the
    latest time seen (real time).
    """

    kind = "note_frequency"
    required_params = ("note_kinds", "interval_days")

    def _timeline(self, record: Record) -> list[tuple[datetime, str]]:
        """The status after each order, in time order (orders without a time first)."""
        markers: Mapping[str, list[str]] = self.params.get("status_markers") or {}
        stops = tuple(self.params.get("stop_markers", ()))
        status = "stable"
        out: list[tuple[datetime, str]] = []
        for order in sorted(record.orders, key=lambda o: o.time.when if o.time else datetime.min):
            # "停 病重", "停　病危": order systems put a blank between the verb and the order
            compact = "".join(order.text.split())
            if any(s in compact for s in stops):
                status = "stable"
            else:
                for level in ("critical", "serious"):
                    if any(m in order.text for m in markers.get(level, ())):
                        status = level
                        break
            out.append((order.time.when if order.time else datetime.min, status))
        return out

    def status_at(self, record: Record, when: datetime) -> str:
        """The patient's status (stable, serious, critical) at ``when`` from the orders."""
        return self._status_in(self._timeline(record), when)

    @staticmethod
    def _status_in(timeline: list[tuple[datetime, str]], when: datetime) -> str:
        status = "stable"
        for at, after in timeline:
            if at > when:
                break
            status = after
        return status

    def _too_far(self, t0: datetime, t1: datetime, days: float) -> bool:
        if self.params.get("count_by", "calendar_day") == "hours":
            return t1 - t0 > timedelta(days=days)
        return (t1.date() - t0.date()).days > days

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        intervals: Mapping[str, float] = self.params["interval_days"]
        notes = sorted(
            (n for n in record.notes(*_kinds(self.params)) if n.time is not None),
            key=lambda n: n.time.when if n.time else datetime.min,
        )
        if not notes:
            return []
        end_stamp = ctx.events.discharge or ctx.events.death
        end = (
            end_stamp.when
            if end_stamp
            else (ctx.events.latest if ctx.stage == "realtime" else None)
        )
        points: list[tuple[Note | None, datetime]] = [(n, n.time.when) for n in notes if n.time]
        if end is not None and end > points[-1][1]:
            points.append((None, end))
        out: list[Finding] = []
        timeline = self._timeline(record)
        for (prev, t0), (_, t1) in pairwise(points):
            # the status that governs the day after the note (orders may change it that day)
            next_day = datetime.combine(t0.date() + timedelta(days=1), datetime.min.time())
            status = self._status_in(timeline, min(next_day, t1))
            days = float(intervals.get(status, intervals.get("stable", 3)))
            if self._too_far(t0, t1, days) and prev is not None and prev.time is not None:
                out.append(
                    self.stamp_hit(
                        ctx,
                        prev.time,
                        section=ctx.name(prev.kind),
                        doc_type=prev.document,
                        status=ctx.name(status),
                        gap_days=(t1.date() - t0.date()).days,
                        gap_hours=_hours(t1 - t0),
                        days=f"{days:g}",
                        from_time=_fmt_time(t0),
                        to_time=_fmt_time(t1),
                    )
                )
        return out


# ---------------------------------------------------------------------------------------------
# Content


_DURATION_RE = re.compile(
    r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百半数几]+)[ \t]*(?:余|多)?[ \t]*(?:个)?[ \t]*"
    r"(?:分钟|min|小时|h|天|日|周|星期|月|年|d)"
    r"|(?:半|1)?(?:年|月|天)余|今[晨日早]|昨[日天晚夜]|[上前]午|入院前|术后"
)
_TRAIL = " \t\n。.;;,，、"
_SYMPTOM_PREFIX_RE = re.compile(
    r"^(?:反复|间断|阵发性|持续性|突发|突然|进行性|被发现|发现|体检发现|再发|确诊|诊断)"
)
# Words too generic to stand for a symptom on their own ("吞咽困难" is not matched by "持筷困难")
_GENERIC_TAILS = frozenset({"困难", "不适", "异常", "增多", "减少", "加重", "减退", "障碍"})


def _symptom(complaint: str) -> str:
    """The presenting symptom: the first clause of the complaint without its duration."""
    first = re.split(r"[,，、;；。伴及]", complaint, maxsplit=1)[0]
    match = _DURATION_RE.search(first)
    symptom = first[: match.start()] if match and match.start() > 0 else first
    if match and match.start() == 0:
        symptom = first[match.end() :]
    symptom = _SYMPTOM_PREFIX_RE.sub("", symptom.strip(_TRAIL))
    symptom = symptom.rstrip("0123456789+.～~-")
    # "摔伤致左髋部疼痛", "外伤后头痛": the symptom is what follows the cause
    for marker in ("致", "后出现", "后"):
        head, sep, tail = symptom.partition(marker)
        if sep and len(tail.strip(_TRAIL)) >= 2 and head:
            symptom = tail
            break
    return symptom.strip(_TRAIL)


class ChiefComplaint(RuleKind):
    """主诉: at most ``max_chars`` characters (``check: length``), states a duration
    (``check: duration``), and its symptom appears in 现病史 (``check: hpi``)."""

    kind = "chief_complaint"
    required_params = ("check",)

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        out: list[Finding] = []
        synonyms: Mapping[str, list[str]] = self.params.get("synonyms") or {}
        for note in record.notes("admission"):
            sec = note.section("主诉")
            if sec is None:
                continue
            doc = record.documents[note.document]
            raw = doc.text[sec.body_start : sec.end]
            lead = len(raw) - len(raw.lstrip(" \t\n"))
            first_line = raw[lead:].split("\n", 1)[0].rstrip(_TRAIL)
            if not first_line.strip():
                continue
            span = (sec.body_start + lead, sec.body_start + lead + len(first_line))
            quote = doc.text[span[0] : span[1]]
            norm = doc.norm[span[0] : span[1]]
            check = self.params["check"]
            if check == "length":
                chars = len(re.sub(r"[\s,，、;；:：.。()()]", "", quote))
                if chars > int(self.params.get("max_chars", 20)):
                    out.append(
                        self.hit(
                            ctx,
                            doc_type=note.document,
                            section=sec.title,
                            quote=quote,
                            span=span,
                            chars=chars,
                            max_chars=self.params.get("max_chars", 20),
                        )
                    )
            elif check == "duration":
                if _DURATION_RE.search(norm) is None:
                    out.append(
                        self.hit(
                            ctx, doc_type=note.document, section=sec.title, quote=quote, span=span
                        )
                    )
            elif check == "hpi":
                hpi = note.section("现病史")
                symptom = _symptom(norm)
                if hpi is None or len(symptom) < 2:
                    continue
                hpi_text = doc.norm[hpi.body_start : hpi.end]
                gap = int(self.params.get("max_gap_chars", 2))
                loose = re.compile(f"{re.escape(symptom[0])}.{{0,{gap}}}{re.escape(symptom[1])}")
                # the key noun (皮肤黄染 → 黄染) and the ways an HPI writes it (停经 → 末次月经)
                words = [symptom]
                if len(symptom) > 2 and symptom[-2:] not in _GENERIC_TAILS:
                    words.append(symptom[-2:])
                for key, alts in synonyms.items():
                    if key in symptom:
                        words.extend(str(a) for a in alts)
                if not any(w in hpi_text for w in words) and loose.search(hpi_text) is None:
                    out.append(
                        self.hit(
                            ctx,
                            doc_type=note.document,
                            section="现病史",
                            quote=quote,
                            span=span,
                            symptom=symptom,
                        )
                    )
        return out


# ---------------------------------------------------------------------------------------------
# Consistency across documents


_SEX_RE = re.compile(r"性[ \t]*别[ \t]*:?[ \t]*(?P<v>男|女)")
_AGE_RE = re.compile(r"年[ \t]*龄[ \t]*:?[ \t]*(?P<v>\d{1,3})[ \t]*岁")
_SEX_CODE = {"男": "male", "女": "female"}
_NOTE_NAME_RE = re.compile(
    r"(?:^|(?<=[\s。;]))(?:患者|患儿|产妇)(?P<v>[\u4e00-\u9fff]{2,5}?)[ \t]*,[ \t]*(?:男|女)[ \t]*,"
)
_NAME_RE = re.compile(
    r"姓[ \t]*名[ \t]*:?[ \t]*(?P<v>[\u4e00-\u9fff]{1,4}(?:某某|某)?)(?=[ \t,,;\n]|性|$)"
)


def patient_sex(record: Record, kb: QCKnowledge | None = None) -> str | None:
    """Sex from meta.json, else the admission note (``性别:女``), else any document."""
    if record.meta.sex:
        return record.meta.sex
    if "sex" in record.cache:
        return record.cache["sex"]  # type: ignore[return-value]
    found: str | None = None
    for doc_type in ("admission", "discharge", "course", "death", "surgery"):
        doc = record.documents.get(doc_type)
        if doc is not None:
            match = _SEX_RE.search(doc.norm)
            if match:
                found = _SEX_CODE[match.group("v")]
                break
    record.cache["sex"] = found
    return found


def patient_age(record: Record) -> int | None:
    if record.meta.age_years is not None:
        return record.meta.age_years
    if "age" in record.cache:
        return record.cache["age"]  # type: ignore[return-value]
    found: int | None = None
    doc = record.documents.get("admission")
    if doc is not None:
        match = _AGE_RE.search(doc.norm)
        if match:
            found = int(match.group("v"))
    record.cache["age"] = found
    return found


@dataclass(frozen=True, slots=True)
class _Value:
    value: str
    document: str
    quote: str
    span: tuple[int, int] | None
    section: str = ""
    #: allergy statements: "drug" (否认药物过敏史), "other" (对花粉、尘螨过敏) or "" (any)
    scope: str = ""


_NEG_RE = re.compile(r"否认|无|未发现|未诉|不详|未见|阴性")
_ALLERGEN_RE = re.compile(r"([\u4e00-\u9fffA-Za-z]{2,12}?)(?:类)?(?:药物|药)?过敏")


_CLAUSE_STOPS = ",，。;；\n"
# Allergens that are not drugs: "否认药物过敏史" does not contradict "对花粉、尘螨过敏".
_NON_DRUG_ALLERGEN_RE = re.compile(
    r"花粉|尘螨|螨虫|粉尘|灰尘|动物毛|猫毛|狗毛|皮毛|冷空气|紫外线|海鲜|鱼虾|虾|蟹|鸡蛋|牛奶|花生|坚果|芒果|食物|乳胶"
)
_DRUG_WORD_RE = re.compile(r"药|素|西林|沙星|霉素|头孢|磺胺|碘|造影剂|疫苗|注射液|片")


def _allergy_values(record: Record) -> list[_Value]:
    """Allergy statements: each clause around a ``过敏`` that is not ``过敏性…``, read as
    a denial (否认/无 …) or a named allergen."""
    out: list[_Value] = []
    for doc_type, doc in record.documents.items():
        if doc_type in ("orders", "labs", "nursing"):
            continue
        norm = doc.norm
        pos = norm.find("过敏")
        last_clause = -1
        while pos >= 0:
            s = pos
            while s > 0 and norm[s - 1] not in _CLAUSE_STOPS:
                s -= 1
            e = pos
            while e < len(norm) and norm[e] not in _CLAUSE_STOPS:
                e += 1
            nxt = norm.find("过敏", e)
            # 过敏性鼻炎, 过敏原 (an allergen in general), 过敏体质: not an allergy statement
            if s == last_clause or norm.startswith(("过敏性", "过敏原", "过敏体质"), pos):
                pos = norm.find("过敏", pos + 2)
                continue
            last_clause = s
            while s < e and norm[s] in " \t":
                s += 1
            clause = norm[s:e]
            quote = doc.text[s:e].rstrip()
            span = (s, s + len(quote))
            idx = clause.find("过敏")
            if doc_type == "consent" and "过敏史" not in clause:
                pass  # a consent's list of risks ("造影剂过敏") is not an allergy history
            elif _NEG_RE.search(clause):
                scope = "drug" if "药" in clause and "食物" not in clause else ""
                out.append(_Value("none", doc_type, quote, span, scope=scope))
            elif _ALLERGEN_RE.search(clause) or re.search(
                r"史[ \t]*:?[ \t]*[\u4e00-\u9fff]{2,}", clause[idx + 2 :]
            ):
                scope = (
                    "other"
                    if _NON_DRUG_ALLERGEN_RE.search(clause) and not _DRUG_WORD_RE.search(clause)
                    else ""
                )
                out.append(_Value("positive", doc_type, quote, span, scope=scope))
            pos = nxt
    return out


# A numbering marker in a diagnosis list ("1." "2、" "3)"), at the start or after a space or a
# punctuation mark, so "3.2型糖尿病" is item 3 while "高血压病2级" is not split.
_DX_NUM_RE = re.compile(r"(?:^|(?<=[\s,;,;。]))(?:\d{1,2}|[一二三四五六七八九十])[.、)]", re.M)


def _dx_items(norm: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the items of a diagnosis list in ``norm[start:end]``."""
    sub = norm[start:end]
    cuts = sorted(
        {
            0,
            *(m.start() for m in _DX_NUM_RE.finditer(sub)),
            *(m.start() for m in re.finditer("\n", sub)),
        }
    )
    out: list[tuple[int, int]] = []
    for i, cut in enumerate(cuts):
        stop = cuts[i + 1] if i + 1 < len(cuts) else len(sub)
        marker = _DX_NUM_RE.match(sub, cut)
        s = marker.end() if marker else cut
        while s < stop and sub[s] in " \t\n":
            s += 1
        e = stop
        while e > s and sub[e - 1] in _TRAIL:
            e -= 1
        if e - s >= 2:
            out.append((start + s, start + e))
    return out


def _diagnosis_first(record: Record, note_kind: str, titles: tuple[str, ...]) -> _Value | None:
    for note in record.notes(note_kind):
        sec = note.section(*titles)
        if sec is None:
            continue
        doc = record.documents[note.document]
        items = _dx_items(doc.norm, sec.body_start, sec.end)
        if items:
            s, e = items[0]
            return _Value(doc.norm[s:e], note.document, doc.text[s:e], (s, e))
    return None


# An ICD-10 code written with a diagnosis: "J18.9", "K35.3", "I10", "I10.x00", "K80.101"
_ICD_CODE_RE = re.compile(
    r"(?<![A-Za-z0-9])([A-Z]\d{2}(?:\.[0-9xX][0-9A-Za-z]{0,5})?)(?![A-Za-z0-9.])"
)
_DX_LABEL_RE = re.compile(r"^[ \t]*(主要诊断|其他诊断|次要诊断)[ \t]*:?[ \t]*")


def _discharge_coded_diagnoses(record: Record) -> list[Any] | None:
    """The 出院诊断 list of the discharge record when it is written with ICD-10 codes
    (``1.社区获得性肺炎 J18.9``, ``主要诊断:… (K35.3)``): the front page as many hospitals
    print it. ``None`` when no item carries a code (uncoded lists are left alone)."""
    from medbrain.qc import icd10

    for note in record.notes("discharge"):
        sec = note.section("出院诊断")
        if sec is None:
            continue
        doc = record.documents[note.document]
        out: list[icd10.Diagnosis] = []
        any_code = False
        principal_marked = False
        for s, e in _dx_items(doc.norm, sec.body_start, sec.end):
            item = doc.norm[s:e]
            label = _DX_LABEL_RE.match(item)
            is_principal = bool(label and label.group(1) == "主要诊断")
            principal_marked |= is_principal
            if label:
                item = item[label.end() :]
            code_match = _ICD_CODE_RE.search(item)
            code = code_match.group(1) if code_match else ""
            any_code |= bool(code)
            name = _ICD_CODE_RE.sub("", item)
            name = re.sub(r"\([ \t]*\)", "", name).strip(" \t:,;()")
            if name or code:
                out.append(icd10.Diagnosis(code, name, is_principal, note.document, (s, e)))
        if not any_code:
            return None
        if out and not principal_marked:
            first = out[0]
            out[0] = icd10.Diagnosis(first.code, first.name, True, first.document, first.span)
        return out
    return None


def _place(ctx: CheckContext, value: _Value) -> str:
    """Where a value was read: the document and, when known, its section (手术记录(手术名称))."""
    doc = ctx.name(value.document)
    if value.section and value.section != doc:
        return f"{doc} ({value.section})" if ctx.lang == "en" else f"{doc}({value.section})"
    return doc


def _similar(a: str, b: str) -> float:
    sa, sb = _shingles(a, 2), _shingles(b, 2)
    if not sa or not sb:
        return 1.0 if a == b else 0.0
    return len(sa & sb) / len(sa | sb)


_SIDE_RE = re.compile(r"(?P<side>左|右)")
_PAREN_RE = re.compile(r"\([^()]*\)")  # on folded text: full-width brackets are ASCII


class Consistency(RuleKind):
    """One fact must agree across documents: ``field`` is one of sex, age, allergy,
    diagnosis, laterality, admit_date, discharge_date, time_order."""

    kind = "consistency"
    required_params = ("field",)

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        field = str(self.params["field"])
        method = getattr(self, f"_check_{field}", None)
        if method is None:
            raise KnowledgeError(
                f"qc/rules.yaml {self.row.rule_id}: unknown consistency field {field}"
            )
        result: list[Finding] = method(record, ctx)
        return result

    def _pair(
        self,
        ctx: CheckContext,
        a: _Value,
        b: _Value,
        a_text: str | None = None,
        b_text: str | None = None,
    ) -> Finding:
        return self.hit(
            ctx,
            doc_type=b.document,
            section=b.section,
            quote=b.quote if b.span else None,
            span=b.span,
            a=a_text or a.quote,
            b=b_text or b.quote,
            doc_a=ctx.name(a.document),
            doc_b=ctx.name(b.document),
            place_a=_place(ctx, a),
            place_b=_place(ctx, b),
        )

    def _labelled_values(self, record: Record, pattern: re.Pattern[str]) -> list[_Value]:
        out: list[_Value] = []
        for doc_type, doc in record.documents.items():
            for match in pattern.finditer(doc.norm):
                s, e = match.span()
                out.append(_Value(match.group("v"), doc_type, doc.text[s:e], (s, e)))
        return out

    def _check_sex(self, record: Record, ctx: CheckContext) -> list[Finding]:
        values = self._labelled_values(record, _SEX_RE)
        meta = record.meta.sex
        reference = (
            _Value(
                {"male": "男", "female": "女"}[meta], "meta", str(record.meta.raw.get("sex")), None
            )
            if meta
            else (values[0] if values else None)
        )
        if reference is None:
            return []
        return [self._pair(ctx, reference, v) for v in values if v.value != reference.value][:1]

    def _check_age(self, record: Record, ctx: CheckContext) -> list[Finding]:
        values = self._labelled_values(record, _AGE_RE)
        tol = int(self.params.get("tolerance_years", 1))
        ref = (
            _Value(str(record.meta.age_years), "meta", f"{record.meta.age_years}", None)
            if record.meta.age_years is not None
            else (values[0] if values else None)
        )
        if ref is None:
            return []
        bad = [v for v in values if abs(int(v.value) - int(ref.value)) > tol]
        return [self._pair(ctx, ref, v) for v in bad][:1]

    def _check_allergy(self, record: Record, ctx: CheckContext) -> list[Finding]:
        values = _allergy_values(record)
        negatives = [v for v in values if v.value == "none"]
        positives = [v for v in values if v.value == "positive"]
        for neg in negatives:
            for pos in positives:
                if {neg.scope, pos.scope} != {"drug", "other"}:
                    return [self._pair(ctx, neg, pos)]
        return []

    def _check_diagnosis(self, record: Record, ctx: CheckContext) -> list[Finding]:
        a = _diagnosis_first(record, "admission", ("初步诊断", "入院诊断"))
        b = _diagnosis_first(record, "discharge", ("入院诊断",))
        if a is None or b is None:
            return []
        if _similar(a.value, b.value) >= float(self.params.get("min_similarity", 0.5)):
            return []
        # the same diagnosis with or without its qualifier: "脑梗死" and
        # "脑梗死(左侧大脑中动脉供血区)" or "脑梗死 左侧基底节区" (a tentative "发热待查:恙虫病?"
        # against "恙虫病" still differs)
        core_a, core_b = _PAREN_RE.sub("", a.value).strip(), _PAREN_RE.sub("", b.value).strip()
        short, long_ = sorted((core_a, core_b), key=len)
        if len(short) >= 2 and long_.startswith(short):
            return []
        return [self._pair(ctx, a, b)]

    def _part(self, window: str) -> str | None:
        parts: list[str] = list(self.params.get("body_parts", ()))
        found = [(window.find(p), -len(p), p) for p in parts if p in window]
        return min(found)[2] if found else None

    def _sides(self, record: Record, spec: Mapping[str, Any]) -> list[tuple[str, str, _Value]]:
        out: list[tuple[str, str, _Value]] = []
        reach = int(self.params.get("part_window_chars", 6))
        titles = tuple(spec.get("sections", ()))
        words = list(self.params.get("negations", ()))
        negation = re.compile("|".join(map(re.escape, words))) if words else None
        for note in record.notes(str(spec["note_kind"])):
            doc = record.documents[note.document]
            spans: list[tuple[int, int, str]] = []
            if titles:
                spans = [(x.body_start, x.end, x.title) for x in note.sections if x.title in titles]
            else:
                spans = [(note.start, note.end, note.title)]
            for s0, e0, where in spans:
                for match in _SIDE_RE.finditer(doc.norm, s0, e0):
                    s = match.start()
                    window = doc.norm[match.end("side") : min(e0, match.end("side") + reach)]
                    part = self._part(window)
                    if part is None:
                        continue
                    e = match.end("side") + window.find(part) + len(part)
                    after = doc.norm[
                        e : min(e0, e + int(self.params.get("negation_window_chars", 8)))
                    ]
                    if negation is not None and negation.search(after):
                        continue  # "左肺未见异常": the other side examined, not operated
                    out.append(
                        (
                            match.group("side"),
                            part,
                            _Value(part, note.document, doc.text[s:e], (s, e), where),
                        )
                    )
        return out

    def _check_laterality(self, record: Record, ctx: CheckContext) -> list[Finding]:
        anchors = self._sides(record, self.params["anchor"])
        if not anchors:
            return []
        by_part: dict[str, tuple[str, _Value]] = {}
        for side, part, value in anchors:
            if part in by_part and by_part[part][0] != side:
                return []  # both sides operated: nothing to compare
            by_part[part] = (side, value)
        for spec in self.params.get("compare", ()):
            for side, part, value in self._sides(record, spec):
                if part in by_part and by_part[part][0] != side:
                    return [self._pair(ctx, by_part[part][1], value)]
        return []

    def _date_values(
        self, record: Record, ctx: CheckContext, label: str, doc_types: tuple[str, ...]
    ) -> list[_Value]:
        out: list[_Value] = []
        labels = ctx.knowledge.vocabulary.time_labels.get(label, ())
        for doc_type in doc_types:
            doc = record.documents.get(doc_type)
            if doc is None:
                continue
            stamp = labelled_stamp(doc, labels, 0, len(doc.norm))
            if stamp is not None:
                out.append(
                    _Value(
                        stamp.when.date().isoformat(),
                        doc_type,
                        stamp.quote,
                        (stamp.start, stamp.end),
                    )
                )
        return out

    def _check_admit_date(self, record: Record, ctx: CheckContext) -> list[Finding]:
        values = self._date_values(record, ctx, "admit", ("admission", "discharge", "death"))
        if record.meta.admit_time is not None:
            values.insert(
                0,
                _Value(
                    record.meta.admit_time.date().isoformat(),
                    "meta",
                    str(record.meta.raw.get("admit_time")),
                    None,
                ),
            )
        return [self._pair(ctx, values[0], v) for v in values[1:] if v.value != values[0].value][:1]

    def _check_discharge_date(self, record: Record, ctx: CheckContext) -> list[Finding]:
        values = self._date_values(record, ctx, "discharge", ("discharge",))
        if record.meta.discharge_time is not None:
            values.insert(
                0,
                _Value(
                    record.meta.discharge_time.date().isoformat(),
                    "meta",
                    str(record.meta.raw.get("discharge_time")),
                    None,
                ),
            )
        return [self._pair(ctx, values[0], v) for v in values[1:] if v.value != values[0].value][:1]

    def _check_name(self, record: Record, ctx: CheckContext) -> list[Finding]:
        """The patient's name (``姓名:``) is the same in every document; another name is
        text copied from another patient's record."""
        values = self._labelled_values(record, _NAME_RE)
        # a note's own introduction: "患者王某某,男,68岁,…" (a copied note keeps its patient)
        for doc_type in ("course", "death", "consult"):
            doc = record.documents.get(doc_type)
            if doc is None:
                continue
            for match in _NOTE_NAME_RE.finditer(doc.norm):
                s, e = match.span("v")
                values.append(_Value(match.group("v"), doc_type, doc.text[s:e], (s, e)))
        if not values:
            return []
        first = next((v for v in values if v.document == "admission"), values[0])
        return [self._pair(ctx, first, v) for v in values if v.value != first.value][:1]

    def _check_operation_date(self, record: Record, ctx: CheckContext) -> list[Finding]:
        """The date written before "…行…术" in the listed sections agrees with the
        operative note's start date."""
        start = ctx.events.surgery_start
        if start is None:
            return []
        operated = {n.time.when.date() for n in record.notes("surgery") if n.time}
        operated.add(start.when.date())
        pattern = re.compile(
            str(self.params.get("pattern", r"[^。;;\n]{0,30}?行[^。;;\n]{0,40}?术"))
        )
        for spec in self.params.get("compare", ()):
            titles = tuple(spec.get("sections", ()))
            for note in record.notes(str(spec["note_kind"])):
                doc = record.documents[note.document]
                for sec in note.sections:
                    if titles and sec.title not in titles:
                        continue
                    for stamp in find_stamps(doc.name, doc.text, doc.norm, sec.body_start, sec.end):
                        if not pattern.match(doc.norm, stamp.end, sec.end):
                            continue
                        if stamp.when.date() not in operated:
                            a = _Value("", "surgery", start.quote, None)
                            b = _Value("", note.document, stamp.quote, (stamp.start, stamp.end))
                            return [self._pair(ctx, a, b)]
        return []

    def _check_time_order(self, record: Record, ctx: CheckContext) -> list[Finding]:
        admit = ctx.events.admit
        if admit is None:
            return []
        out: list[Finding] = []
        kb = ctx.knowledge
        death = _first_labelled(record, kb, "death", ("death",))
        for stamp, key in ((ctx.events.raw_discharge, "discharge_event"), (death, "death_event")):
            if stamp is not None and stamp.when < admit.when:
                a = _Value("", admit.document, admit.quote, None)
                b = _Value(
                    "",
                    stamp.document,
                    stamp.quote,
                    None if stamp.document == "meta" else (stamp.start, stamp.end),
                )
                doc_b = (
                    "meta"
                    if stamp.document == "meta"
                    else ("discharge" if key == "discharge_event" else "death")
                )
                finding = self.hit(
                    ctx,
                    doc_type=doc_b,
                    quote=b.quote,
                    span=b.span,
                    a=a.quote,
                    b=b.quote,
                    doc_a=ctx.name("admit"),
                    doc_b=ctx.name(key),
                )
                out.append(finding)
        return out


# ---------------------------------------------------------------------------------------------
# Copy-paste


def _shingles(text: str, k: int) -> set[str]:
    return {text[i : i + k] for i in range(max(0, len(text) - k + 1))}


_STRIP_RE = re.compile(r"\s+")
_DATE_IN_NOTE_RE = re.compile(
    r"(?:19|20)\d{2}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?:[ \t]*\d{1,2}[:时]\d{0,2}分?)?"
)


class CopyPaste(RuleKind):
    """Near-duplicate progress notes: Jaccard resemblance of character k-shingles of the
    note bodies (dates, times and signature lines removed) at or above ``threshold``."""

    kind = "copy_paste"
    required_params = ("threshold",)

    def _body(self, record: Record, note: Note) -> str:
        doc = record.documents[note.document]
        text = doc.norm[note.body_start : note.end]
        drop = [(g.start - note.body_start, g.end - note.body_start) for g in note.signatures]
        for s, e in sorted(drop, reverse=True):
            if 0 <= s < e <= len(text):
                text = text[:s] + text[e:]
        return _STRIP_RE.sub("", _DATE_IN_NOTE_RE.sub("", text))

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        k = int(self.params.get("shingle_chars", 4))
        threshold = float(self.params["threshold"])
        min_chars = int(self.params.get("min_chars", 30))
        notes = sorted(
            record.notes(*_kinds(self.params)),
            key=lambda n: (n.time.when if n.time else datetime.min, n.start),
        )
        prepared: list[tuple[Note, set[str]]] = []
        out: list[Finding] = []
        for note in notes:
            body = self._body(record, note)
            if len(body) < min_chars:
                continue
            shingles = _shingles(body, k)
            size = len(shingles)
            best: tuple[float, Note] | None = None
            for other, other_sh in prepared:
                # |A ∪ B| = |A| + |B| − |A ∩ B|: one set operation per pair, no union built
                shared = len(shingles & other_sh)
                union = size + len(other_sh) - shared
                sim = shared / union if union else 0.0
                if sim >= threshold and (best is None or sim > best[0]):
                    best = (sim, other)
            prepared.append((note, shingles))
            if best is not None:
                quote, span = _note_quote(record, note)
                other = best[1]
                other_label = _fmt_time(other.time.when) if other.time else ctx.name(other.kind)
                out.append(
                    self.hit(
                        ctx,
                        doc_type=note.document,
                        section=ctx.name(note.kind),
                        quote=quote,
                        span=span,
                        confidence=min(1.0, self.row.confidence * (0.9 + 0.1 * best[0])),
                        other=other_label,
                        similarity=f"{best[0]:.2f}",
                        document=ctx.name(note.kind),
                    )
                )
        return out


# ---------------------------------------------------------------------------------------------
# Signatures, consent


class SignatureRule(RuleKind):
    """Each note of the listed kinds carries a doctor's signature with a name."""

    kind = "signature"
    required_params = ("note_kinds",)

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        out: list[Finding] = []
        for note in record.notes(*_kinds(self.params)):
            sig = note.doctor_signature
            if sig is not None and sig.name:
                continue
            if sig is not None:
                doc = record.documents[note.document]
                quote, span = doc.text[sig.start : sig.end].strip(), (sig.start, sig.end)
            else:
                quote, span = _note_quote(record, note)
            out.append(
                self.hit(
                    ctx,
                    doc_type=note.document,
                    section=ctx.name(note.kind),
                    quote=quote,
                    span=span,
                    target=ctx.name(note.kind),
                )
            )
        return out


def _title_matches(record: Record, note: Note, pattern: re.Pattern[str]) -> bool:
    return bool(pattern.search(note.title) or pattern.search(record.norm_of(note)[:200]))


class Consent(RuleKind):
    """Informed consent for surgery/transfusion: present, signed by the patient or next of
    kin, and signed before the procedure (``check: present|signed|before``)."""

    kind = "consent"
    required_params = ("check", "trigger", "title")

    def _triggered(self, record: Record) -> bool:
        trigger = self.params["trigger"]
        if trigger == "surgery":
            return bool(record.notes("surgery"))
        words = tuple(trigger.get("orders_contain", ())) if isinstance(trigger, dict) else ()
        return any(w in o.text for o in record.orders for w in words)

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        if not self._triggered(record):
            return []
        pattern = re.compile(str(self.params["title"]))
        consents = [n for n in record.notes("consent") if _title_matches(record, n, pattern)]
        check = self.params["check"]
        if check == "present" and self.params.get("per_procedure"):
            # one consent per ordered procedure: a 腹腔穿刺 needs a consent naming 腹腔穿刺
            trigger = self.params["trigger"]
            words = tuple(trigger.get("orders_contain", ())) if isinstance(trigger, dict) else ()
            out_missing: list[Finding] = []
            for word in words:
                order = next((o for o in record.orders if word in o.text), None)
                if order is None or any(w in order.text for w in ("停", "取消")):
                    continue
                if any(word in record.norm_of(n)[:200] for n in consents):
                    continue
                raw = record.documents["orders"].text[order.start : order.end]
                start = order.start + len(raw) - len(raw.lstrip())
                out_missing.append(
                    self.hit(
                        ctx,
                        doc_type="orders",
                        section=word,
                        quote=order.text,
                        span=(start, start + len(order.text)),
                        procedure=word,
                    )
                )
            return out_missing[:1]
        if check == "present":
            if consents:
                return []
            return [self.hit(ctx, doc_type="consent", missing=ctx.name("consent"))]
        out: list[Finding] = []
        for note in consents:
            doc = record.documents[note.document]
            title = note.title or ctx.name("consent")
            patient_sigs = [s for s in note.signatures if s.role == "patient"]
            if check == "signed":
                if any(s.name for s in patient_sigs):
                    continue
                if patient_sigs:
                    sig = patient_sigs[0]
                    quote, span = doc.text[sig.start : sig.end].strip(), (sig.start, sig.end)
                else:
                    quote, span = _note_quote(record, note)
                out.append(
                    self.hit(
                        ctx, doc_type="consent", section=title, quote=quote, span=span, title=title
                    )
                )
            elif check == "before":
                event = ctx.events.surgery_start
                signed = (
                    labelled_stamp(
                        doc, ctx.knowledge.vocabulary.time_labels["signed"], note.start, note.end
                    )
                    or note.time
                )
                if event is None or signed is None:
                    continue
                if _lenient_delta(event, signed) > timedelta(0) and not signed.date_only:
                    out.append(
                        self.stamp_hit(
                            ctx,
                            signed,
                            section=title,
                            doc_type="consent",
                            title=title,
                            signed=signed.quote,
                            event=event.quote,
                        )
                    )
        return out


# ---------------------------------------------------------------------------------------------
# Orders and labs against the notes


def _mentioned(
    record: Record, kinds: tuple[str, ...], words: Iterable[str], start: datetime, end: datetime
) -> bool:
    words = tuple(w for w in words if w)
    for note in record.notes(*kinds):
        if note.time is None or not start <= note.time.when <= end:
            continue
        text = record.norm_of(note)
        if any(w in text for w in words):
            return True
    return False


# Specimen and measure words around a test's core noun ("血清总胆红素", "中性粒细胞计数").
_LAB_AFFIX_RE = re.compile(
    r"^(?:动脉血|血清|血浆|全血|血|尿|总|直接|间接)+|(?:计数|浓度|测定|定量)$"
)


class LabFollowup(RuleKind):
    """A clearly abnormal result (outside ``low``/``high``, or flagged 危急) must be named in
    a progress note within ``hours`` of the result time."""

    kind = "lab_followup"
    required_params = ("analytes", "hours")

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        hours = timedelta(hours=float(self.params["hours"]))
        kinds = _kinds(self.params)
        analytes: list[Mapping[str, Any]] = list(self.params["analytes"])
        synonyms: Mapping[str, list[str]] = self.params.get("synonyms") or {}
        out: list[Finding] = []
        doc = record.documents.get("labs")
        if doc is None:
            return []
        seen: set[str] = set()
        for lab in record.labs:
            if lab.time is None:
                continue
            row = next(
                (a for a in analytes if lab.name == a["name"] or lab.name in a.get("aliases", ())),
                None,
            )
            # the laboratory's own marks count for any test: 危急值 anywhere on the result's
            # line, or a doubled arrow (↑↑/↓↓)
            line_end = doc.norm.find("\n", lab.end)
            line = doc.norm[lab.start : len(doc.norm) if line_end < 0 else line_end]
            critical_flag = (
                "危急" in lab.flag or lab.flag in ("↑↑", "↓↓") or "危急" in line[len(lab.name) :]
            )
            if row is None and not critical_flag:
                continue
            low = row.get("low") if row else None
            high = row.get("high") if row else None
            abnormal = (
                critical_flag
                or (low is not None and lab.value < float(low))
                or (high is not None and lab.value > float(high))
            )
            if not abnormal:
                continue
            if ctx.stage == "realtime" and (
                ctx.events.latest is None or ctx.events.latest < lab.time.when + hours
            ):
                continue
            words = [lab.name, *(row.get("aliases", ()) if row else ())]
            if row:
                words.append(str(row["name"]))
            # a test outside the list, marked by the laboratory: its core noun (总胆红素 →
            # 胆红素) or a listed synonym (氧分压 → PaO2, 氧合) addresses it too
            words.extend(str(w) for w in synonyms.get(lab.name, ()))
            # the treatment that answers the result (肌酐 in a dialysis patient: 透析)
            words.extend(str(w) for w in (row.get("addressed_by", ()) if row else ()))
            core = _LAB_AFFIX_RE.sub("", lab.name)
            if len(core) >= 2:
                words.append(core)
            words = [w for w in words if len(w) >= 2 or not w.isascii()]
            if _mentioned(record, kinds, words, lab.time.when, lab.time.when + hours):
                continue
            key = f"{lab.name}@{lab.time.when}"
            if key in seen:
                continue
            seen.add(key)
            quote = doc.text[lab.start : lab.end].strip()
            out.append(
                self.hit(
                    ctx,
                    doc_type="labs",
                    section=lab.name,
                    quote=quote,
                    span=(lab.start, lab.start + len(quote)),
                    lab=lab.name,
                    value=f"{lab.value:g}{lab.unit}",
                    time=_fmt_time(lab.time.when),
                    hours=self.params["hours"],
                )
            )
        return out


# Salt and dosage-form words that separate a generic name in an order line
# ("注射用哌拉西林钠他唑巴坦钠" → "哌拉西林他唑巴坦").
_SALT_RE = re.compile(r"注射用|钠|钾|盐酸|硫酸|磷酸|甲磺酸|乳糖酸|琥珀酸|酒石酸")


class Medication(RuleKind):
    """A listed drug (antimicrobials) ordered must be named in a progress note from
    ``before_hours`` before to ``hours`` after the order (indication documented).
    ``regimens`` maps a regimen's name as notes write it to the drugs it stands for."""

    kind = "medication"
    required_params = ("drugs", "hours")

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        after = timedelta(hours=float(self.params["hours"]))
        before = timedelta(hours=float(self.params.get("before_hours", 24)))
        kinds = _kinds(self.params)
        drugs = sorted((str(d) for d in self.params["drugs"]), key=len, reverse=True)
        regimens: Mapping[str, list[str]] = self.params.get("regimens") or {}
        doc = record.documents.get("orders")
        if doc is None:
            return []
        out: list[Finding] = []
        seen: set[str] = set()
        for order in record.orders:
            if order.time is None or any(w in order.text for w in ("停", "DC", "取消")):
                continue
            plain = _SALT_RE.sub("", doc.norm[order.start : order.end])
            drug = next((d for d in drugs if d in plain), None)
            if drug is None or drug in seen:
                continue
            seen.add(drug)
            t = order.time.when
            if ctx.stage == "realtime" and (
                ctx.events.latest is None or ctx.events.latest < t + after
            ):
                continue
            # a named regimen documents its drugs ("开始四联根除幽门螺杆菌治疗")
            named = tuple(r for r, members in regimens.items() if drug in members)
            if _mentioned(record, kinds, named, t - before, t + after):
                continue
            if self._indicated(record, kinds, drug, t - before, t + after):
                continue
            lead = len(doc.text[order.start : order.end]) - len(
                doc.text[order.start : order.end].lstrip()
            )
            out.append(
                self.hit(
                    ctx,
                    doc_type="orders",
                    section=drug,
                    quote=order.text,
                    span=(order.start + lead, order.start + lead + len(order.text)),
                    drug=drug,
                    hours=self.params["hours"],
                )
            )
        return out

    def _indicated(
        self, record: Record, kinds: tuple[str, ...], drug: str, start: datetime, end: datetime
    ) -> bool:
        """The drug is named in a note of the window with an indication in the same sentence
        or the one either side (``indications``; negated ones such as 无感染证据 do not
        count). Without ``indications`` naming the drug is enough."""
        words: list[str] = [str(w) for w in self.params.get("indications") or ()]
        if not words:
            return _mentioned(record, kinds, (drug,), start, end)
        indication_re = _words_re(tuple(words))
        negated_re = _negated_re(
            tuple(str(w) for w in self.params.get("negations") or ()), tuple(words)
        )
        for note in record.notes(*kinds):
            if note.time is None or not start <= note.time.when <= end:
                continue
            text = record.norm_of(note)
            at = text.find(drug)
            while at >= 0:
                window = _sentence_window(text, at, at + len(drug))
                if negated_re is not None:
                    window = negated_re.sub("", window)
                if indication_re.search(window):
                    return True
                at = text.find(drug, at + len(drug))
        return False


_SENTENCE_END = "。;;!!?\n"


def _sentence_window(text: str, start: int, end: int) -> str:
    """The sentence holding ``text[start:end]`` and the sentence either side of it."""
    left = start
    for _ in range(2):
        cut = max(text.rfind(c, 0, left) for c in _SENTENCE_END)
        left = cut if cut >= 0 else 0
        if left == 0:
            break
    right = end
    for _ in range(2):
        cuts = [i for i in (text.find(c, right + 1) for c in _SENTENCE_END) if i >= 0]
        right = min(cuts) if cuts else len(text)
        if right == len(text):
            break
    return text[left:right]


@lru_cache(maxsize=64)
def _words_re(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)))


@lru_cache(maxsize=64)
def _negated_re(negations: tuple[str, ...], words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not negations:
        return None
    neg = _words_re(negations).pattern
    return re.compile(rf"(?:{neg})[^,。;;,]{{0,6}}?(?:{_words_re(words).pattern})")


# Medication phrases in a note: a verb of giving, an optional route, a drug name and a dose
# ("加用骨化三醇0.25μg qd", "予静滴左氧氟沙星0.5g").
_DOSE_UNITS = r"(?:mg|g|μg|ug|mcg|ml|mL|IU|U|万U|万单位|单位|片|粒|支|袋)"


class MedicationGiven(RuleKind):
    """A drug a progress note says was given (``verbs`` + name + dose) must be on an order
    line (generic name with salt and dosage form stripped, or an ``aliases`` brand name).
    Phrases after ``exclude_before`` words in the same clause (建议, 外院, 必要时 …) are
    plans or history, not administrations."""

    kind = "medication_given"
    required_params = ("verbs",)

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        if "orders" not in record.documents:
            return []  # no orders to compare with (qc.doc rules report a missing document)
        kinds = _kinds(self.params)
        verbs = _words_re(tuple(str(v) for v in self.params["verbs"])).pattern
        routes = _words_re(tuple(str(r) for r in self.params.get("routes") or ("口服",))).pattern
        phrase_re = _given_re(verbs, routes)
        exclude = tuple(str(w) for w in self.params.get("exclude_before") or ())
        forms_re = _words_re(tuple(str(f) for f in self.params.get("forms") or ("注射液",)))
        aliases: Mapping[str, list[str]] = self.params.get("aliases") or {}
        grace = timedelta(hours=float(self.params.get("hours", 24)))
        ordered = " ".join(
            forms_re.sub("", _SALT_RE.sub("", o.text)) for o in record.orders if o.text
        )
        out: list[Finding] = []
        seen: set[str] = set()
        for note in record.notes(*kinds):
            if note.time is None:
                continue
            if ctx.stage == "realtime" and (
                ctx.events.latest is None or ctx.events.latest < note.time.when + grace
            ):
                continue
            text = record.norm_of(note)
            offset = note.start
            for match in phrase_re.finditer(text):
                name = forms_re.sub("", _SALT_RE.sub("", match.group("drug")))
                if len(name) < 2 or name in seen:
                    continue
                clause_start = max(text.rfind(c, 0, match.start()) for c in ",,。;;\n") + 1
                if any(w in text[clause_start : match.start()] for w in exclude):
                    continue
                names = (name, *(str(a) for a in aliases.get(name, ())))
                if any(n in ordered for n in names):
                    continue
                seen.add(name)
                s = offset + match.start("drug")
                e = offset + match.end()
                quote = record.documents[note.document].text[s:e]
                out.append(
                    self.hit(
                        ctx,
                        doc_type=note.document,
                        section=name,
                        quote=quote,
                        span=(s, s + len(quote)),
                        drug=name,
                    )
                )
        return out


@lru_cache(maxsize=16)
def _given_re(verbs: str, routes: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?:{verbs})(?:{routes})?(?P<drug>[\u4e00-\u9fff]{{2,14}}?)"
        rf"[ \t]*\d+(?:\.\d+)?[ \t]*{_DOSE_UNITS}"
    )


# ---------------------------------------------------------------------------------------------
# Hospital-defined conditions (the safe DSL) and the front page's ICD-10 coding


class ExpressionRule(RuleKind):
    """A rule whose condition is a hospital-written expression (:mod:`medbrain.qc.dsl`).

    ``params.when`` is the condition; when it is true for a record the rule fires. The
    finding quotes the first span the condition read (``section(...)``/``text(...)``), or,
    when it read none, names ``params.missing`` (what is missing) as its evidence.
    """

    kind = "expression"
    required_params = ("when",)

    def __init__(self, row: RuleRow) -> None:
        super().__init__(row)
        from medbrain.qc.facts import compile_condition

        self.expression = compile_condition(str(row.params["when"]))

    @classmethod
    def validate(cls, row: RuleRow) -> None:
        super().validate(row)
        from medbrain.qc.dsl import ExpressionError
        from medbrain.qc.facts import compile_condition

        try:
            compile_condition(str(row.params["when"]))
        except ExpressionError as exc:
            raise KnowledgeError(f"qc rule {row.rule_id}: params.when {exc.problem}") from None

    def facts(self, record: Record, ctx: CheckContext) -> dict[str, Any]:
        admit = ctx.events.admit.when if ctx.events.admit else None
        end = ctx.events.discharge or ctx.events.death
        stop = end.when if end else ctx.events.latest
        stay = None
        if admit is not None and stop is not None:
            stay = round((stop - admit).total_seconds() / 3600, 2)
        department = record.meta.raw.get("department")
        return {
            "sex": patient_sex(record, ctx.knowledge),
            "age_years": patient_age(record),
            "stage": ctx.stage,
            "stay_hours": stay,
            "discharged": end is not None,
            "department": department if isinstance(department, str) else None,
        }

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        from medbrain.qc.facts import FactContext

        admit = ctx.events.admit.when if ctx.events.admit else None
        fctx = FactContext(record, admit)
        if not bool(self.expression.evaluate(self.facts(record, ctx), fctx)):
            return []
        if fctx.trace.spans:
            document, start, _end, quote = fctx.trace.spans[0]
            quote = quote[:80]
            return [self.hit(ctx, doc_type=document, quote=quote, span=(start, start + len(quote)))]
        missing = str(self.params.get("missing") or self.row.rule_id)
        document = str(self.params.get("document") or "record")
        return [self.hit(ctx, doc_type=document, missing=missing)]


def _operated_diagnosis(record: Record) -> str:
    """The diagnosis an operation treated: the 术后诊断 (else 术前诊断) of the operation record."""
    for note in record.notes("surgery"):
        sec = note.section("术中诊断") or note.section("术前诊断")
        if sec is not None:
            doc = record.documents[note.document]
            items = _dx_items(doc.norm, sec.body_start, sec.end)
            if items:
                return doc.norm[items[0][0] : items[0][1]]
    return ""


def _same_disease(a: str, b: str) -> bool:
    a, b = _PAREN_RE.sub("", a).strip(), _PAREN_RE.sub("", b).strip()
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return (len(short) >= 2 and short in long_) or _similar(a, b) >= 0.4


class FrontPage(RuleKind):
    """ICD-10 checks on the 病案首页 diagnoses (``meta.front_page``; silent without one).

    ``check``: ``principal_missing``, ``code_missing``, ``code_invalid`` (format, unknown
    WHO category or subcategory), ``code_unspecific`` (a category with subcategories coded
    without one), ``principal_symptom`` (an R code as principal while a definite diagnosis
    is listed), ``principal_external`` (a V–Y external-cause code as principal), ``sex``
    and ``age`` (codes limited to one sex or an age range). Data: ``knowledge/qc/icd10.yaml``.
    """

    kind = "front_page"
    required_params = ("check",)
    CHECKS: ClassVar[frozenset[str]] = frozenset(
        {
            "principal_missing",
            "code_missing",
            "code_invalid",
            "code_unspecific",
            "principal_symptom",
            "principal_external",
            "principal_surgery",
            "sex",
            "age",
        }
    )

    @classmethod
    def validate(cls, row: RuleRow) -> None:
        super().validate(row)
        if row.params["check"] not in cls.CHECKS:
            raise KnowledgeError(
                f"qc/rules.yaml {row.rule_id}: check must be one of {sorted(cls.CHECKS)}"
            )

    def check(self, record: Record, ctx: CheckContext) -> list[Finding]:
        from medbrain.qc import icd10

        diagnoses = icd10.read_front_page(record.meta.raw.get("front_page"))
        if diagnoses is None:
            diagnoses = _discharge_coded_diagnoses(record)
        if diagnoses is None:
            return []
        kb = icd10.load_icd_knowledge()
        which = str(self.params["check"])
        principal = next((d for d in diagnoses if d.principal), None)
        out: list[Finding] = []

        def add(d: icd10.Diagnosis, confidence: float | None = None, **fmt: object) -> None:
            quote = d.quote
            if d.span is not None:
                quote = record.documents[d.document].text[d.span[0] : d.span[1]]
            out.append(
                self._build(
                    ctx,
                    d.document,
                    "出院诊断" if d.span is not None else "",
                    quote,
                    d.span,
                    None,
                    confidence,
                    {"code": d.code, "name": d.name, **fmt},
                )
            )

        if which == "principal_missing":
            if principal is None or not (principal.code or principal.name):
                return [self.hit(ctx, doc_type="front_page", missing=ctx.name("principal_dx"))]
            return []
        coded = [d for d in diagnoses if d.code]
        if which == "code_missing":
            for d in diagnoses:
                if not d.code and d.name:
                    add(d)
        elif which in ("code_invalid", "code_unspecific"):
            for d in coded:
                problem = icd10.code_problem(d.code, kb)
                if problem is None:
                    continue
                if (problem == "unspecific") == (which == "code_unspecific"):
                    add(d, problem=ctx.name(f"icd.{problem}"))
        elif principal is not None and principal.code:
            code = principal.code
            if which == "principal_symptom" and icd10.in_ranges(code, kb.symptom_ranges):
                definite = [
                    d
                    for d in coded
                    if not d.principal
                    and not icd10.in_ranges(d.code, kb.symptom_ranges)
                    and not icd10.in_ranges(d.code, kb.external_cause_ranges)
                    and not icd10.category_of(d.code).startswith("Z")
                ]
                if definite:
                    add(principal, other=definite[0].quote)
            elif which == "principal_external" and icd10.in_ranges(code, kb.external_cause_ranges):
                add(principal)
        if which == "principal_surgery" and principal is not None and principal.name:
            operated = _operated_diagnosis(record)
            if operated and not _same_disease(principal.name, operated):
                better = [
                    d for d in diagnoses if not d.principal and _same_disease(d.name, operated)
                ]
                if better:
                    add(principal, other=better[0].name)
        if which == "sex":
            sex = patient_sex(record, ctx.knowledge)
            for d in coded:
                for limited, ranges in kb.sex_ranges.items():
                    if sex is not None and sex != limited and icd10.in_ranges(d.code, ranges):
                        add(d, sex=ctx.name(f"sex.{sex}"), limited=ctx.name(f"sex.{limited}"))
        elif which == "age":
            age = patient_age(record)
            for d in coded:
                for limit in kb.age_limits:
                    if age is None or not icd10.in_ranges(d.code, [(limit.low, limit.high)]):
                        continue
                    low, high = limit.min_age_years, limit.max_age_years
                    if (low is not None and age < low) or (high is not None and age > high):
                        add(d, confidence=limit.confidence, age=age)
        return out


KINDS: dict[str, type[RuleKind]] = {
    cls.kind: cls
    for cls in (
        RequiredDocument,
        RequiredSection,
        Deadline,
        NoteFrequency,
        ChiefComplaint,
        Consistency,
        CopyPaste,
        SignatureRule,
        Consent,
        LabFollowup,
        Medication,
        MedicationGiven,
        ExpressionRule,
        FrontPage,
    )
}

__all__ = ["KINDS", "CheckContext", "Document", "Events", "RuleKind", "Section", "read_events"]
