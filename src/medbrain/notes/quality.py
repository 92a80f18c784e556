"""Run the record-QC rules on a note draft before it is signed.

``knowledge`` is the hospital's QC knowledge, loaded the one way every QC path loads it
(:func:`medbrain.api.routers.qc.effective_knowledge_for`: shipped rules, hospital overrides
and the enabled, tested hospital DSL rules of the rule editor), so a draft is held to the
same rules as the saved record.

Why only the draft's own document: the draft is checked alone, so defects about the rest of
the stay (other documents missing, timeliness against admission) belong to the QC office's
view of the whole record, not to this note. Signature defects are left out before signing
because signing adds the electronic signature line.
"""

from __future__ import annotations

from typing import Any

from medbrain.qc import QCKnowledge, check_record, record_from_mapping

#: Note type of the drafting engine → QC document type (progress notes live in ``course``).
NOTE_QC_TYPES = {
    "admission": "admission",
    "first_course": "course",
    "progress": "course",
    "discharge": "discharge",
}
_OTHER_DOCUMENTS = frozenset({"missing_document", "timeliness"})


def check_draft(
    text: str,
    note_type: str,
    knowledge: QCKnowledge,
    *,
    sex: str | None = None,
    age_years: int | None = None,
    lang: str = "zh",
    signed: bool = False,
) -> list[dict[str, Any]]:
    """The QC defects of ``text`` as a ``note_type`` note, most severe first."""
    qc_type = NOTE_QC_TYPES[note_type]
    meta: dict[str, Any] = {}
    if sex in ("male", "female"):
        meta["sex"] = sex
    if age_years is not None:
        meta["age_years"] = age_years
    record = record_from_mapping(
        {"documents": {qc_type: text}, "meta": meta}, f"draft/{note_type}", knowledge.vocabulary
    )
    report = check_record(record, knowledge, stage="realtime", lang=lang)
    return [
        defect
        for defect in report.to_dict()["defects"]
        if defect.get("document") in (qc_type, None)
        and defect["category"] not in _OTHER_DOCUMENTS
        and (signed or defect["category"] != "signature")
    ]
