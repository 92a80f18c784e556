"""The LLM rewording of a draft is kept only when it is faithful to the template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medbrain.llm import FallbackReason, LLMConfig, LLMGateway
from medbrain.notes import NoteDraft, draft_note, read_note_record
from medbrain.notes.polish import PolishedNote, numbers_in, polish_note, unsupported
from tests.unit.llm import fake_server as fs
from tests.unit.llm.fake_server import FakeLLM

pytestmark = pytest.mark.anyio

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "notes" / "nstemi_bundle.json"


def template() -> tuple[NoteDraft, Any]:
    record = read_note_record(json.loads(FIXTURE.read_text(encoding="utf-8")))
    return draft_note(record, "progress"), record


def reworded(draft: NoteDraft, change: dict[int, str] | None = None) -> dict[str, Any]:
    """A faithful rewording: same sections, one sentence per section citing all its sources."""
    sections = []
    for index, section in enumerate(draft.sections):
        text = (change or {}).get(index, "整理后:" + section.text.replace("。", ";"))
        sections.append(
            {
                "title": section.title,
                "sentences": [{"text": text, "sources": section.sources or []}],
            }
        )
    return {"sections": sections}


def config(server: FakeLLM) -> LLMConfig:
    return LLMConfig(
        base_url=server.url, model="fake-model", timeout_seconds=5, backoff_seconds=0.01
    )


async def test_faithful_rewording_is_used_and_marked_llm(fake_llm: FakeLLM) -> None:
    draft, record = template()
    fake_llm.reset(fs.json_reply(reworded(draft)))
    async with LLMGateway(config(fake_llm)) as gateway:
        note, result = await polish_note(draft, record, gateway)
    assert result.used_llm
    assert note.generator == "llm:fake-model" and note.notice is None
    assert note.sections[1].text.startswith("整理后:")
    assert [s.sources for s in note.sections] == [s.sources for s in draft.sections]


async def test_rewording_with_an_invented_value_falls_back_to_the_template(
    fake_llm: FakeLLM,
) -> None:
    draft, record = template()
    invented = reworded(draft, {1: "脉搏 76 次/分,血压 128/78 mmHg,血钾 5.9 mmol/L。"})
    fake_llm.reset(fs.json_reply(invented))
    async with LLMGateway(config(fake_llm)) as gateway:
        note, result = await polish_note(draft, record, gateway)
    assert len(fake_llm.requests) == 2  # retried once with the reason, then gave up
    assert "states a number" in fake_llm.requests[1]["messages"][-1]["content"]
    assert result.reason is FallbackReason.INVALID_OUTPUT
    assert note.sections == draft.sections and note.generator == "template"
    assert note.notice == "大模型输出未通过格式校验,已使用模板生成"
    assert note.to_dict()["llm"]["reason"] == "invalid_output"


async def test_rewording_that_drops_a_fact_or_a_section_is_refused(fake_llm: FakeLLM) -> None:
    draft, record = template()
    dropped = reworded(draft)
    dropped["sections"][1]["sentences"][0]["sources"] = dropped["sections"][1]["sentences"][0][
        "sources"
    ][:1]
    fake_llm.reset(fs.json_reply(dropped))
    async with LLMGateway(config(fake_llm)) as gateway:
        note, result = await polish_note(draft, record, gateway)
    assert result.reason is FallbackReason.INVALID_OUTPUT and note.generator == "template"


async def test_server_down_gives_the_template_with_a_notice() -> None:
    draft, record = template()
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{fs.free_port()}", model="m", backoff_seconds=0.01)
    async with LLMGateway(cfg) as gateway:
        note, result = await polish_note(draft, record, gateway)
    assert result.reason is FallbackReason.UNREACHABLE
    assert note.sections == draft.sections and note.notice == "无法连接大模型服务,已使用模板生成"


async def test_without_a_server_the_template_is_used_silently() -> None:
    draft, record = template()
    note, result = await polish_note(draft, record, None)
    assert result.reason is FallbackReason.NOT_CONFIGURED
    assert note.to_dict() == draft.to_dict()


async def test_remote_server_never_sees_the_patient_name_or_mrn(fake_llm: FakeLLM) -> None:
    _, record = template()
    admission = draft_note(record, "admission")
    fake_llm.reset(fs.json_reply(reworded(admission)))
    cfg = LLMConfig(base_url=fake_llm.url, model="fake-model", deid="always")
    async with LLMGateway(cfg) as gateway:
        note, result = await polish_note(admission, record, gateway)
    sent = json.dumps(fake_llm.requests[0], ensure_ascii=False)
    assert "王建国" not in sent and "[姓名1]" in sent
    assert result.used_llm and "王建国" in note.sections[0].text


@pytest.mark.parametrize(
    ("text", "numbers"),
    [("2024-03-01 09:40", {"2024", "3", "1", "9", "40"}), ("0.80 与 0.8", {"0.8"}), ("无", set())],
)
def test_numbers_are_compared_canonically(text: str, numbers: set[str]) -> None:
    assert numbers_in(text) == numbers


def test_changed_titles_are_unsupported() -> None:
    draft, _ = template()
    data = reworded(draft)
    data["sections"][0]["title"] = "主诉"
    assert (
        unsupported(draft, PolishedNote.model_validate(data))
        == "sections or titles differ from the draft"
    )
