"""Load one raw CSV export into an all-VARCHAR staging table, keeping every row accounted for.

DuckDB's parallel CSV reader does the parsing. Rows it cannot parse (too few or too many fields,
invalid UTF-8, a stray quote) go to its rejects table; we turn those into quarantine rows.

Line numbers are physical lines of the file (header = 1). The table is numbered as DuckDB
reads it (file order is preserved, so the k-th accepted row gets k + 1): right as it stands
for the usual file, whose records are its lines and none of them rejected; the import then
makes one pass over the file. Otherwise (a rejected row, a blank line, a quoted multi-line
field) DuckDB's record numbers count blank lines and a multi-line field once; a quote-aware
scan of the bytes maps each record to the physical line it starts on, and the accepted rows
get theirs by elimination (the k-th accepted row is the k-th non-blank record that was not
rejected), rewritten in place (only `_line`).

Before DuckDB sees a file we check what it is: empty, binary (NUL bytes) or not text stops the
run with a SourceError naming the file, the line and what was expected. Encoding: UTF-8 (a BOM
is fine). A file that is not UTF-8 anywhere (no valid multi-byte sequence but bytes >= 0x80) is
read as Windows-1252 (latin-1 plus the ’ “ ” € … of Windows exports, which DuckDB's own latin-1
reader refuses) from a UTF-8 copy in a folder of the import's own (`transcoded_copies`), and the
report says so; a UTF-8 file with some invalid bytes keeps UTF-8 and those rows go to the quarantine.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import csv
import gzip
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.excel_cells import error_cells_as_text, fill_merged_cells
from revintel_assets.defs.ingest.expr import quote_ident
from revintel_assets.defs.ingest.mapping import WINDOWS, example, inside
from revintel_assets.defs.ingest.parse_sql import mark_workbook
from revintel_assets.defs.ingest.quarantine import QUARANTINE_STAGING, ensure_quarantine_staging
from revintel_assets.defs.ingest.synonyms import SYNONYMS

# The folder for UTF-8 copies of Windows-1252 files during one import (transcoded_copies)
_COPIES: contextvars.ContextVar[Path | None] = contextvars.ContextVar("revintel_transcoded", default=None)
# Windows-1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): read as latin-1 does
codecs.register_error("revintel_latin1", lambda e: (e.object[e.start:e.end].decode("latin-1"), e.end))
_CHUNK = 1 << 24  # bytes per step of the scans below (memory: a small multiple of this, not of the file)
SCAN_LIMIT = 2 << 30  # files larger than this (uncompressed) are trusted to have no blank lines
_UTF8_MULTI = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_BLANK_FILE = re.compile(rb"[ \t\r\n\xef\xbb\xbf]*")


@dataclass(frozen=True)
class RawLoad:
    file: str
    table: str
    columns: list[str]
    rows: int
    rejected: int
    encoding: str = "utf-8"
    renamed: dict = field(default_factory=dict)
    exact_lines: bool = True  # False: malformed quoting; line numbers are DuckDB's record numbers
    missing_optional: tuple = ()  # optional columns (of `noted`) the file does not have: NULLs
    sheets: tuple = ()  # a workbook: (name, rows, first line) of every sheet read, in order
    skipped_sheets: tuple = ()  # a workbook: (name, why) of the later sheets with rows that were not read
    footer: int = 0  # of the rejected lines, a report's footer (_report_footer)
    title_rows: tuple = ()  # a workbook: (sheet, rows above its header) where the table starts lower
    empty_rows: int = 0  # records of delimiters only (',,,,' below a table Excel saved): skipped, counted
    merged_filled: dict = field(default_factory=dict)  # a workbook: {sheet: {column: cells}} filled from merges


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def norm(name: str) -> str:
    """Header spelling key: 'Opportunity ID', 'opportunity_id' and 'OpportunityId' agree."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# A gzip file that expands past this ratio to its size, beyond BOMB_FLOOR bytes, is refused before it
# fills memory: 4 MB expanding to 4 GB ended in a MemoryError (an audit). Real exports compress 5-20x;
# a file of empty quoted fields ~100x.
BOMB_RATIO, BOMB_FLOOR, CHUNK = 500, 256 * 2**20, 64 * 2**20


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    try:
        if path.name.endswith(".gz"):
            cap = max(BOMB_FLOOR, BOMB_RATIO * path.stat().st_size)
            parts, total = [], 0
            with gzip.open(path, "rb") as fh:
                while limit is None or total < limit:
                    part = fh.read(CHUNK if limit is None else min(CHUNK, limit - total))
                    if not part:
                        break
                    parts.append(part)
                    total += len(part)
                    if total > cap:
                        raise SourceError(path, 0, "a gzip-compressed CSV export",
                                          f"it expands past {cap:,} bytes, {BOMB_RATIO}x its size: not an export")
            return b"".join(parts)
        with open(path, "rb") as fh:
            return fh.read(-1 if limit is None else limit)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(path, 1, "a readable CSV file", str(exc) or type(exc).__name__) from exc


EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def is_excel(path: Path) -> bool:
    return Path(path).name.lower().endswith(EXCEL_SUFFIXES)


def is_unicode_text(path: Path) -> bool:
    """Excel's "Unicode Text" save (UTF-16 with its byte-order mark, tab-separated), which Excel names
    .txt: read like a CSV (it was named in the refusal as a file found, nothing more)."""
    if Path(path).suffix.lower() != ".txt" or not Path(path).is_file():
        return False
    try:
        return read_bytes(Path(path), 2) in (b"\xff\xfe", b"\xfe\xff")
    except SourceError:
        return False


def is_crm_candidate(path: Path) -> bool:
    """A file that may hold a CRM export under a name of its own (found by its header)."""
    return Path(path).suffix.lower() == ".csv" or is_excel(path) or is_unicode_text(path)


def read_excel_sheet(path: Path, header_only: bool = False):
    """The first worksheet of an Excel workbook as an all-text Arrow table (polars' engine,
    fastexcel / calamine): header on its row (header_row), every cell as its text, blank rows
    kept as all-NULL rows. SourceError when it is not a workbook."""
    return read_excel_book(path, header_only)[0][0][1]


TITLE_PROBE_ROWS = 30  # rows looked at for a title block above a workbook's header
TITLE_CELLS = 2  # a title block's rows fill at most this many cells (a title, "Filtered by:" and its value)


def header_row(rows: list[dict]) -> int:
    """The 0-based row of a sheet's header among its first rows: row 0, unless the rows above the
    first row with the most filled cells look like a title block (a report's title, its filters, a
    blank row: Salesforce's formatted report and many hand-made workbooks), each filling at most
    TITLE_CELLS cells and fewer than that row. A header row with a blank name over a filled
    column stays the header (it fills one cell fewer than its data rows, not a title's one or two)."""
    filled = [sum(v is not None and str(v).strip() != "" for v in row.values()) for row in rows[:TITLE_PROBE_ROWS]]
    if not filled:
        return 0
    h = filled.index(max(filled))
    titled = all(n <= min(TITLE_CELLS, filled[h] - 1) for n in filled[:h])
    return h if titled and _names_a_header(rows[h].values()) else 0


def _names_a_header(cells) -> bool:
    """Distinct names, none of them a number: a data row under a two-column header with an unnamed
    notes column (85048, Home, 'seasonal') fills more cells than the header, and is not one."""
    names = [str(v).strip() for v in cells if v is not None and str(v).strip() != ""]
    return len(set(names)) == len(names) and not any(re.fullmatch(r"[-+]?[\d.,]+", n) for n in names)


def _column_names(cells) -> list[str]:
    """A header row's cells as fastexcel names columns: blank -> __UNNAMED__<i>, a repeat -> <name>_<k>."""
    names, seen = [], {}
    for i, v in enumerate(cells):
        name = f"__UNNAMED__{i}" if v is None or str(v) == "" else str(v)
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _load_sheet(book, sheet, header_only: bool = False, path: Path | None = None, filled: dict | None = None):
    """(the sheet as an all-text Arrow table named by its header, the header's 0-based row). One
    parse of the sheet: read without a header, then cut at the header row (a second load with
    the header found costs a whole parse again: 2.2 s for Online Retail's 541,909 rows). Cells as
    Excel shows them (excel_cells): error cells as their text, merged cells below the header filled
    (`path`: the workbook, whose XML names its merged ranges)."""
    raw, errors = book.load_sheet(sheet, header_row=None, dtypes="string",
                                  n_rows=TITLE_PROBE_ROWS if header_only else None).to_arrow_with_errors()
    if not raw.num_rows:
        return raw, 0
    h = header_row(raw.slice(0, TITLE_PROBE_ROWS).to_pylist())
    raw = error_cells_as_text(raw, errors, h)
    if path is not None and not header_only:
        name = sheet if isinstance(sheet, str) else book.sheet_names[sheet]
        raw, merged = fill_merged_cells(path, name, raw, below=h)
        if merged and filled is not None:
            filled[name] = merged
    table = raw.slice(h + 1).rename_columns(_column_names(raw.slice(h, 1).to_pylist()[0].values()))
    return (table.slice(0, 0) if header_only else table), h


def read_excel_book(path: Path, header_only: bool = False,
                    filled: dict | None = None) -> tuple[list[tuple[str, object, int]], list[tuple[str, str]]]:
    """([(sheet name, all-text Arrow table, header row)] of the first sheet and of every later
    sheet with the same header, [(sheet name, why)] of the later sheets with rows that were not
    read). A workbook is often one table split by year over several sheets (UCI Online Retail II:
    "Year 2009-2010", "Year 2010-2011"); reading only the first would drop the rest without a word.
    Each sheet's header is found below a title block (header_row). `filled`: gets {sheet: {column:
    cells}} of the merged cells filled (excel_cells)."""
    import fastexcel

    want = "an Excel workbook (.xlsx) with a header row on its first sheet"
    try:
        book = fastexcel.read_excel(str(path))
        first, h = _load_sheet(book, 0, header_only, path, filled)
    except Exception as exc:  # fastexcel raises its own error types for every kind of bad file
        raise SourceError(path, 1, want, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    names = book.sheet_names
    sheets, skipped = [(names[0], first, h)], []
    header = [str(c).strip() for c in first.schema.names]
    for name in ([] if header_only else names[1:]):
        try:
            table, h = _load_sheet(book, name, path=path, filled=filled)
        except Exception:  # an empty sheet (no header row) has nothing to read
            continue
        if [str(c).strip() for c in table.schema.names] == header:
            sheets.append((name, table, h))
        elif table.num_rows:
            skipped.append((name, f"its header ({', '.join(map(str, table.schema.names))}) is not the first sheet's"))
    return sheets, skipped


def later_sheet_headers(path: Path) -> list[tuple[str, list[str]]]:
    """(sheet name, header) of every sheet of a workbook after its first ([] when unreadable)."""
    import fastexcel

    try:
        book = fastexcel.read_excel(str(path))
        names = book.sheet_names[1:]
    except Exception:  # noqa: BLE001 (fastexcel's own error types: not a workbook)
        return []
    out = []
    for name in names:
        try:
            table, _ = _load_sheet(book, name, header_only=True)
        except Exception:  # noqa: BLE001 (an empty sheet)
            continue
        out.append((name, [str(c).strip() for c in table.schema.names]))
    return out


def refuse_link_out(path: Path) -> None:
    """A symlink in the source folder leading out of it is never read, detection and hints included:
    an unrelated `notes.csv` pointing at a credentials file had its first line quoted in the run's hint
    (an audit; the import's own check came later)."""
    if Path(path).is_symlink() and Path(path).parent.resolve() not in Path(path).resolve().parents:
        raise SourceError(path, 0, "a file inside the source folder",
                          "a symlink that leads out of the folder (copy the file in, or point --source at the real folder)")


def read_header(path: Path) -> list[str]:
    """First line of a CSV (or row of a workbook's first sheet) as stripped column names (BOM
    removed); for format detection."""
    refuse_link_out(path)
    if is_excel(path):
        try:
            return [str(c).strip() for c in read_excel_sheet(path, header_only=True).schema.names]
        except SourceError:
            return []
    line = read_header_line(path)
    if _SEP_LINE.fullmatch(line):  # Excel's hint above the header: detection reads the header below it (the
        line = read_header_line(path, 2)  # load refuses the file, saying so: _refuse_sep_line)
    return header_cells(line)


def header_cells(line: str) -> list[str]:
    """A header line's stripped cells, split at the delimiter the line holds most of (ties: the
    comma): Excel in most of Europe saves CSV with semicolons, and such a report went unrecognised
    as one column."""
    bare = re.sub(r'"[^"]*"', "", line)  # outside quotes: a label may hold ';' ("Notes (a;b)")
    counts = {d: bare.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda d: (counts[d], d == ","))
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a stray carriage return or NUL: the plain split, as before
        cells = line.split(delimiter)
    return [c.strip().strip('"').strip() for c in cells]


_SEP_LINE = re.compile(r'\s*"?sep=.?"?\s*', re.IGNORECASE)


def _refuse_sep_line(path: Path, line: str) -> None:
    """Excel's `sep=;` first line (a hint to Excel, above the header) was taken for the header: the
    deals file was refused for lacking every column ("found sep="), or the folder advised a
    transaction-log mapping. Said as what it is."""
    if _SEP_LINE.fullmatch(line):
        raise SourceError(path, 1, "the header row on line 1",
                          f"line 1 is {line.strip()!r}, Excel's hint naming the delimiter, above the header: delete "
                          "that line (or save the file again from Excel as 'CSV UTF-8') and import again")


def read_header_line(path: Path, number: int = 1) -> str:
    """The first line (or line `number`) of a CSV as text (BOM removed; UTF-16 decoded, big-endian
    too, so that the import names its encoding), "" when unreadable or a workbook."""
    refuse_link_out(path)
    if is_excel(path):
        return ""
    try:
        head = read_bytes(path, 1 << 16)
    except SourceError:
        return ""
    utf16 = _utf16(head)
    if utf16:
        codec = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else (
            "utf-16-le" if utf16 == "utf-16" else "utf-16-be")
        text = head.decode(codec, errors="replace")
    else:
        text = b"\n".join(head.split(b"\n", number)[:number]).decode("utf-8-sig", errors="replace")
    lines = text.split("\n")
    return lines[number - 1].strip("\r\n") if len(lines) >= number else ""


_BARE_LF = re.compile(rb"(?<!\r)\n")


def mixed_line_ending(data: bytes) -> tuple[int, str, str] | None:
    """(line, its ending, the first line's ending) of the first line that ends otherwise than the
    first one (CRLF vs LF), or None. DuckDB's sniffer cannot read such a file and says only that it
    could not sniff it. One search in C for the other ending, no loop over lines."""
    first = data.find(b"\n")
    if first < 0:
        return None
    crlf = first > 0 and data[first - 1:first] == b"\r"
    if crlf:
        m = _BARE_LF.search(data, first + 1)
        pos = m.start() if m else -1
    else:
        pos = data.find(b"\r\n", first + 1)
        pos = pos + 1 if pos >= 0 else -1
    if pos < 0:
        return None
    return data.count(b"\n", 0, pos) + 1, "LF" if crlf else "CRLF", "CRLF" if crlf else "LF"


def header_delimiter(path: Path, preferred: str = ",") -> str:
    """The delimiter a CSV's header line uses: `preferred` (a mapping's) when the line holds it,
    else the first of , ; tab | it holds (a SKU map saved apart from a semicolon-separated log can
    be either)."""
    line = read_header_line(path)
    return next((d for d in (preferred, ",", ";", "\t", "|") if d in line), preferred)


def first_long_line(path: Path, limit: int) -> int | None:
    """1-based number of the first physical line longer than `limit` bytes (read in chunks,
    never a whole line in memory), or None."""
    opener = gzip.open if path.name.endswith(".gz") else open
    line, length = 1, 0
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            start = 0
            while (nl := chunk.find(b"\n", start)) >= 0:
                if length + nl - start > limit:
                    return line
                line, length, start = line + 1, 0, nl + 1
            length += len(chunk) - start
            if length > limit:
                return line
    return None


@contextlib.contextmanager
def transcoded_copies():
    """A fresh folder for the UTF-8 copies of Windows-1252 files of one import, removed after it
    (import_source lets the locked-down connection read it beside the source folder)."""
    folder = Path(tempfile.mkdtemp(prefix="revintel-import-"))
    token = _COPIES.set(folder)
    try:
        yield folder
    finally:
        _COPIES.reset(token)
        shutil.rmtree(folder, ignore_errors=True)


def _utf8_copy(data: bytes, name: str) -> tuple[Path, bytes]:
    """(path of a UTF-8 copy of Windows-1252 `data`, its bytes): line for line the same file."""
    folder = _COPIES.get()
    if folder is None:  # every import goes through import_source, which sets (and removes) the folder
        raise RuntimeError("a Windows-1252 file is read inside raw_csv.transcoded_copies() only")
    utf8 = data.decode("cp1252", "revintel_latin1").encode("utf-8")
    copy = folder / f"{uuid.uuid4().hex}-{Path(name).name}"
    copy.write_bytes(utf8)
    return copy, utf8


def check_text(path: Path, data: bytes, layout: str) -> str:
    """Stop on files that are not CSV text at all; returns the encoding to read with."""
    expected = f"a comma-separated text file with a header row ({layout} layout)"
    if _BLANK_FILE.fullmatch(data):  # (data.strip() copied the whole file)
        raise SourceError(path, 1, expected, "the file is empty")
    utf16 = _utf16(data)
    if utf16 == "utf-16":
        return utf16  # little-endian (Excel's "Unicode text"): DuckDB reads it as such
    if utf16:
        raise SourceError(path, 1, expected, "the file is UTF-16 big-endian; save it as UTF-8 "
                          "(or UTF-16 little-endian) and run again")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SourceError(path, data.count(b"\n", 0, nul) + 1, expected,
                          f"found binary content (a NUL byte at offset {nul}); is this a spreadsheet "
                          "or archive? Export it as CSV")
    if data.isascii():  # no byte >= 0x80 (the usual export): UTF-8 without decoding it
        return "utf-8"
    try:  # validated in chunks: decoding the whole file at once held a second copy of it as text
        decoder = codecs.getincrementaldecoder("utf-8")()
        view = memoryview(data)
        for lo in range(0, len(data), _CHUNK):
            decoder.decode(view[lo:lo + _CHUNK])
        decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        if _UTF8_MULTI.search(data):
            return "utf-8"  # mostly UTF-8: the rows with invalid bytes go to the quarantine
        return "latin-1"  # not UTF-8 anywhere: a latin-1 / Windows export


def _utf16(data: bytes) -> str | None:
    """'utf-16' for UTF-16 little-endian (with or without BOM), 'utf-16-be' for big-endian, None
    otherwise. Without a BOM: text in UTF-16 has a NUL in (nearly) every other byte."""
    if data.startswith(b"\xff\xfe"):
        return "utf-16"
    if data.startswith(b"\xfe\xff"):
        return "utf-16-be"
    sample = data[:1 << 16]
    half = len(sample) // 2
    if half < 2:
        return None
    even, odd = sample[0:2 * half:2].count(0), sample[1:2 * half:2].count(0)
    if odd > 0.9 * half and even < 0.1 * half:
        return "utf-16"
    if even > 0.9 * half and odd < 0.1 * half:
        return "utf-16-be"
    return None


def _quote_state(data: bytes):
    """Physical lines of `data`: start and end offsets, and whether each starts inside a quoted
    field (an odd number of quotes before it)."""
    import numpy as np

    arr = np.frombuffer(data, np.uint8)
    sep = 10 if b"\n" in data else 13
    nl = np.flatnonzero(arr == sep)
    starts = np.concatenate([[0], nl + 1])
    ends = np.concatenate([nl, [len(arr)]])
    # odd quotes before the line start: a running XOR of "is a quote", chunk by chunk (the positions
    # of every quote as int64 took 8 bytes per quote: ~8x the size of a file of quoted empty fields)
    in_quote = np.zeros(len(starts), dtype=bool)
    carry = 0
    for lo in range(0, len(arr), _CHUNK):
        parity = np.bitwise_xor.accumulate((arr[lo:lo + _CHUNK] == 34).view(np.uint8))
        parity ^= carry
        i0, i1 = np.searchsorted(starts, [lo + 1, lo + len(parity) + 1])
        in_quote[i0:i1] = parity[starts[i0:i1] - 1 - lo].astype(bool)
        carry = int(parity[-1])
    return starts, ends, in_quote


def unclosed_quote_line(data: bytes) -> int | None:
    """1-based line on which a quoted field opens that no later quote closes (the file has an odd
    number of quotes: from there on the rest of the file is one field), else None."""
    if data.count(b'"') % 2 == 0:
        return None
    import numpy as np

    _, _, in_quote = _quote_state(data)
    return int(np.flatnonzero(~in_quote)[-1]) + 1


def _has_blank_line(data: bytes) -> bool:
    """A blank line before the file's trailing line breaks, by substring search (a regular
    expression, `(?:^|\n)\r?(?:\n|$)`, took seconds on a 140 MB file)."""
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    if end == 0 or data.startswith((b"\n", b"\r\n")):
        return True
    return data.find(b"\n\n", 0, end) >= 0 or data.find(b"\n\r\n", 0, end) >= 0


def record_lines(data: bytes) -> tuple[list[int], list[bool]] | None:
    """Physical start line and blankness of each record as DuckDB counts them (record 1 =
    header), or None when records and lines coincide (no blank line, no quoted newline)."""
    if b'"' not in data and not _has_blank_line(data):
        return None
    import numpy as np

    starts, ends, in_quote = _quote_state(data)
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (np.frombuffer(data, np.uint8)[np.minimum(starts, len(data) - 1)] == 13))
    lines = np.arange(1, len(starts) + 1)
    rec = ~in_quote
    rec_lines, rec_blank = lines[rec], blank[rec]
    k = len(rec_blank)
    while k and rec_blank[k - 1]:  # trailing newline(s): not records
        k -= 1
    if k == len(lines) and not rec_blank[:k].any():
        return None
    return rec_lines[:k].tolist(), rec_blank[:k].tolist()


def _create(table: str) -> str:
    """`temp.raw_x` is a temporary table (the raw rows live as long as the import's connection:
    nothing reads them afterwards, and a persistent table of a wide file cost a compressed copy
    on disk, ~1.5x the time of reading it)."""
    if table.startswith("temp."):
        return f"CREATE OR REPLACE TEMP TABLE {table.removeprefix('temp.')}"
    return f"CREATE OR REPLACE TABLE {table}"


def load_raw_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, required: list[str],
                 layout: str, rename: dict[str, str] | None = None, optional: list[str] | None = None,
                 delimiter: str = ",", encoding: str | None = None,
                 canonical_file: str | None = None, noted: list[str] | None = None,
                 narrow=None) -> RawLoad:
    """Create `table` (all VARCHAR, columns as in the file) plus `_line`; rejected rows quarantined.

    `rename` maps revintel's column names onto the user's (from the mapping file); required and
    optional columns that differ only in spelling ('Opportunity ID') are matched too.
    `narrow(source, final)`: the table's columns as a SELECT list over the file's column names
    (`source`, in file order; `final`: the same after renaming) instead of every column, e.g. the
    wide sales log's mostly empty SKU cells folded into one list per row (materialising 72 text
    columns cost ~2x reading them); None keeps them all. RawLoad.columns still names every column.
    Raises SourceError when the file cannot be read at all or lacks a required column.
    """
    try:  # a symlink in the source folder must not lead the import to a file outside it
        inside(path.parent, path.name)
    except ValueError as exc:
        raise SourceError(path, 0, "a file inside the source folder", f"{path.name} is {exc}") from None
    mark_workbook(con, table, is_excel(path))
    if is_excel(path):
        return _load_excel(con, path, table, required, layout, rename, optional, canonical_file, noted, narrow)
    data = read_bytes(path)
    detected = check_text(path, data, layout)
    enc = detected if detected == "utf-16" else (encoding or detected).lower()
    enc = "latin-1" if enc in WINDOWS else enc
    read_from = path
    if enc == "utf-16":  # line structure from the text, not from the two-byte code units
        data = data.decode("utf-16" if data.startswith(b"\xff\xfe") else "utf-16-le", "replace").encode("utf-8")
        first = data.split(b"\n", 1)[0]
        if delimiter == "," and b"\t" in first and b"," not in first:  # Excel's "Unicode Text": UTF-16, tabs
            delimiter = "\t"
    elif enc == "latin-1":  # DuckDB's latin-1 refuses Windows-1252's 0x80-0x9F: a UTF-8 copy instead
        read_from, data = _utf8_copy(data, path.name)
    # a header without the delimiter asked for and with another: a header with semicolons and no comma
    # is a semicolon file (Excel in most of Europe; other delimiters are named in _check_header's
    # message); a mapping's delimiter names one for every file, and the comma-separated accounts file
    # beside the semicolon deals it was written for is read with commas
    first = data.split(b"\n", 1)[0]
    _refuse_sep_line(path, first.decode("utf-8", "replace").lstrip("\ufeff"))
    if delimiter.encode() not in first:
        delimiter = next((d for d in ((";",) if delimiter == "," else (",", ";", "\t", "|")) if d.encode() in first),
                         delimiter)
    records = record_lines(data) if len(data) < SCAN_LIMIT else None
    del data
    src = _sql_str(str(read_from))
    rej, scan = f"{table.replace('.', '_')}_rejects", f"{table.replace('.', '_')}_scans"
    enc_opt = {"utf-16": ", encoding='utf-16'"}.get(enc, "")
    options = f"delim={_sql_str(delimiter)}, quote='\"', escape='\"'{enc_opt}"
    wanted = required + (optional or [])
    try:
        con.execute(f"DROP TABLE IF EXISTS {rej}; DROP TABLE IF EXISTS {scan}")
        reader = (f"read_csv({src}, all_varchar=true, header=true, store_rejects=true, rejects_table='{rej}', "
                  f"rejects_scan='{scan}', sample_size=-1, {options})")
        select, header = "*", None
        if narrow is not None:  # the header: binding the same reader (it reads no rows)
            header = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
            final = [_rename_map(header, wanted, rename or {}).get(c, c) for c in header]
            select = narrow(header, final) or "*"
            con.execute(f"DROP TABLE IF EXISTS {rej}; DROP TABLE IF EXISTS {scan}")
        con.execute(f"{_create(table)} AS SELECT {select}, row_number() OVER () + 1 AS _line FROM {reader}")
    except duckdb.Error as exc:
        expected = f"a comma-separated text file with a header row ({layout} layout)"
        too_long = re.search(r"Maximum line size of (\d+) bytes exceeded", str(exc))
        if too_long:  # DuckDB's message quotes the whole line and numbers it within a buffer
            limit = int(too_long.group(1))
            line = first_long_line(path, limit)
            raise SourceError(path, line or 1, f"{expected}, lines of at most {limit:,} bytes",
                              f"line {line} is longer" if line else
                              "a record spanning several lines is longer (an unclosed quote?)") from exc
        # DuckDB only says it could not sniff the dialect; a quote never closed is the usual cause
        text = read_bytes(path)
        if enc == "utf-16":
            text = text.decode("utf-16" if text.startswith(b"\xff\xfe") else "utf-16-le", "replace").encode("utf-8")
        line = unclosed_quote_line(text)
        if line:
            raise SourceError(path, line, f"{expected}, every quoted field closed by a quote",
                              f"the quote opened on line {line} is never closed (the rest of the file "
                              "would be one field)") from exc
        mixed = mixed_line_ending(text)
        if mixed:
            raise SourceError(path, mixed[0], f"{expected}, every line ending the same way",
                              f"line {mixed[0]} ends in {mixed[1]} where the lines before it end in {mixed[2]} "
                              "(rows pasted or appended by another tool?): save the file again with one kind of "
                              "line ending (most editors: 'Convert line endings' / 'Line endings: Windows')") from exc
        raise SourceError(path, 1, expected, str(exc).splitlines()[0]) from exc

    columns, renamed = _check_header(con, table, path, required, layout, rename, optional, canonical_file,
                                     header if select != "*" else None)

    rejected = con.execute(f"SELECT count(DISTINCT line) FROM {rej}").fetchall()[0][0]
    accepted = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    ensure_quarantine_staging(con)
    exact = True
    if records is not None:
        # The scan must agree with DuckDB's records; when a malformed file (a stray quote, a lone
        # CR) makes them differ, fall back to DuckDB's record numbers and say so.
        starts, blanks = records
        max_rej = con.execute(f"SELECT coalesce(max(line), 0) FROM {rej}").fetchall()[0][0]
        rej_blank = con.execute(f"SELECT list(line) FROM {rej}").fetchall()[0][0] or []
        data_records = sum(1 for b in blanks[1:] if not b)
        if (data_records != accepted + rejected or max_rej > len(starts)
                or any(blanks[line - 1] for line in rej_blank if 0 < line <= len(blanks))):
            records, exact = None, False
    # The usual file: records are lines and none was rejected, so the k-th row (numbered in file
    # order as the table was read) is already on its line, k + 1.
    if records is not None or rejected:
        _renumber(con, path, table, rej, records, accepted, rejected)
    con.execute(f"DROP TABLE IF EXISTS {rej}; DROP TABLE IF EXISTS {scan}")
    absent = tuple(c for c in (noted or []) if c not in columns)
    footer = _report_footer(con, path, table) if rejected else 0
    empty = _drop_empty_records(con, table)
    return RawLoad(path.name, table, columns, accepted - empty, rejected, enc, renamed, exact, absent, footer=footer,
                   empty_rows=empty)


def _drop_empty_records(con, table: str) -> int:
    """Records with every field empty: the rows of commas a spreadsheet saves below its table (blank
    lines and a workbook's blank rows were skipped already; these were quarantined as deals whose
    id is empty). Deleted here, their number reported."""
    cols = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] != "_line"]
    if not cols:
        return 0
    # text cells empty or blank; a narrow read's list (the wide sales log's SKU pairs) empty
    where = " AND ".join(f"nullif(trim({quote_ident(c)}), '') IS NULL" if t == "VARCHAR" else
                         f"({quote_ident(c)} IS NULL OR len({quote_ident(c)}) = 0)" if t.endswith("[]") else
                         f"{quote_ident(c)} IS NULL" for c, t in cols)
    return con.execute(f"DELETE FROM {table} WHERE {where}").fetchall()[0][0]


# A Salesforce report exported as CSV ends with its totals and a notice, one field a line:
# "Grand Totals (312 records)", "Confidential Information - Do Not Distribute", "Copyright (c)
# 2000-2025 salesforce.com, inc. ...", "Generated By: ...", the org's name. DuckDB rejects them (too
# few fields); read as unreadable rows they told the user 5 deals were lost when none was.
# what starts a report's footer: its totals line, or (a report exported without totals) the notice
FOOTER_START = (r'"?(Grand Totals \([0-9,.]+ records?\)|Confidential Information - Do Not Distribute'
                r'|Copyright \(c\) [0-9]{4}-[0-9]{4} salesforce\.com.*)"?')
FOOTER_REASON = "report footer: the totals and notice a Salesforce report appends, not a record"


def _report_footer(con, path: Path, table: str) -> int:
    """Quarantine a report's footer under its own reason: the rejected lines from a 'Grand Totals
    (N records)' line (or, without totals, the confidentiality notice) after the last row read to the
    end of the file, and the empty ones ('""') between that row and it. Returns how many."""
    return con.execute(
        f"""WITH bounds AS (
            SELECT (SELECT coalesce(max(_line), 0) FROM {table}) AS last_row,
                   (SELECT min(line_number) FROM {QUARANTINE_STAGING}
                    WHERE source_file = $file AND regexp_full_match(raw_row, {_sql_str(FOOTER_START)})
                      AND line_number > (SELECT coalesce(max(_line), 0) FROM {table})) AS footer)
        UPDATE {QUARANTINE_STAGING} SET reason = {_sql_str(FOOTER_REASON)} FROM bounds
        WHERE source_file = $file AND (line_number >= bounds.footer OR (
              line_number > bounds.last_row AND line_number < bounds.footer
              AND regexp_full_match(raw_row, '[\\s",;]*')))""",
        {"file": path.name}).fetchall()[0][0]


def _renumber(con, path: Path, table: str, rej: str, records, accepted: int, rejected: int) -> None:
    """Quarantine the rejected records and move each accepted row's `_line` to the physical line
    its record starts on (records: record_lines' answer, or None to trust DuckDB's numbers)."""
    if records is None:
        top = accepted + rejected + 1 + con.execute(f"SELECT coalesce(max(line), 0) FROM {rej}").fetchall()[0][0]
        con.execute("CREATE OR REPLACE TEMP TABLE _records AS SELECT g AS rec, g AS phys, false AS blank "
                    f"FROM generate_series(1, {top}) t(g)")
    else:
        import pyarrow as pa

        starts, blanks = records
        records_arrow = pa.table({"rec": pa.array(range(1, len(starts) + 1), pa.int64()),
                                  "phys": pa.array(starts, pa.int64()), "blank": pa.array(blanks, pa.bool_())})
        # registered, not found by a replacement scan: those are off on a locked-down connection
        con.register("_records_arrow", records_arrow)
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE _records AS SELECT * FROM _records_arrow")
        finally:
            con.unregister("_records_arrow")
    # rejected rows: DuckDB's record number -> physical line (one quarantine row per record)
    con.execute(
        f"""INSERT INTO {QUARANTINE_STAGING}
        SELECT {_sql_str(path.name)}, coalesce(r.phys, j.line)::BIGINT, trim(any_value(j.csv_line), chr(10) || chr(13)),
               'unreadable row: ' || string_agg(DISTINCT j.error_type, ', ') || ' ('
                   || any_value(j.error_message) || ')'
        FROM {rej} j LEFT JOIN _records r ON r.rec = j.line GROUP BY j.line, r.phys""")
    # Physical line of the k-th accepted row (k = _line - 1 as read): the k-th non-blank data
    # record not rejected. Only `_line` is rewritten (a narrow join, not a copy of the table).
    con.execute(
        f"""UPDATE {table} SET _line = m._line FROM (
            WITH lines AS (
                SELECT phys AS _line, row_number() OVER (ORDER BY rec) AS _ord FROM _records
                WHERE rec >= 2 AND NOT blank AND rec NOT IN (SELECT line FROM {rej}))
            SELECT o.range AS _ord, coalesce(l._line, -o.range) AS _line
            FROM range(1, {accepted} + 1) o LEFT JOIN lines l ON l._ord = o.range) m
        WHERE {table}._line - 1 = m._ord""")
    con.execute("DROP TABLE _records")


def _check_header(con, table: str, path: Path, required: list[str], layout: str, rename, optional, canonical_file,
                  header: list[str] | None = None):
    """Rename the user's columns in `table` to revintel's; SourceError naming the missing ones.
    `header`: the file's columns when `table` holds a narrow projection already named as ours."""
    if header is None:
        columns = [r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()]
        columns = [c for c in columns if c not in ("_ord", "_line")]
        renamed = _rename(con, table, columns, required + (optional or []), rename or {})
    else:
        columns, renamed = header, _rename_map(header, required + (optional or []), rename or {})
    columns = [renamed.get(c, c) for c in columns]
    missing = [c for c in required if c not in columns]
    if missing:
        shown = [c for c in columns if not c.startswith("column")] or columns
        # the delimiter the one column's name holds most of (a one-column layout's header holds none)
        counts = {d: shown[0].count(d) for d in (";", "\t", "|")} if len(shown) == 1 else {}
        other = max(counts, key=counts.get) if counts and max(counts.values()) >= max(1, len(required) - 1) else None
        if other:  # one column whose name holds the others: another delimiter, not other names
            name = {";": "semicolon", "\t": "tab", "|": "pipe"}[other]
            raise SourceError(path, 1, f"the {layout} header with columns {', '.join(required)}",
                              f"one column {shown[0][:120]!r}: the file looks {name}-separated. Add "
                              f"`delimiter: {other!r}` to revintel_mapping.yaml in the source folder"
                              + (" (and `decimal: ','` if amounts are written 1.234,56)" if other == ";" else ""))
        lower = _header_below(path, [rename.get(c, c) if rename else c for c in required])
        if lower:  # a title line above the header: "found column0, column1" and a mapping to fill in
            raise SourceError(path, lower, f"the {layout} header on line 1",
                              f"the header is on line {lower}; the {lower - 1} line(s) above it (a title?) are not "
                              "part of the table: delete them and import again")
        raise SourceError(
            path, 1, f"the {layout} header with columns {', '.join(required)}",
            f"missing column(s) {', '.join(missing)}; found {', '.join(shown)}.\n"
            + example(canonical_file or path.name, missing, shown, required + (optional or [])))
    return columns, renamed


def _header_below(path: Path, required: list[str], lines: int = 20) -> int | None:
    """The line (2..lines) of a CSV whose cells name every required column, if line 1 does not."""
    if is_excel(path):
        return None
    try:
        text = read_bytes(path, 1 << 16).decode("utf-8-sig", errors="replace")
    except SourceError:
        return None
    want = {norm(c) for c in required}
    for k, line in enumerate(text.splitlines()[1:lines], start=2):
        if want <= {norm(c) for c in header_cells(line)}:
            return k
    return None


def _load_excel(con, path: Path, table: str, required: list[str], layout: str, rename, optional,
                canonical_file, noted, narrow=None) -> RawLoad:
    """An Excel workbook read directly (no conversion step for the user): its first sheet and every
    later sheet with the same header (read_excel_book), every cell as text, blank rows skipped like
    blank lines. `_line` counts rows as if the sheets were one file, each starting with its header
    row: the first sheet's lines are its rows; where a later sheet's row ends up in the quarantine,
    the reason names the sheet and its row (label_sheet_rows)."""
    import pyarrow as pa

    merged: dict = {}
    sheets, skipped = read_excel_book(path, filled=merged)
    first = sheets[0][1]
    names = [str(c).strip() for c in first.schema.names]
    if not first.num_rows and not any(names):
        raise SourceError(path, 1, f"an Excel workbook with a header row ({layout} layout)", "the first sheet is empty")
    parts, read, line, titles = [], [], 0, []
    for sheet, arrow, h in sheets:
        line += h + 1  # the header's line: the rows before it (earlier sheets, this one's title), then it
        parts.append(pa.table({**{n: arrow.column(i).cast(pa.string()) for i, n in enumerate(names)},
                               "_line": pa.array(range(line + 1, line + 1 + arrow.num_rows), pa.int64())}))
        read.append((sheet, arrow.num_rows, line + 1))
        titles += [(sheet, h)] if h else []
        line += arrow.num_rows
    con.register("_excel_arrow", pa.concat_tables(parts))
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _raw AS SELECT * FROM _excel_arrow")
    finally:
        con.unregister("_excel_arrow")
    if len(read) > 1:
        con.execute("CREATE TEMP TABLE IF NOT EXISTS _sheet_lines "
                    "(source_file VARCHAR, sheet VARCHAR, first_line BIGINT, last_line BIGINT, header_row BIGINT)")
        con.executemany("INSERT INTO _sheet_lines VALUES (?, ?, ?, ?, ?)",
                        [[path.name, sheet, first_line, first_line + rows - 1, h]
                         for (sheet, rows, first_line), (_, _, h) in zip(read, sheets)])
    columns, renamed = _check_header(con, "_raw", path, required, layout, rename, optional, canonical_file)
    blank = " AND ".join(f"nullif(trim({quote_ident(c)}), '') IS NULL" for c in columns) or "false"
    footer = _excel_footer(con, path, columns, blank, read)
    select = (narrow(columns, columns) if narrow is not None else None) or "*"
    con.execute(f"{_create(table)} AS SELECT {select}{', _line' if select != '*' else ''} FROM _raw "
                f"WHERE NOT ({blank}) ORDER BY _line")
    con.execute("DROP TABLE _raw")
    ensure_quarantine_staging(con)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    absent = tuple(c for c in (noted or []) if c not in columns)
    return RawLoad(path.name, table, columns, rows, footer, "xlsx", renamed, True, absent, tuple(read), tuple(skipped),
                   title_rows=tuple(titles), footer=footer, merged_filled=merged)


def _excel_footer(con, path: Path, columns: list[str], blank: str, read: list) -> int:
    """A report saved as a workbook keeps its footer as rows: in each sheet, from the first row whose
    first filled cell starts a footer (FOOTER_START; a totals row may carry sums in other cells) to
    the sheet's end, quarantined as the report's footer, not as rows with an empty id. Returns how
    many (rows with every cell empty are not rows anyway)."""
    cells = ", ".join(f"nullif(trim({quote_ident(c)}), '')" for c in columns)
    n = 0
    for _sheet, rows, first in read:
        last = first + rows - 1
        start = con.execute(f"SELECT min(_line) FROM _raw WHERE _line BETWEEN {first} AND {last} AND "
                            f"regexp_full_match(coalesce({cells}, ''), {_sql_str(FOOTER_START)})").fetchall()[0][0]
        if start is None:
            continue
        ensure_quarantine_staging(con)
        n += con.execute(f"""INSERT INTO {QUARANTINE_STAGING} SELECT {_sql_str(path.name)}, _line,
                             concat_ws(',', {cells}), {_sql_str(FOOTER_REASON)} FROM _raw
                             WHERE _line BETWEEN {start} AND {last} AND NOT ({blank})""").fetchall()[0][0]
        con.execute(f"DELETE FROM _raw WHERE _line BETWEEN {start} AND {last}")
    return n


def label_sheet_rows(con) -> None:
    """The quarantine rows of a workbook read from several sheets: the reason starts with the sheet
    and its row ("sheet 'Year 2010-2011', row 17: ..."); line_number stays the workbook-wide line."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_sheet_lines'"
                       ).fetchall()[0][0]:
        return
    con.execute(f"""UPDATE {QUARANTINE_STAGING} q
        SET reason = 'sheet ''' || s.sheet || ''', row ' || (q.line_number - s.first_line + 2 + s.header_row) || ': ' || q.reason
        FROM _sheet_lines s
        WHERE q.source_file = s.source_file AND q.line_number BETWEEN s.first_line AND s.last_line""")
    con.execute("DROP TABLE _sheet_lines")


def _rename(con, table: str, columns: list[str], wanted: list[str], rename: dict[str, str]) -> dict[str, str]:
    """Rename the user's columns in `table` to revintel's (_rename_map)."""
    out = _rename_map(columns, wanted, rename)
    for theirs, ours in out.items():
        con.execute(f"ALTER TABLE {table} RENAME COLUMN {quote_ident(theirs)} TO {quote_ident(ours)}")
    return out


def _rename_map(columns: list[str], wanted: list[str], rename: dict[str, str]) -> dict[str, str]:
    """The user's column -> revintel's: mapping first, then spelling variants."""
    out: dict[str, str] = {}
    present = set(columns)
    for ours, theirs in rename.items():
        if theirs in present and theirs != ours and theirs not in out:
            if ours in present and ours not in out:  # the file has a column of that name: the mapping's
                out[ours] = f"{ours} (not read: {theirs} is)"  # wins ('Amount (converted)' beside 'Amount'
            out[theirs] = ours                                    # was ignored, the amounts read as given)
    by_key: dict[str, list[str]] = {}
    for c in columns:
        by_key.setdefault(norm(c), []).append(c)
    for ours in wanted:
        if ours in present or ours in out.values():
            continue
        for key in [norm(ours), *(norm(x) for x in SYNONYMS.get(ours, []))]:  # spelling, then synonyms
            cands = [c for c in by_key.get(key, []) if c not in out and c not in wanted]
            if len(cands) == 1:
                out[cands[0]] = ours
                break
    return out
