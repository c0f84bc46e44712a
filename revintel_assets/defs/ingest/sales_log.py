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
from revintel_assets.defs.ingest.parse_sql import Dialect, blank, col, lit
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

    any_bad_cell = " OR ".join(f"{d.bad_money(s)} OR {d.bad_money(s + '_Qty')}" for s in skus)
    first_bad = "coalesce(" + ", ".join(
        f"CASE WHEN {d.bad_money(s)} OR {d.bad_money(s + '_Qty')} THEN {lit(s)} END" for s in skus) + ")"
    no_lines = " AND ".join(blank(s) for s in skus)
    latest = latest_date(con, "temp.raw_sales_log", [d.date("Rec Date")])
    rec = col("Rec Date")
    caught = apply_rules(con, "temp.raw_sales_log", path.name, raw.columns, [
        Rule("missing_customer_id", blank("CustomerId"), "'CustomerId is empty'"),
        Rule("bad_order_date", f"{blank('Rec Date')} OR {d.bad_date('Rec Date')}",
             f"'Rec Date ''' || coalesce({rec}, '') || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("impossible_date", d.impossible_date("Rec Date", latest),
             f"'impossible Rec Date ' || {rec} || ' (before 1990 or after {latest} + 5 years)'"),
        Rule("bad_sku_cell", any_bad_cell, f"'SKU column ' || {first_bad} || ' is not a number'"),
        Rule("order_without_lines", no_lines, "'order has no SKU line (every SKU column is empty)'"),
    ])
    report = {path.name: file_report(raw, caught)}

    # a cell pair with neither amount nor quantity is NULL, which UNPIVOT leaves out (a wide log
    # is mostly empty: 60 M cells at scale 10, 2 M of them lines)
    cells = ", ".join(
        f"CASE WHEN {col(s)} IS NOT NULL OR {col(s + '_Qty')} IS NOT NULL THEN "
        f"{{'amount': {d.money(s)}, 'qty': {d.money(s + '_Qty')}}} END AS {col(s)}" for s in skus)
    con.execute(f"""INSERT INTO staging.transactions BY NAME
        WITH orders AS (
            SELECT trim("CustomerId") AS customer_id, nullif(trim("Customer"), '') AS customer_name,
                   {d.date('Rec Date')} AS order_date, nullif(trim("Division"), '') AS order_division,
                   nullif(trim("Rep"), '') AS rep_name, nullif(trim("Branch"), '') AS region,
                   _line, {cells}
            FROM temp.raw_sales_log),
        lines AS (UNPIVOT orders ON {", ".join(col(s) for s in skus)} INTO NAME sku VALUE cell)
        SELECT l.customer_id, l.customer_name, l.order_date, l.sku AS product_id,
               coalesce(m.division, l.order_division, 'Unassigned') AS division,
               coalesce(l.cell.qty, 1) AS quantity, l.cell.amount AS amount,
               l.rep_name, l.region, 'sales_log' AS source, {lit(path.name)} AS source_file, l._line
        FROM lines l LEFT JOIN staging.sku_map m ON m.sku = l.sku
        WHERE l.cell.amount IS NOT NULL OR l.cell.qty IS NOT NULL
        ORDER BY l._line, l.sku""")
    return report
