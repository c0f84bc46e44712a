"""How the pages print money, probabilities, features and names: once, so every page agrees.

Currency: `meta.source.currency` when the loaded source names one, else the `currency` setting
(REVINTEL_CURRENCY, default USD). Amounts always carry it: "$85,620", "CHF 85,620".
"""

from __future__ import annotations

import math
import re
import polars as pl
import streamlit as st

from dashboards import db
from revintel_resources.glossary import feature_name
from revintel_resources.settings import settings

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def currency() -> str:
    """ISO code (or symbol) of the amounts: the source's, else the setting."""
    if db.table_exists("meta.source") and "currency" in set(
            db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'meta' "
                     "AND table_name = 'source'")["column_name"].to_list()):
        found = db.scalar("SELECT max(currency) FROM meta.source")
        # a code or a symbol only (a warehouse imported before the import checked it may hold any text)
        if found and re.fullmatch(r"[A-Z]{3}|[^\w\s\[\]()!<>`*_\\]", str(found).strip().upper()):
            return str(found).strip().upper()
    return settings().currency.strip() or "USD"


def _affix(code: str) -> tuple[str, str]:
    symbol = SYMBOLS.get(code.upper())
    if symbol:
        return symbol, ""
    if len(code) == 1:  # already a symbol: €
        return code, ""
    return f"{code} ", ""


def as_text(df: pl.DataFrame, formats: dict) -> pl.DataFrame:
    """The columns of `formats` ({column: value -> str}) as text, "—" where missing: st.dataframe
    prints a missing value as "None" (a deal's unknown amount, a forecast model's AUC). For tables
    where a blank means something (numbers there sort as text)."""
    return df.with_columns(pl.col(c).map_elements(f, return_dtype=pl.String, skip_nulls=True).fill_null("—")
                           for c, f in formats.items() if c in df.columns)


def money(x: float | None, code: str | None = None) -> str:
    """85620 -> "$85,620"; None (or NaN) -> "—"."""
    if x is None or not math.isfinite(x):
        return "—"
    x = float(x)  # a DECIMAL sum comes as Decimal, which does not add a float
    pre, post = _affix(code or currency())
    whole = int(abs(x) + 0.5)  # half up, as the tables' cells (money_column's printf) round: 126,438.50 -> 126,439
    sign = "-" if x < 0 and whole else ""
    return f"{sign}{pre}{whole:,}{post}"


def money_short(x: float | None, code: str | None = None) -> str:
    """1_234_567 -> "$1.2M", 45_000 -> "$45k", 2.3e9 -> "$2.3B"; None (or NaN) -> "—". A unit is chosen by the
    rounded figure: 999,600 is "$1.0M", not "$1,000k" (a re-check), and 1.2e12 is "$1,200.0B", not millions."""
    if x is None or not math.isfinite(x):
        return "—"
    x = float(x)  # a Decimal, as in money()
    pre, post = _affix(code or currency())
    sign, v = ("-" if x < 0 else ""), abs(x)
    body = (f"{v / 1e9:,.1f}B" if v >= 999.95e6 else f"{v / 1e6:,.1f}M" if v >= 999.5e3
            else f"{v / 1e3:,.0f}k" if v >= 1e4 else f"{v:,.0f}")
    return f"{sign}{pre}{body}{post}"


def money_card(x: float | None, code: str | None = None) -> str:
    """An amount in a metric card: whole units below ten million, short from there ("$471.3M": a card
    cut "$471,322,644" to "$471,322,…" at scale 10); the exact figure goes in the card's help."""
    if x is None or not math.isfinite(x) or abs(float(x)) < 1e7:
        return money(x, code)
    return money_short(x, code)


def money_axis(code: str | None = None) -> str:
    """A Vega labelExpr for money axes: $950, $12k, $3.4M."""
    pre, post = _affix(code or currency())
    pre, post = pre.replace("'", ""), post.replace("'", "")
    return (f"(datum.value < 0 ? '-' : '') + '{pre}' + (abs(datum.value) >= 1e6 ? format(abs(datum.value) / 1e6, ',.1~f')"
            f" + 'M' : abs(datum.value) >= 1e3 ? format(abs(datum.value) / 1e3, ',.1~f') + 'k' "
            f": format(abs(datum.value), ',~f')) + '{post}'")


def money_column(label: str, code: str | None = None, **kw):
    """A NumberColumn for money in whole units, its currency in the cells ("$72,800", "CHF 72,800") and in
    the header. A printf format, not Streamlit's "dollar" with step=1: a step truncates the cell to it
    (126,438.69 showed as 126,438 beside a sentence's 126,439); printf rounds (a negative reads "$-1,500")."""
    code = code or currency()
    pre, post = _affix(code)
    return st.column_config.NumberColumn(f"{label} ({code})", format=f"{pre}%,.0f{post}", **kw)


def pct(p: float | None) -> str:
    """A share or probability for people: 42%; <1% / >99% where rounding would print a 0% / 100% that
    is not (exactly 0 and 1 stay 0% and 100%)."""
    if p is None:
        return "—"
    r = round(p * 100)
    return ("<1%" if r < 1 and p > 0 else ">99%" if r > 99 and p < 1 else f"{r}%")


def pct_expr(col: str) -> pl.Expr:
    """`pct` as a polars expression (a text column)."""
    p = pl.col(col)
    r = (p * 100).round(0)
    return (pl.when(p.is_null() | ~p.is_finite()).then(pl.lit("—")).when((r < 1) & (p > 0)).then(pl.lit("<1%"))
            .when((r > 99) & (p < 1)).then(pl.lit(">99%")).otherwise(r.cast(pl.Int64).cast(pl.String) + "%"))


def feature(name: str) -> str:
    """A model feature in words (revintel_resources/glossary.py), capitalised."""
    words = feature_name(name)
    return words[:1].upper() + words[1:]


def names(table: str, key: str, name_col: str) -> dict[str, str]:
    """id -> name from a dimension; empty when the warehouse has no such table or column."""
    if not db.table_exists(table):
        return {}
    cols = set(db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
                        "table_name = ?", table.split(".", 1))["column_name"].to_list())
    if not {key, name_col} <= cols:
        return {}
    df = db.query(f"SELECT {key}::VARCHAR AS k, {name_col}::VARCHAR AS v FROM {table} WHERE {name_col} IS NOT NULL")
    return dict(zip(df["k"].to_list(), df["v"].to_list()))


NO_ACCOUNT = "(no account)"  # a deal without an account (MavenTech's prospecting deals), on every page


def with_names(df: pl.DataFrame, *, account: str | None = None, rep: str | None = None,
               product: str | None = None) -> pl.DataFrame:
    """Adds `account`, `rep`, `product` (names, falling back to the id, then to "(no account)" /
    "(no rep)" / "(no product)" where the id is missing: never a blank or "None")."""
    for out, col, table, key, name_col in (("account", account, "star.dim_account", "account_id", "account_name"),
                                           ("rep", rep, "star.dim_rep", "rep_id", "rep_name"),
                                           ("product", product, "star.dim_product", "product_id", "product_name")):
        if col and col in df.columns:
            lookup = names(table, key, name_col)
            df = df.with_columns(pl.col(col).cast(pl.String).replace_strict(lookup, default=pl.col(col).cast(pl.String))
                                 .fill_null(NO_ACCOUNT if out == "account" else f"(no {out})").alias(out))
    return df
