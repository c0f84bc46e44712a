"""Row-level rules: a row that breaks one moves from its staging table to the quarantine.

Rules run in order and each row is caught by the first rule it breaks, so the count per
reason is the number of rows that rule alone rejected. Nothing is deleted without a
quarantine row, which is what lets `raw rows = star rows + quarantine` reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from revintel_assets.defs.ingest.expr import quote_ident

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


def csv_field(expr: str) -> str:
    """A text field as a CSV line writes it: in quotes (its quotes doubled) when it holds a comma,
    a quote or a line break, so a quarantined row splits back into the fields it had."""
    return (f"(CASE WHEN regexp_matches({expr}, '[,\"\\n\\r]') "
            f"THEN '\"' || replace({expr}, '\"', '\"\"') || '\"' ELSE {expr} END)")


def raw_row_sql(columns: list[str], alias: str = "") -> str:
    """The row as the user would recognise it: its fields as a CSV line (`alias`: of the table)."""
    parts = ", ".join(csv_field(f"coalesce({alias + '.' if alias else ''}{quote_ident(c)}, '')") for c in columns)
    return f"concat_ws(',', {parts})"


def apply_rules(con: duckdb.DuckDBPyConnection, table: str, source_file: str,
                raw_columns: list[str], rules: list[Rule], raw_sql: str | None = None) -> dict[str, int]:
    """Move rows breaking a rule to the quarantine (first rule broken wins, one pass over the
    table); returns rows caught per rule name. `raw_sql`: the raw row when the table does not
    hold every column as text (default raw_row_sql(raw_columns))."""
    ensure_quarantine_staging(con)
    if not rules:
        return {}
    raw = raw_sql or raw_row_sql(raw_columns)
    first = "CASE " + " ".join(f"WHEN coalesce({r.condition}, false) THEN {i}"
                               for i, r in enumerate(rules)) + " END"
    reason = "CASE _rule " + " ".join(f"WHEN {i} THEN {r.reason}" for i, r in enumerate(rules)) + " END"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _hits AS SELECT * FROM (SELECT *, {first} AS _rule "
                f"FROM {table}) WHERE _rule IS NOT NULL")
    con.execute(f"INSERT INTO {QUARANTINE_STAGING} SELECT ?, _line, {raw}, "
                f"coalesce(({reason})::VARCHAR, ([{', '.join(repr(r.name) for r in rules)}])[_rule + 1]) FROM _hits",
                [source_file])
    counts = con.execute("SELECT _rule, count(*) FROM _hits GROUP BY 1").fetchall()
    if counts:
        con.execute(f"DELETE FROM {table} WHERE _line IN (SELECT _line FROM _hits)")
    con.execute("DROP TABLE _hits")
    return {rules[i].name: n for i, n in sorted(counts)}


def dedupe(con: duckdb.DuckDBPyConnection, table: str, key: str, file: str, columns: list[str],
           what: str, conflicts: bool = True) -> dict[str, int]:
    """Exact duplicates are merged; a second row with the same key but other contents is
    quarantined. Both go to the quarantine with a reason, so the raw count still reconciles.
    `conflicts=False` when the key is the whole row (every repeat is a duplicate)."""
    repeated = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {key} HAVING count(*) > 1)").fetchall()[0][0]
    if not repeated:  # the usual file: a hash aggregate says so, no sort of every row by key
        return {}
    same = "true" if not conflicts else "raw_row = first_raw"
    # the repeats by their key alone; raw rows built for them and their first rows only
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _dups AS
        SELECT d._line, d.first_line, d.k, {raw_row_sql(columns, 't')} AS raw_row, {raw_row_sql(columns, 'f')} AS first_raw
        FROM (SELECT _line, first_value(_line) OVER w AS first_line, ({key})::VARCHAR AS k FROM {table}
              WINDOW w AS (PARTITION BY {key} ORDER BY _line) QUALIFY row_number() OVER w > 1) d
        JOIN {table} t ON t._line = d._line JOIN {table} f ON f._line = d.first_line""")
    rows = con.execute(f"""SELECT count(*) FILTER (WHERE {same}),
                           count(*) FILTER (WHERE NOT ({same})) FROM _dups""").fetchall()[0]
    con.execute(f"""INSERT INTO {QUARANTINE_STAGING} SELECT ?, _line, raw_row,
        CASE WHEN {same} THEN 'exact duplicate of line ' || first_line || ' (merged)'
             ELSE ? || ' already on line ' || first_line || ' with other contents'
                  -- ids Excel shows in scientific notation (1.52837E+11) were rounded when the sheet was saved
                  || CASE WHEN regexp_full_match(trim(k), '[0-9]([.][0-9]+)?[eE][+]?[0-9]+')
                     THEN ' (the id is in scientific notation: Excel rounded the ids when it saved the file; '
                          || 'export them as text)' ELSE '' END END FROM _dups ORDER BY _line""",
                [file, what])
    con.execute(f"DELETE FROM {table} WHERE _line IN (SELECT _line FROM _dups)")
    con.execute("DROP TABLE _dups")
    out = {}
    if rows[0]:
        out["exact_duplicate_merged"] = rows[0]
    if rows[1]:
        out["conflicting_duplicate"] = rows[1]
    return out


def latest_date(con: duckdb.DuckDBPyConnection, table: str, exprs: list[str]) -> str | None:
    """The file's own export date for the 'impossible date' rule: its latest date that is not in
    the future of the machine reading it (a bound for sanity checks, never an as-of date)."""
    union = " UNION ALL ".join(f"SELECT {e} AS d FROM {table}" for e in exprs)
    row = con.execute(f"SELECT max(d) FROM ({union}) WHERE d <= current_date").fetchall()[0][0]
    return row.isoformat() if row else None
