"""Workbook cells as Excel shows them, where fastexcel (calamine) reads them otherwise.

* An error cell (a formula's cached #N/A, #REF!, ...) is read as empty and only reported: it is
  given the text Excel shows, which a CSV saved from the sheet holds, so the same rules judge it (an
  amount '#N/A' is no number: quarantined). An audit's VLOOKUP amounts made three won deals without
  an amount, and nothing in the quarantine.
* A merged cell holds its value in its top-left cell only: a grouped report saved as a workbook (a
  Salesforce formatted report grouped by owner, a hand-made sheet with one label per block) merges
  each group's label down its rows, and 56 of an audit's 60 deals came without an owner, without a
  word. Every cell of a merged range below the header takes the range's value, as "unmerge and fill"
  does in Excel. fastexcel does not name merged ranges, so they are read from the sheet's XML.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXCEL_ERRORS = {"Div0": "#DIV/0!", "NA": "#N/A", "Name": "#NAME?", "Null": "#NULL!", "Num": "#NUM!", "Ref": "#REF!",
                "Value": "#VALUE!", "GettingData": "#GETTING_DATA"}


def _replace(table, column: int, by_row: dict[int, str]):
    """`table` with the cells of `column` at the rows of `by_row` replaced by its texts."""
    rows = sorted(r for r in by_row if 0 <= r < table.num_rows)
    if not rows:
        return table
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    filled = pc.replace_with_mask(table.column(column), pa.array(mask), pa.array([by_row[r] for r in rows], pa.string()))
    return table.set_column(column, table.schema.field(column), filled)


def error_cells_as_text(table, errors):
    """`table` (a sheet read as text) with each error cell fastexcel reported as Excel's text."""
    cells: dict[int, dict[int, str]] = {}
    for e in getattr(errors, "errors", None) or ():
        kind = re.search(r"Error\((\w+)\)", e.detail)
        if kind:
            row, column = e.position
            cells.setdefault(column, {})[row] = EXCEL_ERRORS.get(kind.group(1), f"#{kind.group(1).upper()}")
    for column, by_row in cells.items():
        table = _replace(table, column, by_row)
    return table


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def _sheet_xml(path: Path, sheet: str) -> bytes | None:
    """The XML of worksheet `sheet` of the workbook at `path` (None when it cannot be found)."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
        rid = next((m.group(2) for m in re.finditer(r'<sheet\b[^>]*?name="([^"]*)"[^>]*?r:id="([^"]+)"', book)
                    if _unescape(m.group(1)) == sheet), None)
        target = next((m.group(1) for m in re.finditer(r'<Relationship\b[^>]*?Target="([^"]+)"[^>]*?>', rels)
                       if rid and f'Id="{rid}"' in m.group(0)), None)
        if target is None:
            return None
        part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        return z.read(part) if part in z.namelist() else None


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def fill_merged_cells(path: Path, sheet: str, table, below: int):
    """`table` (sheet `sheet` of the workbook at `path`, read without a header, so that its row 0 is
    the sheet's first row holding a value and its column 0 the first column holding one, as calamine
    cuts a sheet) with every merged range that lies below row `below` (the header) filled with the
    value of its top-left cell. A range whose top-left cell is empty, or whose other cells are not,
    is left as read (the positions would not be what this reads them to be)."""
    try:
        xml = _sheet_xml(path, sheet)
    except (KeyError, zipfile.BadZipFile, OSError):
        return table
    if not xml or b"<mergeCell " not in xml:
        return table
    merges = re.findall(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"', xml)
    # calamine's first row and column: of the cells holding a value (an empty, styled cell is
    # written as <c r="B5" s="1"/>, which calamine skips)
    held = re.findall(rb'<c r="([A-Z]+)(\d+)"[^>]*?(?<!/)>(?!</c>)', xml)
    if not held:
        return table
    first_row = min(int(r) for _, r in held)
    first_col = min(_column_number(c) for c, _ in held)
    cells: dict[int, dict[int, str]] = {}
    columns = [table.column(i) for i in range(table.num_columns)]
    for c1, r1, c2, r2 in merges:
        top, left = int(r1) - first_row, _column_number(c1) - first_col
        bottom, right = int(r2) - first_row, _column_number(c2) - first_col
        if top <= below or bottom >= table.num_rows or right >= table.num_columns or left < 0:
            continue  # a title or header spread over cells, or outside what was read
        value = columns[left][top].as_py()
        rest = [(r, c) for r in range(top, bottom + 1) for c in range(left, right + 1) if (r, c) != (top, left)]
        if value is None or any(columns[c][r].as_py() is not None for r, c in rest):
            continue
        for r, c in rest:
            cells.setdefault(c, {})[r] = value
    for column, by_row in cells.items():
        table = _replace(table, column, by_row)
    return table
