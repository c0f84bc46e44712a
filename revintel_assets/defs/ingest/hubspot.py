"""CRM as a HubSpot deals export (docs/CONTRACT.md §2.5) → the canonical staging tables.

HubSpot's "Export all deals" writes one file (CSV or .xlsx, named e.g.
`hubspot-crm-exports-all-deals-2024-06-03.csv`), recognised by its header: `Record ID` (older
exports: `Deal ID`), `Deal Name`, `Deal Stage` and more; used here: `Amount`, `Close Date`,
`Create Date`, `Deal owner`, `Pipeline`, `Associated Company` (or `Associated Company (Primary)`),
`Amount in company currency` (a multi-currency portal's converted amount, used instead of `Amount`;
without it `Deal currency code`'s codes are reported as Salesforce's are),
and when present `Deal probability`, `Is Closed Won`, `Is closed`, `Forecast category` (kept as
`forecast_category`: Commit, Best case, Pipeline, Not forecasted -> Omitted), `Deal Type` and the
lead source (`Original Source Type`, `Original Traffic Source` or `Lead Source`; kept as
`deal_type`, `lead_source`: win-model features). Other columns are ignored.

Stages: HubSpot's default labels (Appointment Scheduled, Qualified To Buy, Presentation
Scheduled, Decision Maker Bought-In, Contract Sent, Closed Won, Closed Lost) and their internal
names are built in (parse_sql.STAGE_ALIASES), also with the pipeline in brackets after them
('Closed Won (Sales Pipeline)', as portals with several pipelines export them); a custom stage is placed by `Is closed` /
`Is Closed Won`, else by `Deal probability` (1 Won, 0 Lost, >= 0.9 Negotiation, >= 0.75 Proposal,
>= 0.2 Engaging, else Prospecting), an open one (`Is closed` false) with no probability as
Prospecting, and quarantined only when nothing places it. Dates: HubSpot
writes `2024-01-15 10:22` or `2024-01-15`, US exports `01/15/2024 10:22 AM`.

A `Create Date` after `Close Date` (deals imported into HubSpot after they closed) is a load
date: the row is kept, flagged in `import_flag`, and created = Close Date minus the median cycle
of the other closed deals (90 days without any), as for Salesforce.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.mapping import Mapping
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import (CLOSED, STAGES, Dialect, blank, bool_expr, col, currency_report,
                                                   decimal_flag,
                                                   forecast_category_expr, lit, stage_expr)
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, dedupe, latest_date
from revintel_assets.defs.ingest.raw_csv import load_raw_csv

LAYOUT = "HubSpot deals export"
FILE = "deals.csv"  # canonical name; the export's own name is found by its header (source.py)
SIGNATURE = {"dealname", "dealstage"}  # plus Record ID or Deal ID, checked as a required column
REQUIRED = ["Record ID", "Deal Stage", "Create Date"]
# the deal's lead source, as HubSpot portals label it (the first present is read)
LEAD_SOURCE = ["Original Source Type", "Original Traffic Source", "Lead Source"]
# a multi-currency portal's converted amount first: it is the amount when the export has it
AMOUNTS = ("Amount in company currency", "Amount")
OPTIONAL = ["Deal Name", "Amount", "Amount in company currency", "Deal currency code", "Close Date", "Deal owner",
            "Pipeline", "Associated Company",
            "Deal probability", "Is Closed Won", "Is closed", "Deal Type", "Forecast category", *LEAD_SOURCE]
# HubSpot's internal values of its default Deal Type options, written as the labels users see
DEAL_TYPES = {"newbusiness": "New Business", "existingbusiness": "Existing Business"}
HUBSPOT_DATES = ["%m/%d/%Y %I:%M %p", "%Y-%m-%d %I:%M %p", "%m/%d/%Y %I:%M:%S %p"]
DEFAULT_CYCLE_DAYS = 90


def present(folder: Path, mapping: Mapping | None = None) -> bool:
    mapping = mapping or Mapping()
    return (folder / mapping.file(FILE)).exists()


def import_hubspot(con: duckdb.DuckDBPyConnection, folder: Path, mapping: Mapping | None = None) -> dict[str, dict]:
    mapping = mapping or Mapping()
    d = Dialect([*mapping.date_formats, *HUBSPOT_DATES], mapping.decimal, mapping.stages,
                decimal_given=mapping.decimal_given)
    path = folder / mapping.file(FILE)
    raw = load_raw_csv(con, path, "temp.raw_hs_deals", REQUIRED, LAYOUT,
                       rename=mapping.columns_for(FILE), optional=OPTIONAL, delimiter=mapping.delimiter,
                       encoding=mapping.encoding, canonical_file=FILE)
    caught, extra = _deals(con, raw.columns, path.name, d)
    report = {**file_report(raw, caught), **extra}
    if not set(AMOUNTS) & set(raw.columns):  # said, as MavenTech's missing columns are
        report["missing_optional_columns"] = [*report.get("missing_optional_columns", []), "Amount"]
    return {path.name: report}


def _opt(columns: list[str], name: str) -> str:
    return f"nullif(trim({col(name)}), '')" if name in columns else "NULL::VARCHAR"


def _deal_type(columns: list[str]) -> str:
    if "Deal Type" not in columns:
        return "NULL::VARCHAR"
    cases = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in DEAL_TYPES.items())
    return f"coalesce(CASE lower({_opt(columns, 'Deal Type')}) {cases} END, {_opt(columns, 'Deal Type')})"


def _deals(con, columns, file, d: Dialect):
    t = "temp.raw_hs_deals"
    d = d.settled(con, t, [c for c in ("Create Date", "Close Date") if c in columns],
                  [c for c in AMOUNTS if c in columns])
    # A portal with several pipelines may export a stage with its pipeline in brackets ('Closed Won
    # (Sales Pipeline)'): the label without them is tried when the whole label is not a stage.
    bare = f"regexp_replace({col('Deal Stage')}, '\\s*\\([^()]*\\)\\s*$', '')"
    known = f"coalesce({d.stage('Deal Stage')}, {stage_expr(bare, d.stages)})"
    is_closed = bool_expr(col("Is closed")) if "Is closed" in columns else "NULL::BOOLEAN"
    is_won = bool_expr(col("Is Closed Won")) if "Is Closed Won" in columns else "NULL::BOOLEAN"
    # 0.2, 20 or "20%": a percent sign always means percent ("0%" and "1%" were NULL: a custom lost stage
    # at 0% went to the quarantine)
    number = f"try_cast(replace(trim({col('Deal probability')}), '%', '') AS DOUBLE)"
    prob = (f"(CASE WHEN {number} > 1 OR contains({col('Deal probability')}, '%') THEN {number} / 100 "
            f"ELSE {number} END)" if "Deal probability" in columns else "NULL")
    placed = (f"(CASE WHEN {known} IS NOT NULL THEN {known} "
              f"WHEN {is_closed} AND {is_won} THEN 'Won' WHEN {is_closed} THEN 'Lost' "
              f"WHEN {is_won} THEN 'Won' "
              f"WHEN {prob} >= 1 AND {is_closed} IS NULL THEN 'Won' WHEN {prob} <= 0 AND {is_closed} IS NULL THEN 'Lost' "
              f"WHEN {prob} >= 0.9 THEN 'Negotiation' WHEN {prob} >= 0.75 THEN 'Proposal' "
              f"WHEN {prob} >= 0.2 THEN 'Engaging' WHEN {prob} >= 0 THEN 'Prospecting' "
              # open by the export's own flag and nothing else places it (a custom pipeline's stage):
              # kept in the pipeline at the earliest open stage, flagged, not quarantined
              f"WHEN {is_closed} = false THEN 'Prospecting' END)")
    closed = f"coalesce({placed} IN {CLOSED}, false)"
    created = d.date("Create Date")
    close = d.date("Close Date") if "Close Date" in columns else "NULL::DATE"
    # A multi-currency portal exports each deal's Amount in its own currency and the converted
    # "Amount in company currency" beside it: totals add the converted one.
    money = next((c for c in AMOUNTS if c in columns), None)
    amount = d.money(money) if money else "NULL::DOUBLE"
    latest = latest_date(con, t, [created])
    loaded = f"coalesce({created} > {close}, false)"
    cycle = con.execute(f"""SELECT round(median(datediff('day', {created}, {close})))::INTEGER FROM {t}
        WHERE {closed} AND NOT {loaded} AND {close} >= {created}""").fetchall()[0][0]
    cycle = int(cycle) if cycle is not None and cycle >= 0 else DEFAULT_CYCLE_DAYS
    created_kept = f"(CASE WHEN {loaded} THEN least(({close} - INTERVAL {cycle} DAY)::DATE, {created}) ELSE {created} END)"
    rules = [
        Rule("missing_opportunity_id", blank("Record ID"), "'Record ID is empty'"),
        Rule("unknown_stage", f"{placed} IS NULL",
             f"'Deal Stage ''' || coalesce({col('Deal Stage')}, '') || ''' is not one of {', '.join(STAGES)} "
             "nor a HubSpot default stage, and Is closed / Is Closed Won / Deal probability do not place it "
             "(a mapping file can name it under stages:)'"),
        Rule("bad_created_date", f"{blank('Create Date')} OR {d.bad_date('Create Date')}",
             f"'Create Date ''' || coalesce({col('Create Date')}, '') || ''' is not a date'"),
        Rule("impossible_date", d.impossible_date("Create Date", latest),
             f"'impossible date: Create Date ' || {col('Create Date')} || ' (before 1990 or after {latest} + 5 years)'"),
    ]
    if "Close Date" in columns:
        rules += [Rule("bad_close_date", d.bad_date("Close Date"),
                       f"'Close Date ''' || {col('Close Date')} || ''' is not a date'"),
                  Rule("impossible_date", d.impossible_date("Close Date", latest),
                       f"'impossible date: Close Date ' || {col('Close Date')} || ' (before 1990 or after {latest} + 5 years)'")]
    rules.append(Rule("closed_without_close_date", f"{closed} AND {close} IS NULL", "'deal is closed but has no Close Date'"))
    if money:
        rules += [Rule("bad_amount", d.bad_money(money), f"'{money} ''' || {col(money)} || ''' is not a number'"),
                  Rule("negative_amount", f"{amount} < 0", f"'{money} ' || {col(money)} || ' is negative'")]
    caught = apply_rules(con, t, file, columns, rules)
    caught |= dedupe(con, t, f"trim({col('Record ID')})", file, columns, "Record ID")
    stage_flag = (f"CASE WHEN {known} IS NULL THEN 'Deal Stage ''' || {col('Deal Stage')} || ''' unknown; placed as ' "
                  f"|| {placed} END")
    load_flag = (f"CASE WHEN {loaded} THEN 'Create Date ' || {created}::VARCHAR || ' is after Close Date (a load date); "
                 f"created taken as Close Date - {cycle} days' END")
    # a deal associated with several companies is exported with their names joined by ';' ('Acme Corp;
    # Globex'): the first is its account, and the row says so (an audit: 12 accounts for 8 companies,
    # each list a company of its own, without a word)
    account, company_flag = "NULL::VARCHAR", "NULL"
    if "Associated Company" in columns:
        company = col("Associated Company")
        account = f"nullif(trim(list_filter(string_split({company}, ';'), lambda s: trim(s) <> '')[1]), '')"
        company_flag = (f"CASE WHEN contains({company}, ';') THEN 'Associated Company lists several companies (' "
                        f"|| {company} || '); the first named is the account' END")
    con.execute(f"""INSERT INTO staging.opportunities BY NAME SELECT
        trim({col('Record ID')}) AS opportunity_id, {account} AS account_name,
        {_opt(columns, 'Deal owner')} AS rep_name, NULL::VARCHAR AS product_name,
        {placed} AS stage, {created_kept} AS created_date,
        CASE WHEN {closed} THEN {close} END AS close_date, {close} AS expected_close_date,
        {amount} AS close_value, {closed} AS is_closed, {placed} = 'Won' AS is_won,
        {forecast_category_expr(col('Forecast category')) if 'Forecast category' in columns else 'NULL'} AS forecast_category,
        {_deal_type(columns)} AS deal_type,
        {next((_opt(columns, c) for c in LEAD_SOURCE if c in columns), 'NULL::VARCHAR')} AS lead_source,
        nullif(concat_ws('; ', {stage_flag}, {load_flag}, {company_flag}), '') AS import_flag,
        {lit(file)} AS source_file, _line FROM {t}""")
    flags = decimal_flag(con, t, d)
    for key, cond in (("created_date_is_load_date", "import_flag LIKE '%a load date%'"),
                      ("stage_placed_from_other_fields", "import_flag LIKE '%unknown; placed as%'"),
                      ("account_first_of_several_companies", "import_flag LIKE '%lists several companies%'")):
        n = con.execute(f"SELECT count(*) FROM staging.opportunities WHERE {cond} AND source_file = ?",
                        [file]).fetchall()[0][0]
        if n:
            flags[key] = n
    extra = {"flagged_kept": flags} if flags else {}
    if money == "Amount" and "Deal currency code" in columns:  # amounts as given: their currencies said
        codes = con.execute(f"SELECT upper(trim({col('Deal currency code')})), count(*) FROM {t} "
                            f"WHERE nullif(trim({col('Deal currency code')}), '') IS NOT NULL GROUP BY 1 "
                            "ORDER BY 2 DESC, 1").fetchall()
        extra |= {"currencies": dict(codes)} if codes else {}
    elif money:  # no code column: the marks in the amount cells ("EUR 1,200.00") name the currencies
        extra |= currency_report(con, t, money, d.decimal)
    return caught, extra
