"""Patient assistant (pure): "where do I go?" and "what happens next?" from the patient's own
ED visit or pre-consultation, never a diagnosis.

:func:`answer` returns structured facts (intents, queue position, next steps, emergency); the
adapter words them with message templates (and an LLM may rephrase them, never decide). A
question that itself describes an emergency symptom (the triage engine finds a red flag, or a
level Ⅰ-Ⅱ) is answered only with "tell the nurse now / go to the emergency department / call
120", before anything else.

References
----------
急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604 (§1.3 response times).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medbrain.core.errors import InputError
from medbrain.triage import assess_document
from medbrain.triage.knowledge import TriageKnowledge

MAX_QUESTION_CHARS = 300
WHERE = re.compile(r"哪|科室|挂号|去哪|在哪|楼|where|which (department|clinic)|go to", re.I)
NEXT = re.compile(
    r"下一步|接下来|还要|排队|多久|等|前面|轮到|next|wait|queue|how long|my turn|before me", re.I
)


@dataclass(frozen=True, slots=True)
class AssistantAnswer:
    intents: tuple[str, ...]  # "emergency" | "where" | "next"
    emergency: bool
    emergency_reasons: tuple[str, ...] = ()
    in_ed: bool = False
    status: str | None = None  # waiting | seen | departed
    zone_name: str | None = None
    level_name: str | None = None
    department: Mapping[str, str] | None = None
    ahead: int | None = None  # patients to be seen before this one
    waited_minutes: float | None = None
    limit_minutes: int | None = None
    overdue: bool = False
    next_steps: tuple[Mapping[str, Any], ...] = ()
    disposition: str | None = None
    preconsult_go_to_ed: bool | None = None
    preconsult_department: Mapping[str, str] | None = None


def answer(
    question: str | None,
    triage: TriageKnowledge,
    *,
    ed_row: Mapping[str, Any] | None = None,
    preconsult: Mapping[str, Any] | None = None,
    lang: str = "zh",
) -> AssistantAnswer:
    """Facts for the patient's question from their ED board row or latest pre-consultation.

    ``ed_row`` is :meth:`medbrain.triage.ed.BoardRow.to_dict` of the patient's own visit (ranked
    on the whole board); ``preconsult`` is a stored pre-consultation result.
    """
    text = (question or "").strip()
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError("question", "q", f"is longer than {MAX_QUESTION_CHARS} characters")
    if text:
        result = assess_document({"complaint": text}, triage, lang=lang, source="question")
        if result.red_flags or result.level <= 2:
            return AssistantAnswer(
                intents=("emergency",),
                emergency=True,
                emergency_reasons=tuple(result.red_flags) or (result.level_title,),
                in_ed=ed_row is not None and ed_row.get("status") != "departed",
            )
    intents: list[str] = []
    if not text or WHERE.search(text):
        intents.append("where")
    if not text or NEXT.search(text):
        intents.append("next")
    if not intents:
        intents = ["where", "next"]
    facts: dict[str, Any] = {}
    if ed_row is not None:
        pending: Sequence[Mapping[str, Any]] = [
            s for s in ed_row.get("steps", []) if s.get("at") is None and s["step"] != "door"
        ]
        rank = ed_row.get("waiting_rank")
        facts = {
            "in_ed": True,
            "status": ed_row.get("status"),
            "zone_name": ed_row.get("zone_name"),
            "level_name": ed_row.get("level_name"),
            "department": ed_row.get("department"),
            "ahead": rank - 1 if isinstance(rank, int) else None,
            "waited_minutes": ed_row.get("waited_minutes"),
            "limit_minutes": ed_row.get("max_wait_minutes"),
            "overdue": bool(ed_row.get("overdue")),
            "next_steps": tuple(
                {"step": s["step"], "label": s["label"], "target_minutes": s.get("target_minutes")}
                for s in pending[:3]
            ),
            "disposition": ed_row.get("disposition"),
        }
    if preconsult is not None:
        facts["preconsult_go_to_ed"] = bool(preconsult.get("go_to_ed"))
        facts["preconsult_department"] = preconsult.get("department")
    return AssistantAnswer(intents=tuple(intents), emergency=False, **facts)
