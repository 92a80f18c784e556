"""ED board (pure): waiting time against the level's response time, re-triage prompts,
pathway-step breaches and the department's current load.

The adapter reads each visit and its recorded step times from the database and passes them in
as :class:`EdVisitState`; :func:`board` returns one :class:`BoardRow` per visit and a
:class:`BoardLoad` summary. The wait clock starts when triage ends (the consensus defines the
response time, 响应时限, as the longest wait "from the end of the triage assessment to the
doctor's first contact"; the door time stands in when triage was not recorded) and stops when
the doctor sees the patient. Pathway targets (door-to-ECG, door-to-CT, door-to-needle,
door-to-antimicrobial) come from ``pathways.yaml`` through :func:`pathway_timeline`, so they are
written in one place only. Pure: ``now`` is an argument.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (§1.3 响应时限, §1.4 候诊时间,
§3 re-triage when the condition changes).
Gulati M et al. Circulation 2021;144:e368, §2.1 (ECG within 10 minutes).
AHA 2013 stroke process time metrics (door to CT <25 min); Powers WJ et al. Stroke 2019;50:e344
(door-to-needle ≤60 min).
Evans L et al. Surviving Sepsis Campaign 2021 (antimicrobials within 1 hour).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.knowledge.overrides import deep_merge
from medbrain.triage.knowledge import TriageKnowledge
from medbrain.triage.timeline import pathway_timeline

LANGS = ("zh", "en")
STATUSES = ("waiting", "seen", "departed")
REASSESSMENT_STEPS = ("vitals", "retriage")


@dataclass(frozen=True, slots=True)
class EdKnowledge:
    """The ED board's steps, dispositions and re-triage settings (``ed.yaml``)."""

    version: str
    steps: Mapping[str, Mapping[str, str]]
    dispositions: Mapping[str, Mapping[str, str]]
    retriage: Mapping[str, Any]

    def step_ids(self, pathway: str | None, triage: TriageKnowledge) -> tuple[str, ...]:
        """The board's steps for a visit: the general ones, then its pathway's own steps."""
        ids = list(self.steps)
        spec = triage.pathways.get(pathway or "")
        for row in (spec or {}).get("steps") or []:
            if str(row["id"]) not in ids:
                ids.insert(len(ids) - 1, str(row["id"]))  # before disposition
        return tuple(ids)

    def step_label(self, step: str, pathway: str | None, triage: TriageKnowledge, lang: str) -> str:
        row = self.steps.get(step)
        if row is not None:
            return row[lang]
        spec = triage.pathways.get(pathway or "") or {}
        for item in spec.get("steps") or []:
            if str(item["id"]) == step:
                return str(item["label"][lang])
        return step


def _labels(where: str, rows: Any) -> dict[str, Mapping[str, str]]:
    if not isinstance(rows, list) or not rows:
        raise KnowledgeError(f"triage/ed.yaml: {where} must be a non-empty list")
    out: dict[str, Mapping[str, str]] = {}
    for row in rows:
        if not isinstance(row, dict) or not row.get("id") or not row.get("source"):
            raise KnowledgeError(f"triage/ed.yaml: every {where} row needs id and source")
        label = row.get("label")
        if not isinstance(label, dict) or any(not isinstance(label.get(k), str) for k in LANGS):
            raise KnowledgeError(f"triage/ed.yaml: {where} {row['id']}: label needs zh and en")
        if row.get("enabled", True) is False:
            continue
        out[str(row["id"])] = {k: label[k] for k in LANGS}
    return out


def build_ed_knowledge(data: Mapping[str, Any]) -> EdKnowledge:
    """Validate the ``ed.yaml`` mapping (raises :class:`KnowledgeError` naming the part)."""
    steps = _labels("steps", data.get("steps"))
    for required in ("door", "triage", "doctor", "disposition"):
        if required not in steps:
            raise KnowledgeError(f"triage/ed.yaml: steps must include {required!r}")
    retriage = data.get("retriage")
    if not isinstance(retriage, dict) or not retriage.get("source"):
        raise KnowledgeError("triage/ed.yaml: retriage needs a source")
    rise = retriage.get("news2_rise")
    if not isinstance(rise, int) or isinstance(rise, bool) or rise < 1:
        raise KnowledgeError("triage/ed.yaml: retriage.news2_rise must be a whole number ≥ 1")
    for key in ("wait_exceeded", "level_worse", "news2_rise"):
        text = (retriage.get("texts") or {}).get(key)
        if not isinstance(text, dict) or any(not isinstance(text.get(k), str) for k in LANGS):
            raise KnowledgeError(f"triage/ed.yaml: retriage.texts.{key} needs zh and en")
    return EdKnowledge(
        version=str(data.get("version", "")),
        steps=steps,
        dispositions=_labels("dispositions", data.get("dispositions")),
        retriage=retriage,
    )


@lru_cache(maxsize=1)
def _shipped() -> str:
    return (
        resources.files("medbrain.knowledge")
        .joinpath("triage")
        .joinpath("ed.yaml")
        .read_text(encoding="utf-8")
    )


def load_ed_knowledge(overrides: Mapping[str, Any] | None = None) -> EdKnowledge:
    """Shipped ``ed.yaml`` with a hospital's overrides (rows merged by id) applied."""
    data = yamlio.parse(_shipped())
    if not isinstance(data, dict):
        raise KnowledgeError("triage/ed.yaml: top level must be a mapping")
    if overrides:
        data = deep_merge(data, overrides)
    return build_ed_knowledge(data)


@lru_cache(maxsize=1)
def default_ed_knowledge() -> EdKnowledge:
    return load_ed_knowledge(None)


# --------------------------------------------------------------------------- wait maths


@dataclass(frozen=True, slots=True)
class Wait:
    """How long a patient has waited for the doctor, against the level's response time."""

    started_at: datetime
    waited_minutes: float
    limit_minutes: int
    remaining_minutes: float
    overdue: bool
    seen: bool


def wait_status(
    limit_minutes: int,
    door_at: datetime,
    triage_at: datetime | None,
    doctor_at: datetime | None,
    now: datetime,
) -> Wait:
    """Minutes waited from the end of triage (or the door) to the doctor (or ``now``).

    A patient is overdue when the wait is strictly longer than the level's response time:
    level Ⅰ (0 min) is overdue at any wait, level Ⅱ after 10 min, and so on. A patient already
    seen is overdue if the doctor came late. Times must carry a zone.
    """
    for name, value in (("door_at", door_at), ("now", now), ("triage_at", triage_at)):
        if value is not None and value.utcoffset() is None:
            raise InputError("ed", name, "needs a time zone")
    started = triage_at if triage_at is not None and triage_at >= door_at else door_at
    end = doctor_at if doctor_at is not None else now
    waited = max(0.0, (end - started).total_seconds() / 60.0)
    waited = math.floor(waited * 10) / 10  # report tenths, never round a breach away
    return Wait(
        started_at=started,
        waited_minutes=waited,
        limit_minutes=limit_minutes,
        remaining_minutes=round(limit_minutes - waited, 1),
        overdue=waited > limit_minutes,
        seen=doctor_at is not None,
    )


# --------------------------------------------------------------------------- board


@dataclass(frozen=True, slots=True)
class EdVisitState:
    """One visit as stored: level on the board, step times, and the latest re-assessment."""

    visit_id: int
    label: str
    door_at: datetime
    level: int
    pathway: str | None
    department_code: str
    status: str = "waiting"
    complaint: str = ""
    patient_id: int | None = None
    age_years: float | None = None
    sex: str | None = None
    red_flags: tuple[str, ...] = ()
    news2: float | None = None
    events: Mapping[str, datetime] = field(default_factory=dict)
    reassessed_level: int | None = None
    reassessed_news2: float | None = None
    disposition: str | None = None


@dataclass(frozen=True, slots=True)
class Breach:
    step: str
    label: str
    target_minutes: int
    minutes: float | None  # None: not done yet
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "label": self.label,
            "target_minutes": self.target_minutes,
            "minutes": self.minutes,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class BoardRow:
    state: EdVisitState
    level_name: str
    level_title: str
    zone: str
    zone_name: str
    department: Mapping[str, str]
    wait: Wait
    steps: tuple[Mapping[str, Any], ...]
    breaches: tuple[Breach, ...]
    retriage: tuple[str, ...]
    waiting_rank: int | None = None  # 1 = next to be seen among waiting patients

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "visit_id": s.visit_id,
            "patient_id": s.patient_id,
            "label": s.label,
            "complaint": s.complaint,
            "age_years": s.age_years,
            "sex": s.sex,
            "level": s.level,
            "level_name": self.level_name,
            "level_title": self.level_title,
            "zone": self.zone,
            "zone_name": self.zone_name,
            "department": dict(self.department),
            "pathway": s.pathway,
            "status": s.status,
            "disposition": s.disposition,
            "door_at": s.door_at.isoformat(),
            "waited_minutes": self.wait.waited_minutes,
            "max_wait_minutes": self.wait.limit_minutes,
            "remaining_minutes": self.wait.remaining_minutes,
            "overdue": self.wait.overdue,
            "seen": self.wait.seen,
            "waiting_rank": self.waiting_rank,
            "red_flags": list(s.red_flags),
            "news2": s.news2,
            "steps": [dict(x) for x in self.steps],
            "breaches": [b.to_dict() for b in self.breaches],
            "retriage": list(self.retriage),
        }


@dataclass(frozen=True, slots=True)
class BoardLoad:
    """Current load: patients in the department by zone and level, overdue, breaches."""

    active: int
    waiting: int
    by_zone: Mapping[str, int]
    by_level: Mapping[int, int]
    overdue: int
    breaches: int
    retriage: int
    longest_wait_minutes: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "waiting": self.waiting,
            "by_zone": dict(self.by_zone),
            "by_level": {str(k): v for k, v in self.by_level.items()},
            "overdue": self.overdue,
            "breaches": self.breaches,
            "retriage": self.retriage,
            "longest_wait_minutes": self.longest_wait_minutes,
        }


def _fmt(value: float) -> str:
    return f"{value:g}"


def _breaches(
    state: EdVisitState,
    ed: EdKnowledge,
    triage: TriageKnowledge,
    lang: str,
    now: datetime,
) -> tuple[tuple[Mapping[str, Any], ...], tuple[Breach, ...]]:
    """Every board step with its time, and the pathway targets that were missed."""
    targets: dict[str, Any] = {}
    if state.pathway in triage.pathways:
        spec = triage.pathways[str(state.pathway)]
        known = {str(r["id"]) for r in spec.get("steps") or []}
        events = {k: v for k, v in state.events.items() if k in known}
        # A departed patient's undone steps are no longer "overdue": judge at the last event.
        until = now if state.status != "departed" else max(state.events.values(), default=now)
        for step in pathway_timeline(
            str(state.pathway), state.door_at, events, triage, lang=lang, now=until, source="ed"
        ):
            targets[step.step] = step
    rows: list[Mapping[str, Any]] = []
    breaches: list[Breach] = []
    texts = ed.retriage
    for step_id in ed.step_ids(state.pathway, triage):
        at = state.door_at if step_id == "door" else state.events.get(step_id)
        minutes = None if at is None else round((at - state.door_at).total_seconds() / 60.0, 1)
        timed = targets.get(step_id)
        target = timed.target_minutes if timed is not None else None
        met = timed.met if timed is not None else None
        label = ed.step_label(step_id, state.pathway, triage, lang)
        rows.append(
            {
                "step": step_id,
                "label": label,
                "at": at.isoformat() if at is not None else None,
                "minutes_from_door": minutes,
                "target_minutes": target,
                "met": met,
            }
        )
        if met is False and target is not None:
            if minutes is not None:
                state_text = texts["breach_late"][lang].format(minutes=_fmt(minutes))
            else:
                waited = (now - state.door_at).total_seconds() / 60.0
                state_text = texts["breach_overdue"][lang].format(minutes=_fmt(round(waited)))
            breaches.append(
                Breach(
                    step=step_id,
                    label=label,
                    target_minutes=target,
                    minutes=minutes,
                    text=texts["breach_text"][lang].format(
                        label=label, target=target, state=state_text
                    ),
                )
            )
    return tuple(rows), tuple(breaches)


def _retriage(
    state: EdVisitState, wait: Wait, ed: EdKnowledge, triage: TriageKnowledge, lang: str
) -> tuple[str, ...]:
    if state.status != "waiting":
        return ()
    rules = ed.retriage
    texts = rules["texts"]
    out: list[str] = []
    level = triage.levels[state.level]
    if rules.get("on_wait_exceeded", True) and wait.overdue:
        out.append(
            texts["wait_exceeded"][lang].format(
                waited=_fmt(round(wait.waited_minutes)),
                level=level.name,
                limit=wait.limit_minutes,
            )
        )
    if (
        rules.get("on_level_worse", True)
        and state.reassessed_level is not None
        and state.reassessed_level < state.level
    ):
        new = triage.levels[state.reassessed_level]
        out.append(texts["level_worse"][lang].format(new=new.name, old=level.name))
    rise = int(rules["news2_rise"])
    if (
        state.news2 is not None
        and state.reassessed_news2 is not None
        and state.reassessed_news2 - state.news2 >= rise
    ):
        out.append(
            texts["news2_rise"][lang].format(
                old=_fmt(state.news2), new=_fmt(state.reassessed_news2)
            )
        )
    return tuple(out)


def board_row(
    state: EdVisitState,
    now: datetime,
    ed: EdKnowledge,
    triage: TriageKnowledge,
    lang: str = "zh",
) -> BoardRow:
    """One visit on the board: its wait, steps, breaches and re-triage prompts at ``now``."""
    lang = "en" if lang == "en" else "zh"
    if state.level not in triage.levels:
        raise InputError("ed", "level", f"must be 1-4, got {state.level!r}")
    level = triage.levels[state.level]
    wait = wait_status(
        level.max_wait_minutes,
        state.door_at,
        state.events.get("triage"),
        state.events.get("doctor"),
        now if state.status != "departed" else state.events.get("disposition", now),
    )
    steps, breaches = _breaches(state, ed, triage, lang, now)
    dept = triage.departments.get(state.department_code)
    department = (
        {"code": dept.code, "name_zh": dept.name_zh, "name_en": dept.name_en}
        if dept is not None
        else {"code": state.department_code, "name_zh": "", "name_en": ""}
    )
    return BoardRow(
        state=state,
        level_name=level.name,
        level_title=level.title[lang],
        zone=level.zone,
        zone_name=level.zone_name[lang],
        department=department,
        wait=wait,
        steps=steps,
        breaches=breaches,
        retriage=_retriage(state, wait, ed, triage, lang),
    )


def _order(row: BoardRow) -> tuple[int, int, int, float, int]:
    active = 0 if row.state.status != "departed" else 1
    return (
        active,
        row.state.level,
        0 if row.wait.overdue else 1,
        row.wait.started_at.timestamp(),
        row.state.visit_id,
    )


def board(
    states: Iterable[EdVisitState],
    now: datetime,
    ed: EdKnowledge,
    triage: TriageKnowledge,
    lang: str = "zh",
) -> tuple[tuple[BoardRow, ...], BoardLoad]:
    """Rows sorted as they are called (level, then overdue first, then longest wait) and load.

    Waiting patients are ranked in that order: ``waiting_rank`` 1 is the next to be seen.
    """
    rows = sorted((board_row(s, now, ed, triage, lang) for s in states), key=_order)
    ranked: list[BoardRow] = []
    rank = 0
    for row in rows:
        if row.state.status == "waiting":
            rank += 1
            row = replace(row, waiting_rank=rank)
        ranked.append(row)
    return tuple(ranked), load_of(ranked)


def load_of(rows: Sequence[BoardRow]) -> BoardLoad:
    active = [r for r in rows if r.state.status != "departed"]
    waiting = [r for r in active if r.state.status == "waiting"]
    by_zone = {z: 0 for z in ("red", "yellow", "green")}
    by_level = {lvl: 0 for lvl in (1, 2, 3, 4)}
    for r in active:
        by_zone[r.zone] = by_zone.get(r.zone, 0) + 1
        by_level[r.state.level] = by_level.get(r.state.level, 0) + 1
    return BoardLoad(
        active=len(active),
        waiting=len(waiting),
        by_zone=by_zone,
        by_level=by_level,
        overdue=sum(1 for r in waiting if r.wait.overdue),
        breaches=sum(len(r.breaches) for r in active),
        retriage=sum(1 for r in waiting if r.retriage),
        longest_wait_minutes=max((r.wait.waited_minutes for r in waiting), default=0.0),
    )
