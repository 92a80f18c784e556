"""In-stay deadlines: which required notes are due soon or overdue at ``now`` (pure).

The deadlines are not a second rule set: they are read from the rule library itself —
every ``deadline`` row whose start is an event of the stay (admission, end of surgery,
discharge, death) and the ``note_frequency`` row (progress notes every 1/2/3 days by the
patient's status). For a deadline row, when no note of the target kind exists yet, the
deadline is ``event + hours``; for note frequency, it is the end of the day ``N`` calendar
days after the latest progress note. An item is ``due_soon`` within the row's warning window
(``params.warn_hours``; default ``min(4 h, a quarter of the limit)``, at least 30 min) and
``overdue`` once the deadline has passed. Deadlines for which the target note exists are not
items: whether that note came late is the real-time check's business.

References
----------
国家卫生部《病历书写基本规范》(卫医政发〔2010〕11号): 第十八条 (入院记录 24 h), 第二十二条
(一) 首次病程记录 8 h, (二) 病程记录频次, (三) 主治医师首次查房 48 h, (十五) 手术记录 24 h,
(十八) 术后首次病程记录即时, (二十) 出院记录 24 h, (二十一) 死亡记录 24 h, (二十二) 死亡病例
讨论 1 周 — as the rows of ``knowledge/qc/rules.yaml`` cite them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medbrain.qc.kinds import NoteFrequency, read_events
from medbrain.qc.model import Record
from medbrain.qc.registry import QCKnowledge, RuleRow

_EVENT_NAMES = {"discharge": "discharge_event", "death": "death_event"}


@dataclass(frozen=True, slots=True)
class DueItem:
    """One required note that is due soon or overdue."""

    rule_id: str
    target: str  # note kind
    document: str  # the QC document it belongs in (course, admission, surgery, ...)
    start_event: str
    start_time: datetime
    deadline: datetime
    status: str  # "due_soon" | "overdue"
    hours_left: float  # negative when overdue
    message: str
    source: str

    @property
    def key(self) -> str:
        """Stable identity of the item across scans (rule, target, deadline)."""
        return f"{self.rule_id}|{self.target}|{self.deadline.isoformat(timespec='minutes')}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "target": self.target,
            "document": self.document,
            "start_event": self.start_event,
            "start_time": self.start_time.isoformat(timespec="minutes"),
            "deadline": self.deadline.isoformat(timespec="minutes"),
            "status": self.status,
            "hours_left": self.hours_left,
            "message": self.message,
            "source": self.source,
        }


def warn_window(row: RuleRow, limit: timedelta) -> timedelta:
    """``params.warn_hours`` or ``min(4 h, limit / 4)``, never below 30 minutes."""
    raw = row.params.get("warn_hours")
    if raw is not None:
        return timedelta(hours=float(raw))
    return max(timedelta(minutes=30), min(timedelta(hours=4), limit / 4))


def _home(note_kind: str) -> str:
    course = {"first_course", "daily", "senior_round", "post_op", "rescue", "death_discussion"}
    return "course" if note_kind in course else note_kind


_TEXT = {
    "zh": {
        "due_soon": "{target}应于{deadline}前完成({start}后{limit}小时),还剩{left}小时",
        "overdue": "{target}已超时:应于{deadline}前完成({start}后{limit}小时),已超{left}小时",
    },
    "en": {
        "due_soon": "The {target} is due by {deadline} ({limit} h after {start}); {left} h left",
        "overdue": "The {target} is overdue: due by {deadline} ({limit} h after {start}), "
        "{left} h late",
    },
}


def _fmt_hours(value: float) -> str:
    return f"{abs(value):.1f}".rstrip("0").rstrip(".")


def due_items(
    record: Record, knowledge: QCKnowledge, now: datetime, *, lang: str = "zh"
) -> list[DueItem]:
    """Deadlines of the stay that fall within their warning window or have passed at ``now``.

    ``now`` and the record's times are in the same clock (the hospital's wall clock, naive).
    Sorted by deadline, then rule id.
    """
    lang = "en" if lang == "en" else "zh"
    events = read_events(record, knowledge, now)
    out: list[DueItem] = []
    seen: set[tuple[str, str]] = set()

    def item(row: RuleRow, target: str, event: str, start: datetime, limit: timedelta) -> None:
        deadline = start + limit
        left = deadline - now
        if left > warn_window(row, limit):
            return
        status = "overdue" if left < timedelta(0) else "due_soon"
        hours_left = round(left.total_seconds() / 3600, 2)
        text = _TEXT[lang][status].format(
            target=knowledge.name(target, lang),
            deadline=deadline.strftime("%Y-%m-%d %H:%M"),
            start=knowledge.name(_EVENT_NAMES.get(event, event), lang),
            limit=_fmt_hours(limit.total_seconds() / 3600),
            left=_fmt_hours(hours_left),
        )
        out.append(
            DueItem(
                row.rule_id,
                target,
                _home(target),
                event,
                start,
                deadline,
                status,
                hours_left,
                text,
                row.source,
            )
        )

    for row in knowledge.rows:
        if "realtime" not in row.stages and row.kind != "deadline":
            continue
        p = row.params
        if row.kind == "deadline":
            start_spec = p.get("start")
            if not isinstance(start_spec, dict) or "event" not in start_spec:
                continue  # starts read inside the note itself (会诊申请, 抢救结束)
            if p.get("when_contains") or p.get("target_time"):
                continue
            event = str(start_spec["event"])
            stamp = events.get(event)
            target = str(p["target"])
            if stamp is None or record.notes(target) or (target, event) in seen:
                continue
            seen.add((target, event))
            limit = (
                timedelta(hours=float(p["hours"]))
                if "hours" in p
                else timedelta(minutes=float(p["minutes"]))
            )
            start = stamp.when + timedelta(hours=23, minutes=59) if stamp.date_only else stamp.when
            item(row, target, event, start, limit)
        elif row.kind == "note_frequency" and events.discharge is None and events.death is None:
            _frequency_item(row, record, now, item)
    out.sort(key=lambda d: (d.deadline, d.rule_id))
    return out


def _frequency_item(row: RuleRow, record: Record, now: datetime, item: Any) -> None:
    rule = NoteFrequency(row)
    kinds = row.params.get("note_kinds") or ()
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    times = [n.time.when for n in record.notes(*kinds) if n.time is not None]
    if not times:
        return  # the first progress note is a deadline row of its own
    last = max(times)
    status = rule.status_at(record, now)
    intervals = row.params["interval_days"]
    days = float(intervals.get(status, intervals.get("stable", 3)))
    if row.params.get("count_by", "calendar_day") == "hours":
        deadline = last + timedelta(days=days)
    else:
        day = last.date() + timedelta(days=int(days) + 1)
        deadline = datetime.combine(day, datetime.min.time())
    item(row, "daily", "last_note", last, deadline - last)
