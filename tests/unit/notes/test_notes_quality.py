"""Template drafts introduce no QC defect of their own; signing satisfies the signature rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medbrain.notes import NOTE_TYPES, draft_note, read_note_record
from medbrain.notes.quality import check_draft
from medbrain.qc import load_qc_knowledge

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "notes" / "nstemi_bundle.json"
SIGNATURE = "\n医师签名:李建华  2024-03-01 11:00"


@pytest.mark.parametrize("note_type", NOTE_TYPES)
@pytest.mark.parametrize("lang", ["zh"])
def test_template_drafts_only_lack_what_the_record_does_not_hold(note_type: str, lang: str) -> None:
    record = read_note_record(json.loads(FIXTURE.read_text(encoding="utf-8")))
    draft = draft_note(record, note_type, lang)
    text = "\n\n".join(f"【{s.title}】\n{s.text}" for s in draft.sections)
    knowledge = load_qc_knowledge(None)
    defects = check_draft(text, note_type, knowledge, sex="male", age_years=67, signed=True)
    # unsigned until signed; sections such as 家族史 are absent from the structured record
    assert {d["category"] for d in defects} <= {"missing_section", "signature"}
    assert any(d["category"] == "signature" for d in defects) or note_type == "discharge"
    signed = check_draft(
        text + SIGNATURE, note_type, knowledge, sex="male", age_years=67, signed=True
    )
    assert {d["category"] for d in signed} <= {"missing_section"}
