"""The shared XLSX helper: the book opens, formula-like text stays text, bad characters go."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from medbrain.store.xlsx import MAX_CELL_CHARS, Sheet, safe_cell, workbook_bytes


def test_cells_are_safe_and_the_book_round_trips() -> None:
    rows = [
        ["=1+1", -3.5, "line\x01one\nline two", "x" * (MAX_CELL_CHARS + 10)],
        ["@SUM", 7, "", None],
    ]
    data = workbook_bytes([Sheet("a" * 40, ["name", "n", "text", "long"], iter(rows))])
    book = load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames == ["a" * 31]
    got = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert got[0] == ["name", "n", "text", "long"]
    assert got[1][:3] == ["'=1+1", -3.5, "lineone\nline two"]
    assert len(got[1][3]) == MAX_CELL_CHARS
    assert got[2][:2] == ["'@SUM", 7]
    assert safe_cell(-1) == -1 and safe_cell("+86") == "'+86" and safe_cell("ok") == "ok"
