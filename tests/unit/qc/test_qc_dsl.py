"""The QC expression language: parsing, positions in errors, hostile input, evaluation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medbrain.qc import dsl
from medbrain.qc.dsl import MAX_CHARS, MAX_DEPTH, ExpressionError
from medbrain.qc.facts import FactContext, compile_condition
from medbrain.qc.parse import record_from_mapping

ADMISSION = (
    "入院记录\n姓名:王芳  性别:女  年龄:30岁\n入院时间:2024-03-05 08:00\n"
    "主诉:反复咳嗽咳痰伴发热三天,加重一天,伴胸闷气促乏力纳差\n现病史:患者3天前受凉后咳嗽。\n"
    "既往史:体健。\n医师签名:李明\n"
)


def _record(documents: dict[str, str] | None = None, **meta: object):  # type: ignore[no-untyped-def]
    body = {"documents": documents or {"admission": ADMISSION}, "meta": meta}
    return record_from_mapping(body, "test")


def _eval(text: str, facts: dict[str, object] | None = None, record=None):  # type: ignore[no-untyped-def]
    expression = compile_condition(text)
    return expression.evaluate(facts or {}, FactContext(record or _record(), None))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3 == 9", True),
        ("-2 < 1 and not false", True),
        ("'a' in ['a', 'b']", True),
        ('"c" not in ["a", "b"]', True),
        ("null == null", True),
        ("age_years > 18", False),  # unknown fact: null compares false
        ("1 / 0 == null", True),
        ("'1' < 2", False),  # mixed types compare false, not an error
        ("true or 1 / 0", True),
    ],
)
def test_operators_follow_the_documented_semantics(text: str, expected: bool) -> None:
    assert _eval(text) is expected


def test_functions_read_the_record_and_remember_the_quoted_span() -> None:
    record = _record()
    ctx = FactContext(record, None)
    expression = compile_condition('length(section("admission", "主诉")) > 20')
    assert expression.evaluate({}, ctx) is True
    document, start, end, quote = ctx.trace.spans[0]
    assert document == "admission"
    assert record.documents["admission"].text[start:end] == quote
    assert quote.startswith("反复咳嗽")


def test_has_and_count_see_note_kinds() -> None:
    assert _eval('has("admission") and count("admission") == 1') is True
    assert _eval('has("surgery") or has("post_op")') is False
    assert _eval('section("admission", "月经史") == ""') is True


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ('__import__("os")', 0, "unknown function '__import__'"),
        ('__import__("os").system("id")', 16, "unexpected character '.'"),
        ("has('x').__class__", 8, "unexpected character '.'"),
        ("age_years >", 11, "unexpected end"),
        ("sex == 'female' and and", 20, "unexpected 'and'"),
        ("open('/etc/passwd')", 0, "unknown function 'open'"),
        ("has('x'", 7, "expected ',' or ')'"),
        ("count()", 0, "takes 1 argument"),
        ("foo == 1", 0, "unknown name 'foo'"),
        ("'unterminated", 0, "not closed"),
        ("1 ; 2", 2, "unexpected character ';'"),
        ("", 0, "empty"),
        ("[has('x')]", 1, "list items must be literals"),
    ],
)
def test_errors_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_condition(text)
    assert caught.value.position == position
    assert fragment in caught.value.problem
    assert caught.value.field == "expression"
    pointer = caught.value.pointer(text).splitlines()[1]
    assert pointer.index("^") == position


def test_deep_nesting_is_refused_before_python_recursion() -> None:
    text = "(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(ExpressionError, match="nested deeper"):
        compile_condition(text)
    with pytest.raises(ExpressionError, match="nested deeper"):
        compile_condition("not " * 200 + "true")
    with pytest.raises(ExpressionError, match="nested deeper"):
        compile_condition("-" * 200 + "1 == 1")
    ok = "(" * (MAX_DEPTH - 2) + "1" + ")" * (MAX_DEPTH - 2) + " == 1"
    assert compile_condition(ok).evaluate({}) is True


def test_huge_input_is_refused() -> None:
    with pytest.raises(ExpressionError, match="longer than"):
        compile_condition("1 == 1 and " * 1000 + "true")
    with pytest.raises(ExpressionError, match="longer than"):
        compile_condition('"' + "x" * (MAX_CHARS * 10) + '"')
    with pytest.raises(ExpressionError, match="more than"):
        compile_condition("+".join(["1"] * 300))


def test_arithmetic_cannot_grow_without_bound() -> None:
    text = " * ".join(["99999999999999999999"] * 30) + " == null"
    assert _eval(text) is True  # overflow becomes null, never a 600-digit integer


def test_the_language_never_reaches_python_eval() -> None:
    source = Path(dsl.__file__).read_text(encoding="utf-8")
    calls = {
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & {"eval", "exec", "compile", "__import__", "getattr"}


def test_a_rule_row_with_a_bad_condition_fails_to_load_naming_rule_and_position() -> None:
    from medbrain.core.errors import KnowledgeError
    from medbrain.qc import load_qc_knowledge

    row = {
        "rule_id": "qc.local.bad",
        "kind": "expression",
        "category": "content",
        "severity": "warning",
        "params": {"when": "has('x') and"},
        "message": {"zh": "x", "en": "x"},
        "suggestion": {"zh": "x", "en": "x"},
        "source": "hospital",
    }
    with pytest.raises(KnowledgeError, match=r"qc.local.bad.*position 13"):
        load_qc_knowledge({"rules": [row]})


def test_an_expression_rule_fires_with_a_quote_and_scores() -> None:
    from medbrain.qc import check_record, load_qc_knowledge

    row = {
        "rule_id": "qc.local.cc-long",
        "kind": "expression",
        "category": "content",
        "severity": "warning",
        "deduction": 2,
        "params": {"when": 'length(section("admission", "主诉")) > 20 and sex == "female"'},
        "message": {"zh": "主诉过长:{quote}", "en": "Chief complaint too long: {quote}"},
        "suggestion": {"zh": "精简", "en": "Shorten it"},
        "source": "本院规定",
    }
    kb = load_qc_knowledge({"rules": [row]})
    report = check_record(_record(sex="female"), kb, stage="realtime")
    hits = [d for d in report.defects if d.rule_id == "qc.local.cc-long"]
    assert len(hits) == 1
    assert hits[0].evidence[1].quote.startswith("反复咳嗽")
    male = check_record(_record(sex="male"), kb, stage="realtime")
    assert not [d for d in male.defects if d.rule_id == "qc.local.cc-long"]
