"""Tidy transactions (docs/CONTRACT.md §2.4): one row per order line → canonical staging.transactions.

Column names come from a mapping: the user's mapping file (`revintel_mapping.yaml` or
`--mapping`, see ingest/mapping.py) when it names tidy columns, else a built-in mapping whose
header signature matches (e.g. the UCI Online Retail export), else the canonical names
`customer_id, order_date, sku, quantity, amount` themselves. A mapped value is a column of the
file or an expression over its columns (`amount: "Quantity * UnitPrice"`) in the grammar of
ingest/expr.py, rebuilt as SQL by revintel with quoted identifiers, never pasted.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import yaml

from revintel_assets.defs.ingest import expr as mexpr
from revintel_assets.defs.ingest.errors import SourceError
from revintel_assets.defs.ingest.mapping import Mapping, inside
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import (EARLIEST, FUTURE_YEARS, NO_SKU_MAP, UNMAPPED, col, date_expr, id_sql,
                                                   decimal_flag, key_sql, lit, money_expr, settle_day_month,
                                                   settle_decimal, Dialect)
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, latest_date
from revintel_assets.defs.ingest.raw_csv import EXCEL_SUFFIXES, is_unicode_text, load_raw_csv, read_header
from revintel_assets.defs.ingest.synonyms import resolve

CANONICAL = ["customer_id", "order_date", "sku", "quantity", "amount"]
OPTIONAL = ("order_id", "country", "customer_name", "division")  # read when the file has them
MAPPINGS = Path(__file__).parent / "mappings"
USER_MAPPING = "revintel_mapping.yaml"
_IDENT = re.compile(r"^[\w .#/-]+$")


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p.name.lower().endswith((".csv", ".csv.gz", *EXCEL_SUFFIXES))
                                                  or is_unicode_text(p))
                  and not p.name.startswith(("sku_map", "sku_divisions", "~$")))


def _gz_header(path: Path) -> list[str]:
    return read_header(path)


def _user_tidy(user: Mapping, path: Path) -> dict | None:
    cols = user.columns_for(path.name)
    if not any(k in cols for k in CANONICAL):
        return None
    cols = {**{c: c for c in CANONICAL}, **cols}
    # the header names it reads, not its expressions: "UnitPrice / Qty" matched as a name (spaces and "/"
    # are in names), was not in the header, and a file that also had an `amount` column was read with the
    # built-in names instead, the mapping ignored without a word (an audit)
    signature = user.signature or [v for k, v in cols.items()
                                   if k in CANONICAL and _IDENT.match(v) and not mexpr.is_compound(v)]
    lines = {k: user.line("columns", path.name, k) if isinstance(user.columns.get(path.name), dict)
             and k in user.columns[path.name] else user.line("columns", k) for k in cols}
    return {"layout": "tidy", "signature": signature, "columns": cols, "date_formats": user.date_formats,
            "origin": user.origin, "lines": lines}


def find_tidy(folder: Path, user: Mapping | None = None, force: bool = False) -> tuple[Path, dict] | None:
    """The transactions file and the mapping that reads it, or None (with `force`, the first CSV,
    so that the import names what is missing)."""
    user = user or Mapping()
    builtin = [yaml.safe_load(p.read_text()) for p in sorted(MAPPINGS.glob("*.yaml"))]
    identity = {"layout": "tidy", "signature": CANONICAL, "columns": {c: c for c in CANONICAL}}
    candidates = _candidates(folder)
    if user.files.get("transactions.csv"):
        try:
            candidates = [inside(folder, user.files["transactions.csv"])]
        except ValueError as exc:
            raise SourceError(user.origin, user.line("files", "transactions.csv"),
                              "files: transactions.csv: a file name inside the source folder",
                              f"{user.files['transactions.csv']!r} is {exc}") from None
    for path in candidates:
        header = set(_gz_header(path))
        mine = _user_tidy(user, path)
        for mapping in [m for m in (mine, *builtin, identity, synonym_mapping(list(header))) if m]:
            if mapping.get("layout") == "tidy" and set(mapping["signature"]) <= header:
                return path, mapping
    if force and candidates:
        return candidates[0], _user_tidy(user, candidates[0]) or identity
    return None


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def synonym_mapping(header: list[str]) -> dict | None:
    """A tidy mapping from header synonyms alone (ingest/synonyms.py): customer, date, SKU and
    quantity columns, and an amount column or Quantity x a unit price column. None unless all
    resolve (a transactions file is never guessed from unrelated columns)."""
    header = [h for h in header if h]
    cols: dict[str, str] = {}
    for k in ("customer_id", "order_date", "sku", "quantity"):
        found = resolve(k, header)
        if not found or found in cols.values():
            return None
        cols[k] = found
    amount, price = resolve("amount", header), resolve("unit_price", header)
    if amount and amount not in cols.values():
        cols["amount"] = amount
    elif price and price not in cols.values():
        cols["amount"] = f"try_cast({_quoted(cols['quantity'])} AS DOUBLE) * try_cast({_quoted(price)} AS DOUBLE)"
    else:
        return None
    for k in OPTIONAL:
        if (found := resolve(k, header)) and found not in cols.values():
            cols[k] = found
    return {"layout": "tidy", "signature": [v for k, v in cols.items() if k != "amount"] + ([price] if price else []),
            "columns": cols, "origin": "header synonyms (ingest/synonyms.py)"}


def _read_columns(value: str) -> list[str]:
    """The columns a mapping value reads: itself, or those its expression names ([] when it does
    not parse: compiling it later says why, naming the mapping's line)."""
    if not mexpr.is_compound(value):
        return [value]
    try:
        return mexpr.columns(mexpr.parse(value))
    except mexpr.ExprError:
        return []


def import_tidy(con: duckdb.DuckDBPyConnection, path: Path, mapping: dict,
                user: Mapping | None = None) -> dict[str, dict]:
    user = user or Mapping()
    cols = {**{c: c for c in CANONICAL}, **mapping["columns"]}
    header = _gz_header(path)
    for k in OPTIONAL:  # optional columns the mapping does not name
        if k not in cols and (found := resolve(k, header)) and found not in cols.values():
            cols[k] = found
    for k, v in mapping["columns"].items():  # `Unit Price * Qty`: meant as an expression, read as a name
        if v not in header and any(op in v for op in "+-*/(") and not mexpr.is_compound(v):
            try:
                mexpr.parse(v)
            except mexpr.ExprError as exc:
                raise SourceError(mapping.get("origin", "mapping"), mapping.get("lines", {}).get(k, 0),
                                  f"for {k}: a column of {path.name} ({', '.join(header)}) or {mexpr.GRAMMAR}",
                                  f"{v!r} is neither: {exc}") from None
    # a header name as written, or one column: read as text; anything else is an expression
    plain = {k: v for k, v in cols.items() if v in header or not mexpr.is_compound(v)}
    required = [v for k, v in plain.items() if k in CANONICAL]
    optional = [v for k, v in plain.items() if k not in CANONICAL]
    raw = load_raw_csv(con, path, "temp.raw_tidy", required, "tidy transactions",
                       optional=optional, delimiter=user.delimiter, encoding=user.encoding,
                       canonical_file=path.name)
    # the decimal separator from the amount's columns (a plain one, or those its expression reads), unless
    # the mapping says it: a European log ('2,55', '1.020') was quarantined whole, or read 1000x too small
    money_cols = [c for c in _read_columns(cols["amount"]) if c in raw.columns]
    decimal = user.decimal if user.decimal_given else settle_decimal(con, "temp.raw_tidy", [col(c) for c in money_cols],
                                                                      user.decimal)
    expr = {}
    for k, v in cols.items():
        if v in raw.columns:
            expr[k] = col(v)
        elif k in plain:
            expr[k] = "NULL::VARCHAR"  # an optional column the file does not have
        else:  # an expression over the file's columns, parsed and rebuilt (never pasted)
            where = (mapping.get("origin", "mapping"), mapping.get("lines", {}).get(k, 0),
                     f"for {k}: a column of {path.name} ({', '.join(raw.columns)}) or {mexpr.GRAMMAR}")
            try:
                sql = mexpr.compile_expr(v, raw.columns, number=lambda c: money_expr(c, decimal))
                con.execute(f"SELECT ({sql})::VARCHAR FROM temp.raw_tidy LIMIT 0")
            except mexpr.ExprError as exc:
                raise SourceError(*where, f"{v!r}: {exc}") from None
            except duckdb.Error as exc:
                raise SourceError(*where, f"{v!r} does not work: {str(exc).splitlines()[0]}") from exc
            expr[k] = f"({sql})"
    fmts, exclude = settle_day_month(con, "temp.raw_tidy", [f"{expr['order_date']}::VARCHAR"],
                                     [*user.date_formats, *mapping.get("date_formats", [])])
    date = date_expr(f"{expr['order_date']}::VARCHAR", fmts, exclude)
    def number(k: str) -> str:  # a column as exported (money rules), or an expression's value
        if cols[k] in raw.columns:
            return money_expr(expr[k], decimal)
        # a finite one: "Gesamt / Menge" over a line of quantity 0 was an infinite amount, imported, and the
        # run failed later casting it to a decimal (an audit); it is quarantined as not a number
        value = f"try_cast({expr[k]} AS DOUBLE)"
        return f"(CASE WHEN isfinite({value}) THEN {value} END)"

    qty, amount = number("quantity"), number("amount")
    latest = latest_date(con, "temp.raw_tidy", [date])
    hi = f" OR {date} > DATE {lit(latest)} + INTERVAL {FUTURE_YEARS} YEAR" if latest else ""
    caught = apply_rules(con, "temp.raw_tidy", path.name, raw.columns, [
        Rule("missing_customer_id", f"nullif(trim({expr['customer_id']}), '') IS NULL",
             "'customer_id is empty: the line cannot be attributed to an account'"),
        Rule("bad_order_date", f"{date} IS NULL",
             f"'order_date ''' || coalesce({expr['order_date']}::VARCHAR, '') || ''' is not a date'"),
        Rule("impossible_date", f"{date} < DATE '{EARLIEST}'{hi}",
             f"'impossible order_date ' || {expr['order_date']}::VARCHAR || "
             f"' (before 1990 or after {latest} + {FUTURE_YEARS} years)'"),
        Rule("missing_sku", f"nullif(trim({expr['sku']}), '') IS NULL", "'sku is empty'"),
        Rule("bad_quantity", f"{qty} IS NULL",
             f"'quantity ''' || coalesce({expr['quantity']}::VARCHAR, '') || ''' is not a number'"),
        Rule("bad_amount", f"{amount} IS NULL",
             f"'amount ''' || coalesce({expr['amount']}::VARCHAR, '') || ''' is not a number'"),
    ])
    country = expr.get("country", "NULL")
    name = expr.get("customer_name", "NULL")
    log_division = expr.get("division", "NULL")
    cust = id_sql(expr["customer_id"])
    con.execute(f"""INSERT INTO staging.transactions BY NAME
        WITH t AS (SELECT {cust} AS customer_id, nullif(trim({name}), '') AS customer_name,
                          {date} AS order_date, trim({expr['sku']}) AS product_id, {qty} AS quantity,
                          {amount} AS amount, nullif(trim({log_division}), '') AS log_division, _line
                   FROM temp.raw_tidy)
        -- the SKU map's division, else the log's own (a `division` column: it was ignored, one division),
        -- else the CRM's for a product it lists by that id or name (MavenTech deals beside a log of the
        -- same products without a SKU map: the lines were 'All products', the products GTX, MG, GTK)
        SELECT t.* EXCLUDE (log_division), coalesce(m.division, mu.division, t.log_division, crm.division,
                                                    CASE WHEN EXISTS (SELECT 1 FROM staging.sku_map)
                                               THEN {lit(UNMAPPED)} ELSE {lit(NO_SKU_MAP)} END) AS division,
               'tidy' AS source,
               {lit(path.name)} AS source_file
        FROM t LEFT JOIN staging.sku_map m ON m.sku = t.product_id
        -- else the SKU in another case ('85123a' for the map's '85123A': 5 % of a lower-cased log went
        -- unmapped), where the map gives that spelling one division
        LEFT JOIN (SELECT upper(sku) AS k, min(division) AS division FROM staging.sku_map GROUP BY 1
                   HAVING count(DISTINCT division) = 1) mu ON m.sku IS NULL AND mu.k = upper(t.product_id)
        LEFT JOIN (SELECT k, min(division) AS division FROM (
                       SELECT {key_sql('product_id')} AS k, division FROM staging.products
                       UNION ALL SELECT {key_sql('product_name')}, division FROM staging.products)
                   WHERE k IS NOT NULL AND division IS NOT NULL GROUP BY k HAVING count(DISTINCT division) = 1) crm
               ON crm.k = {key_sql('t.product_id')}
        ORDER BY t._line""")
    # A tidy log carries no accounts file; the customers it names become accounts with the
    # country they order from most, so firmographics are not empty.
    con.execute(f"""INSERT INTO staging.accounts (account_id, account_name, country, source_file, _line)
        SELECT {cust} AS id, coalesce(any_value(nullif(trim({name}), '')), {cust}),
               mode({country}), {lit(path.name)}, min(_line)
        FROM temp.raw_tidy
        WHERE {cust} NOT IN (SELECT account_id FROM staging.accounts WHERE account_id IS NOT NULL)
        GROUP BY 1""")
    flags = decimal_flag(con, "temp.raw_tidy", Dialect(decimal=decimal, decimal_given=user.decimal_given))
    # A return written with a negative quantity and a positive amount (an ERP's credit-note lines; Online
    # Retail writes both negative): the amount takes the quantity's sign. It was kept as revenue without a
    # word, and the ICP counted the return as a purchase of the division.
    (returns,) = con.execute("UPDATE staging.transactions SET amount = -amount WHERE source_file = ? "
                             "AND source = 'tidy' AND quantity < 0 AND amount > 0", [path.name]).fetchone()
    if returns:
        flags["negative_quantity_with_positive_amount_read_as_return"] = returns
    return {path.name: {**file_report(raw, caught), **({"flagged_kept": flags} if flags else {})}}
