"""Tidy transactions (CONTRACT §2.4): one row per order line → canonical staging.transactions.

Column names come from a mapping (YAML): the folder's own `revintel_mapping.yaml`, else a
built-in mapping whose header signature matches (e.g. the UCI Online Retail export), else the
canonical names `customer_id, order_date, sku, quantity, amount` themselves.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from revintel_assets.ingest.errors import SourceError
from revintel_assets.ingest.parse_sql import DATE_FORMATS, blank, col
from revintel_assets.ingest.quarantine import Rule, apply_rules
from revintel_assets.ingest.raw_csv import load_raw_csv, read_header

CANONICAL = ["customer_id", "order_date", "sku", "quantity", "amount"]
MAPPINGS = Path(__file__).parent / "mappings"
USER_MAPPING = "revintel_mapping.yaml"


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith((".csv", ".csv.gz"))
                  and not p.name.startswith(("sku_map", "sku_divisions")))


def _gz_header(path: Path) -> list[str]:
    if not path.name.endswith(".gz"):
        return read_header(path)
    import gzip

    with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
        return [c.strip().strip('"') for c in fh.readline().strip("\r\n").split(",")]


def find_tidy(folder: Path) -> tuple[Path, dict] | None:
    """The transactions file and the mapping that reads it, or None."""
    user = folder / USER_MAPPING
    mappings = [yaml.safe_load(user.read_text())] if user.exists() else []
    mappings += [yaml.safe_load(p.read_text()) for p in sorted(MAPPINGS.glob("*.yaml"))]
    identity = {"layout": "tidy", "signature": CANONICAL, "columns": {c: c for c in CANONICAL}}
    for path in _candidates(folder):
        header = set(_gz_header(path))
        for mapping in [*mappings, identity]:
            if mapping.get("layout") == "tidy" and set(mapping["signature"]) <= header:
                return path, mapping
    return None


def import_tidy(con: duckdb.DuckDBPyConnection, path: Path, mapping: dict) -> dict[str, dict]:
    cols = mapping["columns"]
    required = [v for v in cols.values() if v in _gz_header(path)]
    raw = load_raw_csv(con, path, "staging.raw_tidy", required, "tidy transactions")
    expr = {k: (col(v) if v in raw.columns else f"({v})") for k, v in cols.items()}
    fmts = ", ".join(f"'{f}'" for f in mapping.get("date_formats", DATE_FORMATS))
    date = f"try_strptime(trim({expr['order_date']}), [{fmts}])::DATE"
    caught = apply_rules(con, "staging.raw_tidy", path.name, raw.columns, [
        Rule("missing_customer_id", f"nullif(trim({expr['customer_id']}), '') IS NULL",
             "'customer_id is empty: the line cannot be attributed to an account'"),
        Rule("bad_order_date", f"{date} IS NULL",
             f"'order_date ''' || coalesce({expr['order_date']}, '') || ''' is not a date'"),
        Rule("missing_sku", f"nullif(trim({expr['sku']}), '') IS NULL", "'sku is empty'"),
        Rule("bad_quantity", f"try_cast({expr['quantity']} AS DOUBLE) IS NULL",
             f"'quantity ''' || coalesce({expr['quantity']}::VARCHAR, '') || ''' is not a number'"),
        Rule("bad_amount", f"try_cast({expr['amount']} AS DOUBLE) IS NULL",
             "'amount is not a number'"),
    ])
    country = expr.get("country", "NULL")
    con.execute(f"""CREATE OR REPLACE TABLE staging.transactions AS SELECT
        trim({expr['customer_id']}) AS customer_id, NULL::VARCHAR AS customer_name, {date} AS order_date,
        trim({expr['sku']}) AS product_id, coalesce(m.division, 'Unassigned') AS division,
        try_cast({expr['quantity']} AS DOUBLE) AS quantity, try_cast({expr['amount']} AS DOUBLE) AS amount,
        NULL::VARCHAR AS rep_name, NULL::VARCHAR AS region, 'tidy' AS source,
        '{path.name}' AS source_file, r._line, {country} AS _country
        FROM staging.raw_tidy r LEFT JOIN staging.sku_map m ON m.sku = trim({expr['sku']})
        ORDER BY r._line""")
    # A tidy log carries no accounts file; the customers it names become accounts with the
    # country they order from most, so firmographics are not empty.
    con.execute("""INSERT INTO staging.accounts (account_id, account_name, country, source_file, _line)
        SELECT customer_id, customer_id, mode(_country), any_value(source_file), min(_line)
        FROM staging.transactions WHERE customer_id NOT IN (SELECT account_id FROM staging.accounts)
        GROUP BY customer_id""")
    con.execute("ALTER TABLE staging.transactions DROP COLUMN _country")
    return {path.name: {"raw_rows": raw.rows + raw.rejected, "rejected_unreadable": raw.rejected,
                        "quarantined": caught}}
