"""CRM as a Salesforce export (docs/CONTRACT.md §2.2) → the canonical staging tables.

Files (standard API field names, as Data Loader, Workbench or `sf data export` write them):
  Opportunity.csv         Id, StageName, CloseDate, CreatedDate, Amount; optional AccountId,
                          OwnerId, IsClosed, IsWon, ForecastCategoryName, LastStageChangeDate,
                          Product2Id / Product__c / ProductName, Account.Name, Owner.Name,
                          Type, LeadSource (kept as deal_type, lead_source: win-model features)
  Account.csv             Id, Name; optional Industry, NumberOfEmployees, AnnualRevenue,
                          BillingCountry, ParentId
  User.csv                Id; optional Name (or FirstName + LastName), ManagerId, UserRole.Name / Region
  OpportunityHistory.csv  OpportunityId, CreatedDate, StageName; optional CloseDate, Amount
  Product2.csv            Id, Name; optional Family, ProductCode

Salesforce quirks handled: 18- and 15-character ids for the same record (the first 15 are the
id), ISO timestamps with milliseconds and zone ('2024-01-15T10:22:33.000Z'), booleans as
true/false or 1/0, relationship columns ('Account.Name'), the null id '000000000000000AAA'.

Stages: Prospecting, Qualification -> Prospecting; Needs Analysis, Value Proposition,
Id. Decision Makers, Perception Analysis, Discovery -> Engaging; Proposal/Price Quote,
Proposal/Quote -> Proposal; Negotiation/Review -> Negotiation; Closed Won, Won -> Won; Closed Lost,
Lost -> Lost (parse_sql.STAGE_ALIASES; a mapping file adds custom stages). IsClosed / IsWon win
over the stage name when they disagree: the deal is kept, taken as the flags say, and flagged in
`import_flag` (counted in the import report).

Unknown stages are placed before anything is quarantined: closed by IsClosed (won by IsWon); an
open deal by Probability (>= 90 Negotiation, >= 75 Proposal, >= 20 Engaging, else Prospecting),
else by ForecastCategoryName (Commit -> Negotiation, Best Case -> Proposal, Pipeline -> Engaging,
Omitted -> Prospecting), else, when IsClosed says it is open, Prospecting (kept in the pipeline at
the earliest open stage); without IsClosed, ForecastCategoryName Closed or Probability 100 is won,
Probability 0 lost once its CloseDate has passed (unless ForecastCategoryName says it is not Omitted). Placed deals are flagged
in `import_flag`; only a deal nothing places is quarantined (`unknown_stage`). ForecastCategoryName is kept as `forecast_category`.

Load dates: migrated orgs carry the bulk-load date in CreatedDate. A CreatedDate after CloseDate,
or the one CreatedDate shared by at least half of the rows (and 5 or more), is taken as a load
date: the row is kept and flagged in `import_flag`, and its creation is the earliest evidence:
LastStageChangeDate when earlier than the load date, CloseDate minus the typical cycle (median
CloseDate - CreatedDate of the closed deals whose CreatedDate is real; 90 days when there is
none), and never later than the load date itself.
OpportunityHistory.csv rows dated on such a date (the same rule over its CreatedDate) whose deal
closed before it are quarantined (`load_date`): they date the load, not a stage change, and the
deal takes the history derived from its dates (star/build.py fact_opportunity_history).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from revintel_assets.defs.ingest.mapping import Mapping
from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import (CLOSED, STAGES, Dialect, blank, bool_expr, col, currency_report,
                                                   decimal_flag,
                                                   forecast_category_expr, lit)
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, dedupe, latest_date
from revintel_assets.defs.ingest.raw_csv import load_raw_csv, norm

LAYOUT = "Salesforce export"
FILES = {
    "account": "Account.csv",
    "user": "User.csv",
    "product": "Product2.csv",
    "pricebook": "PricebookEntry.csv",
    "currency": "CurrencyType.csv",
    "opportunity": "Opportunity.csv",
    "history": "OpportunityHistory.csv",
}
REQUIRED = {
    "opportunity": ["Id", "StageName", "CloseDate", "CreatedDate", "Amount"],
    "account": ["Id", "Name"],
    "user": ["Id"],
    "history": ["OpportunityId", "CreatedDate", "StageName"],
    "product": ["Id", "Name"],
    "pricebook": ["Product2Id", "UnitPrice"],
    "currency": ["IsoCode", "ConversionRate"],
}
# A Salesforce opportunity *report* (Reports > Export > Details Only: report1713178320000.csv) labels
# its columns instead of using API names. Opportunity.csv column <- the report's label (spelling
# key, raw_csv.norm), the first present wins. Its 'Opportunity ID' column is needed: names repeat
# (a fixture's report: 540 of 1,500 deals shared a name) and line numbers move between exports.
REPORT_SIGNATURE = {"opportunityname", "stage", "closedate", "createddate"}
# "Opportunity ID (18-char)" and kin: a report column holding the case-safe id; "Opportunity
# Currency" / "Amount Currency": a multi-currency org's code per deal (without it their amounts
# were summed as one currency without a word)
REPORT_LABELS = {"Id": ["opportunityid", "opportunityid18char", "opportunityid18", "opportunityid18digit",
                        "opportunityidcasesafe", "casesafeopportunityid", "opportunityid15char"],
                 "Name": ["opportunityname"], "StageName": ["stage"],
                 "CurrencyIsoCode": ["opportunitycurrency", "amountcurrency", "currency", "currencyisocode"],
                 "CloseDate": ["closedate"], "CreatedDate": ["createddate"], "Amount": ["amount"],
                 "Owner.Name": ["opportunityowner", "owner"], "Account.Name": ["accountname"],
                 "Probability": ["probability"], "ForecastCategoryName": ["forecastcategory"],
                 "LastStageChangeDate": ["laststagechangedate"], "IsClosed": ["closed"], "IsWon": ["won"],
                 "Type": ["type", "opportunitytype"], "LeadSource": ["leadsource"]}


def report_columns(header: list[str]) -> dict[str, str] | None:
    """Opportunity.csv column -> the report's own column, when `header` is an opportunity report's
    (no "Id" when the report has no 'Opportunity ID' column)."""
    by_key: dict[str, str] = {}
    for h in header:
        by_key.setdefault(norm(h), h)
    if not REPORT_SIGNATURE <= set(by_key):
        return None
    out: dict[str, str] = {}
    for api, labels in REPORT_LABELS.items():
        found = next((by_key[k] for k in labels if k in by_key and by_key[k] not in out.values()), None)
        if found:
            out[api] = found
    # A multi-currency org's report has each deal's Amount in its own currency and 'Amount
    # (converted)' in the corporate one beside it: totals add the converted one (as HubSpot's
    # 'Amount in company currency'); its currency column, when there, names the currency. The
    # amounts in three currencies were added as given, a pipeline of 13.7M for 393k USD.
    if "amountconverted" in by_key:
        out["Amount"] = by_key["amountconverted"]
        out.pop("CurrencyIsoCode", None)
        if "amountconvertedcurrency" in by_key:
            out["CurrencyIsoCode"] = by_key["amountconvertedcurrency"]
    return out


OPTIONAL = {
    "opportunity": ["AccountId", "OwnerId", "IsClosed", "IsWon", "ForecastCategoryName", "Name", "Probability",
                    "LastStageChangeDate", "Product2Id", "Product__c", "ProductName", "Account.Name",
                    "Owner.Name", "Pricebook2Id", "Type", "LeadSource", "IsDeleted"],
    "account": ["Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry", "ParentId", "Parent.Name",
                "IsDeleted"],
    "user": ["Name", "FirstName", "LastName", "ManagerId", "UserRole.Name", "UserRoleName", "Region",
             "Division", "Department", "Manager.Name"],
    "history": ["CloseDate", "Amount", "IsDeleted"],
    "product": ["Family", "ProductCode"],
    "pricebook": ["Id", "Pricebook2Id", "IsActive", "CurrencyIsoCode", "Pricebook2.IsStandard"],
    "currency": ["Id", "IsCorporate", "IsActive", "DecimalPlaces"],
}
DEFAULT_CYCLE_DAYS = 90  # sales cycle assumed when no deal has a real CreatedDate
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
    dialect = Dialect(mapping.date_formats, mapping.decimal, mapping.stages, decimal_given=mapping.decimal_given)
    files = present_files(folder, mapping)
    loaders = {"account": _accounts, "user": _users, "product": _products, "pricebook": _price_entries,
               "currency": _currency_types, "opportunity": _opportunities, "history": _history}
    report: dict[str, dict] = {}
    con.execute(f"DROP TABLE IF EXISTS temp.{OPPORTUNITY_RATE}")  # another import's, on the same connection
    con.execute(f"DROP TABLE IF EXISTS temp.{DELETED}")
    for kind, loader in loaders.items():
        if kind not in files:
            continue
        raw = load_raw_csv(con, files[kind], f"temp.raw_sf_{kind}", REQUIRED[kind], LAYOUT,
                           rename=mapping.columns_for(FILES[kind]), optional=OPTIONAL[kind],
                           delimiter=mapping.delimiter, encoding=mapping.encoding, canonical_file=FILES[kind])
        caught, extra = loader(con, raw.columns, files[kind].name, dialect)
        report[files[kind].name] = {**file_report(raw, caught), **extra, **_currencies(con, raw, kind, dialect)}
        if extra.get(PLACED_NAMES):  # the history (loaded next) reads them; a mapping's stages: still win
            dialect = Dialect(dialect.date_formats, dialect.decimal, {**extra[PLACED_NAMES], **dialect.stages},
                              dialect.exclude, dialect.decimal_given)
    return report


def _currencies(con, raw, kind: str, dialect: Dialect) -> dict:
    """{"currencies": {ISO code: deals}} of a multi-currency org's Opportunity.csv (its
    CurrencyIsoCode column): one code names the source's currency (meta.source.currency); with
    CurrencyType.csv the amounts were converted, "converted_to" names the corporate currency;
    several without it are added as given, and the run says so. Without the column, the marks
    in the Amount cells (a report's "EUR 1,200.00") say the same."""
    if kind != "opportunity":
        return {}
    if "CurrencyIsoCode" not in raw.columns:
        # with the decimal separator the amounts were read with (settled per file): '11.500,00 €' under
        # the mapping's default '.' is no amount, and its euro went unsaid (the app then showed dollars)
        marks = (currency_report(con, "temp.raw_sf_opportunity", "Amount",
                                 dialect.settled(con, "temp.raw_sf_opportunity", [], ["Amount"]).decimal)
                 if "Amount" in raw.columns else {})
        return marks or _corporate_currency(con, raw)
    rows = con.execute(f"SELECT upper(trim({col('CurrencyIsoCode')})) AS c, count(*) FROM temp.raw_sf_opportunity "
                       f"WHERE nullif(trim({col('CurrencyIsoCode')}), '') IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    corporate = con.execute("SELECT iso_code FROM staging.currency_rates WHERE iso_code IS NOT NULL "
                            "ORDER BY coalesce(is_corporate, false) DESC, abs(rate - 1), _line LIMIT 1").fetchall()
    converted = {"converted_to": corporate[0][0]} if corporate and _converted(con) else {}
    if not rows:  # the column is there but empty on every row: bare amounts, as without it (a re-check)
        return _corporate_currency(con, raw)
    return {"currencies": dict(rows), **converted}


def _corporate_currency(con, raw) -> dict:
    """Bare amounts of an org whose CurrencyType.csv names one corporate currency are in it (an
    audit: EUR corporate, no CurrencyIsoCode, every amount shown in dollars); {} otherwise."""
    corporate = con.execute("SELECT DISTINCT iso_code FROM staging.currency_rates WHERE is_corporate "
                            "AND iso_code IS NOT NULL").fetchall()
    if len(corporate) != 1 or "Amount" not in raw.columns:
        return {}
    n = con.execute(f"SELECT count(*) FROM temp.raw_sf_opportunity WHERE nullif(trim({col('Amount')}), '') "
                    "IS NOT NULL").fetchall()[0][0]
    return {"currencies": {corporate[0][0]: n}} if n else {}


PLACED_NAMES = "custom_stages_placed"  # file report key: custom stage name -> the stage its deals were placed in


def _opt(columns: list[str], *names: str, cast: str = "VARCHAR") -> str:
    present = [f"nullif(trim({col(n)}), '')" for n in names if n in columns]
    if not present:
        return f"NULL::{cast}"
    return f"coalesce({', '.join(present)})::{cast}" if cast == "VARCHAR" else \
        f"try_cast(coalesce({', '.join(present)}) AS {cast})"


def _deleted(columns: list[str], what: str) -> list[Rule]:
    """A Data Loader "Export All" includes the recycle bin: IsDeleted true rows are not live records."""
    if "IsDeleted" not in columns:
        return []
    return [Rule("deleted_record", f"coalesce({bool_expr(col('IsDeleted'))}, false)",
                 f"'IsDeleted is true: a deleted {what} (Export All includes the recycle bin), not a live one'")]


def _accounts(con, columns, file, d: Dialect):
    caught = apply_rules(con, "temp.raw_sf_account", file, columns,
                         [*_deleted(columns, "account"), Rule("missing_id", blank("Id"), "'Id is empty'")])
    caught |= dedupe(con, "temp.raw_sf_account", sfid('"Id"'), file, columns, "account Id")
    revenue = d.money("AnnualRevenue") if "AnnualRevenue" in columns else "NULL"
    con.execute(f"""INSERT INTO staging.accounts BY NAME SELECT
        {sfid('"Id"')} AS account_id, coalesce(nullif(trim("Name"), ''), {sfid('"Id"')}) AS account_name,
        {_opt(columns, 'Industry')} AS sector, {_opt(columns, 'NumberOfEmployees', cast='BIGINT')} AS employees,
        {revenue} AS annual_revenue, {_opt(columns, 'BillingCountry')} AS country,
        {sfid(col('ParentId')) if 'ParentId' in columns else 'NULL'} AS parent_id,
        {_opt(columns, 'Parent.Name')} AS parent_name,
        {lit(file)} AS source_file, _line FROM temp.raw_sf_account""")
    return caught, {}


def _users(con, columns, file, d: Dialect):
    caught = apply_rules(con, "temp.raw_sf_user", file, columns,
                         [Rule("missing_id", blank("Id"), "'Id is empty'")])
    caught |= dedupe(con, "temp.raw_sf_user", sfid('"Id"'), file, columns, "user Id")
    full = ("nullif(trim(concat_ws(' ', nullif(trim(\"FirstName\"), ''), nullif(trim(\"LastName\"), ''))), '')"
            if {"FirstName", "LastName"} <= set(columns) else "NULL")
    manager_id = sfid(col("ManagerId")) if "ManagerId" in columns else "NULL"
    con.execute(f"""INSERT INTO staging.reps BY NAME
        WITH u AS (SELECT {sfid('"Id"')} AS rep_id,
                          coalesce({_opt(columns, 'Name')}, {full}, {sfid('"Id"')}) AS rep_name,
                          {manager_id} AS manager_id, {_opt(columns, 'Manager.Name')} AS manager_name,
                          {_opt(columns, 'Region', 'UserRole.Name', 'UserRoleName', 'Division', 'Department')} AS region,
                          _line FROM temp.raw_sf_user)
        SELECT u.rep_id, u.rep_name, coalesce(m.rep_name, u.manager_name, u.manager_id) AS manager,
               u.region, {lit(file)} AS source_file, u._line
        FROM u LEFT JOIN u m ON m.rep_id = u.manager_id""")
    return caught, {}


def _products(con, columns, file, d: Dialect):
    caught = apply_rules(con, "temp.raw_sf_product", file, columns,
                         [Rule("missing_id", blank("Id"), "'Id is empty'")])
    caught |= dedupe(con, "temp.raw_sf_product", sfid('"Id"'), file, columns, "product Id")
    code = _opt(columns, "ProductCode")
    con.execute(f"""INSERT INTO staging.products BY NAME SELECT
        {sfid('"Id"')} AS product_id, coalesce(nullif(trim("Name"), ''), {code}, {sfid('"Id"')}) AS product_name,
        {_opt(columns, 'Family')} AS series,
        coalesce({_opt(columns, 'Family')}, 'Unassigned') AS division,
        {code} AS product_code, {lit(file)} AS source_file, _line
        FROM temp.raw_sf_product""")
    return caught, {}


def _price_entries(con, columns, file, d: Dialect):
    """PricebookEntry.csv: a product's list price is its active entry's UnitPrice in the standard
    price book (`Pricebook2.IsStandard` when exported; else the book pricing the most products,
    as the standard one does in Salesforce), in the currency most entries use; a product that book
    lacks takes the median of its active entries in that currency. Every row is kept in
    staging.price_entries (the other books and currencies are read, not used)."""
    t = "temp.raw_sf_pricebook"
    price = d.money("UnitPrice")
    caught = apply_rules(con, t, file, columns, [
        Rule("missing_product_id", blank("Product2Id"), "'Product2Id is empty'"),
        Rule("bad_unit_price", f"{blank('UnitPrice')} OR {price} IS NULL",
             "'UnitPrice ''' || coalesce(\"UnitPrice\", '') || ''' is not a number'"),
        Rule("negative_list_price", f"{price} < 0", "'UnitPrice ' || \"UnitPrice\" || ' is negative'")])
    active = bool_expr(col("IsActive")) if "IsActive" in columns else "NULL::BOOLEAN"
    standard = bool_expr(col("Pricebook2.IsStandard")) if "Pricebook2.IsStandard" in columns else "NULL::BOOLEAN"
    book = sfid(col("Pricebook2Id")) if "Pricebook2Id" in columns else "NULL"
    currency = f"upper(nullif(trim({col('CurrencyIsoCode')}), ''))" if "CurrencyIsoCode" in columns else "NULL"
    con.execute(f"""INSERT INTO staging.price_entries BY NAME SELECT
        {sfid(col('Product2Id'))} AS product_id, {book} AS pricebook_id, {price} AS unit_price,
        {active} AS is_active, {currency} AS currency, {standard} AS is_standard,
        {lit(file)} AS source_file, _line FROM {t}""")
    con.execute(f"""UPDATE staging.products SET list_price = lp.price FROM (
        WITH usable AS (
            SELECT * FROM staging.price_entries
            WHERE source_file = {lit(file)} AND coalesce(is_active, true)
              AND currency IS NOT DISTINCT FROM (SELECT mode(currency) FROM staging.price_entries
                                                 WHERE source_file = {lit(file)})),
        book AS (
            SELECT pricebook_id FROM usable GROUP BY 1
            ORDER BY bool_or(coalesce(is_standard, false)) DESC, count(DISTINCT product_id) DESC,
                     pricebook_id NULLS LAST LIMIT 1)
        SELECT product_id,
               coalesce(min(unit_price) FILTER (WHERE pricebook_id IS NOT DISTINCT FROM (SELECT pricebook_id FROM book)),
                        median(unit_price)) AS price
        FROM usable GROUP BY 1) lp
        WHERE staging.products.product_id = lp.product_id AND staging.products.list_price IS NULL""")
    return caught, {}


def _currency_types(con, columns, file, d: Dialect):
    """CurrencyType.csv (a multi-currency org's rates: IsoCode, ConversionRate = units of that
    currency per unit of the corporate one, IsCorporate): every row kept in staging.currency_rates;
    Opportunity.csv's and OpportunityHistory.csv's amounts are converted with them (RATES)."""
    t = "temp.raw_sf_currency"
    rate = d.money("ConversionRate")
    caught = apply_rules(con, t, file, columns, [
        Rule("missing_iso_code", blank("IsoCode"), "'IsoCode is empty'"),
        Rule("bad_conversion_rate", f"{blank('ConversionRate')} OR NOT coalesce({rate} > 0, false)",
             "'ConversionRate ''' || coalesce(\"ConversionRate\", '') || ''' is not a positive number'")])
    corporate = bool_expr(col("IsCorporate")) if "IsCorporate" in columns else "NULL::BOOLEAN"
    con.execute(f"""INSERT INTO staging.currency_rates BY NAME SELECT upper(trim("IsoCode")) AS iso_code,
        {rate} AS rate, {corporate} AS is_corporate, {lit(file)} AS source_file, _line FROM {t}""")
    return caught, {}


RATES = ("(SELECT iso_code AS __iso, arg_min(rate, _line) AS __rate FROM staging.currency_rates "
         "GROUP BY 1)")  # (code, rate) of CurrencyType.csv, one per code (its first line wins)
OPPORTUNITY_RATE = "sf_opportunity_rate"  # temp (opportunity_id, rate): the history's amounts convert with it


def _converted(con) -> bool:
    """Were Opportunity.csv's amounts converted (OPPORTUNITY_RATE written) in this import?"""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                            [OPPORTUNITY_RATE]).fetchall()[0][0])


def _probability_scale(con, t: str, columns: list[str]) -> int:
    """100 when the file writes Probability as a fraction (every value in [0, 1], some strictly
    between, none with '%'): a report's percent cells saved as a workbook hold 1.0 for 100 %, and
    read as 1 % they made an audit's 26 won deals open pipeline. Else 1 (Salesforce's 0-100)."""
    if "Probability" not in columns:
        return 1
    p = f"try_cast(replace(trim({col('Probability')}), '%', '') AS DOUBLE)"
    top, between, percent = con.execute(f"SELECT max({p}), count(*) FILTER (WHERE {p} > 0 AND {p} < 1), "
                                        f"bool_or(contains({col('Probability')}, '%')) FROM {t}").fetchall()[0]
    # a value strictly between 0 and 1 is what shows a fraction: a file of 0s and 1s alone is read as
    # 0 % and 1 % (a re-check: two open 'Nurture' deals at 1 % were placed as Won)
    return 100 if top is not None and top <= 1 and between and not percent else 1


def _placed_stage(columns: list[str], named: str, is_closed: str, is_won: str, close: str, latest: str | None,
                  scale: int = 1) -> str:
    """The stage of a deal, placed from the other fields Salesforce exports when nothing knows its
    StageName (module docstring, "Unknown stages"); NULL when nothing places it. scale: what turns
    the file's Probability into 0-100 (_probability_scale)."""
    fc = forecast_category_expr(col("ForecastCategoryName")) if "ForecastCategoryName" in columns else "NULL"
    prob = (f"({scale} * try_cast(replace(trim({col('Probability')}), '%', '') AS DOUBLE))"
            if "Probability" in columns else "NULL")
    open_by = (f"CASE WHEN {prob} >= 90 THEN 'Negotiation' WHEN {prob} >= 75 THEN 'Proposal' "
               f"WHEN {prob} >= 20 THEN 'Engaging' WHEN {prob} >= 0 THEN 'Prospecting' "
               f"WHEN {fc} IN ('Commit', 'Closed') THEN 'Negotiation' WHEN {fc} = 'Best Case' THEN 'Proposal' "
               f"WHEN {fc} = 'Pipeline' THEN 'Engaging' WHEN {fc} = 'Omitted' THEN 'Prospecting' END")
    return (f"(CASE WHEN {named} IS NOT NULL THEN {named} "
            f"WHEN {is_closed} AND {is_won} THEN 'Won' WHEN {is_closed} THEN 'Lost' "
            # open by the export's own flag: a custom open stage nothing else places is kept in
            # the pipeline at the earliest open stage (quarantined, a third of an org's open
            # pipeline went missing), flagged like every placed deal
            f"WHEN {is_closed} = false THEN coalesce({open_by}, 'Prospecting') "
            f"WHEN {is_won} THEN 'Won' WHEN {fc} = 'Closed' OR {prob} >= 100 THEN 'Won' "
            # Probability 0 is Closed Lost's, as 100 is Closed Won's, once its CloseDate has passed
            # (`latest`: the file's latest creation or stage change): a report without IsClosed or
            # ForecastCategoryName showed its custom lost stage ('Lost to Competitor') as open. A 0 %
            # stage closing later ('On Hold', 'Nurture') stays open
            f"WHEN coalesce({fc}, 'Omitted') = 'Omitted' AND {prob} = 0 AND {close} <= "
            f"{f'DATE {lit(latest)}' if latest else 'NULL'} THEN 'Lost' "
            f"ELSE {open_by} END)")


def _load_date(con, t: str, created: str) -> tuple[str | None, int, int]:
    """A CreatedDate shared by most rows (at least 5 and half of them): the date the records were
    bulk-loaded, not their creation. Returns (that date, its rows, all rows)."""
    n = con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
    row = con.execute(f"SELECT d, c FROM (SELECT {created} AS d, count(*) AS c FROM {t} GROUP BY 1) "
                      "WHERE d IS NOT NULL ORDER BY c DESC, d DESC LIMIT 1").fetchall()
    if row and row[0][1] >= max(5, n / 2):
        return row[0][0].isoformat(), row[0][1], n
    return None, 0, n


def _opportunities(con, columns, file, d: Dialect):
    t = "temp.raw_sf_opportunity"
    d = d.settled(con, t, [c for c in ("CreatedDate", "CloseDate", "LastStageChangeDate") if c in columns],
                  [c for c in ("Amount",) if c in columns])
    is_closed = bool_expr(col("IsClosed")) if "IsClosed" in columns else "NULL::BOOLEAN"
    is_won = bool_expr(col("IsWon")) if "IsWon" in columns else "NULL::BOOLEAN"
    known = d.stage("StageName")
    created, close = d.date("CreatedDate"), d.date("CloseDate")
    since = d.date("LastStageChangeDate") if "LastStageChangeDate" in columns else "NULL::DATE"
    latest = latest_date(con, t, [created] + ([since] if "LastStageChangeDate" in columns else []))
    scale = _probability_scale(con, t, columns)
    named = _placed_stage(columns, known, is_closed, is_won, close, latest, scale)
    closed = f"coalesce({is_closed}, {named} IN {CLOSED})"
    won = f"coalesce({is_won} AND {closed}, {named} = 'Won')"
    # CreatedDate as a load date (module docstring, "Load dates"): after CloseDate, or the one date
    # most rows share. Creation is then the earliest evidence: LastStageChangeDate when earlier,
    # CloseDate minus the typical cycle of the deals whose CreatedDate is real (90 days without any).
    bulk, bulk_rows, n_rows = _load_date(con, t, created)
    loaded = f"coalesce({created} > {close}" + (f" OR {created} = DATE {lit(bulk)}, false)" if bulk else ", false)")
    cycle = con.execute(f"""SELECT round(median(datediff('day', {created}, {close})))::INTEGER FROM {t}
        WHERE {closed} AND NOT {loaded} AND {close} >= {created}""").fetchall()[0][0]
    cycle = int(cycle) if cycle is not None and cycle >= 0 else DEFAULT_CYCLE_DAYS
    evidence = (f"least(CASE WHEN {since} < {created} THEN {since} END, "
                f"({close} - INTERVAL {cycle} DAY)::DATE, {created})")
    created_kept = f"(CASE WHEN {loaded} THEN {evidence} ELSE {created} END)"
    # A multi-currency org with its CurrencyType.csv: amounts in the corporate currency (a blank
    # CurrencyIsoCode is in it); a code without a rate is quarantined, never added as given.
    rated = "CurrencyIsoCode" in columns and bool(con.execute("SELECT count(*) FROM staging.currency_rates").fetchall()[0][0])
    if "IsDeleted" in columns:  # remembered for the history before the rules take the rows out
        con.execute(f"CREATE TEMP TABLE {DELETED} AS SELECT {sfid(col('Id'))} AS opportunity_id FROM {t} "
                    f"WHERE coalesce({bool_expr(col('IsDeleted'))}, false)")
    caught = apply_rules(con, t, file, columns, [
        *_deleted(columns, "opportunity"),
        Rule("missing_opportunity_id", blank("Id"), "'Id is empty'"),
        Rule("unknown_stage", f"{named} IS NULL AND NOT coalesce({is_closed}, false)",
             f"'StageName ''' || coalesce(\"StageName\", '') || ''' is not one of {', '.join(STAGES)} "
             "nor a Salesforce standard stage, and IsClosed, IsWon, ForecastCategoryName and Probability "
             "do not place it (a mapping file can name it under stages:)'"),
        Rule("bad_created_date", d.bad_date("CreatedDate"),
             "'CreatedDate ''' || \"CreatedDate\" || ''' is not a date'"),
        Rule("bad_close_date", d.bad_date("CloseDate"), "'CloseDate ''' || \"CloseDate\" || ''' is not a date'"),
        Rule("impossible_date", f"{d.impossible_date('CreatedDate', latest)} OR {d.impossible_date('CloseDate', latest)}",
             f"'impossible date: CreatedDate ' || coalesce(\"CreatedDate\", '') || ', CloseDate ' || "
             f"coalesce(\"CloseDate\", '') || ' (before 1990 or after {latest or 'the export'} + 5 years)'"),
        Rule("closed_without_close_date", f"{closed} AND {blank('CloseDate')}",
             "'deal is closed but has no CloseDate'"),
        Rule("bad_amount", d.bad_money("Amount"), "'Amount ''' || \"Amount\" || ''' is not a number'"),
        Rule("negative_amount", f"{d.money('Amount')} < 0", "'Amount ' || \"Amount\" || ' is negative'"),
        *([Rule("unknown_currency", f"NOT {blank('CurrencyIsoCode')} AND upper(trim(\"CurrencyIsoCode\")) NOT IN "
                                    "(SELECT iso_code FROM staging.currency_rates WHERE iso_code IS NOT NULL)",
                "'CurrencyIsoCode ' || \"CurrencyIsoCode\" || ' has no rate in CurrencyType.csv'")] if rated else []),
    ])
    caught |= dedupe(con, t, sfid('"Id"'), file, columns, "opportunity Id")
    # From here on each derived value is computed once, in layered subqueries, and read by name:
    # inlined, the nested expressions made one ~350 KB INSERT that DuckDB took ~3 s to bind per file.
    src = (f"(SELECT *, coalesce(__is_won AND __closed, __named = 'Won') AS __won, {loaded} AS __loaded FROM "
           f"(SELECT *, coalesce(__is_closed, __named IN {CLOSED}) AS __closed FROM "
           f"(SELECT *, {_placed_stage(columns, '__known', '__is_closed', '__is_won', '__close', latest, scale)} AS __named FROM "
           f"(SELECT *, {is_closed} AS __is_closed, {is_won} AS __is_won, {known} AS __known, "
           f"{created} AS __created, {close} AS __close, {since} AS __since, "
           f"{'coalesce(__rate, 1.0)' if rated else '1.0'} AS __fx FROM {t}"
           + (f" LEFT JOIN {RATES} r ON r.__iso = upper(trim({t}.\"CurrencyIsoCode\"))" if rated else "") + "))))")
    is_closed, is_won, known, created, close, since = "__is_closed", "__is_won", "__known", "__created", "__close", "__since"
    named, closed, won, loaded = "__named", "__closed", "__won", "__loaded"
    evidence = (f"least(CASE WHEN {since} < {created} THEN {since} END, "
                f"({close} - INTERVAL {cycle} DAY)::DATE, {created})")
    created_kept = f"(CASE WHEN {loaded} THEN {evidence} ELSE {created} END)"
    stage = (f"CASE WHEN {closed} AND {won} THEN 'Won' WHEN {closed} THEN 'Lost' "
             f"WHEN {named} IN {CLOSED} THEN 'Negotiation' ELSE {named} END")
    placed = f"'StageName ''' || coalesce(\"StageName\", '') || ''' unknown; placed as ' || ({stage})"
    sources = [n for n in ("IsClosed", "IsWon", "ForecastCategoryName", "Probability") if n in columns]
    if sources:
        placed += f" || ' from {'/'.join(sources)}'"
    stage_flag = (f"CASE WHEN {known} IS NULL THEN {placed} "
                  f"WHEN ({known} IN {CLOSED}) <> {closed} OR ({closed} AND ({known} = 'Won') <> {won}) "
                  f"OR (NOT {closed} AND coalesce({is_won}, false)) "
                  f"THEN 'StageName ''' || \"StageName\" || ''' disagrees with IsClosed=' || coalesce(\"IsClosed\", '') "
                  f"|| ', IsWon=' || coalesce(\"IsWon\", '') || '; taken as ' || ({stage}) END"
                  if "IsClosed" in columns or "IsWon" in columns else
                  f"CASE WHEN {known} IS NULL THEN {placed} END")
    load_flag = (f"CASE WHEN {loaded} THEN 'CreatedDate ' || {created}::VARCHAR || "
                 f"' is a load date (' || CASE WHEN {created} > {close} THEN 'after CloseDate' "
                 f"ELSE 'shared by {bulk_rows} of {n_rows} rows' END || '); created taken as ' || "
                 f"coalesce({evidence}::VARCHAR, '?') || ' (earliest of LastStageChangeDate and "
                 f"CloseDate - {cycle} days)' END")
    product = next((c for c in PRODUCT_COLUMNS if c in columns), None)
    product_ref = f"nullif(trim({col(product)}), '')" if product else "NULL"
    fc = forecast_category_expr(col("ForecastCategoryName")) if "ForecastCategoryName" in columns else "NULL::VARCHAR"
    con.execute(f"""INSERT INTO staging.opportunities BY NAME SELECT
        {sfid('"Id"')} AS opportunity_id,
        {sfid(col('AccountId')) if 'AccountId' in columns else 'NULL'} AS account_id,
        coalesce({_opt(columns, 'Account.Name')}, {sfid(col('AccountId')) if 'AccountId' in columns else 'NULL'}) AS account_name,
        {sfid(col('OwnerId')) if 'OwnerId' in columns else 'NULL'} AS rep_id,
        coalesce({_opt(columns, 'Owner.Name')}, {sfid(col('OwnerId')) if 'OwnerId' in columns else 'NULL'}) AS rep_name,
        {sfid(product_ref) if product in ('Product2Id', 'Product__c') else 'NULL'} AS product_id,
        {product_ref} AS product_name,
        {stage} AS stage, {created_kept} AS created_date,
        CASE WHEN {closed} THEN {close} END AS close_date, {close} AS expected_close_date,
        {since} AS stage_since, {d.money('Amount')} / __fx AS close_value,
        {closed} AS is_closed, {won} AS is_won, {fc} AS forecast_category,
        {_opt(columns, 'Type')} AS deal_type, {_opt(columns, 'LeadSource')} AS lead_source,
        nullif(concat_ws('; ', {stage_flag}, {load_flag}), '') AS import_flag,
        {lit(file)} AS source_file, _line FROM {src}""")
    if rated:
        oid = sfid('"Id"')
        con.execute(f"CREATE OR REPLACE TEMP TABLE {OPPORTUNITY_RATE} AS SELECT {oid} AS opportunity_id, __fx AS rate FROM {src}")
    flags = decimal_flag(con, t, d)
    for key, cond in (("created_date_is_load_date", "import_flag LIKE '%is a load date%'"),
                      ("stage_placed_from_other_fields", "import_flag LIKE '%unknown; placed as%'"),
                      ("stage_disagrees_with_isclosed_iswon", "import_flag LIKE '%disagrees with IsClosed%'")):
        n = con.execute(f"SELECT count(*) FROM staging.opportunities WHERE {cond} AND source_file = ?",
                        [file]).fetchall()[0][0]
        if n:
            flags[key] = n
    # Custom stage names as the deals in them were placed (most deals' placement; ties by name): the
    # history reads the same names (its rows carry no IsClosed / Probability of their own), and
    # quarantined 17 % of a real org's history rows as unknown stages that Opportunity.csv had placed.
    placed_names = dict(con.execute(f"""SELECT k, s FROM (
        SELECT lower(trim("StageName")) AS k, {stage} AS s, count(*) AS n FROM {src}
        WHERE {known} IS NULL AND nullif(trim("StageName"), '') IS NOT NULL GROUP BY 1, 2)
        WHERE s IS NOT NULL QUALIFY row_number() OVER (PARTITION BY k ORDER BY n DESC, s) = 1 ORDER BY k""").fetchall())
    return caught, {**({"flagged_kept": flags} if flags else {}), **({PLACED_NAMES: placed_names} if placed_names else {})}


DELETED = "sf_deleted_opportunities"  # temp table: the ids Opportunity.csv marks IsDeleted (its rows leave the raw table)
DELETED_IDS = f"SELECT opportunity_id FROM temp.{DELETED}"


def _has_deleted(con) -> bool:
    """Opportunity.csv (read before the history) had deleted rows."""
    return bool(con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{DELETED}'").fetchall()[0][0])


def _history(con, columns, file, d: Dialect):
    t = "temp.raw_sf_history"
    d = d.settled(con, t, [c for c in ("CreatedDate", "CloseDate") if c in columns], [c for c in ("Amount",) if c in columns])
    close = d.date("CloseDate") if "CloseDate" in columns else "NULL::DATE"
    latest = latest_date(con, t, [d.date("CreatedDate")])
    rules = [
        *_deleted(columns, "history row"),
        *([Rule("deleted_opportunity", f"{sfid(col('OpportunityId'))} IN ({DELETED_IDS})",
                "'OpportunityId ' || \"OpportunityId\" || ' is a deleted opportunity (IsDeleted in Opportunity.csv)'")]
          if _has_deleted(con) else []),
        Rule("missing_opportunity_id", blank("OpportunityId"), "'OpportunityId is empty'"),
        Rule("bad_changed_at", f"{blank('CreatedDate')} OR {d.bad_date('CreatedDate')}",
             "'CreatedDate ''' || coalesce(\"CreatedDate\", '') || ''' is not a date'"),
        Rule("unknown_stage", f"NOT {blank('StageName')} AND {d.stage('StageName')} IS NULL",
             "'StageName ''' || \"StageName\" || ''' is not a known stage (a mapping file can name it under stages:)'"),
        Rule("impossible_date", d.impossible_date("CreatedDate", latest),
             f"'impossible date: CreatedDate ' || \"CreatedDate\" || ' (before 1990 or after {latest} + 5 years)'"),
    ]
    # History rows a migration inserted carry the bulk-load date (module docstring, "Load dates").
    # On a deal closed before it, such a row says when the row was loaded, not when the stage
    # changed: kept, it dated the deal's creation after its close, and the deal left training.
    bulk, bulk_rows, n_rows = _load_date(con, t, d.date("CreatedDate"))
    if bulk:
        rules.append(Rule(
            "load_date", f"""{d.date('CreatedDate')} = DATE {lit(bulk)} AND {sfid(col('OpportunityId'))} IN (
                SELECT opportunity_id FROM staging.opportunities WHERE is_closed AND close_date < DATE {lit(bulk)})""",
            f"'CreatedDate ' || \"CreatedDate\" || ' is the bulk-load date ({bulk_rows:,} of {n_rows:,} history rows), "
            "after the deal closed: not when its stage changed (the deal takes the history its dates give)'"))
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
    # in the opportunity's currency: converted at its rate when Opportunity.csv's amounts were
    converted = _converted(con)
    rate = "coalesce(r.rate, 1.0)" if converted else "1.0"
    join = (f" LEFT JOIN temp.{OPPORTUNITY_RATE} r ON r.opportunity_id = {sfid(col('OpportunityId'))}" if converted else "")
    con.execute(f"""INSERT INTO staging.history BY NAME SELECT
        {sfid(col('OpportunityId'))} AS opportunity_id, {d.date('CreatedDate')} AS changed_at,
        {d.stage('StageName')} AS stage, {close} AS expected_close_date, {amount} / {rate} AS amount,
        {lit(file)} AS source_file, _line FROM {t}{join}""")
    return caught, {}
