"""Shared spreadsheet export helpers: formula-injection-safe cells and an in-memory XLSX book.

Used by every spreadsheet export: the insurance review queue and batch prescription review.

References
----------
OWASP "CSV Injection": a cell that starts with ``=``, ``+``, ``-`` or ``@`` is read as a
formula by spreadsheet programs; prefixing a quote keeps it text.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would read as a formula gets a leading quote; numbers pass."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


@dataclass(frozen=True, slots=True)
class Sheet:
    """One worksheet: a title (≤ 31 characters), a header row and data rows."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]]


MAX_CELL_CHARS = 32767  # Excel's limit on the characters in one cell


def _xlsx_cell(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        # control characters other than tab / newline cannot be stored in XLSX
        value = ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_CELL_CHARS]
    return safe_cell(value)


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    """An XLSX file (write-only, streamed rows) holding ``sheets`` in order; cells made safe:
    formula-like text quoted, control characters dropped, text cut at Excel's cell limit."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append([_xlsx_cell(h) for h in sheet.header])
        for row in sheet.rows:
            ws.append([_xlsx_cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
