"""LLM calls land in the hash-chained audit log through the adapter's callback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from medbrain.llm import Document, LLMConfig, LLMGateway, load_prompt
from medbrain.llm.audit import AUDIT_ACTION, audit_callback
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import AuditEntry
from tests.unit.llm import fake_server as fs
from tests.unit.llm.fake_server import FakeLLM

pytestmark = pytest.mark.anyio


async def test_each_request_becomes_one_audit_entry_without_patient_text(
    fake_llm: FakeLLM, sqlite_url: str
) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    fake_llm.reset(fs.status(503), fs.text("患者王建国胸痛。"))
    rendered = load_prompt("chat").render(
        [Document(id="Composition/1", text="王建国，男，68岁，胸痛2小时。")],
        {"question": "总结"},
    )
    with factory() as session:
        on_call = audit_callback(session, who="doctor", role="doctor", resource="Patient/p1")
        config = LLMConfig(base_url=fake_llm.url, model="fake-model", backoff_seconds=0.01)
        async with LLMGateway(config, on_call=on_call) as gateway:
            await gateway.chat(rendered)
        session.commit()
    with factory() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == AUDIT_ACTION)))
    assert [e.detail["outcome"] for e in entries] == ["server_error", "ok"]
    assert all(e.resource == "Patient/p1" and e.who == "doctor" for e in entries)
    assert entries[1].detail["prompt_sha256"] == load_prompt("chat").sha256
    assert entries[1].detail["completion_tokens"] == 7
    stored = json.dumps([e.detail for e in entries], ensure_ascii=False)
    assert "王建国" not in stored and "胸痛" not in stored
