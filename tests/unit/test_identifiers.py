import pytest

from medbrain.core.identifiers import (
    parse_resident_id,
    resident_id_check_char,
    validate_mobile,
    validate_phone,
)


def test_gb11643_worked_example_is_valid_female() -> None:
    rid = parse_resident_id("11010519491231002x")
    assert rid.number == "11010519491231002X"
    assert rid.birth_date.isoformat() == "1949-12-31"
    assert rid.sex == "female"


@pytest.mark.parametrize("first17", ["11010519491231002", "44030419900101123", "32010219851203456"])
def test_check_char_round_trips(first17: str) -> None:
    number = first17 + resident_id_check_char(first17)
    assert parse_resident_id(number).number == number


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105194912310029", "校验位"),  # wrong check character
        ("11010519491231002", "18位"),  # too short
        ("1101051949123100AX", "18位"),  # letters
        ("110105194902300027", ""),  # Feb 30 — check char made valid below
    ],
)
def test_invalid_resident_ids_are_refused_with_reason(number: str, reason: str) -> None:
    if reason == "":
        number = number[:17] + resident_id_check_char(number[:17])
        reason = "出生日期"
    with pytest.raises(ValueError, match=reason):
        parse_resident_id(number)


def test_sequence_digit_parity_gives_sex() -> None:
    odd = "11010519800101001"
    assert parse_resident_id(odd + resident_id_check_char(odd)).sex == "male"


@pytest.mark.parametrize("raw", ["13800138000", "+86 138-0013-8000", "19912345678"])
def test_valid_mobiles(raw: str) -> None:
    assert validate_mobile(raw).startswith("1")


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "abc", "010-12345678"])
def test_invalid_mobiles(raw: str) -> None:
    with pytest.raises(ValueError):
        validate_mobile(raw)


@pytest.mark.parametrize(
    ("raw", "digits"), [("010-12345678", "01012345678"), ("0755 8888 1234", "075588881234")]
)
def test_landlines_are_phones(raw: str, digits: str) -> None:
    assert validate_phone(raw) == digits


def test_garbage_is_not_a_phone() -> None:
    with pytest.raises(ValueError):
        validate_phone("12345")
