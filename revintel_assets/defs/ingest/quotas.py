"""Quotas (docs/CONTRACT.md §2): an optional `quotas.csv` and Salesforce's `ForecastingQuota.csv`
-> staging.quotas (owner_type, owner, period_type, period_start, amount), read after the CRM so
that owners can be checked against the reps, managers and regions the export names.

quotas.csv: `owner_type` (rep, manager, region, total), `owner` (a rep's id or name, a manager's
or a region's name; empty for total), `period_start`, `period_type` (month, quarter), `amount`.
A quarter starts on the first day of a fiscal quarter (settings.fiscal_year_start_month; the rule
is rules.fiscal_quarter_start), a month on its first day.

ForecastingQuota.csv (Salesforce Collaborative Forecasts): `QuotaOwnerId` (a User, i.e. a rep:
the opportunities' OwnerId), `StartDate`, `QuotaAmount`; optional `IsAmount`, `IsQuantity`,
`PeriodId`, `Territory2Id`, `ProductFamily`. The export does not say whether the forecast
period is a month or a quarter: it is a month when some owner has two start dates less than 80
days apart, else a quarter. Quantity quotas, territory quotas and product-family quotas are
quarantined with their reason (revenue quotas per user are what the plan compares with).

Every rejected row goes to the quarantine with its reason; a file without the required columns
stops the import with a message naming the file and the columns expected.
"""

from __future__ import annotations

from pathlib import Path

from revintel_assets.defs.ingest.maventech import file_report
from revintel_assets.defs.ingest.parse_sql import Dialect, blank, col, lit
from revintel_assets.defs.ingest.quarantine import Rule, apply_rules, dedupe
from revintel_assets.defs.ingest.raw_csv import load_raw_csv
from revintel_assets.defs.ingest.salesforce import sfid
from revintel_assets.rules import fiscal_quarter_start_sql

QUOTA_FILES = ("quotas.csv", "quotas.xlsx")
SF_FILES = ("ForecastingQuota.csv", "ForecastingQuota.xlsx")  # any file may come as a workbook (CONTRACT §2)
REQUIRED = ["owner_type", "owner", "period_start", "period_type", "amount"]
SF_REQUIRED = ["QuotaOwnerId", "StartDate", "QuotaAmount"]
SF_OPTIONAL = ["IsAmount", "IsQuantity", "PeriodId", "Territory2Id", "ProductFamily", "QuotaQuantity"]
OWNER_TYPES = ("rep", "manager", "region", "total")
PERIOD_TYPES = ("month", "quarter")
MONTHLY_GAP_DAYS = 80  # two start dates of one owner closer than this: monthly forecast periods


def _known_owners(con) -> None:
    """_quota_owners(o_type, o_key, o_name) (names no export column has): every spelling an owner may be given in (a rep's id or
    name, lower-cased and trimmed) -> the name star tables use (rep_id, manager, region)."""
    key = "lower(trim({}))"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _quota_owners AS
        WITH reps AS (
            SELECT coalesce(rep_id, rep_name) AS rep_id, rep_name, manager, region FROM staging.reps
            UNION ALL SELECT coalesce(rep_id, rep_name), rep_name, NULL, NULL FROM staging.opportunities
            UNION ALL SELECT rep_name, rep_name, NULL, region FROM staging.transactions)
        SELECT o_type, o_key, min(o_name) AS o_name FROM (
            SELECT 'rep' AS o_type, {key.format('rep_id')} AS o_key, rep_id AS o_name FROM reps
            UNION ALL SELECT 'rep', {key.format('rep_name')}, rep_id FROM reps
            UNION ALL SELECT 'manager', {key.format('manager')}, trim(manager) FROM reps
            UNION ALL SELECT 'region', {key.format('region')}, trim(region) FROM reps)
        WHERE o_key IS NOT NULL AND o_name IS NOT NULL GROUP BY 1, 2""")


def _period_rules(start: str, ptype: str, fy_start_month: int) -> Rule:
    """A quarter must start a fiscal quarter, a month its month."""
    q_ok = f"({start} = {fiscal_quarter_start_sql(start, fy_start_month)})"
    return Rule("period_start_not_a_period_start",
                f"({ptype} = 'month' AND day({start}) <> 1) OR ({ptype} = 'quarter' AND NOT {q_ok})",
                f"'period_start ' || {start}::VARCHAR || ' is not the first day of a ' || {ptype} || "
                f"CASE WHEN {ptype} = 'quarter' THEN ' (fiscal year starting in month {fy_start_month}: "
                "REVINTEL_FISCAL_YEAR_START_MONTH)' ELSE '' END")


def load_quotas(con, folder: Path, fy_start_month: int = 1, mapping=None) -> dict[str, dict]:
    """Reads quotas.csv and ForecastingQuota.csv when present into staging.quotas; returns the
    files' reports (raw rows, quarantined per rule)."""
    out: dict[str, dict] = {}
    path = next((folder / f for f in QUOTA_FILES if (folder / f).exists()), None)
    sf = next((folder / f for f in SF_FILES if (folder / f).exists()), folder / SF_FILES[0])
    if path is None and not sf.exists():
        return out
    _known_owners(con)
    d = Dialect(mapping.date_formats, mapping.decimal) if mapping is not None else Dialect()
    if path is not None:
        out[path.name] = _quotas_csv(con, path, d, fy_start_month)
    if sf.exists():
        out[sf.name] = _forecasting_quota(con, sf, d, fy_start_month)
    return out


def _owner_rule(owner_type: str, owner: str, key: str | None = None, match: str = "o_key") -> Rule:
    """The owner must be one the export names: `key` (default lower(trim(owner))) compared with
    `match` (o_key: any spelling; o_name: the exact id, for Salesforce's case-sensitive ids)."""
    key = key or f"lower(trim({owner}))"
    return Rule("unknown_owner",
                f"{owner_type} <> 'total' AND NOT EXISTS (SELECT 1 FROM _quota_owners WHERE o_type = "
                f"{owner_type} AND {match} = {key})",
                f"{owner_type} || ' ''' || coalesce({owner}, '') || ''' is not a ' || {owner_type} || "
                "' the export names (reps: sales_teams / User / opportunity owners)'")


def _quotas_csv(con, path: Path, d: Dialect, fy: int) -> dict:
    t = "temp.raw_quotas"
    raw = load_raw_csv(con, path, t, REQUIRED, "quotas file (owner_type, owner, period_start, period_type, amount)")
    otype, ptype = f"lower(trim({col('owner_type')}))", f"lower(trim({col('period_type')}))"
    start, amount = d.date("period_start"), d.money("amount")
    rules = [
        Rule("bad_owner_type", f"{otype} IS NULL OR {otype} NOT IN {OWNER_TYPES}",
             f"'owner_type ''' || coalesce({col('owner_type')}, '') || ''' is not one of {', '.join(OWNER_TYPES)}'"),
        Rule("missing_owner", f"{otype} <> 'total' AND {blank('owner')}", "'owner is empty'"),
        Rule("bad_period_type", f"{ptype} IS NULL OR {ptype} NOT IN {PERIOD_TYPES}",
             f"'period_type ''' || coalesce({col('period_type')}, '') || ''' is not one of {', '.join(PERIOD_TYPES)}'"),
        Rule("bad_period_start", f"{blank('period_start')} OR {d.bad_date('period_start')}",
             f"'period_start ''' || coalesce({col('period_start')}, '') || ''' is not a date'"),
        _period_rules(start, ptype, fy),
        Rule("bad_amount", f"{blank('amount')} OR {d.bad_money('amount')}",
             f"'amount ''' || coalesce({col('amount')}, '') || ''' is not a number'"),
        Rule("negative_amount", f"{amount} < 0", f"'amount ' || {col('amount')} || ' is negative'"),
        _owner_rule(otype, col("owner")),
    ]
    caught = apply_rules(con, t, path.name, raw.columns, rules)
    key = f"{otype} || '|' || lower(trim(coalesce({col('owner')}, ''))) || '|' || {ptype} || '|' || {start}::VARCHAR"
    caught |= dedupe(con, t, key, path.name, raw.columns, "a quota of this owner and period")
    con.execute(f"""INSERT INTO staging.quotas SELECT {otype},
        CASE WHEN {otype} = 'total' THEN 'total' ELSE (SELECT o_name FROM _quota_owners
             WHERE o_type = {otype} AND o_key = lower(trim({col('owner')}))) END,
        {ptype}, {start}, {amount}, {lit(path.name)}, _line FROM {t}""")
    return file_report(raw, caught)


def _forecasting_quota(con, path: Path, d: Dialect, fy: int) -> dict:
    t = "temp.raw_sf_quotas"
    raw = load_raw_csv(con, path, t, SF_REQUIRED, "Salesforce ForecastingQuota export", optional=SF_OPTIONAL)
    cols = raw.columns
    start, amount = d.date("StartDate"), d.money("QuotaAmount")
    flag = {c: f"lower(trim(coalesce({col(c)}, ''))) IN ('true', '1')" if c in cols else "false"
            for c in ("IsQuantity", "IsAmount")}
    rules = [
        Rule("quantity_quota", f"{flag['IsQuantity']} AND NOT {flag['IsAmount']}",
             "'a quantity quota (IsQuantity): revintel compares revenue with revenue quotas'"),
        Rule("territory_quota", f"{blank('QuotaOwnerId')} AND NOT {blank('Territory2Id')}" if "Territory2Id" in cols
             else "false", "'a territory quota (Territory2Id, no QuotaOwnerId): territories are not segments here'"),
        Rule("product_family_quota", f"NOT {blank('ProductFamily')}" if "ProductFamily" in cols else "false",
             "'a product-family quota (ProductFamily): only whole-revenue quotas are compared'"),
        Rule("missing_owner", blank("QuotaOwnerId"), "'QuotaOwnerId is empty'"),
        Rule("bad_period_start", f"{blank('StartDate')} OR {d.bad_date('StartDate')}",
             f"'StartDate ''' || coalesce({col('StartDate')}, '') || ''' is not a date'"),
        Rule("bad_amount", f"{blank('QuotaAmount')} OR {d.bad_money('QuotaAmount')}",
             f"'QuotaAmount ''' || coalesce({col('QuotaAmount')}, '') || ''' is not a number'"),
        Rule("negative_amount", f"{amount} < 0", f"'QuotaAmount ' || {col('QuotaAmount')} || ' is negative'"),
        _owner_rule("'rep'", col("QuotaOwnerId"), sfid(col("QuotaOwnerId")), "o_name"),
    ]
    caught = apply_rules(con, t, path.name, cols, rules)
    # Monthly or quarterly from the gaps between an owner's start dates, per owner (one org can
    # hold both: quarterly quotas stored as months were read as three times a month's quota);
    # an owner with one start date takes the file's shortest gap.
    owner = sfid(col("QuotaOwnerId"))
    gaps = f"""(SELECT {owner} AS o, {start} - lag({start}) OVER (PARTITION BY {owner} ORDER BY {start}) AS g
                FROM {t})"""
    gap = con.execute(f"SELECT min(g) FROM {gaps} WHERE g > 0").fetchall()[0][0]
    ptype = "month" if gap is not None and gap < MONTHLY_GAP_DAYS else "quarter"
    con.execute(f"ALTER TABLE {t} ADD COLUMN _ptype VARCHAR")
    con.execute(f"""UPDATE {t} SET _ptype = p.ptype FROM (
        SELECT o, CASE WHEN min(g) FILTER (WHERE g > 0) IS NULL THEN {lit(ptype)}
                       WHEN min(g) FILTER (WHERE g > 0) < {MONTHLY_GAP_DAYS} THEN 'month' ELSE 'quarter' END AS ptype
        FROM {gaps} GROUP BY o) p WHERE {owner} = p.o""")
    caught |= apply_rules(con, t, path.name, cols, [_period_rules(start, "_ptype", fy)])
    caught |= dedupe(con, t, f"{owner} || '|' || {start}::VARCHAR", path.name, cols,
                     "a quota of this QuotaOwnerId and StartDate")
    con.execute(f"""INSERT INTO staging.quotas SELECT 'rep', {owner}, _ptype, {start}, {amount},
        {lit(path.name)}, _line FROM {t}""")
    kinds = dict(con.execute(f"SELECT _ptype, count(*) FROM {t} GROUP BY 1 ORDER BY 1").fetchall())
    return {**file_report(raw, caught), "period_type": ptype if len(kinds) < 2 else "mixed", "period_types": kinds}
