"""Materialization metadata every warehouse asset reports: rows, a preview and the schema."""

from __future__ import annotations

import dagster as dg

from revintel_resources.text import md
from revintel_resources.warehouse import Warehouse


def table_metadata(wh: Warehouse, table: str, where: str = "TRUE", params: list | None = None,
                   preview_rows: int = 5, schema: bool = True) -> dict:
    with wh.connect(writes=False) as con:
        n = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchall()[0][0]
        preview = con.sql(f"SELECT * FROM {table} WHERE {where} LIMIT {preview_rows}", params=params).pl()
        cols = con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() "
            "WHERE schema_name = ? AND table_name = ? ORDER BY column_index", table.split(".")).fetchall() \
            if schema else []
    return {
        "dagster/row_count": dg.MetadataValue.int(n),
        **({"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t, description=d) for c, t, d in cols])}
           if schema else {}),
        "table": dg.MetadataValue.text(table),
        # text cells escaped: a rep named "[x](http://phish)" or "![x](http://host/x.png)" was a live link
        # and image in the Dagster UI's preview of star.dim_rep (an audit)
        "preview": dg.MetadataValue.md(_escaped(preview).to_pandas().to_markdown(index=False) if n else "(empty)"),
    }


def _escaped(frame):
    import polars as pl

    return frame.with_columns(pl.col(c).map_elements(md, return_dtype=pl.Utf8) for c, t in frame.schema.items()
                              if t == pl.Utf8)


def range_metadata(wh: Warehouse, table: str, where: str, keys: list) -> dict:
    """table_metadata of a run over `keys` partitions. Dagster copies a range run's metadata into
    the event of every partition, and a column schema is most of an event's cost: ~2 ms to
    serialize, twice per event (event log and asset index), for each of the demo's ~1,600
    partition events. A run of one partition (the nightly, a date run from the UI) reports it."""
    return table_metadata(wh, table, where, keys, schema=len(keys) <= 1)


def family_rows(wh: Warehouse, table: str, family: str) -> int:
    """Rows of one model family in a shared validation table (each family's asset owns its rows)."""
    if not wh.table_exists(table):
        return 0
    return int(wh.query(f"SELECT count(*) AS n FROM {table} WHERE model_family = ?", [family])["n"][0])
