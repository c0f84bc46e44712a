"""Workbook cells as Excel shows them, where fastexcel (calamine) reads them otherwise.

* An error cell (a formula's cached #N/A, #REF!, ...) is read as empty and only reported: it is
  given the text Excel shows, which a CSV saved from the sheet holds, so the same rules judge it (an
  amount '#N/A' is no number: quarantined). An audit's VLOOKUP amounts made three won deals without
  an amount, and nothing in the quarantine. A key or name column (an id, an account, an owner) keeps
  such a cell empty, as before: '#N/A' is no deal id nor company (a re-check: it became both).
* A merged cell holds its value in its top-left cell only: a grouped report saved as a workbook (a
  Salesforce formatted report grouped by owner, a hand-made sheet with one label per block) merges
  each group's label down its rows, and 56 of an audit's 60 deals came without an owner, without a
  word. A range merged down one column below the header gives its value to every row of it, as
  "unmerge and fill" does in Excel; but not in a column of amounts or quantities (an invoice's total
  merged down its lines is the invoice's, not each line's: copied, a re-check's revenue was 2.7
  times the log's), and not a range across columns (a 'Subtotal' label over an id and a stage
  became a deal). The cells filled are counted per column (the run says so). fastexcel does not
  name merged ranges, so they are read from the sheet's XML.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXCEL_ERRORS = {"Div0": "#DIV/0!", "NA": "#N/A", "Name": "#NAME?", "Null": "#NULL!", "Num": "#NUM!", "Ref": "#REF!",
                "Value": "#VALUE!", "GettingData": "#GETTING_DATA"}
# headers of key and name columns (an error cell stays empty there) and of amounts (a merge is not copied)
KEY_HEADER = re.compile(r"(^|[^a-z])(ids?|names?|owner|company|companies|account|customer|rep|agent|manager|user|"
                        r"invoice|sku|stockcode|product)([^a-z]|$)", re.IGNORECASE)
AMOUNT_HEADER = re.compile(r"amount|value|price|revenue|quantity|qty|total|cost|sum|betrag|menge|preis|umsatz|"
                           r"probability|percent|%", re.IGNORECASE)


def _replace(table, column: int, by_row: dict[int, str]):
    """`table` with the cells of `column` at the rows of `by_row` replaced by its texts."""
    rows = sorted(r for r in by_row if 0 <= r < table.num_rows)
    if not rows:
        return table
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    filled = pc.replace_with_mask(table.column(column), pa.array(mask), pa.array([by_row[r] for r in rows], pa.string()))
    return table.set_column(column, table.schema.field(column), filled)


def _header(table, row: int) -> list[str]:
    return ["" if v is None else str(v) for v in table.slice(row, 1).to_pylist()[0].values()] if table.num_rows else []


def error_cells_as_text(table, errors, header_row: int):
    """`table` (a sheet read as text, its header on `header_row`) with each error cell fastexcel
    reported given Excel's text, but in key and name columns (KEY_HEADER)."""
    header = _header(table, header_row)
    cells: dict[int, dict[int, str]] = {}
    for e in getattr(errors, "errors", None) or ():
        kind = re.search(r"Error\((\w+)\)", e.detail)
        row, column = e.position
        if kind and not (column < len(header) and KEY_HEADER.search(header[column])):
            cells.setdefault(column, {})[row] = EXCEL_ERRORS.get(kind.group(1), f"#{kind.group(1).upper()}")
    for column, by_row in cells.items():
        table = _replace(table, column, by_row)
    return table


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def _sheet_part(z: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member of worksheet `sheet` (None when it cannot be found)."""
    book = z.read("xl/workbook.xml").decode("utf-8", "replace")
    rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    rid = next((m.group(2) for m in re.finditer(r'<sheet\b[^>]*?name="([^"]*)"[^>]*?r:id="([^"]+)"', book)
                if _unescape(m.group(1)) == sheet), None)
    target = next((m.group(1) for m in re.finditer(r'<Relationship\b[^>]*?Target="([^"]+)"[^>]*?>', rels)
                   if rid and f'Id="{rid}"' in m.group(0)), None)
    if target is None:
        return None
    part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
    return part if part in z.namelist() else None


def _has_merges(z: zipfile.ZipFile, part: str) -> bool:
    """Whether the sheet's XML has merged ranges, read as a stream (a 300k-row sheet's XML is 100 MB:
    held whole only when it has them)."""
    tail = b""
    with z.open(part) as fh:
        while chunk := fh.read(1 << 20):
            if b"<mergeCell " in tail + chunk:
                return True
            tail = chunk[-16:]
    return False


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def fill_merged_cells(path: Path, sheet: str, table, below: int) -> tuple[object, dict[str, int]]:
    """(`table` with its merged ranges filled, {column header: cells filled}). `table` is sheet `sheet`
    of the workbook at `path` read without a header, so that its row 0 is the sheet's first row
    holding a value and its column 0 the first column holding one, as calamine cuts a sheet; `below`:
    its header row. Filled: a range of one column below the header, not an amount column
    (AMOUNT_HEADER), whose top cell holds a value and whose other cells are empty (else the positions
    would not be what this reads them to be)."""
    try:
        with zipfile.ZipFile(path) as z:
            part = _sheet_part(z, sheet)
            if part is None or not _has_merges(z, part):
                return table, {}
            xml = z.read(part)
    except (KeyError, zipfile.BadZipFile, OSError, zlib.error):
        return table, {}
    merges = re.findall(rb'<mergeCell ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"', xml)
    # calamine's first row and column: of the cells holding a value (an empty, styled cell is
    # written as <c r="B5" s="1"/>, which calamine skips)
    held = re.findall(rb'<c r="([A-Z]+)(\d+)"[^>]*?(?<!/)>(?!</c>)', xml)
    if not held:
        return table, {}
    first_row = min(int(r) for _, r in held)
    first_col = min(_column_number(c) for c, _ in held)
    header = _header(table, below)
    cells: dict[int, dict[int, str]] = {}
    columns = [table.column(i) for i in range(table.num_columns)]
    for c1, r1, c2, r2 in merges:
        top, column = int(r1) - first_row, _column_number(c1) - first_col
        bottom = int(r2) - first_row
        if (c1 != c2 or top <= below or bottom >= table.num_rows or not 0 <= column < table.num_columns
                or (column < len(header) and AMOUNT_HEADER.search(header[column]))):
            continue  # across columns, a title or the header, outside what was read, or an amount
        value = columns[column][top].as_py()
        if value is None or any(columns[column][r].as_py() is not None for r in range(top + 1, bottom + 1)):
            continue
        for r in range(top + 1, bottom + 1):
            cells.setdefault(column, {})[r] = value
    for column, by_row in cells.items():
        table = _replace(table, column, by_row)
    return table, {(header[c] if c < len(header) and header[c] else f"column {c + 1}"): len(rows)
                   for c, rows in cells.items()}
