"""Note drafting: 入院记录, 病程记录 (SOAP), 出院记录 from the structured record, every sentence cited.

The deterministic template (:func:`draft_note`) is the default; :func:`polish_note` lets a
configured LLM reword it and keeps the rewording only if it passes the faithfulness checks.
"""

from medbrain.notes.draft import NOTE_TYPES, NoteDraft, Section, Sentence, draft_note
from medbrain.notes.record import Fact, NoteRecord, read_note_record

__all__ = [
    "NOTE_TYPES",
    "Fact",
    "NoteDraft",
    "NoteRecord",
    "Section",
    "Sentence",
    "draft_note",
    "read_note_record",
]
