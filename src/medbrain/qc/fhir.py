"""Read an inpatient record from a FHIR R4 Bundle of Composition / DocumentReference.

Each ``DocumentReference`` with an inline ``attachment.data`` (base64 text) or each
``Composition`` (sections' ``text.div`` narrative) becomes one document; its type comes from
the LOINC code or the title (``document_types.yaml``). ``Patient.gender`` and the
``Encounter.period`` fill what ``meta.json`` would hold. Unknown document types are listed
as skipped, never dropped silently.

References
----------
HL7 FHIR R4 (4.0.1): DocumentReference (§ 2.42, ``content.attachment``), Composition
(§ 2.41, ``section.text``), Attachment (§ 2.24.0.7, base64 ``data``), Narrative
(§ 2.23, XHTML ``div``); LOINC 2.77 document ontology codes.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Mapping
from typing import Any

from medbrain.core.errors import InputError
from medbrain.knowledge.loaders import document_type_by_title, document_types
from medbrain.qc.model import Meta, Record, Skipped
from medbrain.qc.parse import (
    DOCUMENT_TYPES,
    Vocabulary,
    build_record,
    decode,
    parse_meta,
    parse_stamp,
)

_TAG_RE = re.compile(r"<br\s*/?>|</p>|</div>|</li>|</h\d>", re.I)
_ANY_TAG_RE = re.compile(r"<[^>]+>")
# document_types.yaml codes that are notes inside the course document here
_COURSE_CODES = {"first_course", "course", "senior_round", "post_op", "rescue"}


def _narrative(div: str) -> str:
    text = _TAG_RE.sub("\n", div)
    return html.unescape(_ANY_TAG_RE.sub("", text)).strip()


def _doc_type(concept: Any, title: str) -> str | None:
    codes: list[str] = []
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or []:
            if isinstance(coding, Mapping):
                codes += [str(coding.get("code", "")), str(coding.get("display", ""))]
        codes.append(str(concept.get("text", "")))
    codes.append(title)
    types = document_types()
    for code in codes:
        found = document_type_by_title(code) if code else None
        if found is None:
            found = next((t for t in types.values() if t.loinc == code), None)
        if found is not None:
            mapped = "course" if found.code in _COURSE_CODES else found.code
            if mapped in DOCUMENT_TYPES:
                return mapped
    for code in codes:
        if code in DOCUMENT_TYPES:
            return code
    return None


def record_from_bundle(
    bundle: Any, source: str = "bundle", vocab: Vocabulary | None = None
) -> Record:
    """Build a :class:`Record` from a FHIR R4 Bundle (collection, document or searchset)."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InputError(source, "resourceType", "expected a FHIR Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise InputError(source, "entry", "must be a list")
    texts: dict[str, list[str]] = {}
    skipped: list[Skipped] = []
    meta: dict[str, object] = {}
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            raise InputError(source, f"entry[{index}].resource", "missing")
        kind = resource.get("resourceType")
        where = f"entry[{index}]"
        if kind == "Patient":
            gender = resource.get("gender")
            if gender in ("male", "female"):
                meta["sex"] = gender
        elif kind == "Encounter":
            period = resource.get("period") or {}
            if isinstance(period, Mapping):
                if period.get("start"):
                    meta["admit_time"] = str(period["start"])
                if period.get("end"):
                    meta["discharge_time"] = str(period["end"])
        elif kind == "DocumentReference":
            title = str(resource.get("description") or "")
            doc_type = _doc_type(resource.get("type"), title)
            for c_index, content in enumerate(resource.get("content") or []):
                attachment = content.get("attachment") if isinstance(content, Mapping) else None
                if not isinstance(attachment, Mapping):
                    continue
                data = attachment.get("data")
                if not isinstance(data, str):
                    skipped.append(
                        Skipped(f"{where}.content[{c_index}]", "no inline attachment data")
                    )
                    continue
                try:
                    raw = base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    raise InputError(
                        source, f"{where}.content[{c_index}].attachment.data", "not base64"
                    ) from None
                decoded = decode(raw)
                if decoded is None:
                    skipped.append(
                        Skipped(f"{where}.content[{c_index}]", "binary or undecodable content")
                    )
                elif doc_type is None:
                    skipped.append(
                        Skipped(f"{where} ({title or 'untitled'})", "unknown document type")
                    )
                else:
                    texts.setdefault(doc_type, []).append(decoded[0])
        elif kind == "Composition":
            title = str(resource.get("title") or "")
            doc_type = _doc_type(resource.get("type"), title)
            parts: list[str] = [title] if title else []
            for section in resource.get("section") or []:
                if not isinstance(section, Mapping):
                    continue
                sec_title = str(section.get("title") or "")
                div = (
                    (section.get("text") or {}).get("div", "")
                    if isinstance(section.get("text"), Mapping)
                    else ""
                )
                body = _narrative(str(div))
                parts.append(f"{sec_title}:{body}" if sec_title else body)
            if doc_type is None:
                skipped.append(Skipped(f"{where} ({title or 'untitled'})", "unknown document type"))
            elif parts:
                date = resource.get("date")
                if isinstance(date, str) and parse_stamp(date):
                    parts.insert(1 if title else 0, f"记录时间:{date.replace('T', ' ')[:16]}")
                texts.setdefault(doc_type, []).append("\n".join(parts))
    parsed_meta: Meta = parse_meta(meta, f"{source}: Patient/Encounter")
    joined = {k: (k, "\n".join(v) + "\n", "utf-8") for k, v in texts.items()}
    if not joined:
        raise InputError(source, "entry", "no Composition or DocumentReference with readable text")
    return build_record(joined, parsed_meta, skipped, vocab, source)
