"""Sales log, wide layout (CONTRACT §2.3) → canonical staging.transactions.

One row per order; per SKU a gross-profit column `<SKU>` and a quantity column `<SKU>_Qty`.
The SKU → division map is data (`sku_map.csv`), never code. Canonical output, shared with the
tidy-transactions importer:
  staging.transactions(customer_id, customer_name, order_date, product_id, division, quantity,
                       amount, rep_name, region, source, source_file, _line)
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.ingest.errors import SourceError
from revintel_assets.ingest.parse_sql import bad_date, bad_money, blank, col, date_sql, money_sql
from revintel_assets.ingest.quarantine import Rule, apply_rules
from revintel_assets.ingest.raw_csv import load_raw_csv, read_header

FIXED = ["CustomerId", "Customer", "Rec Date", "Division", "Rep", "Branch"]


def looks_like_sales_log(header: list[str]) -> bool:
    return {"CustomerId", "Rec Date"} <= set(header)


def find_sales_log(folder: Path) -> Path | None:
    for path in sorted(folder.glob("*.csv")):
        if looks_like_sales_log(read_header(path)):
            return path
    return None


def sku_columns(columns: list[str]) -> list[str]:
    present = set(columns)
    return [c for c in columns if c not in FIXED and not c.endswith("_Qty") and f"{c}_Qty" in present]


def import_sales_log(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, dict]:
    raw = load_raw_csv(con, path, "staging.raw_sales_log", FIXED, "wide sales log")
    skus = sku_columns(raw.columns)
    if not skus:
        raise SourceError(path, 1, "per-SKU column pairs '<SKU>' and '<SKU>_Qty'",
                          "found no such pair in the header")
    report = {path.name: {"raw_rows": raw.rows + raw.rejected, "rejected_unreadable": raw.rejected}}

    any_bad_cell = " OR ".join(f"{bad_money(s)} OR {bad_money(s + '_Qty')}" for s in skus)
    first_bad = "coalesce(" + ", ".join(
        f"CASE WHEN {bad_money(s)} OR {bad_money(s + '_Qty')} THEN '{s}' END" for s in skus) + ")"
    no_lines = " AND ".join(blank(s) for s in skus)
    report[path.name]["quarantined"] = apply_rules(con, "staging.raw_sales_log", path.name, raw.columns, [
        Rule("missing_customer_id", blank("CustomerId"), "'CustomerId is empty'"),
        Rule("bad_order_date", f"{blank('Rec Date')} OR {bad_date('Rec Date')}",
             f"'Rec Date ''' || coalesce({col('Rec Date')}, '') || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("bad_sku_cell", any_bad_cell, f"'SKU column ' || {first_bad} || ' is not a number'"),
        Rule("order_without_lines", no_lines, "'order has no SKU line (every SKU column is empty)'"),
    ])

    cells = ", ".join(
        f"{{'amount': {money_sql(s)}, 'qty': {money_sql(s + '_Qty')}}} AS {col(s)}" for s in skus)
    con.execute(f"""CREATE OR REPLACE TABLE staging.transactions AS
        WITH orders AS (
            SELECT trim("CustomerId") AS customer_id, nullif(trim("Customer"), '') AS customer_name,
                   {date_sql('Rec Date')} AS order_date, nullif(trim("Division"), '') AS order_division,
                   nullif(trim("Rep"), '') AS rep_name, nullif(trim("Branch"), '') AS region,
                   _line, {cells}
            FROM staging.raw_sales_log),
        lines AS (UNPIVOT orders ON {", ".join(col(s) for s in skus)} INTO NAME sku VALUE cell)
        SELECT l.customer_id, l.customer_name, l.order_date, l.sku AS product_id,
               coalesce(m.division, l.order_division, 'Unassigned') AS division,
               coalesce(l.cell.qty, 1) AS quantity, l.cell.amount AS amount,
               l.rep_name, l.region, 'sales_log' AS source, '{path.name}' AS source_file, l._line
        FROM lines l LEFT JOIN staging.sku_map m ON m.sku = l.sku
        WHERE l.cell.amount IS NOT NULL OR l.cell.qty IS NOT NULL
        ORDER BY l._line, l.sku""")
    return report
