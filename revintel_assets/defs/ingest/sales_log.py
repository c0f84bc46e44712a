"""Sales log, wide layout (docs/CONTRACT.md §2.3) → canonical staging.transactions.

One row per order; per SKU a gross-profit column `<SKU>` and a quantity column `<SKU>_Qty`.
The SKU → division map is data (`sku_map.csv`), never code. Canonical output, shared with the
tidy-transactions importer:
  staging.transactions(customer_id, customer_name, order_date, product_id, division, quantity,
                       amount, rep_name, region, source, source_file, _line)
Gross profit may be negative (a loss-making order), so negative cells are kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.mapping import Mapping
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import (UNMAPPED, Dialect, blank, col, decimal_flag, id_sql, lit, money_expr,
                                                   settle_decimal)
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, csv_field, latest_date
from revintel_assets.defs.ingest.raw_csv import load_raw_csv, norm, read_header

FIXED = ["CustomerId", "Customer", "Rec Date", "Division", "Rep", "Branch"]
DECIMAL_SAMPLE = 20_000  # about this many orders, spread over the file, settle its decimal separator


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


def _pairs(skus: list[str], source: dict[str, str]) -> str:
    """One list per order of its non-empty (SKU index, amount text, quantity text) pairs, sorted
    by SKU name (the order of the order lines). A wide log is mostly empty (61 M cells at scale
    10 for 4.6 M values); kept as 66 text columns they cost twice the read."""
    items = ", ".join(f"{{'i': {k}, 'a': {col(source[s])}, 'q': {col(source[s + '_Qty'])}}}"
                      for k, s in sorted(enumerate(skus), key=lambda ks: ks[1]))
    return f"list_filter([{items}], lambda x: x.a IS NOT NULL OR x.q IS NOT NULL)"


def _narrow(header: list[str], final: list[str]) -> str | None:
    """The raw table's columns: every column that is not a SKU pair as text, the pairs as `_pairs`."""
    skus = sku_columns(final)
    if not skus:
        return None  # every column; import_sales_log says what is missing
    source = dict(zip(final, header))
    paired = {*skus, *(f"{s}_Qty" for s in skus)}
    plain = [f"{col(h)} AS {col(f)}" for h, f in zip(header, final) if f not in paired]
    return ", ".join([*plain, f"{_pairs(skus, source)} AS _pairs"])


def _raw_row(columns: list[str], skus: list[str]) -> str:
    """The quarantined row as the file wrote it (raw_row_sql over every column), its SKU cells
    taken back out of `_pairs`; evaluated for quarantined rows only."""
    index = {s: k for k, s in enumerate(skus)}
    parts = []
    for c in columns:
        sku, field = (c[:-4], "q") if c.endswith("_Qty") and c[:-4] in index else (c, "a")
        if sku in index:
            parts.append(csv_field(f"coalesce((list_filter(_pairs, lambda x: x.i = {index[sku]}))[1].{field}, '')"))
        else:
            parts.append(csv_field(f"coalesce({col(c)}, '')"))
    return f"concat_ws(',', {', '.join(parts)})"


def _list(values) -> str:
    return f"([{', '.join('NULL' if v is None else lit(v) for v in values)}]::VARCHAR[])"


def import_sales_log(con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping | None = None) -> dict[str, dict]:
    mapping = mapping or Mapping()
    d = Dialect(mapping.date_formats, mapping.decimal, mapping.stages, decimal_given=mapping.decimal_given)
    raw = load_raw_csv(con, path, "temp.raw_sales_log", FIXED, "wide sales log",
                       rename=mapping.columns_for("sales_log.csv"), delimiter=mapping.delimiter,
                       encoding=mapping.encoding, canonical_file="sales_log.csv", narrow=_narrow)
    d = d.settled(con, "temp.raw_sales_log", ["Rec Date"])
    if not d.decimal_given:  # the SKU cells' decimal separator, as a tidy log's (settle_decimal): a log
        # saved by a European Excel ('146,40') was quarantined whole as 'SKU column X is not a number',
        # exit 0 and no hint. Every k-th order's cells decide, spread over the whole file (the first
        # 20,000 orders missed a file whose later orders changed convention; every cell costs seconds at
        # scale 100), by line number: the same orders every run.
        (orders,) = con.execute("SELECT count(*) FROM temp.raw_sales_log").fetchall()[0]
        step = max(1, -(-orders // DECIMAL_SAMPLE))
        d = replace(d, decimal=settle_decimal(
            con, f"(SELECT unnest(_pairs).a AS a FROM temp.raw_sales_log WHERE _line % {step} = 0)", ["a"], d.decimal))
    skus = sku_columns(raw.columns)
    if not skus:
        raise SourceError(path, 1, "per-SKU column pairs '<SKU>' and '<SKU>_Qty'",
                          "found no such pair in the header")
    # Columns that are neither fixed nor half of a SKU pair (a SKU column without its _Qty, a note)
    # are not read: said with the cells they hold, never dropped without a word.
    paired = {*skus, *(f"{s}_Qty" for s in skus)}
    unpaired = [c for c in raw.columns if c not in FIXED and c not in paired]
    cells = dict(zip(unpaired, con.execute("SELECT " + ", ".join(
        f"count(nullif(trim({col(c)}), ''))" for c in unpaired) + " FROM temp.raw_sales_log").fetchall()[0])) if unpaired else {}
    unread = [c for c, n in cells.items() if n]
    no_lines = lit("order has no SKU line (every SKU column is empty)" if not unread else
                   f"order has no SKU line (every SKU pair is empty; not read, no <SKU>_Qty pair: {', '.join(unread)})")

    # Each order's SKU cells are its `_pairs`, unnested (cheap: no per-column work) and parsed
    # where they are used. Per order: the first SKU column (in file order) holding an amount or
    # quantity that is not a number.
    names = _list(skus)
    qty_only = "list_filter(_pairs, lambda x: nullif(trim(x.q), '') IS NOT NULL AND nullif(trim(x.a), '') IS NULL)"
    amount, qty = money_expr("p.a", d.decimal), money_expr("p.q", d.decimal)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _bad_cells AS
        SELECT _line AS _bad_line, min(p.i) AS _bad_i FROM (SELECT _line, unnest(_pairs) AS p FROM temp.raw_sales_log)
        WHERE (nullif(trim(p.a), '') IS NOT NULL AND {amount} IS NULL)
           OR (nullif(trim(p.q), '') IS NOT NULL AND {qty} IS NULL) GROUP BY _line""")
    latest = latest_date(con, "temp.raw_sales_log", [d.date("Rec Date")])
    rec = col("Rec Date")
    caught = apply_rules(con, "temp.raw_sales_log", path.name, raw.columns, [
        Rule("missing_customer_id", blank("CustomerId"), "'CustomerId is empty'"),
        Rule("bad_order_date", f"{blank('Rec Date')} OR {d.bad_date('Rec Date')}",
             f"'Rec Date ''' || coalesce({rec}, '') || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("impossible_date", d.impossible_date("Rec Date", latest),
             f"'impossible Rec Date ' || {rec} || ' (before 1990 or after {latest} + 5 years)'"),
        Rule("bad_sku_cell", "_line IN (SELECT _bad_line FROM _bad_cells)",
             f"'SKU column ' || {names}[(SELECT _bad_i FROM _bad_cells WHERE _bad_line = _line) + 1] || ' is not a number'"),
        Rule("order_without_lines", "len(list_filter(_pairs, lambda x: nullif(trim(x.a), '') IS NOT NULL)) = 0",
             # quantities without any amount: said so (it read "every SKU column is empty")
             f"CASE WHEN len({qty_only}) > 0 THEN 'order has no SKU amount: ' || {names}[{qty_only}[1].i + 1] "
             f"|| '_Qty is ' || trim({qty_only}[1].q) || ' but ' || {names}[{qty_only}[1].i + 1] || ' is empty' "
             f"|| {lit('' if not unread else '; not read, no <SKU>_Qty pair: ' + ', '.join(unread))} "
             f"ELSE {no_lines} END"),
    ], raw_sql=_raw_row(raw.columns, skus))
    report = {path.name: file_report(raw, caught)}
    if unread:
        report[path.name]["unpaired_columns"] = {c: cells[c] for c in unread}

    # One order line per pair with a number, in (line, SKU name) order as the orders and their
    # pairs are stored: no join back to the orders, no sort (insertion order is preserved).
    # With a SKU map, a SKU it does not name is an unmapped SKU (reported, never a division:
    # docs/CONTRACT.md §2), not the order's Division; without one, the order's Division it is.
    mapped = dict(con.execute("SELECT sku, division FROM staging.sku_map").fetchall())
    divisions = _list(mapped.get(s) for s in skus)
    fallback = lit(UNMAPPED) if mapped else "coalesce(order_division, 'Unassigned')"
    con.execute(f"""INSERT INTO staging.transactions BY NAME
        SELECT customer_id, customer_name, order_date, product_id,
               coalesce(sku_division, {fallback}) AS division, qty AS quantity,
               amount, rep_name, region, 'sales_log' AS source, {lit(path.name)} AS source_file, _line
        FROM (SELECT *, {names}[p.i + 1] AS product_id, {divisions}[p.i + 1] AS sku_division,
                     {amount} AS amount, {qty} AS qty
              FROM (SELECT {id_sql('"CustomerId"')} AS customer_id, nullif(trim("Customer"), '') AS customer_name,
                           {d.date('Rec Date')} AS order_date, nullif(trim("Division"), '') AS order_division,
                           nullif(trim("Rep"), '') AS rep_name, nullif(trim("Branch"), '') AS region, _line,
                           unnest(_pairs) AS p
                    FROM temp.raw_sales_log))
        WHERE amount IS NOT NULL OR qty IS NOT NULL""")
    con.execute("DROP TABLE _bad_cells")
    # an amount without its quantity is one unit, as before; now counted and said, never silent
    (guessed,) = con.execute("UPDATE staging.transactions SET quantity = 1 WHERE quantity IS NULL AND source_file = ?",
                             [path.name]).fetchone()
    flags = decimal_flag(con, "temp.raw_sales_log", d)
    if guessed:
        flags["sku_amount_without_quantity_taken_as_1_unit"] = guessed
    if flags:
        report[path.name]["flagged_kept"] = flags
    # A log with no accounts of the source's own beside it: its customers are the accounts (as a
    # tidy log's are, tidy.py), not stubs reported on every line. Next to a CRM's accounts a
    # customer they lack stays a stub, reported (star.unknown_references).
    if not con.execute("SELECT count(*) FROM staging.accounts").fetchall()[0][0]:
        con.execute(f"""INSERT INTO staging.accounts (account_id, account_name, source_file, _line)
            SELECT customer_id, coalesce(min(customer_name), customer_id), {lit(path.name)}, min(_line)
            FROM staging.transactions WHERE source_file = {lit(path.name)} AND customer_id IS NOT NULL GROUP BY 1""")
    return report
