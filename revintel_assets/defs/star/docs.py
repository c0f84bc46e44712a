"""COMMENT ON text for the analyst tables (shown by `DESCRIBE`/duckdb_columns() and the Dagster UI)."""

from __future__ import annotations

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "star.dim_account": ("One row per account (customer). Stub rows (is_stub) stand for accounts "
                         "referenced by deals or orders but missing from the accounts file.", {
        "account_id": "Account key (source id, or the account name when the source has no id)",
        "account_name": "Account name as exported",
        "sector": "Industry sector as exported",
        "employees": "Head count",
        "annual_revenue": "Annual revenue in the source's unit (MavenTech: millions)",
        "country": "Country of the account's office",
        "parent_account_id": "account_id of the parent company, NULL for a top-level account",
        "is_stub": "TRUE when the account is only known from deals or orders",
    }),
    "star.dim_rep": ("One row per sales rep.", {
        "rep_id": "Rep key (the rep's name in MavenTech-layout sources)",
        "manager": "The rep's manager", "region": "Regional office / branch",
        "is_stub": "TRUE when the rep is only known from deals or orders",
    }),
    "star.dim_product": ("One row per product / SKU with its division.", {
        "product_id": "Product key (SKU when the source has one, else the product name)",
        "series": "Product series", "division": "Product division (from the products file or SKU map)",
        "list_price": "List price in the source's currency",
        "is_stub": "TRUE when the product is only known from deals or orders",
        "sellable": "FALSE for SKUs missing from the SKU map ('Unmapped SKUs'), products of no known division "
                    "('Unassigned'), the mapping's non_sellable_divisions and divisions with non-positive net "
                    "revenue: kept here, never modelled by ICP nor recommended as whitespace",
    }),
    "star.unmapped_skus": ("One row per SKU of the transaction log that the SKU map does not name. Its lines "
                           "stay in star.fact_transactions under division 'Unmapped SKUs' (not sellable).", {
        "sku": "The SKU as exported", "lines": "Order lines with it", "revenue": "Their net amount",
        "first_line": "First line of the SKU in source_file",
    }),
    "star.dim_date": ("Calendar from the first date in the data to 400 days past the last.", {
        "week_start": "Monday of the ISO week", "month_start": "First day of the month",
        "quarter": "Calendar quarter 1-4", "quarter_start": "First day of the quarter",
    }),
    "star.fact_opportunity": ("One row per opportunity in its latest known state. Never used as a "
                              "feature source for past dates: features.* use the history instead.", {
        "account_id": "NULL when the export has no account for the deal",
        "stage": "Prospecting, Engaging, Proposal, Negotiation, Won or Lost",
        "forecast_category": "Commit, Best Case, Pipeline, Omitted or Closed: the CRM's own (Salesforce "
                             "ForecastCategoryName) for open deals, else from the stage (Negotiation Commit, "
                             "Proposal Best Case, earlier stages Pipeline); closed deals Closed (won) / Omitted (lost)",
        "import_flag": "Why the row was kept although something in it was off (stage placed from other "
                       "fields, CreatedDate taken as a load date, ...); NULL when nothing was",
        "deal_type": "The CRM's deal type as exported (Salesforce Type, HubSpot Deal Type: New Business, "
                     "Renewal, ...); NULL when the export has none",
        "lead_source": "The CRM's lead source as exported (Salesforce LeadSource); NULL when the export has none",
        "created_date": "First history event, else engage_date (NULL for undated prospecting deals)",
        "expected_close_date": "Latest expected close date known; close_date for closed deals",
        "amount": "Deal value: won value, else the latest amount in the history",
        "close_value": "close_value as exported (0 for lost MavenTech deals)",
        "source_line": "Line of the row in source_file",
    }),
    "star.fact_opportunity_history": ("One row per change of stage, expected close date or amount. "
                                      "derived = reconstructed from dates because the source has no history.", {
        "changed_at": "Date of the change (derived: the day the export gives evidence for it)",
        "derived": "TRUE when reconstructed from dates: created / engaged; an open deal's current stage, amount and "
                   "expected close from LastStageChangeDate, else the export date; a closed deal's outcome at its "
                   "close date",
    }),
    "star.fact_transactions": ("One row per order line, partitioned by month_start. source = "
                               "'sales_log' for a transaction log, 'crm_won' when won deals stand in for it.", {
        "amount": "Line value (gross profit in the wide sales-log layout)",
        "month_start": "Partition column: first day of the order's month",
        "source_line": "Line of the order in source_file",
    }),
    "star.quotas": ("One row per quota: an owner (rep, manager, region or the total) and a month or fiscal "
                    "quarter, from quotas.csv or Salesforce ForecastingQuota.csv (docs/CONTRACT.md §2).", {
        "owner_type": "rep, manager, region or total",
        "owner": "rep_id for a rep (matched by id or name), the manager's or region's name, 'total'",
        "period_type": "month or quarter (quarters follow REVINTEL_FISCAL_YEAR_START_MONTH)",
        "period_start": "First day of the month or fiscal quarter",
        "period_end": "Last day of the period",
        "amount": "Quota: revenue to book (won amount by close date) in the period",
    }),
    "star.quarantine": ("Raw rows that did not make it into the star schema, with the reason. "
                        "Raw rows = star rows + quarantine rows, per file.", {
        "source_file": "File the row came from", "line_number": "Physical line in that file (header = 1)",
        "raw_row": "The row's fields joined by commas", "reason": "Why the row was rejected",
    }),
}


def table_doc(table: str) -> dict:
    comment, columns = TABLES.get(table, (None, {}))
    return {"comment": comment, "column_comments": columns or None}
