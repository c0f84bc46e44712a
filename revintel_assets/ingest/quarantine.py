"""Row-level rules: a row that breaks one moves from its staging table to the quarantine.

Rules run in order and each row is caught by the first rule it breaks, so the count per
reason is the number of rows that rule alone rejected. Nothing is deleted without a
quarantine row, which is what lets `raw rows = star rows + quarantine` reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

QUARANTINE_STAGING = "staging.quarantine_new"


@dataclass(frozen=True)
class Rule:
    name: str  # stable label, e.g. "bad_close_date"; counts are reported per name
    condition: str  # SQL over the staging table's columns; TRUE means quarantine
    reason: str  # SQL expression giving the human reason (may quote the bad value)


def ensure_quarantine_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {QUARANTINE_STAGING} "
        "(source_file VARCHAR, line_number BIGINT, raw_row VARCHAR, reason VARCHAR)")


def raw_row_sql(columns: list[str]) -> str:
    """The row as the user would recognise it: its fields joined by commas."""
    parts = ", ".join(f"coalesce(\"{c}\", '')" for c in columns)
    return f"concat_ws(',', {parts})"


def apply_rules(con: duckdb.DuckDBPyConnection, table: str, source_file: str,
                raw_columns: list[str], rules: list[Rule]) -> dict[str, int]:
    """Move rows breaking each rule to the quarantine; returns rows caught per rule name."""
    ensure_quarantine_staging(con)
    caught: dict[str, int] = {}
    raw = raw_row_sql(raw_columns)
    for rule in rules:
        n = con.execute(
            f"INSERT INTO {QUARANTINE_STAGING} SELECT ?, _line, {raw}, {rule.reason} "
            f"FROM {table} WHERE coalesce({rule.condition}, false)", [source_file]).fetchall()[0][0]
        if n:
            con.execute(f"DELETE FROM {table} WHERE coalesce({rule.condition}, false)")
            caught[rule.name] = n
    return caught
