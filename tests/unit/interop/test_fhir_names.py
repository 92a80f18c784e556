"""Pinyin search keys and FHIR date parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medbrain.core.errors import InputError
from medbrain.interop.fhir.datatypes import parse_datetime
from medbrain.interop.fhir.names import name_keys


@pytest.mark.parametrize(
    ("name", "family", "pinyin", "initials"),
    [
        ("张伟", "张", "zhangwei", "zw"),
        ("曾小贤", "曾", "zengxiaoxian", "zxx"),  # surname reading, not céng
        ("单田芳", "单", "shantianfang", "stf"),
        ("欧阳娜娜", None, "ouyangnana", "oynn"),
        ("尉迟恭", None, "yuchigong", "ycg"),
        ("John Smith", "Smith", "johnsmith", "js"),
        ("", None, "", ""),
    ],
)
def test_name_keys_give_pinyin_and_initials(
    name: str, family: str | None, pinyin: str, initials: str
) -> None:
    keys = name_keys(name, family)
    assert (keys.pinyin, keys.initials) == (pinyin, initials)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-03", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05T08:30:00+08:00", datetime(2024, 3, 5, 0, 30, tzinfo=UTC)),
        ("2024-03-05T08:30:00.250Z", datetime(2024, 3, 5, 8, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_fhir_datetimes_become_aware_utc(value: str, expected: datetime) -> None:
    assert parse_datetime(value, "b", "f") == expected


@pytest.mark.parametrize("value", ["2024-02-30", "2024-03-05T08:30:00", "yesterday", 20240305])
def test_bad_datetimes_are_input_errors(value: object) -> None:
    with pytest.raises(InputError):
        parse_datetime(value, "b", "f")
