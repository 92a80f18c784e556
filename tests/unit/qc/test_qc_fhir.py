"""FHIR R4 Bundle input: DocumentReference (base64) and Composition narrative."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from medbrain.core.errors import InputError
from medbrain.qc import check_record
from medbrain.qc.parse import record_from_json
from tests.unit.qc.helpers import load_fixture, registry


def _bundle() -> dict[str, Any]:
    docs = load_fixture("01_cap_clean")["documents"]
    codes = {"admission": "34117-2", "course": "11506-3", "discharge": "18842-5"}
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male"}},
        {
            "resource": {
                "resourceType": "Encounter",
                "id": "e1",
                "period": {
                    "start": "2024-03-05T10:20:00+08:00",
                    "end": "2024-03-12T09:30:00+08:00",
                },
            }
        },
    ]
    for doc_type, code in codes.items():
        entries.append(
            {
                "resource": {
                    "resourceType": "DocumentReference",
                    "type": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "content": [
                        {
                            "attachment": {
                                "contentType": "text/plain; charset=utf-8",
                                "data": base64.b64encode(docs[doc_type].encode()).decode(),
                            }
                        }
                    ],
                }
            }
        )
    entries.append(
        {
            "resource": {
                "resourceType": "Composition",
                "title": "医嘱单",
                "type": {"text": "orders"},
                "date": "2024-03-12T08:00:00",
                "section": [
                    {
                        "title": "",
                        "text": {"div": "<div>" + docs["orders"].replace("\n", "<br/>") + "</div>"},
                    }
                ],
            }
        }
    )
    entries.append(
        {
            "resource": {
                "resourceType": "DocumentReference",
                "type": {"text": "心电图报告"},
                "content": [
                    {"attachment": {"data": base64.b64encode("窦性心律".encode()).decode()}}
                ],
            }
        }
    )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_bundle_documents_are_read_and_checked_clean() -> None:
    record = record_from_json(_bundle(), "bundle.json")
    assert set(record.documents) == {"admission", "course", "discharge", "orders"}
    assert record.meta.sex == "male" and record.meta.admit_time is not None
    assert [s.reason for s in record.skipped] == ["unknown document type"]
    assert len([o for o in record.orders if o.text.startswith("2024-03")]) == 9
    assert check_record(record, registry()).defects == ()


def test_bundle_with_bad_base64_names_the_field() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "DocumentReference",
                    "type": {"text": "入院记录"},
                    "content": [{"attachment": {"data": "@@@"}}],
                }
            }
        ],
    }
    with pytest.raises(InputError) as info:
        record_from_json(bundle, "b.json")
    assert info.value.field == "entry[0].content[0].attachment.data"
