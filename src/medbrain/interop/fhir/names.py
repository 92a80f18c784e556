"""Person names as MedBrain shows and searches them: display form, full pinyin, initials.

Search by pinyin initials (``zw`` for 张伟) is how Chinese ward staff look patients up, so
the importer stores both forms. Surnames that are read differently from the common reading
of their character (曾 zēng, not céng; 单 shàn, not dān) are corrected when the family name
is known.

References
----------
GB/T 28039-2011 《中国人名汉语拼音字母拼写规则》 §5.1 (surname and given name spelled
separately, surname first); 《现代汉语词典》 (第7版) readings of surname characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pypinyin import lazy_pinyin

# Surname readings that differ from the character's most frequent reading (GB/T 28039-2011
# §5.1; 《现代汉语词典》第7版 姓氏读音). Compound surnames are matched before single ones.
_SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "尉迟": ("yu", "chi"),
    "万俟": ("mo", "qi"),
    "长孙": ("zhang", "sun"),
    "曾": ("zeng",),
    "单": ("shan",),
    "解": ("xie",),
    "仇": ("qiu",),
    "区": ("ou",),
    "朴": ("piao",),
    "查": ("zha",),
    "盖": ("ge",),
    "乐": ("yue",),
    "覃": ("qin",),
    "翟": ("zhai",),
    "缪": ("miao",),
    "召": ("shao",),
    "种": ("chong",),
    "员": ("yun",),
    "秘": ("bi",),
    "柏": ("bai",),
    "重": ("chong",),
}

_HAN = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9]+")


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


@dataclass(frozen=True, slots=True)
class NameKeys:
    """``pinyin`` is lowercase without separators (``zhangwei``); ``initials`` is ``zw``."""

    pinyin: str
    initials: str


def _syllables(text: str) -> list[str]:
    out: list[str] = []
    for piece in lazy_pinyin(text, errors="default"):
        if has_han(piece):  # a character pypinyin does not know
            continue
        words = _WORD.findall(piece)
        out.extend(word.lower() for word in words)
    return out


def name_keys(name: str, family: str | None = None) -> NameKeys:
    """Pinyin and initials of ``name``; ``family`` (if known) fixes surname readings.

    Latin-script names keep their words: ``John Smith`` → ``johnsmith`` / ``js``.
    """
    name = name.strip()
    syllables: list[str] = []
    rest = name
    if family and has_han(family) and name.startswith(family):
        reading = _SURNAME_READINGS.get(family)
        syllables.extend(reading if reading is not None else _syllables(family))
        rest = name[len(family) :]
    elif has_han(name):
        for surname in sorted(_SURNAME_READINGS, key=len, reverse=True):
            if len(surname) > 1 and name.startswith(surname):
                syllables.extend(_SURNAME_READINGS[surname])
                rest = name[len(surname) :]
                break
    syllables.extend(_syllables(rest))
    return NameKeys(pinyin="".join(syllables)[:256], initials="".join(s[0] for s in syllables)[:32])
