"""Validation of Chinese personal identifiers.

References
----------
GB 11643-1999 《公民身份号码》: 18 characters = 6-digit address code, 8-digit birth date
(YYYYMMDD), 3-digit sequence (odd = male, even = female), 1 check character computed with
ISO 7064:1983 MOD 11-2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ID_PATTERN = re.compile(r"^\d{17}[\dX]$")
_MOBILE_PATTERN = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE_PATTERN = re.compile(r"^0\d{2,3}\d{7,8}$")


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str
    birth_date: date
    sex: str  # "male" | "female"


def parse_resident_id(raw: str) -> ResidentId:
    """Validate a 身份证 number; raise ``ValueError`` with a specific reason if invalid."""
    number = raw.strip().upper()
    if not _ID_PATTERN.match(number):
        raise ValueError(
            "身份证号码必须为18位(17位数字加校验位) / resident ID must be 17 digits plus a check character"
        )
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise ValueError(
            f"身份证校验位错误 / resident ID check character is {number[17]}, expected {expected} (ISO 7064 MOD 11-2)"
        )
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError(
            "身份证中的出生日期无效 / resident ID contains an invalid birth date"
        ) from None
    sex = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=birth, sex=sex)


def validate_mobile(raw: str) -> str:
    """Mainland China mobile numbers: 11 digits starting with 13–19 (optional +86)."""
    digits = re.sub(r"[\s-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    if not _MOBILE_PATTERN.match(digits):
        raise ValueError(f"手机号码无效 / invalid mobile number: {raw!r}")
    return digits


def validate_phone(raw: str) -> str:
    """A mobile number, or a landline with its area code (010-12345678); returns digits only."""
    digits = re.sub(r"[\s()-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    if _MOBILE_PATTERN.match(digits) or _LANDLINE_PATTERN.match(digits):
        return digits
    raise ValueError(f"电话号码无效 / invalid phone number: {raw!r}")
