"""The triage nurse confirms or overrides the suggested level (a reason is required).

MedBrain only suggests a level; the nurse decides. :func:`apply_decision` returns the result
with the nurse's level, zone, maximum wait and care, the original suggestion kept in
``decision`` and a reason line added, so the adapter can audit both. Lowering a level never
turns an emergency into self-care: a level Ⅳ set by the nurse is non-emergency care.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (分诊护士对级别负责; levels and
response times, §1.2-1.3).
DESIGN.md §2 (every finding can be accepted or overridden with a reason, and that is audited).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from medbrain.core.errors import InputError
from medbrain.triage.knowledge import TriageKnowledge
from medbrain.triage.model import Department, TriageResult

MAX_REASON_CHARS = 500


def apply_decision(
    result: TriageResult,
    knowledge: TriageKnowledge,
    final_level: Any,
    reason: Any = None,
    lang: str = "zh",
    source: str = "decision",
) -> TriageResult:
    """Confirm (same level) or override (different level, reason required) a suggestion.

    Raises
    ------
    InputError
        ``final_level`` is not 1-4, or a changed level comes without a reason.
    """
    lang = "en" if lang == "en" else "zh"
    if isinstance(final_level, bool) or final_level not in (1, 2, 3, 4):
        raise InputError(source, "final_level", f"must be 1, 2, 3 or 4, got {final_level!r}")
    level = int(final_level)
    if reason is not None and not isinstance(reason, str):
        raise InputError(source, "reason", f"must be text, got {reason!r}")
    text = (reason or "").strip()
    if len(text) > MAX_REASON_CHARS:
        raise InputError(source, "reason", f"is longer than {MAX_REASON_CHARS} characters")
    texts = knowledge.texts
    if level == result.level:
        line = texts["nurse_confirmed"][lang].format(level=result.level_name)
        decision = {"action": "confirmed", "suggested_level": result.level, "final_level": level}
        if text:
            decision["reason"] = text
        return replace(result, reasons=(*result.reasons, line), decision=decision)
    if not text:
        raise InputError(source, "reason", "is required when the level is changed")
    new = knowledge.levels[level]
    line = texts["nurse_override"][lang].format(old=result.level_name, new=new.name, reason=text)
    care = "emergency" if level <= 3 else "non_emergency"
    department: Department = result.department
    if care != "emergency" and result.care == "emergency":
        department = result.specialty or _default(knowledge)
    elif care == "emergency" and result.care != "emergency":
        department = _emergency(knowledge)
    return replace(
        result,
        level=level,
        level_name=new.name,
        level_title=new.title[lang],
        zone=new.zone,
        zone_name=new.zone_name[lang],
        max_wait_minutes=new.max_wait_minutes,
        care=care,
        department=department,
        reasons=(*result.reasons, line),
        decision={
            "action": "overridden",
            "suggested_level": result.level,
            "final_level": level,
            "reason": text,
        },
    )


def _dept(knowledge: TriageKnowledge, code: str) -> Department:
    d = knowledge.departments[code]
    return Department(code=d.code, name_zh=d.name_zh, name_en=d.name_en)


def _default(knowledge: TriageKnowledge) -> Department:
    return _dept(knowledge, str(knowledge.routing["default"]))


def _emergency(knowledge: TriageKnowledge) -> Department:
    return _dept(knowledge, str(knowledge.routing["emergency"]))
