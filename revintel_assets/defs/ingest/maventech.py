"""CRM in the MavenTech layout (docs/CONTRACT.md §2.1) → canonical staging tables.

Canonical staging tables, shared with the other CRM importers so the star schema is built once
(`source.CANONICAL` has every column; importers INSERT BY NAME and leave the rest NULL):
  staging.accounts(account_id, account_name, sector, employees, annual_revenue, country,
                   parent_name, year_established)
  staging.reps(rep_id, rep_name, manager, region)
  staging.products(product_id, product_name, series, division, list_price)
  staging.opportunities(opportunity_id, rep_name, product_name, account_name, stage,
                        engage_date, close_date, close_value, source_file, _line)
  staging.history(opportunity_id, changed_at, stage, expected_close_date, amount)  -- optional
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.mapping import Mapping
from revintel_assets.defs.ingest.parse_sql import (CLOSED, STAGES, Dialect, blank, col, currency_report,  # noqa: F401
                                                   decimal_flag,
                                                   forecast_category_expr, lit, stage_sql)
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, dedupe, latest_date
from revintel_assets.defs.ingest.raw_csv import load_raw_csv

FILES = {
    "pipeline": "sales_pipeline.csv",
    "accounts": "accounts.csv",
    "products": "products.csv",
    "teams": "sales_teams.csv",
    "history": "opportunity_history.csv",
}
REQUIRED = {
    "pipeline": ["opportunity_id", "sales_agent", "product", "account", "deal_stage",
                 "engage_date", "close_date", "close_value"],
    "accounts": ["account"],
    "products": ["product"],
    "teams": ["sales_agent"],
    "history": ["opportunity_id", "changed_at", "deal_stage", "expected_close_date", "amount"],
}
# Columns that describe accounts, products and reps are optional (CONTRACT §2): missing ones are
# NULL, and the import report notes them ("missing_optional_columns").
DESCRIPTIVE = {
    "accounts": ["sector", "revenue", "employees", "office_location"],
    "products": ["series", "sales_price"],
    "teams": ["manager", "regional_office"],
}
OPTIONAL = {
    "accounts": [*DESCRIPTIVE["accounts"], "account_id", "subsidiary_of", "year_established"],
    "products": [*DESCRIPTIVE["products"], "sku", "division"],
    "teams": DESCRIPTIVE["teams"],
    # the CRM's own forecast category when the export has one (or a mapping names it): kept as is;
    # the deal's type (new business, upgrade, renewal) and lead source when the CRM records them
    "pipeline": ["forecast_category", "deal_type", "lead_source"],
}
LAYOUT = "MavenTech CRM"


def present_files(folder: Path, mapping: Mapping | None = None) -> dict[str, Path]:
    mapping = mapping or Mapping()
    return {k: folder / mapping.file(f) for k, f in FILES.items() if (folder / mapping.file(f)).exists()}


def import_maventech(con: duckdb.DuckDBPyConnection, folder: Path, mapping: Mapping | None = None) -> dict[str, dict]:
    """Load the files present; returns per file: raw rows and rows caught per quarantine rule."""
    mapping = mapping or Mapping()
    dialect = Dialect(mapping.date_formats, mapping.decimal, mapping.stages, decimal_given=mapping.decimal_given)
    files = present_files(folder, mapping)
    report: dict[str, dict] = {}
    loaders = {"accounts": _accounts, "products": _products, "teams": _teams,
               "pipeline": _pipeline, "history": _history}
    for kind, loader in loaders.items():
        if kind not in files:
            continue
        raw = load_raw_csv(con, files[kind], f"temp.raw_{kind}", REQUIRED[kind], LAYOUT,
                           rename=mapping.columns_for(FILES[kind]), optional=OPTIONAL.get(kind),
                           delimiter=mapping.delimiter, encoding=mapping.encoding, canonical_file=FILES[kind],
                           noted=DESCRIPTIVE.get(kind))
        caught = loader(con, raw.columns, files[kind].name, dialect)
        report[files[kind].name] = file_report(raw, caught)
        if kind == "pipeline":  # the currencies its close_value cells name ("EUR 1,200"), if any
            # the decimal separator the close values were read with (settled per file, as _pipeline did)
            settled = dialect.settled(con, "temp.raw_pipeline", [], [c for c in ("close_value",) if c in raw.columns])
            report[files[kind].name] |= currency_report(con, "temp.raw_pipeline", "close_value", settled.decimal)
            # an open deal's close_date is not its outcome, nor (no history says when it was set) an expected
            # close date known on earlier dates: not used, as before, but counted and said, never silent
            (ignored,) = con.execute(
                "SELECT count(*) FROM staging.opportunities o JOIN temp.raw_pipeline r USING (_line) "
                "WHERE o.source_file = ? AND o.close_date IS NULL AND nullif(trim(r.close_date), '') IS NOT NULL",
                [files[kind].name]).fetchone()
            flags = {"open_deal_close_date_not_used": ignored} if ignored else {}
            flags |= decimal_flag(con, "temp.raw_pipeline", settled)
            if flags:
                report[files[kind].name]["flagged_kept"] = flags
    return report


def file_report(raw, caught: dict[str, int]) -> dict:
    unreadable = raw.rejected - raw.footer
    # the unreadable rows and a report's footer under their rule codes too: `quarantined` is every rule's
    # count, so its sum is the file's rows in star.quarantine (an audit: the README's per-rule query came
    # to 8 of 9)
    before = {k: n for k, n in (("unreadable_row", unreadable), ("report_footer", raw.footer)) if n}
    out = {"raw_rows": raw.rows + raw.rejected, "rejected_unreadable": unreadable, "quarantined": before | caught}
    if raw.footer:
        out["report_footer"] = raw.footer
    if getattr(raw, "empty_rows", 0):
        out["empty_rows_skipped"] = raw.empty_rows
    if raw.encoding == "utf-16":
        out["encoding"] = "utf-16 (read as UTF-16 little-endian)"
    elif raw.encoding == "xlsx" and len(raw.sheets) > 1:
        out["format"] = ("Excel workbook, sheets " + ", ".join(f"'{n}' ({rows} rows from line {line})"
                                                                for n, rows, line in raw.sheets)
                         + " (line numbers count every sheet's header row and rows, in order)")
    elif raw.encoding == "xlsx":
        out["format"] = "Excel workbook (first sheet; line numbers are sheet rows)"
    if raw.title_rows:  # line numbers stay sheet rows (of the first sheet: as in Excel)
        out["title_rows"] = dict(raw.title_rows)
    if getattr(raw, "merged_filled", None):  # cells given the value of the range merged over them
        out["merged_cells_filled"] = raw.merged_filled
    if getattr(raw, "skipped_sheets", ()):
        out["skipped_sheets"] = dict(raw.skipped_sheets)
    elif raw.encoding != "utf-8":
        out["encoding"] = ("Windows-1252 / latin-1 (the file is not UTF-8 anywhere; read as Windows-1252)"
                           if raw.encoding == "latin-1" else raw.encoding)
    if not raw.exact_lines:
        out["line_numbers"] = "approximate: malformed quoting, lines are counted as CSV records"
    if raw.renamed:
        out["renamed_columns"] = raw.renamed
    if getattr(raw, "missing_optional", ()):
        out["missing_optional_columns"] = list(raw.missing_optional)
    return out


def _opt(columns: list[str], name: str, cast: str = "VARCHAR") -> str:
    return f"nullif(trim({col(name)}), '')::{cast}" if name in columns else f"NULL::{cast}"


def _accounts(con, columns, file, d: Dialect):
    caught = apply_rules(con, "temp.raw_accounts", file, columns,
                         [Rule("missing_account_name", blank("account"), "'account name is empty'")])
    caught |= dedupe(con, "temp.raw_accounts", "trim(account)", file, columns, "account name")
    account_id = _opt(columns, "account_id") if "account_id" in columns else "trim(account)"
    con.execute(f"""INSERT INTO staging.accounts BY NAME SELECT
        coalesce({account_id}, trim(account)) AS account_id, trim(account) AS account_name,
        {_opt(columns, 'sector')} AS sector, try_cast({_opt(columns, 'employees')} AS BIGINT) AS employees,
        {d.money('revenue') if 'revenue' in columns else 'NULL::DOUBLE'} AS annual_revenue, {_opt(columns, 'office_location')} AS country,
        {_opt(columns, 'subsidiary_of')} AS parent_name,
        try_cast({_opt(columns, 'year_established')} AS INTEGER) AS year_established,
        {lit(file)} AS source_file, _line
        FROM temp.raw_accounts""")
    return caught


def _products(con, columns, file, d: Dialect):
    price = d.money("sales_price") if "sales_price" in columns else "NULL::DOUBLE"
    caught = apply_rules(con, "temp.raw_products", file, columns, [
        Rule("missing_product_name", blank("product"), "'product name is empty'"),
    ] + ([] if "sales_price" not in columns else [
        Rule("bad_list_price", d.bad_money("sales_price"),
             "'sales_price ''' || sales_price || ''' is not a number'"),
        Rule("negative_list_price", f"{d.money('sales_price')} < 0",
             "'sales_price ' || sales_price || ' is negative'"),
    ]))
    caught |= dedupe(con, "temp.raw_products", "trim(product)", file, columns, "product name")
    product_id = "coalesce(nullif(trim(sku), ''), trim(product))" if "sku" in columns else "trim(product)"
    # division: the products file's own, else the series, else (neither column) the product itself
    series = "nullif(trim(series), '')" if "series" in columns else "NULL::VARCHAR"
    own = "nullif(trim(division), '')" if "division" in columns else "NULL::VARCHAR"
    fallback = "trim(product)" if "series" not in columns and "division" not in columns else "'Unassigned'"
    con.execute(f"""INSERT INTO staging.products BY NAME SELECT
        {product_id} AS product_id, trim(product) AS product_name, {series} AS series,
        coalesce({own}, {series}, {fallback}) AS division, {own} IS NOT NULL AS division_given,
        {price} AS list_price,
        {lit(file)} AS source_file, _line FROM temp.raw_products""")
    return caught


def _teams(con, columns, file, d: Dialect):
    caught = apply_rules(con, "temp.raw_teams", file, columns,
                         [Rule("missing_rep_name", blank("sales_agent"), "'sales_agent is empty'")])
    caught |= dedupe(con, "temp.raw_teams", "trim(sales_agent)", file, columns, "sales_agent")
    con.execute(f"""INSERT INTO staging.reps BY NAME SELECT trim(sales_agent) AS rep_id,
        trim(sales_agent) AS rep_name, {_opt(columns, 'manager')} AS manager,
        {_opt(columns, 'regional_office')} AS region, {lit(file)} AS source_file, _line
        FROM temp.raw_teams""")
    return caught


def _pipeline(con, columns, file, d: Dialect):
    d = d.settled(con, "temp.raw_pipeline", [c for c in ("engage_date", "close_date") if c in columns],
                  [c for c in ("close_value",) if c in columns])
    stage = d.stage("deal_stage")
    closed = f"({stage} IN {CLOSED})"
    latest = latest_date(con, "temp.raw_pipeline", [d.date("engage_date"), d.date("close_date")])
    caught = apply_rules(con, "temp.raw_pipeline", file, columns, [
        Rule("missing_opportunity_id", blank("opportunity_id"), "'opportunity_id is empty'"),
        Rule("unknown_stage", f"{stage} IS NULL",
             f"'deal_stage ''' || coalesce(deal_stage, '') || ''' is not one of {', '.join(STAGES)} "
             "(a mapping file can name it under stages:)'"),
        Rule("bad_engage_date", d.bad_date("engage_date"),
             "'engage_date ''' || engage_date || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("bad_close_date", d.bad_date("close_date"),
             "'close_date ''' || close_date || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("impossible_date", f"{d.impossible_date('engage_date', latest)} OR {d.impossible_date('close_date', latest)}",
             f"'impossible date: engage_date ' || coalesce(engage_date, '') || ', close_date ' || "
             f"coalesce(close_date, '') || ' (before 1990 or after {latest or 'the export'} + 5 years)'"),
        Rule("closed_without_close_date", f"{closed} AND {blank('close_date')}",
             "'deal is ' || deal_stage || ' but has no close_date'"),
        Rule("closed_before_engaged", f"{d.date('close_date')} < {d.date('engage_date')}",
             "'close_date ' || close_date || ' is before engage_date ' || engage_date"),
        Rule("bad_close_value", d.bad_money("close_value"),
             "'close_value ''' || close_value || ''' is not a number'"),
        Rule("negative_close_value", f"{d.money('close_value')} < 0",
             "'close_value ' || close_value || ' is negative'"),
    ])
    caught |= dedupe(con, "temp.raw_pipeline", "trim(opportunity_id)", file, columns, "opportunity_id")
    fc = forecast_category_expr(col("forecast_category")) if "forecast_category" in columns else "NULL::VARCHAR"
    con.execute(f"""INSERT INTO staging.opportunities BY NAME SELECT
        trim(opportunity_id) AS opportunity_id, nullif(trim(sales_agent), '') AS rep_name,
        nullif(trim(product), '') AS product_name, nullif(trim(account), '') AS account_name,
        {stage} AS stage, {d.date('engage_date')} AS engage_date,
        CASE WHEN {closed} THEN {d.date('close_date')} END AS close_date,
        {d.money('close_value')} AS close_value, {fc} AS forecast_category,
        {_opt(columns, 'deal_type')} AS deal_type, {_opt(columns, 'lead_source')} AS lead_source,
        {lit(file)} AS source_file, _line
        FROM temp.raw_pipeline""")
    return caught


def _history(con, columns, file, d: Dialect):
    d = d.settled(con, "temp.raw_history", [c for c in ("changed_at", "expected_close_date") if c in columns])
    latest = latest_date(con, "temp.raw_history", [d.date("changed_at"), d.date("expected_close_date")])
    caught = apply_rules(con, "temp.raw_history", file, columns, [
        Rule("missing_opportunity_id", blank("opportunity_id"), "'opportunity_id is empty'"),
        Rule("bad_changed_at", f"{blank('changed_at')} OR {d.bad_date('changed_at')}",
             "'changed_at ''' || coalesce(changed_at, '') || ''' is not a date'"),
        Rule("unknown_stage", f"NOT {blank('deal_stage')} AND {d.stage('deal_stage')} IS NULL",
             "'deal_stage ''' || deal_stage || ''' is not a known stage (a mapping file can name it under stages:)'"),
        Rule("bad_expected_close_date", d.bad_date("expected_close_date"),
             "'expected_close_date ''' || expected_close_date || ''' is not a date'"),
        Rule("impossible_date", f"{d.impossible_date('changed_at', latest)} OR "
             f"{d.impossible_date('expected_close_date', latest)}",
             f"'impossible date: changed_at ' || changed_at || ', expected_close_date ' || "
             f"coalesce(expected_close_date, '') || ' (before 1990 or after {latest or 'the export'} + 5 years)'"),
        Rule("bad_amount", d.bad_money("amount"), "'amount ''' || amount || ''' is not a number'"),
        Rule("negative_amount", f"{d.money('amount')} < 0", "'amount ' || amount || ' is negative'"),
        Rule("unknown_opportunity",
             "trim(opportunity_id) NOT IN (SELECT opportunity_id FROM staging.opportunities)",
             "'opportunity_id ' || opportunity_id || ' is not in the pipeline file'"),
    ])
    caught |= dedupe(con, "temp.raw_history", "trim(opportunity_id), trim(changed_at), "
                     "coalesce(trim(deal_stage), ''), coalesce(trim(expected_close_date), ''), "
                     "coalesce(trim(amount), '')", file, columns, "history event", conflicts=False)
    con.execute(f"""INSERT INTO staging.history BY NAME SELECT
        trim(opportunity_id) AS opportunity_id, {d.date('changed_at')} AS changed_at,
        {d.stage('deal_stage')} AS stage, {d.date('expected_close_date')} AS expected_close_date,
        {d.money('amount')} AS amount, {lit(file)} AS source_file, _line
        FROM temp.raw_history""")
    return caught
