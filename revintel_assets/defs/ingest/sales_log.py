"""Sales log, wide layout (docs/CONTRACT.md §2.3) → canonical staging.transactions.

One row per order; per SKU a gross-profit column `<SKU>` and a quantity column `<SKU>_Qty`.
The SKU → division map is data (`sku_map.csv`), never code. Canonical output, shared with the
tidy-transactions importer:
  staging.transactions(customer_id, customer_name, order_date, product_id, division, quantity,
                       amount, rep_name, region, source, source_file, _line)
Gross profit may be negative (a loss-making order), so negative cells are kept.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.mapping import Mapping
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import Dialect, blank, col, lit, money_expr
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, latest_date
from revintel_assets.defs.ingest.raw_csv import load_raw_csv, norm, read_header

FIXED = ["CustomerId", "Customer", "Rec Date", "Division", "Rep", "Branch"]


def looks_like_sales_log(header: list[str]) -> bool:
    return {"customerid", "recdate"} <= {norm(c) for c in header}


def find_sales_log(folder: Path, force: bool = False) -> Path | None:
    paths = sorted(p for p in [*folder.glob("*.csv"), *folder.glob("*.xlsx")]
                   if not p.name.startswith(("sku_map", "sku_divisions", "~$")))
    for path in paths:
        if looks_like_sales_log(read_header(path)):
            return path
    return paths[0] if force and paths else None


def sku_columns(columns: list[str]) -> list[str]:
    present = set(columns)
    return [c for c in columns if c not in FIXED and not c.endswith("_Qty") and f"{c}_Qty" in present]


def import_sales_log(con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping | None = None) -> dict[str, dict]:
    mapping = mapping or Mapping()
    d = Dialect(mapping.date_formats, mapping.decimal, mapping.stages)
    raw = load_raw_csv(con, path, "temp.raw_sales_log", FIXED, "wide sales log",
                       rename=mapping.columns_for("sales_log.csv"), delimiter=mapping.delimiter,
                       encoding=mapping.encoding, canonical_file="sales_log.csv")
    skus = sku_columns(raw.columns)
    if not skus:
        raise SourceError(path, 1, "per-SKU column pairs '<SKU>' and '<SKU>_Qty'",
                          "found no such pair in the header")

    # The SKU cells, long: one row per non-empty cell (UNPIVOT leaves NULLs out; a wide log is
    # mostly empty, 60 M cells at scale 10 for 4.6 M values), each parsed once. The cell rules
    # and the order lines both read this instead of 132 expressions per order.
    amounts = ", ".join(col(s) for s in skus)
    qtys = ", ".join(f"{col(s + '_Qty')} AS {col(s)}" for s in skus)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cells AS
        SELECT _line, sku, is_qty, v, {money_expr('v', d.decimal)} AS m, nullif(trim(v), '') IS NULL AS empty
        FROM (SELECT _line, sku, false AS is_qty, v FROM (
                  UNPIVOT (SELECT _line, {amounts} FROM temp.raw_sales_log) ON {amounts} INTO NAME sku VALUE v)
              UNION ALL
              SELECT _line, sku, true, v FROM (
                  UNPIVOT (SELECT _line, {qtys} FROM temp.raw_sales_log) ON {amounts} INTO NAME sku VALUE v))""")
    # per order: the first SKU column (in file order) holding an amount or quantity that is not a number
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _bad_cells AS
        SELECT _line AS _bad_line, arg_min(sku, list_position([{", ".join(lit(s) for s in skus)}], sku)) AS _bad_sku
        FROM _cells WHERE NOT empty AND m IS NULL GROUP BY _line""")
    latest = latest_date(con, "temp.raw_sales_log", [d.date("Rec Date")])
    rec = col("Rec Date")
    caught = apply_rules(con, "temp.raw_sales_log", path.name, raw.columns, [
        Rule("missing_customer_id", blank("CustomerId"), "'CustomerId is empty'"),
        Rule("bad_order_date", f"{blank('Rec Date')} OR {d.bad_date('Rec Date')}",
             f"'Rec Date ''' || coalesce({rec}, '') || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("impossible_date", d.impossible_date("Rec Date", latest),
             f"'impossible Rec Date ' || {rec} || ' (before 1990 or after {latest} + 5 years)'"),
        Rule("bad_sku_cell", "_line IN (SELECT _bad_line FROM _bad_cells)",
             "'SKU column ' || (SELECT _bad_sku FROM _bad_cells WHERE _bad_line = _line) || ' is not a number'"),
        Rule("order_without_lines", "_line NOT IN (SELECT _line FROM _cells WHERE NOT is_qty AND NOT empty)",
             "'order has no SKU line (every SKU column is empty)'"),
    ])
    report = {path.name: file_report(raw, caught)}

    con.execute(f"""INSERT INTO staging.transactions BY NAME
        WITH orders AS (
            SELECT trim("CustomerId") AS customer_id, nullif(trim("Customer"), '') AS customer_name,
                   {d.date('Rec Date')} AS order_date, nullif(trim("Division"), '') AS order_division,
                   nullif(trim("Rep"), '') AS rep_name, nullif(trim("Branch"), '') AS region, _line
            FROM temp.raw_sales_log),
        lines AS (
            SELECT _line, sku, any_value(m) FILTER (WHERE NOT is_qty) AS amount,
                   any_value(m) FILTER (WHERE is_qty) AS qty
            FROM _cells GROUP BY _line, sku)
        SELECT o.customer_id, o.customer_name, o.order_date, l.sku AS product_id,
               coalesce(m.division, o.order_division, 'Unassigned') AS division,
               coalesce(l.qty, 1) AS quantity, l.amount AS amount,
               o.rep_name, o.region, 'sales_log' AS source, {lit(path.name)} AS source_file, o._line
        FROM orders o JOIN lines l USING (_line) LEFT JOIN staging.sku_map m ON m.sku = l.sku
        WHERE l.amount IS NOT NULL OR l.qty IS NOT NULL
        ORDER BY o._line, l.sku""")
    con.execute("DROP TABLE _cells; DROP TABLE _bad_cells")
    return report
