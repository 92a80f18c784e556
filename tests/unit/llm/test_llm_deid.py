"""De-identification: table-driven positives and near-misses per recognizer (presidio style)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medbrain.core.identifiers import resident_id_check_char
from medbrain.llm.deid import Deidentifier, KnownIdentifiers, StreamReidentifier


def _id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


VALID_ID = _id("11010519491231002")
VALID_ID_X = _id("44030119850101001")  # whatever its check character is
BAD_ID = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        # 身份证: checksum-valid anywhere; bad checksum only when labelled
        (f"身份证{VALID_ID}", ["ID"]),
        (f"证件号：{VALID_ID_X.lower()}", ["ID"]),
        (f"编号{VALID_ID}号", ["ID"]),
        (f"证件号：{BAD_ID}", ["ID"]),
        (f"身份证号码 {VALID_ID[:6]}{VALID_ID[8:17]}", ["ID"]),  # 15-digit first generation
        # phones
        ("电话13800138000", ["PHONE"]),
        ("手机 +86 138-0013-8000", ["PHONE"]),
        ("请联系0571-87654321", ["PHONE"]),
        ("（010）62345678", ["PHONE"]),
        ("联系电话：6234567", ["PHONE"]),
        # MRNs
        ("住院号：ZY2023001", ["MRN"]),
        ("病案号 00123456", ["MRN"]),
        ("MRN: A-778812", ["MRN"]),
        # addresses
        ("家庭住址：杭州市西湖区文三路100号3单元502室", ["ADDRESS"]),
        ("现住北京市海淀区中关村大街27号", ["ADDRESS"]),
        ("家住文三路100号", ["ADDRESS"]),
        ("浙江省杭州市人", ["ADDRESS"]),
        # names
        ("姓名：欧阳娜娜 性别：女", ["NAME"]),
        ("患者张三，男，65岁", ["NAME"]),
        ("李秀英，女，72岁", ["NAME"]),
        ("王先生诉胸痛", ["NAME"]),
        ("联系人：李四", ["NAME"]),
    ],
)
def test_identifier_is_replaced(text: str, entities: list[str]) -> None:
    deid = Deidentifier()
    assert [span.entity for span in deid.find(text)] == entities
    masked = deid.deidentify(text)
    assert masked != text
    assert deid.reidentify(masked) == text


@pytest.mark.parametrize(
    "text",
    [
        f"标本条码{BAD_ID}",  # 18 digits, wrong check character, no label: a barcode, kept
        f"检验号{VALID_ID}1",  # 19 digits: not an ID
        "身份证号码不详",
        "12800138000",  # 12x is not a mobile prefix
        "138001380001",  # 12 digits
        "血压130/80mmHg，心率88次/分",
        "WBC 12.5×10^9/L，PLT 230×10^9/L",
        "2023-01-01 13:00 入院",
        "患者高热3天，于今日入院",
        "高血压，男性患者多见",
        "由高年资医生查房",
        "右肺上叶结节，心前区疼痛，病区走廊",
        "沿中山路行走时摔倒",
        "患者来自农村",
        "住院号",
    ],
)
def test_near_miss_is_left_alone(text: str) -> None:
    deid = Deidentifier()
    assert deid.find(text) == []
    assert deid.deidentify(text) == text


def test_known_identifiers_are_replaced_wherever_they_occur() -> None:
    known = KnownIdentifiers(
        names=("王建国", "Jian Wang"), mrns=("ZY2023001",), addresses=("文三路",)
    )
    deid = Deidentifier(known)
    masked = deid.deidentify("王建国入院；jian wang; 档案ZY2023001; 文三路")
    assert masked == "[姓名1]入院；[姓名2]; 档案[病案号1]; [地址1]"


def test_same_value_gets_the_same_placeholder_across_spellings_and_messages() -> None:
    deid = Deidentifier()
    first = deid.deidentify("电话13800138000")
    second = deid.deidentify("再次联系138 0013 8000，另一号码13912345678")
    assert first == "电话[电话1]"
    assert second == "再次联系[电话1]，另一号码[电话2]"


def test_reidentify_accepts_mangled_brackets_and_ignores_unknown_placeholders() -> None:
    deid = Deidentifier(KnownIdentifiers(names=("王建国",)))
    deid.deidentify("王建国")
    assert deid.reidentify("【姓名1】与[姓名 1]及[姓名9]") == "王建国与王建国及[姓名9]"


def test_reidentify_json_walks_nested_values() -> None:
    deid = Deidentifier(KnownIdentifiers(names=("王建国",)))
    deid.deidentify("王建国")
    assert deid.reidentify_json({"a": ["[姓名1]", 3, {"b": "[姓名1]好"}]}) == {
        "a": ["王建国", 3, {"b": "王建国好"}]
    }


@pytest.mark.parametrize("split_at", range(1, 9))
def test_stream_reidentifier_handles_a_placeholder_split_anywhere(split_at: int) -> None:
    deid = Deidentifier(KnownIdentifiers(names=("王建国",)))
    deid.deidentify("王建国")
    answer = "患者[姓名1]胸痛"
    stream = StreamReidentifier(deid)
    out = stream.feed(answer[:split_at]) + stream.feed(answer[split_at:]) + stream.flush()
    assert out == "患者王建国胸痛"


def test_stream_reidentifier_releases_a_lone_bracket() -> None:
    stream = StreamReidentifier(Deidentifier())
    assert stream.feed("血压[偏高") + stream.feed("，需复查以明确诊断") + stream.flush() == (
        "血压[偏高，需复查以明确诊断"
    )


_PIECES = st.sampled_from(
    [
        "患者",
        "王建国",
        "张三",
        ",男,",
        "65岁",
        "身份证",
        VALID_ID,
        BAD_ID,
        "电话",
        "13800138000",
        "0571-87654321",
        "住院号:",
        "ZY2023001",
        "家住",
        "杭州市西湖区",
        "文三路100号",
        "高热",
        "胸痛",
        "。",
        " ",
        "\n",
        "血压130/80mmHg",
        "王先生",
        "姓名:",
        "李四",
    ]
)


@settings(max_examples=300, deadline=None)
@example("文三路100号身份证110105194912310020文三路100号")  # an address glued to an ID
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_reidentify_inverts_deidentify_for_any_mix_of_pieces(text: str) -> None:
    deid = Deidentifier(KnownIdentifiers(names=("王建国",)))
    masked = deid.deidentify(text)
    assert deid.reidentify(masked) == text
    outside_placeholders = re.sub(r"\[[^\]]*\]", "|", masked)
    for original in deid.mapping.values():
        assert original not in outside_placeholders
