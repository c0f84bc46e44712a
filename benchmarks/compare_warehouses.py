"""Are two analyst files row-identical? `python -m benchmarks.compare_warehouses A.duckdb B.duckdb`

For every table in either file: present in both, same columns, and `EXCEPT ALL` empty both ways
(duplicates count). Columns that record *when* or *which run* (loaded_at, run ids, MLflow run
ids and artifact paths) differ between any two runs and are left out, and so is meta.table_log
(the write log). Used to show a refactoring changed no analyst-visible row.
`--ignore=deal_type,lead_source` leaves more columns out, also where only one file has them.
"""

from __future__ import annotations

import sys

import duckdb

# the source files' times are in meta.source.fingerprint: two runs on copies of one export differ there
VOLATILE = {"loaded_at", "run_id", "written_at", "mlflow_run_id", "model_uri", "created_at", "published_at", "fingerprint"}
SKIP = {"meta.table_log"}


def tables(con) -> dict[str, list[str]]:
    rows = con.execute("SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns() "
                       "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index").fetchall()
    out: dict[str, list[str]] = {}
    for t, c in rows:
        out.setdefault(t, []).append(c)
    return out


def compare(a: str, b: str, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Problems found (empty: identical); `ignore`: more columns to leave out, e.g. `source_path`
    when the two runs read their own copies of the same files."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY); ATTACH '{b}' AS b (READ_ONLY)")
    con.execute("USE a")
    ta = tables(con)
    con.execute("USE b")
    tb = tables(con)
    problems, same = [], 0
    for t in sorted(set(ta) | set(tb)):
        if t in SKIP:
            continue
        if t not in ta or t not in tb:
            problems.append(f"{t}: only in {'A' if t in ta else 'B'}")
            continue
        if (set(ta[t]) ^ set(tb[t])) - ignore - VOLATILE or [c for c in ta[t] if c in tb[t]] != [c for c in tb[t] if c in ta[t]]:
            problems.append(f"{t}: columns differ: {sorted(set(ta[t]) ^ set(tb[t]))}")
            continue
        cols = ", ".join(f'"{c}"' for c in ta[t] if c in tb[t] and c not in VOLATILE | ignore)
        s, n = t.split(".")
        q = f'SELECT {cols} FROM a."{s}"."{n}" EXCEPT ALL SELECT {cols} FROM b."{s}"."{n}"'
        q2 = f'SELECT {cols} FROM b."{s}"."{n}" EXCEPT ALL SELECT {cols} FROM a."{s}"."{n}"'
        d1 = con.execute(f"SELECT count(*) FROM ({q})").fetchone()[0]
        d2 = con.execute(f"SELECT count(*) FROM ({q2})").fetchone()[0]
        rows = con.execute(f'SELECT count(*) FROM a."{s}"."{n}"').fetchone()[0]
        if d1 or d2:
            problems.append(f"{t}: {d1} rows only in A, {d2} only in B (of {rows})")
        else:
            same += 1
            print(f"  identical  {t:<45} {rows:>10,} rows")
    print(f"{same} tables identical, {len(problems)} differ")
    for p in problems:
        print("  DIFFERS", p)
    return problems


if __name__ == "__main__":
    # --ignore a,b: columns left out, also when only one file has them (a change that added columns)
    args = [a for a in sys.argv[1:] if not a.startswith("--ignore=")]
    extra = frozenset(c for a in sys.argv[1:] if a.startswith("--ignore=") for c in a.split("=", 1)[1].split(","))
    sys.exit(1 if compare(args[0], args[1], extra) else 0)
