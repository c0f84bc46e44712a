"""Load one raw CSV export into an all-VARCHAR staging table, keeping every row accounted for.

DuckDB's parallel CSV reader does the parsing. Rows it cannot parse (too few or too many fields,
invalid UTF-8) go to its rejects table with their line number; we turn those into quarantine
rows. Accepted rows get their physical line number back by elimination: DuckDB preserves file
order, so the k-th accepted row sits on the k-th data line that was not rejected. That is exact
for files without quoted multi-line fields, which is what CRM and ERP exports are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from revintel_assets.ingest.errors import SourceError
from revintel_assets.ingest.quarantine import QUARANTINE_STAGING, ensure_quarantine_staging


@dataclass(frozen=True)
class RawLoad:
    file: str
    table: str
    columns: list[str]
    rows: int
    rejected: int


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_header(path: Path) -> list[str]:
    """First line of a CSV as stripped column names (BOM removed); for format detection."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 20)
    except OSError as exc:
        raise SourceError(path, 1, "a readable CSV file", str(exc)) from exc
    text = first.decode("utf-8-sig", errors="replace").strip("\r\n")
    return [c.strip().strip('"').strip() for c in text.split(",")]


def load_raw_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, required: list[str],
                 layout: str) -> RawLoad:
    """Create `table` (all VARCHAR, columns as in the file) plus `_line`; reject rows quarantined.

    Raises SourceError when the file cannot be read at all or lacks a required column.
    """
    src = _sql_str(str(path))
    rej, scan = f"{table.replace('.', '_')}_rejects", f"{table.replace('.', '_')}_scans"
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _raw AS SELECT *, row_number() OVER () AS _ord "
            f"FROM read_csv({src}, all_varchar=true, header=true, store_rejects=true, "
            f"rejects_table='{rej}', rejects_scan='{scan}', sample_size=-1)"
        )
    except duckdb.Error as exc:
        raise SourceError(path, 1, f"a comma-separated text file with a header row ({layout} layout)",
                          str(exc).splitlines()[0]) from exc

    columns = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE _raw)").fetchall()]
    columns = [c for c in columns if c != "_ord"]
    missing = [c for c in required if c not in columns]
    if missing:
        raise SourceError(
            path, 1, f"the {layout} header with columns {', '.join(required)}",
            f"missing column(s) {', '.join(missing)}; found {', '.join(columns)}. "
            "A mapping file (see README, 'Bring your own export') can rename columns.")

    rejected = con.execute(f"SELECT count(*) FROM {rej}").fetchall()[0][0]
    accepted = con.execute("SELECT count(*) FROM _raw").fetchall()[0][0]
    ensure_quarantine_staging(con)
    con.execute(
        f"INSERT INTO {QUARANTINE_STAGING} SELECT {_sql_str(path.name)}, line::BIGINT, csv_line, "
        f"'unreadable row: ' || error_type || ' (' || error_message || ')' FROM {rej}")
    # Physical line of the k-th accepted row: the k-th data line (header is line 1) not rejected.
    con.execute(
        f"""CREATE OR REPLACE TABLE {table} AS
        WITH lines AS (
            SELECT g AS _line, row_number() OVER (ORDER BY g) AS _ord
            FROM generate_series(2, {accepted + rejected + 1}) t(g)
            WHERE g NOT IN (SELECT line FROM {rej}))
        SELECT r.* EXCLUDE (_ord), l._line FROM _raw r JOIN lines l USING (_ord) ORDER BY l._line""")
    con.execute(f"DROP TABLE IF EXISTS {rej}; DROP TABLE IF EXISTS {scan}; DROP TABLE _raw")
    return RawLoad(path.name, table, columns, accepted, rejected)
