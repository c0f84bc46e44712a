"""Read access to the published analyst file for the Streamlit pages.

Every query opens ``paths.analyst_db_path()`` read-only, runs, and closes the connection at
once, so the dashboard never holds the file open while a run publishes a new one (docs/CONTRACT.md §3,
§4). Results are cached with ``st.cache_data``; the cache key contains the file's identity
(mtime, size, inode), so a newly published file is picked up on the next rerun.

Pages use::

    from dashboards import db

    db.require_data()                                  # "no data yet" + stop when no file
    db.require_tables("scores.deal_scores")            # friendly stop when a table is missing
    df = db.query("SELECT * FROM star.dim_account WHERE country = ?", ["DE"])  # polars
    if db.table_exists("meta.table_log"): ...

``NoDataYet`` / ``MissingTables`` raised from ``query`` inside a page are also turned into the
same friendly messages by ``app.py``, so a page can never show a traceback for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import streamlit as st

from revintel_resources import paths
from revintel_resources.publish import PLACEHOLDER, connect_published

CACHE_TTL_SECONDS = 300
NO_DATA_MESSAGE = (
    "**No data yet** — the analyst warehouse has not been published. "
    "Run `revintel demo` (or `revintel run --source DIR`) and reload this page."
)


class NoDataYet(RuntimeError):
    """The published analyst file does not exist (yet)."""


class MissingTables(RuntimeError):
    """Tables a page needs are not in the published file (yet)."""

    def __init__(self, tables: Sequence[str]):
        self.tables = list(tables)
        super().__init__("missing tables: " + ", ".join(self.tables))


def db_path() -> Path:
    return paths.analyst_db_path()


def _file_version(path: Path) -> tuple[int, int, int] | None:
    """What identifies one published version of the file; None when it does not exist."""
    try:
        st_ = path.stat()
    except FileNotFoundError:
        return None
    return (st_.st_mtime_ns, st_.st_size, st_.st_ino)


def data_version() -> tuple[int, int, int] | None:
    return _file_version(db_path())


def has_data() -> bool:
    return data_version() is not None


def published_at() -> float | None:
    """Modification time (epoch seconds) of the published file, or None."""
    v = data_version()
    return None if v is None else v[0] / 1e9


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    # A publish swaps the file in; connect_published reconnects when a connect straddled the swap.
    try:
        return connect_published(path)
    except FileNotFoundError as exc:
        raise NoDataYet(str(path)) from exc


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False, max_entries=512)
def _cached_query(
    path: str, version: tuple[int, int, int], sql: str, params: tuple[Any, ...] | None
) -> pl.DataFrame:
    del version  # only part of the cache key
    con = _connect(Path(path))
    try:
        rel = con.sql(sql, params=list(params) if params is not None else None)
        return rel.pl() if rel is not None else pl.DataFrame()
    finally:
        con.close()


def query(sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run ``sql`` (``?`` placeholders bound from ``params``) on the published file; a polars
    frame. Raises ``NoDataYet`` when there is no file. Use ``.to_pandas()`` where needed."""
    path = db_path()
    version = _file_version(path)
    if version is None:
        raise NoDataYet(str(path))
    return _cached_query(str(path), version, sql, tuple(params) if params is not None else None)


def scalar(sql: str, params: Sequence[Any] | None = None) -> Any:
    df = query(sql, params)
    return None if df.is_empty() else df.item(0, 0)


def list_tables() -> pl.DataFrame:
    """All base tables and views of the file: columns ``schema``, ``name``, ``kind`` (``table``,
    ``view``, or ``placeholder``: the empty view standing in for a contract table that no asset has
    written, Warehouse.ensure_placeholders; the pages treat it as missing and say why)."""
    return query(
        """
        SELECT schema_name AS schema, table_name AS name, 'table' AS kind
        FROM duckdb_tables() WHERE database_name = current_database()
        UNION ALL
        SELECT schema_name, view_name,
               CASE WHEN starts_with(coalesce(comment, ''), ?) THEN 'placeholder' ELSE 'view' END
        FROM duckdb_views() WHERE database_name = current_database() AND NOT internal
        ORDER BY 1, 2
        """, [PLACEHOLDER]
    )


def _split(name: str) -> tuple[str, str]:
    schema, _, table = name.rpartition(".")
    return (schema or "main", table)


def table_exists(name: str) -> bool:
    """``name`` is ``schema.table`` (or a bare table in ``main``). False when there is no file."""
    if not has_data():
        return False
    schema, table = _split(name)
    tables = list_tables().filter(pl.col("kind") != "placeholder")
    return not tables.filter((pl.col("schema") == schema) & (pl.col("name") == table)).is_empty()


def missing_tables(names: Iterable[str]) -> list[str]:
    if not has_data():
        return list(names)
    present = {f"{r['schema']}.{r['name']}" for r in list_tables().iter_rows(named=True) if r["kind"] != "placeholder"}
    return [n for n in names if "{}.{}".format(*_split(n)) not in present]


def show_no_data() -> None:
    st.info(NO_DATA_MESSAGE, icon=":material/database:")


CRM_LAYOUTS = ("maventech", "salesforce", "hubspot")  # source formats with deals (ingest/source.py)
CUSTOMER_TABLES = ("scores.icp_scores", "scores.whitespace", "features.customer_division", "validation.icp_models",
                   "validation.holdout_gains", "validation.model_metrics")


def missing_reason(source_format: str | None, tables: Sequence[str]) -> str:
    """Why a page's tables are missing, in words: a source without a CRM export (transactions only)
    can never build the deal, pipeline and forecast tables, and running the demo does not help."""
    names = ", ".join(f"`{t}`" for t in tables)
    crm = source_format is not None and any(c in source_format.split("+") for c in CRM_LAYOUTS)
    if source_format is not None and not crm and not all(t in CUSTOMER_TABLES for t in tables):
        return (f"**Not built for this source** — this page needs {names}, built from a CRM export's deals; the "
                f"loaded source (`{source_format}`) holds transactions only. Its customers are on the ICP and "
                "Whitespace pages; add a CRM export to the source folder for the deal pages.")
    return (f"**Not built yet** — this page needs {names}, which the published warehouse does not have. Run "
            "`revintel demo` (or materialize the assets that build them) and reload this page.")


def show_missing_tables(tables: Sequence[str]) -> None:
    fmt = scalar("SELECT max(source_format) FROM meta.source") if table_exists("meta.source") else None
    st.info(missing_reason(fmt, tables), icon=":material/hourglass_empty:")


def require_data() -> None:
    """Show the "no data yet" message and stop the page when the file does not exist."""
    if not has_data():
        show_no_data()
        st.stop()


def require_tables(*names: str) -> None:
    """Stop the page with a friendly message unless the file has all ``names``."""
    require_data()
    missing = missing_tables(names)
    if missing:
        show_missing_tables(missing)
        st.stop()
