"""Shared helpers for the QC tests: load a hand-written fixture, mutate it, check it."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from medbrain.qc import QCReport, RuleRegistry, check_record, load_qc_knowledge
from medbrain.qc.parse import record_from_mapping

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qc"
HAND = FIXTURES / "hand"


@lru_cache(maxsize=1)
def registry() -> RuleRegistry:
    return RuleRegistry(load_qc_knowledge())


def load_fixture(name: str, root: Path = HAND) -> dict[str, Any]:
    """A hand fixture as the API body ``{"documents": ..., "meta": ...}`` (UTF-8 or GBK)."""
    folder = root / name
    documents: dict[str, str] = {}
    for path in sorted(folder.glob("*.txt")):
        raw = path.read_bytes()
        try:
            documents[path.stem] = raw.decode("utf-8")
        except UnicodeDecodeError:
            documents[path.stem] = raw.decode("gb18030")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return {"documents": documents, "meta": meta}


def mutate(body: dict[str, Any], doc: str, old: str | None, new: str | None) -> dict[str, Any]:
    """Copy ``body`` replacing ``old`` by ``new`` in one document (``old=None``: append;
    ``new=None`` with ``old=None``: drop the document)."""
    out = {"documents": dict(body["documents"]), "meta": dict(body["meta"])}
    if old is None and new is None:
        del out["documents"][doc]
    elif old is None:
        out["documents"][doc] = out["documents"].get(doc, "") + str(new)
    else:
        text = out["documents"][doc]
        assert old in text, f"{old!r} not in {doc}"
        out["documents"][doc] = text.replace(old, new or "", 1)
    return out


def run(
    body: dict[str, Any], stage: str = "final", lang: str = "zh", now: datetime | None = None
) -> QCReport:
    return check_record(record_from_mapping(body), registry(), stage=stage, lang=lang, now=now)


def rule_ids(report: QCReport) -> set[str]:
    return {f.rule_id for f in (*report.defects, *report.needs_review)}
