"""CRM as a Salesforce export (docs/CONTRACT.md §2.2) → the canonical staging tables.

Files (standard API field names, as Data Loader, Workbench or `sf data export` write them):
  Opportunity.csv         Id, StageName, CloseDate, CreatedDate, Amount; optional AccountId,
                          OwnerId, IsClosed, IsWon, ForecastCategoryName, LastStageChangeDate,
                          Product2Id / Product__c / ProductName, Account.Name, Owner.Name
  Account.csv             Id, Name; optional Industry, NumberOfEmployees, AnnualRevenue,
                          BillingCountry, ParentId
  User.csv                Id; optional Name (or FirstName + LastName), ManagerId, UserRole.Name / Region
  OpportunityHistory.csv  OpportunityId, CreatedDate, StageName; optional CloseDate, Amount
  Product2.csv            Id, Name; optional Family, ProductCode

Salesforce quirks handled: 18- and 15-character ids for the same record (the first 15 are the
id), ISO timestamps with milliseconds and zone ('2024-01-15T10:22:33.000Z'), booleans as
true/false or 1/0, relationship columns ('Account.Name'), the null id '000000000000000AAA'.

Stages: Prospecting, Qualification -> Prospecting; Needs Analysis, Value Proposition,
Id. Decision Makers, Perception Analysis -> Engaging; Proposal/Price Quote -> Proposal;
Negotiation/Review -> Negotiation; Closed Won -> Won; Closed Lost -> Lost (a mapping file adds
custom stages). IsClosed / IsWon win over the stage name when they disagree: the deal is kept,
taken as the flags say, and flagged in `import_flag` (counted in the import report).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.mapping import Mapping
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import CLOSED, STAGES, Dialect, blank, bool_expr, col, lit
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, dedupe, latest_date
from revintel_assets.defs.ingest.raw_csv import load_raw_csv

LAYOUT = "Salesforce export"
FILES = {
    "account": "Account.csv",
    "user": "User.csv",
    "product": "Product2.csv",
    "opportunity": "Opportunity.csv",
    "history": "OpportunityHistory.csv",
}
REQUIRED = {
    "opportunity": ["Id", "StageName", "CloseDate", "CreatedDate", "Amount"],
    "account": ["Id", "Name"],
    "user": ["Id"],
    "history": ["OpportunityId", "CreatedDate", "StageName"],
    "product": ["Id", "Name"],
}
OPTIONAL = {
    "opportunity": ["AccountId", "OwnerId", "IsClosed", "IsWon", "ForecastCategoryName", "Name",
                    "LastStageChangeDate", "Product2Id", "Product__c", "ProductName", "Account.Name",
                    "Owner.Name", "Pricebook2Id"],
    "account": ["Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry", "ParentId", "Parent.Name"],
    "user": ["Name", "FirstName", "LastName", "ManagerId", "UserRole.Name", "UserRoleName", "Region",
             "Division", "Department", "Manager.Name"],
    "history": ["CloseDate", "Amount"],
    "product": ["Family", "ProductCode"],
}
PRODUCT_COLUMNS = ["Product2Id", "Product__c", "ProductName", "Product2.Name", "Product"]


def sfid(expr: str) -> str:
    """A Salesforce id as a key: 18-character ids cut to their case-sensitive 15; blank and the
    all-zero null id are NULL."""
    t = f"nullif(trim({expr}), '')"
    return (f"(CASE WHEN {t} IS NULL OR regexp_full_match({t}, '0{{15}}(AAA)?') THEN NULL "
            f"WHEN regexp_full_match({t}, '[A-Za-z0-9]{{18}}') THEN left({t}, 15) ELSE {t} END)")


def present_files(folder: Path, mapping: Mapping | None = None) -> dict[str, Path]:
    mapping = mapping or Mapping()
    return {k: folder / mapping.file(f) for k, f in FILES.items() if (folder / mapping.file(f)).exists()}


def import_salesforce(con: duckdb.DuckDBPyConnection, folder: Path, mapping: Mapping | None = None) -> dict[str, dict]:
    mapping = mapping or Mapping()
    dialect = Dialect(mapping.date_formats, mapping.decimal, mapping.stages)
    files = present_files(folder, mapping)
    loaders = {"account": _accounts, "user": _users, "product": _products,
               "opportunity": _opportunities, "history": _history}
    report: dict[str, dict] = {}
    for kind, loader in loaders.items():
        if kind not in files:
            continue
        raw = load_raw_csv(con, files[kind], f"staging.raw_sf_{kind}", REQUIRED[kind], LAYOUT,
                           rename=mapping.columns_for(FILES[kind]), optional=OPTIONAL[kind],
                           delimiter=mapping.delimiter, encoding=mapping.encoding, canonical_file=FILES[kind])
        caught, extra = loader(con, raw.columns, files[kind].name, dialect)
        report[files[kind].name] = {**file_report(raw, caught), **extra}
    return report


def _opt(columns: list[str], *names: str, cast: str = "VARCHAR") -> str:
    present = [f"nullif(trim({col(n)}), '')" for n in names if n in columns]
    if not present:
        return f"NULL::{cast}"
    return f"coalesce({', '.join(present)})::{cast}" if cast == "VARCHAR" else \
        f"try_cast(coalesce({', '.join(present)}) AS {cast})"


def _accounts(con, columns, file, d: Dialect):
    caught = apply_rules(con, "staging.raw_sf_account", file, columns,
                         [Rule("missing_id", blank("Id"), "'Id is empty'")])
    caught |= dedupe(con, "staging.raw_sf_account", sfid('"Id"'), file, columns, "account Id")
    revenue = d.money("AnnualRevenue") if "AnnualRevenue" in columns else "NULL"
    con.execute(f"""INSERT INTO staging.accounts BY NAME SELECT
        {sfid('"Id"')} AS account_id, coalesce(nullif(trim("Name"), ''), {sfid('"Id"')}) AS account_name,
        {_opt(columns, 'Industry')} AS sector, {_opt(columns, 'NumberOfEmployees', cast='BIGINT')} AS employees,
        {revenue} AS annual_revenue, {_opt(columns, 'BillingCountry')} AS country,
        {sfid(col('ParentId')) if 'ParentId' in columns else 'NULL'} AS parent_id,
        {_opt(columns, 'Parent.Name')} AS parent_name,
        {lit(file)} AS source_file, _line FROM staging.raw_sf_account""")
    return caught, {}


def _users(con, columns, file, d: Dialect):
    caught = apply_rules(con, "staging.raw_sf_user", file, columns,
                         [Rule("missing_id", blank("Id"), "'Id is empty'")])
    caught |= dedupe(con, "staging.raw_sf_user", sfid('"Id"'), file, columns, "user Id")
    full = ("nullif(trim(concat_ws(' ', nullif(trim(\"FirstName\"), ''), nullif(trim(\"LastName\"), ''))), '')"
            if {"FirstName", "LastName"} <= set(columns) else "NULL")
    manager_id = sfid(col("ManagerId")) if "ManagerId" in columns else "NULL"
    con.execute(f"""INSERT INTO staging.reps BY NAME
        WITH u AS (SELECT {sfid('"Id"')} AS rep_id,
                          coalesce({_opt(columns, 'Name')}, {full}, {sfid('"Id"')}) AS rep_name,
                          {manager_id} AS manager_id, {_opt(columns, 'Manager.Name')} AS manager_name,
                          {_opt(columns, 'Region', 'UserRole.Name', 'UserRoleName', 'Division', 'Department')} AS region,
                          _line FROM staging.raw_sf_user)
        SELECT u.rep_id, u.rep_name, coalesce(m.rep_name, u.manager_name, u.manager_id) AS manager,
               u.region, {lit(file)} AS source_file, u._line
        FROM u LEFT JOIN u m ON m.rep_id = u.manager_id""")
    return caught, {}


def _products(con, columns, file, d: Dialect):
    caught = apply_rules(con, "staging.raw_sf_product", file, columns,
                         [Rule("missing_id", blank("Id"), "'Id is empty'")])
    caught |= dedupe(con, "staging.raw_sf_product", sfid('"Id"'), file, columns, "product Id")
    code = _opt(columns, "ProductCode")
    con.execute(f"""INSERT INTO staging.products BY NAME SELECT
        {sfid('"Id"')} AS product_id, coalesce(nullif(trim("Name"), ''), {code}, {sfid('"Id"')}) AS product_name,
        {_opt(columns, 'Family')} AS series,
        coalesce({_opt(columns, 'Family')}, 'Unassigned') AS division,
        {code} AS product_code, {lit(file)} AS source_file, _line
        FROM staging.raw_sf_product""")
    return caught, {}


def _opportunities(con, columns, file, d: Dialect):
    t = "staging.raw_sf_opportunity"
    named = d.stage("StageName")
    is_closed = bool_expr(col("IsClosed")) if "IsClosed" in columns else "NULL::BOOLEAN"
    is_won = bool_expr(col("IsWon")) if "IsWon" in columns else "NULL::BOOLEAN"
    closed = f"coalesce({is_closed}, {named} IN {CLOSED})"
    won = f"coalesce({is_won} AND {closed}, {named} = 'Won')"
    created, close = d.date("CreatedDate"), d.date("CloseDate")
    latest = latest_date(con, t, [created] + ([d.date("LastStageChangeDate")]
                                              if "LastStageChangeDate" in columns else []))
    caught = apply_rules(con, t, file, columns, [
        Rule("missing_opportunity_id", blank("Id"), "'Id is empty'"),
        Rule("unknown_stage", f"{named} IS NULL AND NOT coalesce({is_closed}, false)",
             f"'StageName ''' || coalesce(\"StageName\", '') || ''' is not one of {', '.join(STAGES)} "
             "nor a Salesforce standard stage, and the deal is not closed (a mapping file can name it under stages:)'"),
        Rule("bad_created_date", d.bad_date("CreatedDate"),
             "'CreatedDate ''' || \"CreatedDate\" || ''' is not a date'"),
        Rule("bad_close_date", d.bad_date("CloseDate"), "'CloseDate ''' || \"CloseDate\" || ''' is not a date'"),
        Rule("impossible_date", f"{d.impossible_date('CreatedDate', latest)} OR {d.impossible_date('CloseDate', latest)}",
             f"'impossible date: CreatedDate ' || coalesce(\"CreatedDate\", '') || ', CloseDate ' || "
             f"coalesce(\"CloseDate\", '') || ' (before 1990 or after {latest or 'the export'} + 5 years)'"),
        Rule("closed_without_close_date", f"{closed} AND {blank('CloseDate')}",
             "'deal is closed but has no CloseDate'"),
        Rule("closed_before_created", f"{closed} AND {close} < {created}",
             "'CloseDate ' || \"CloseDate\" || ' is before CreatedDate ' || \"CreatedDate\""),
        Rule("bad_amount", d.bad_money("Amount"), "'Amount ''' || \"Amount\" || ''' is not a number'"),
        Rule("negative_amount", f"{d.money('Amount')} < 0", "'Amount ' || \"Amount\" || ' is negative'"),
    ])
    caught |= dedupe(con, t, sfid('"Id"'), file, columns, "opportunity Id")
    stage = (f"CASE WHEN {closed} AND {won} THEN 'Won' WHEN {closed} THEN 'Lost' "
             f"WHEN {named} IN {CLOSED} THEN 'Negotiation' ELSE {named} END")
    flag = (f"CASE WHEN {named} IS NULL THEN 'StageName ''' || \"StageName\" || ''' unknown; taken as ' || ({stage}) "
            f"|| ' from IsClosed/IsWon' "
            f"WHEN ({named} IN {CLOSED}) <> {closed} OR ({closed} AND ({named} = 'Won') <> {won}) "
            f"OR (NOT {closed} AND coalesce({is_won}, false)) "
            f"THEN 'StageName ''' || \"StageName\" || ''' disagrees with IsClosed=' || coalesce(\"IsClosed\", '') "
            f"|| ', IsWon=' || coalesce(\"IsWon\", '') || '; taken as ' || ({stage}) END"
            if "IsClosed" in columns or "IsWon" in columns else
            f"CASE WHEN {named} IS NULL THEN 'unknown StageName' END")
    product = next((c for c in PRODUCT_COLUMNS if c in columns), None)
    product_ref = f"nullif(trim({col(product)}), '')" if product else "NULL"
    since = f"{d.date('LastStageChangeDate')}" if "LastStageChangeDate" in columns else "NULL::DATE"
    con.execute(f"""INSERT INTO staging.opportunities BY NAME SELECT
        {sfid('"Id"')} AS opportunity_id,
        {sfid(col('AccountId')) if 'AccountId' in columns else 'NULL'} AS account_id,
        coalesce({_opt(columns, 'Account.Name')}, {sfid(col('AccountId')) if 'AccountId' in columns else 'NULL'}) AS account_name,
        {sfid(col('OwnerId')) if 'OwnerId' in columns else 'NULL'} AS rep_id,
        coalesce({_opt(columns, 'Owner.Name')}, {sfid(col('OwnerId')) if 'OwnerId' in columns else 'NULL'}) AS rep_name,
        {sfid(product_ref) if product in ('Product2Id', 'Product__c') else 'NULL'} AS product_id,
        {product_ref} AS product_name,
        {stage} AS stage, {created} AS created_date,
        CASE WHEN {closed} THEN {close} END AS close_date, {close} AS expected_close_date,
        {since} AS stage_since, {d.money('Amount')} AS close_value,
        {closed} AS is_closed, {won} AS is_won, {flag} AS import_flag,
        {lit(file)} AS source_file, _line FROM {t}""")
    flagged = con.execute("SELECT count(*) FROM staging.opportunities WHERE import_flag IS NOT NULL "
                          "AND source_file = ?", [file]).fetchall()[0][0]
    return caught, ({"flagged_kept": {"stage_disagrees_with_isclosed_iswon": flagged}} if flagged else {})


def _history(con, columns, file, d: Dialect):
    t = "staging.raw_sf_history"
    close = d.date("CloseDate") if "CloseDate" in columns else "NULL::DATE"
    latest = latest_date(con, t, [d.date("CreatedDate")])
    rules = [
        Rule("missing_opportunity_id", blank("OpportunityId"), "'OpportunityId is empty'"),
        Rule("bad_changed_at", f"{blank('CreatedDate')} OR {d.bad_date('CreatedDate')}",
             "'CreatedDate ''' || coalesce(\"CreatedDate\", '') || ''' is not a date'"),
        Rule("unknown_stage", f"NOT {blank('StageName')} AND {d.stage('StageName')} IS NULL",
             "'StageName ''' || \"StageName\" || ''' is not a known stage (a mapping file can name it under stages:)'"),
        Rule("impossible_date", d.impossible_date("CreatedDate", latest),
             f"'impossible date: CreatedDate ' || \"CreatedDate\" || ' (before 1990 or after {latest} + 5 years)'"),
    ]
    if "CloseDate" in columns:
        rules.append(Rule("bad_expected_close_date", d.bad_date("CloseDate"),
                          "'CloseDate ''' || \"CloseDate\" || ''' is not a date'"))
    if "Amount" in columns:
        rules += [Rule("bad_amount", d.bad_money("Amount"), "'Amount ''' || \"Amount\" || ''' is not a number'"),
                  Rule("negative_amount", f"{d.money('Amount')} < 0", "'Amount ' || \"Amount\" || ' is negative'")]
    rules.append(Rule("unknown_opportunity",
                      f"{sfid(col('OpportunityId'))} NOT IN (SELECT opportunity_id FROM staging.opportunities "
                      "WHERE opportunity_id IS NOT NULL)",
                      "'OpportunityId ' || \"OpportunityId\" || ' is not in Opportunity.csv'"))
    caught = apply_rules(con, t, file, columns, rules)
    key = ", ".join(f"coalesce(trim({col(c)}), '')" for c in columns if c != "_line" and c != "Id")
    caught |= dedupe(con, t, key, file, columns, "history event", conflicts=False)
    amount = d.money("Amount") if "Amount" in columns else "NULL::DOUBLE"
    con.execute(f"""INSERT INTO staging.history BY NAME SELECT
        {sfid(col('OpportunityId'))} AS opportunity_id, {d.date('CreatedDate')} AS changed_at,
        {d.stage('StageName')} AS stage, {close} AS expected_close_date, {amount} AS amount,
        {lit(file)} AS source_file, _line FROM {t}""")
    return caught, {}
