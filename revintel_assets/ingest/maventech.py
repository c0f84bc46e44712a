"""CRM in the MavenTech layout (CONTRACT §2.1) → canonical staging tables.

Canonical staging tables, shared with the other CRM importers so the star schema is built once:
  staging.accounts(account_id, account_name, sector, employees, annual_revenue, country,
                   parent_name, year_established)
  staging.reps(rep_name, manager, region)
  staging.products(product_id, product_name, series, division, list_price)
  staging.opportunities(opportunity_id, rep_name, product_name, account_name, stage,
                        engage_date, close_date, close_value, source_file, _line)
  staging.history(opportunity_id, changed_at, stage, expected_close_date, amount)  -- optional
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.ingest.parse_sql import bad_date, bad_money, blank, col, date_sql, money_sql
from revintel_assets.ingest.quarantine import QUARANTINE_STAGING, Rule, apply_rules, raw_row_sql
from revintel_assets.ingest.raw_csv import load_raw_csv

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
    "accounts": ["account", "sector", "revenue", "employees", "office_location"],
    "products": ["product", "series", "sales_price"],
    "teams": ["sales_agent", "manager", "regional_office"],
    "history": ["opportunity_id", "changed_at", "deal_stage", "expected_close_date", "amount"],
}
OPTIONAL_FILES = {"history", "accounts", "teams", "products"}

STAGES = ["Prospecting", "Engaging", "Proposal", "Negotiation", "Won", "Lost"]
CLOSED = ("Won", "Lost")


def stage_sql(name: str) -> str:
    """Canonical stage name; NULL for a stage revintel does not know."""
    c = f"lower(trim({col(name)}))"
    return (f"CASE WHEN {c} IN ('prospecting','prospect','qualification') THEN 'Prospecting' "
            f"WHEN {c} IN ('engaging','engaged','discovery','in_progress','in progress') THEN 'Engaging' "
            f"WHEN {c} IN ('proposal','proposal/price quote','quote') THEN 'Proposal' "
            f"WHEN {c} IN ('negotiation','negotiation/review','commit') THEN 'Negotiation' "
            f"WHEN {c} IN ('won','closed won','closed/won') THEN 'Won' "
            f"WHEN {c} IN ('lost','closed lost','closed/lost') THEN 'Lost' END")


def present_files(folder: Path) -> dict[str, Path]:
    return {k: folder / f for k, f in FILES.items() if (folder / f).exists()}


def import_maventech(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, dict]:
    """Load the files present; returns per file: raw rows and rows caught per quarantine rule."""
    files = present_files(folder)
    report: dict[str, dict] = {}
    loaders = {"accounts": _accounts, "products": _products, "teams": _teams,
               "pipeline": _pipeline, "history": _history}
    for kind, loader in loaders.items():
        if kind not in files:
            continue
        raw = load_raw_csv(con, files[kind], f"staging.raw_{kind}", REQUIRED[kind], "MavenTech CRM")
        caught = loader(con, raw.columns, files[kind].name)
        report[files[kind].name] = {"raw_rows": raw.rows + raw.rejected, "rejected_unreadable": raw.rejected,
                                    "quarantined": caught}
    return report


def _opt(columns: list[str], name: str, cast: str = "VARCHAR") -> str:
    return f"nullif(trim({col(name)}), '')::{cast}" if name in columns else f"NULL::{cast}"


def _accounts(con, columns, file):
    caught = apply_rules(con, "staging.raw_accounts", file, columns,
                         [Rule("missing_account_name", blank("account"), "'account name is empty'")])
    caught |= _dedupe(con, "staging.raw_accounts", "trim(account)", file, columns, "account name")
    account_id = _opt(columns, "account_id") if "account_id" in columns else "trim(account)"
    con.execute(f"""CREATE OR REPLACE TABLE staging.accounts AS SELECT
        coalesce({account_id}, trim(account)) AS account_id, trim(account) AS account_name,
        {_opt(columns, 'sector')} AS sector, try_cast({_opt(columns, 'employees')} AS BIGINT) AS employees,
        {money_sql('revenue')} AS annual_revenue, {_opt(columns, 'office_location')} AS country,
        {_opt(columns, 'subsidiary_of')} AS parent_name,
        try_cast({_opt(columns, 'year_established')} AS INTEGER) AS year_established,
        '{file}' AS source_file, _line
        FROM staging.raw_accounts""")
    return caught


def _products(con, columns, file):
    caught = apply_rules(con, "staging.raw_products", file, columns, [
        Rule("missing_product_name", blank("product"), "'product name is empty'"),
        Rule("bad_list_price", bad_money("sales_price"),
             "'sales_price ''' || sales_price || ''' is not a number'"),
    ])
    caught |= _dedupe(con, "staging.raw_products", "trim(product)", file, columns, "product name")
    product_id = "coalesce(nullif(trim(sku), ''), trim(product))" if "sku" in columns else "trim(product)"
    division = "coalesce(nullif(trim(division), ''), trim(series))" if "division" in columns else "trim(series)"
    con.execute(f"""CREATE OR REPLACE TABLE staging.products AS SELECT
        {product_id} AS product_id, trim(product) AS product_name, trim(series) AS series,
        coalesce({division}, 'Unassigned') AS division, {money_sql('sales_price')} AS list_price,
        '{file}' AS source_file, _line FROM staging.raw_products""")
    return caught


def _teams(con, columns, file):
    caught = apply_rules(con, "staging.raw_teams", file, columns,
                         [Rule("missing_rep_name", blank("sales_agent"), "'sales_agent is empty'")])
    caught |= _dedupe(con, "staging.raw_teams", "trim(sales_agent)", file, columns, "sales_agent")
    con.execute(f"""CREATE OR REPLACE TABLE staging.reps AS SELECT trim(sales_agent) AS rep_name,
        nullif(trim(manager), '') AS manager, nullif(trim(regional_office), '') AS region,
        '{file}' AS source_file, _line FROM staging.raw_teams""")
    return caught


def _pipeline(con, columns, file):
    stage = stage_sql("deal_stage")
    closed = f"({stage} IN {CLOSED})"
    caught = apply_rules(con, "staging.raw_pipeline", file, columns, [
        Rule("missing_opportunity_id", blank("opportunity_id"), "'opportunity_id is empty'"),
        Rule("unknown_stage", f"{stage} IS NULL",
             f"'deal_stage ''' || coalesce(deal_stage, '') || ''' is not one of {', '.join(STAGES)}'"),
        Rule("bad_engage_date", bad_date("engage_date"),
             "'engage_date ''' || engage_date || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("bad_close_date", bad_date("close_date"),
             "'close_date ''' || close_date || ''' is not a date (expected YYYY-MM-DD)'"),
        Rule("closed_without_close_date", f"{closed} AND {blank('close_date')}",
             "'deal is ' || deal_stage || ' but has no close_date'"),
        Rule("closed_before_engaged", f"{date_sql('close_date')} < {date_sql('engage_date')}",
             "'close_date ' || close_date || ' is before engage_date ' || engage_date"),
        Rule("bad_close_value", bad_money("close_value"),
             "'close_value ''' || close_value || ''' is not a number'"),
        Rule("negative_close_value", f"{money_sql('close_value')} < 0",
             "'close_value ' || close_value || ' is negative'"),
    ])
    caught |= _dedupe(con, "staging.raw_pipeline", "trim(opportunity_id)", file, columns, "opportunity_id")
    con.execute(f"""CREATE OR REPLACE TABLE staging.opportunities AS SELECT
        trim(opportunity_id) AS opportunity_id, nullif(trim(sales_agent), '') AS rep_name,
        nullif(trim(product), '') AS product_name, nullif(trim(account), '') AS account_name,
        {stage} AS stage, {date_sql('engage_date')} AS engage_date,
        CASE WHEN {closed} THEN {date_sql('close_date')} END AS close_date,
        {money_sql('close_value')} AS close_value, '{file}' AS source_file, _line
        FROM staging.raw_pipeline""")
    return caught


def _history(con, columns, file):
    caught = apply_rules(con, "staging.raw_history", file, columns, [
        Rule("missing_opportunity_id", blank("opportunity_id"), "'opportunity_id is empty'"),
        Rule("bad_changed_at", f"{blank('changed_at')} OR {bad_date('changed_at')}",
             "'changed_at ''' || coalesce(changed_at, '') || ''' is not a date'"),
        Rule("unknown_stage", f"NOT {blank('deal_stage')} AND {stage_sql('deal_stage')} IS NULL",
             "'deal_stage ''' || deal_stage || ''' is not a known stage'"),
        Rule("bad_expected_close_date", bad_date("expected_close_date"),
             "'expected_close_date ''' || expected_close_date || ''' is not a date'"),
        Rule("bad_amount", bad_money("amount"), "'amount ''' || amount || ''' is not a number'"),
        Rule("unknown_opportunity",
             "trim(opportunity_id) NOT IN (SELECT opportunity_id FROM staging.opportunities)",
             "'opportunity_id ' || opportunity_id || ' is not in the pipeline file'"),
    ])
    con.execute(f"""CREATE OR REPLACE TABLE staging.history AS SELECT
        trim(opportunity_id) AS opportunity_id, {date_sql('changed_at')} AS changed_at,
        {stage_sql('deal_stage')} AS stage, {date_sql('expected_close_date')} AS expected_close_date,
        {money_sql('amount')} AS amount, '{file}' AS source_file, _line
        FROM staging.raw_history""")
    return caught


def _dedupe(con, table, key, file, columns, what) -> dict[str, int]:
    """Exact duplicates are merged; a second row with the same key but other contents is
    quarantined. Both go to the quarantine with a reason, so the raw count still reconciles."""
    raw = raw_row_sql(columns)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _dups AS SELECT _line,
        first_value(_line) OVER w AS first_line, {raw} AS raw_row,
        first_value({raw}) OVER w AS first_raw
        FROM {table} WINDOW w AS (PARTITION BY {key} ORDER BY _line)
        QUALIFY row_number() OVER w > 1""")
    rows = con.execute("""SELECT count(*) FILTER (WHERE raw_row = first_raw),
                          count(*) FILTER (WHERE raw_row <> first_raw) FROM _dups""").fetchall()[0]
    con.execute(f"""INSERT INTO {QUARANTINE_STAGING} SELECT '{file}', _line, raw_row,
        CASE WHEN raw_row = first_raw THEN 'exact duplicate of line ' || first_line || ' (merged)'
             ELSE '{what} already on line ' || first_line || ' with other contents' END FROM _dups""")
    con.execute(f"DELETE FROM {table} WHERE _line IN (SELECT _line FROM _dups)")
    con.execute("DROP TABLE _dups")
    out = {}
    if rows[0]:
        out["exact_duplicate_merged"] = rows[0]
    if rows[1]:
        out["conflicting_duplicate"] = rows[1]
    return out
