"""SELECTs that build the star schema (docs/CONTRACT.md §3) from the canonical staging tables.

Each function returns SQL; the assets hand it to the warehouse, which runs it inside the write
transaction, so the large tables never pass through Python. Foreign keys that do not resolve
keep their row and point at a stub member flagged `is_stub` (docs/CONTRACT.md §2: "unknown" members are
kept and reported, not dropped).
"""

from __future__ import annotations

from revintel_assets.defs.ingest.parse_sql import NOT_SELLABLE, UNMAPPED, key_sql, lit
from revintel_assets.rules import FORECAST_CATEGORY_BY_STAGE

_ACCOUNT_NAMES = f"""(SELECT account_id, {key_sql('account_name')} AS k FROM staging.accounts)"""


def dim_account() -> str:
    return f"""
    WITH base AS (
        SELECT account_id, account_name, sector, employees, annual_revenue, country, parent_name,
               parent_id, year_established, false AS is_stub FROM staging.accounts),
    crm_stubs AS (
        SELECT DISTINCT coalesce(account_id, account_name) AS account_id, account_name FROM staging.opportunities
        WHERE coalesce(account_id, account_name) IS NOT NULL
          AND (account_id IS NULL OR account_id NOT IN (SELECT account_id FROM base WHERE account_id IS NOT NULL))
          AND (account_id IS NOT NULL OR {key_sql('account_name')} NOT IN (SELECT k FROM {_ACCOUNT_NAMES} WHERE k IS NOT NULL))
          AND coalesce(account_id, account_name) NOT IN (SELECT account_id FROM base WHERE account_id IS NOT NULL)),
    tx_stubs AS (
        SELECT customer_id AS account_id, min(customer_name) AS account_name FROM staging.transactions
        WHERE customer_id NOT IN (SELECT account_id FROM base WHERE account_id IS NOT NULL)
          AND coalesce({key_sql('customer_name')}, '') NOT IN (SELECT k FROM {_ACCOUNT_NAMES} WHERE k IS NOT NULL)
        GROUP BY 1),
    stubs AS (
        SELECT account_id, any_value(account_name) AS account_name
        FROM (SELECT * FROM crm_stubs UNION ALL SELECT * FROM tx_stubs) GROUP BY 1)
    SELECT b.account_id, b.account_name, b.sector, b.employees, b.annual_revenue, b.country,
           coalesce(pi.account_id, p.account_id) AS parent_account_id, b.year_established, b.is_stub
    FROM base b
    LEFT JOIN (SELECT DISTINCT account_id FROM base) pi ON pi.account_id = b.parent_id
    LEFT JOIN (SELECT k, min(account_id) AS account_id FROM {_ACCOUNT_NAMES} GROUP BY k) p
           ON p.k = {key_sql('b.parent_name')}
    UNION ALL
    SELECT account_id, account_name, NULL, NULL, NULL, NULL, NULL, NULL, true FROM stubs
    ORDER BY account_id"""


def dim_rep() -> str:
    """The reps of the reps file, then a stub for each rep a deal or an order line names that the
    file does not. A rep given by name (MavenTech's sales_agent, a HubSpot owner, a sales log's Rep)
    is matched by spelling key, as accounts and products are ('MOSES FRASE' is Moses Frase: an
    audit's variant made a stub rep without manager or region); an id (Salesforce) exactly."""
    return f"""
    WITH reps AS (SELECT coalesce(rep_id, rep_name) AS rep_id, rep_name, manager, region FROM staging.reps),
    named AS (SELECT DISTINCT {key_sql('rep_name')} AS k FROM reps WHERE rep_name IS NOT NULL),
    seen AS (
        SELECT DISTINCT coalesce(rep_id, rep_name) AS rep_id, rep_name, NULL AS region, rep_id IS NULL AS by_name
        FROM staging.opportunities WHERE coalesce(rep_id, rep_name) IS NOT NULL
        UNION ALL SELECT DISTINCT rep_name, rep_name, region, true FROM staging.transactions WHERE rep_name IS NOT NULL),
    unknown AS (
        SELECT *, CASE WHEN by_name THEN {key_sql('rep_id')} ELSE rep_id END AS k FROM seen
        WHERE rep_id NOT IN (SELECT rep_id FROM reps WHERE rep_id IS NOT NULL)),
    stubs AS (
        SELECT min(rep_id) AS rep_id, min(rep_name) AS rep_name, min(region) AS region FROM unknown
        WHERE NOT (by_name AND k IN (SELECT k FROM named WHERE k IS NOT NULL)) GROUP BY k)
    SELECT rep_id, rep_name, manager, region, false AS is_stub FROM reps
    UNION ALL SELECT rep_id, rep_name, NULL, region, true FROM stubs
    ORDER BY rep_id"""


def _rep_by_name(names: str) -> str:
    """(name, rep_id) for each distinct rep name of `names` (a query with a `name` column): the rep
    of star.dim_rep whose name has the same spelling key (dim_rep)."""
    return f"""(SELECT n.name, r.rep_id FROM (SELECT DISTINCT name FROM ({names}) WHERE name IS NOT NULL) n
        JOIN (SELECT {key_sql('rep_name')} AS k, min(rep_id) AS rep_id FROM star.dim_rep GROUP BY 1) r
          ON r.k = {key_sql('n.name')})"""


def dim_product() -> str:
    """Products with `sellable`: FALSE for SKUs the SKU map lacks, products of no known division,
    the mapping's non_sellable_divisions, and divisions whose net revenue in the transaction log
    is not positive (postage, fees, credits). The ICP models and whitespace cover sellable
    divisions only (icp/features.py::divisions_sql)."""
    not_sellable = ", ".join(lit(d) for d in NOT_SELLABLE)
    return f"""
    WITH products AS (
        SELECT product_id, product_name, series, division, list_price, is_stub FROM ({_dim_product()})),
    net AS (SELECT division, sum(amount) AS revenue FROM staging.transactions GROUP BY 1)
    SELECT p.*, (p.division NOT IN ({not_sellable})
                 AND p.division NOT IN (SELECT division FROM staging.non_sellable WHERE division IS NOT NULL)
                 AND coalesce(n.revenue > 0, NOT EXISTS (SELECT 1 FROM staging.transactions))) AS sellable
    FROM products p LEFT JOIN net n USING (division)
    ORDER BY product_id"""


def _dim_product() -> str:
    return f"""
    WITH known AS (
        SELECT {key_sql('product_name')} AS k FROM staging.products
        UNION ALL SELECT {key_sql('product_id')} FROM staging.products),
    crm_stubs AS (
        SELECT DISTINCT coalesce(product_id, product_name) AS product_id, product_name FROM staging.opportunities o
        WHERE coalesce(product_id, product_name) IS NOT NULL
          AND (product_id IS NULL OR product_id NOT IN (SELECT product_id FROM staging.products
                                                        WHERE product_id IS NOT NULL))
          AND {key_sql('coalesce(product_id, product_name)')} NOT IN (SELECT k FROM known WHERE k IS NOT NULL)
          AND {key_sql('product_name')} NOT IN (SELECT k FROM known WHERE k IS NOT NULL)),
    sku_stubs AS (
        SELECT product_id, min(division) AS division FROM staging.transactions
        WHERE product_id NOT IN (SELECT product_id FROM staging.products WHERE product_id IS NOT NULL)
        GROUP BY 1)
    SELECT product_id, product_name, series, division, list_price, false AS is_stub FROM staging.products
    UNION ALL SELECT product_id, any_value(product_name), NULL, 'Unassigned', NULL, true FROM crm_stubs
        WHERE product_id NOT IN (SELECT product_id FROM sku_stubs) GROUP BY product_id
    UNION ALL SELECT s.product_id, s.product_id, NULL, coalesce(m.division, s.division), NULL, true
        FROM sku_stubs s LEFT JOIN staging.sku_map m ON m.sku = s.product_id
    ORDER BY product_id"""


def _resolved_opportunities() -> str:
    """Opportunities with their keys resolved against the dimensions, and history summarised.
    An id (Salesforce) matches exactly; a name matches by spelling key ('GTXPro' = 'GTX Pro')."""
    return f"""
    WITH prod AS (
        SELECT product_id, division, {key_sql('product_name')} AS k FROM star.dim_product
        UNION SELECT product_id, division, {key_sql('product_id')} FROM star.dim_product),
    acc AS (
        SELECT account_id, {key_sql('account_name')} AS k FROM star.dim_account),
    hist AS (
        SELECT opportunity_id, min(changed_at) AS first_change,
               min(changed_at) FILTER (WHERE stage NOT IN ('Prospecting')) AS first_engaged,
               -- two changes on one day: the later line, as the snapshots order events (deals/snapshot.py);
               -- arg_max on the date alone took either, and a deal's fact row kept an older close date
               last(expected_close_date ORDER BY changed_at, _line) FILTER (WHERE expected_close_date IS NOT NULL)
                   AS expected_close,
               last(amount ORDER BY changed_at, _line) FILTER (WHERE amount IS NOT NULL) AS last_amount
        FROM staging.history GROUP BY 1)
    SELECT o.* EXCLUDE (account_id, product_id, rep_id),
           coalesce(ai.account_id, a.account_id) AS account_id,
           coalesce(pi.product_id, p.product_id) AS product_id,
           coalesce(pi.division, p.division) AS division,
           coalesce(o.rep_id, rn.rep_id, o.rep_name) AS rep_id,
           h.first_change, h.first_engaged, h.expected_close, h.last_amount
    FROM staging.opportunities o
    LEFT JOIN star.dim_account ai ON ai.account_id = o.account_id
    LEFT JOIN (SELECT k, min(account_id) AS account_id FROM acc GROUP BY k) a
           ON o.account_id IS NULL AND a.k = {key_sql('o.account_name')}
    LEFT JOIN star.dim_product pi ON pi.product_id = o.product_id
    LEFT JOIN (SELECT k, min(product_id) AS product_id, min(division) AS division FROM prod GROUP BY k) p
           ON p.k = {key_sql('coalesce(o.product_id, o.product_name)')}
    LEFT JOIN hist h USING (opportunity_id)
    LEFT JOIN {_rep_by_name("SELECT rep_name AS name FROM staging.opportunities WHERE rep_id IS NULL")} rn
           ON o.rep_id IS NULL AND rn.name = o.rep_name"""


# forecast_category (CONTRACT §3): the CRM's own (Salesforce ForecastCategoryName, or a column the
# mapping names) when it has one, else the stage rule of revintel_assets/rules.py.


def fact_opportunity() -> str:
    derived = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in FORECAST_CATEGORY_BY_STAGE.items())
    return f"""
    SELECT opportunity_id, account_id, rep_id, product_id,
           coalesce(division, 'Unassigned') AS division, stage,
           -- the earlier of the first logged change and the creation the source gives: a migrated
           -- org's history starts on its load date, after the deals open then were created (their
           -- CreatedDate, a load date too, is already the earliest evidence: ingest/salesforce.py)
           coalesce(least(first_change, created_date), engage_date) AS created_date,
           coalesce(engage_date, first_engaged) AS engage_date,
           coalesce(expected_close, expected_close_date, close_date) AS expected_close_date,
           close_date,
           CASE WHEN stage = 'Won' THEN coalesce(close_value, last_amount)
                ELSE coalesce(last_amount, nullif(close_value, 0)) END AS amount,
           close_value, coalesce(is_closed, stage IN ('Won', 'Lost')) AS is_closed,
           coalesce(is_won, stage = 'Won') AS is_won,
           CASE WHEN coalesce(is_closed, stage IN ('Won', 'Lost')) THEN
                CASE WHEN coalesce(is_won, stage = 'Won') THEN 'Closed' ELSE 'Omitted' END
                ELSE coalesce(CASE WHEN forecast_category <> 'Closed' THEN forecast_category END,
                              CASE stage {derived} END, 'Pipeline') END AS forecast_category,
           import_flag, deal_type, lead_source,
           source_file, _line AS source_line
    FROM ({_resolved_opportunities()})
    ORDER BY opportunity_id"""


def quotas() -> str:
    """Quotas as imported (quotas.py checked owners, periods and amounts); a period's last day."""
    return """
    SELECT owner_type, owner, period_type, period_start,
           (period_start + CASE period_type WHEN 'month' THEN INTERVAL 1 MONTH ELSE INTERVAL 3 MONTH END
            - INTERVAL 1 DAY)::DATE AS period_end,
           amount, source_file, _line AS source_line
    FROM staging.quotas ORDER BY owner_type, owner, period_type, period_start"""


def fact_opportunity_history() -> str:
    """The source's change log; for deals without one, events derived from the dates the
    source has, flagged `derived`. One rule for every as-of date, training or scoring: an event
    is dated when the export gives evidence for it, never earlier.

    - created (Salesforce, HubSpot): the deal is prospecting, no amount known yet;
    - engaged (MavenTech): the deal is engaging;
    - an open deal's current stage, amount and expected close: known on the export date at the
      latest (meta.source.export_date), from LastStageChangeDate when the CRM gives it (never
      before creation). Left out when it adds nothing to the events above (a MavenTech open deal
      is engaging since its engage date, with no amount); kept for a deal with no event above (a
      MavenTech deal prospecting, with no date at all: 500 open deals had no history row);
    - a closed deal's final stage and amount: known on its close date;
    - a logged deal created before its first logged change (an org migrated while it was open:
      its log starts on the load date): prospecting from its creation until then.
    A past as-of date therefore never shows a stage the deal reached after it."""
    return """
    WITH logged AS (
        SELECT h.opportunity_id, h.changed_at, h.stage, h.expected_close_date, h.amount, false AS derived,
               h.source_file, h._line AS source_line
        FROM staging.history h JOIN star.fact_opportunity f USING (opportunity_id)),
    unlogged AS (
        SELECT * FROM star.fact_opportunity
        WHERE opportunity_id NOT IN (SELECT opportunity_id FROM logged)),
    export AS (SELECT max(export_date)::DATE AS d FROM meta.source),
    since AS (SELECT opportunity_id, min(stage_since) AS stage_since FROM staging.opportunities
              WHERE stage_since IS NOT NULL GROUP BY 1),
    current_state AS (
        SELECT u.opportunity_id, u.stage, u.expected_close_date, u.amount,
               -- greatest/least skip NULLs: no creation or engage date leaves the export date
               greatest(least(coalesce(s.stage_since, e.d), e.d), u.created_date, u.engage_date) AS known_at
        FROM unlogged u CROSS JOIN export e LEFT JOIN since s USING (opportunity_id)
        WHERE NOT u.is_closed AND coalesce(s.stage_since, e.d) IS NOT NULL
          AND (u.stage IS DISTINCT FROM CASE WHEN u.engage_date IS NOT NULL THEN 'Engaging' ELSE 'Prospecting' END
               OR u.amount IS NOT NULL OR u.expected_close_date IS NOT NULL
               -- no start event below (no creation or engage date: MavenTech's prospecting deals)
               OR (u.engage_date IS NULL AND u.created_date IS NULL))),
    -- an earlier event on the day the current state is known would tie with it: the current state wins
    starts AS (
        SELECT u.opportunity_id, u.engage_date AS changed_at, 'Engaging' AS stage FROM unlogged u
        WHERE u.engage_date IS NOT NULL
        UNION ALL  -- a CRM with a creation date (Salesforce, HubSpot): every deal starts prospecting
        SELECT u.opportunity_id, u.created_date, 'Prospecting' FROM unlogged u
        WHERE u.created_date IS NOT NULL AND u.engage_date IS NULL),
    derived AS (
        SELECT st.opportunity_id, st.changed_at, st.stage,
               NULL::DATE AS expected_close_date, NULL::DOUBLE AS amount, true AS derived,
               NULL AS source_file, NULL::BIGINT AS source_line
        FROM starts st LEFT JOIN current_state c
          ON c.opportunity_id = st.opportunity_id AND c.known_at = st.changed_at
        WHERE c.opportunity_id IS NULL
        UNION ALL
        SELECT opportunity_id, known_at, stage, expected_close_date, amount, true, NULL, NULL FROM current_state
        UNION ALL
        SELECT opportunity_id, close_date, stage, close_date, amount, true, NULL, NULL
        FROM unlogged WHERE is_closed
        UNION ALL
        SELECT f.opportunity_id, f.created_date, 'Prospecting', NULL::DATE, NULL::DOUBLE, true, NULL, NULL
        FROM star.fact_opportunity f JOIN (SELECT opportunity_id, min(changed_at) AS first FROM logged GROUP BY 1) l
          USING (opportunity_id)
        WHERE f.created_date < l.first)
    SELECT * FROM logged UNION ALL SELECT * FROM derived
    ORDER BY opportunity_id, changed_at"""


def fact_transactions() -> str:
    """Sales-log lines; when the source has no log, won opportunities stand in for it."""
    return f"""
    WITH by_name AS (SELECT {key_sql('account_name')} AS k, min(account_id) AS account_id
                     FROM star.dim_account GROUP BY 1),
    logged AS (
        SELECT coalesce(a.account_id, n.account_id, t.customer_id) AS account_id, t.order_date,
               t.product_id, t.division, t.quantity, t.amount, t.source, t.source_file,
               t._line AS source_line, coalesce(rn.rep_id, t.rep_name) AS rep_id
        FROM staging.transactions t
        LEFT JOIN star.dim_account a ON a.account_id = t.customer_id
        LEFT JOIN by_name n ON n.k = {key_sql('t.customer_name')}
        LEFT JOIN {_rep_by_name("SELECT rep_name AS name FROM staging.transactions")} rn ON rn.name = t.rep_name),
    from_crm AS (
        SELECT account_id, close_date AS order_date, product_id, division, 1.0 AS quantity,
               close_value AS amount, 'crm_won' AS source, source_file, source_line, rep_id
        FROM star.fact_opportunity
        WHERE is_won AND account_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM staging.transactions))
    SELECT *, date_trunc('month', order_date)::DATE AS month_start
    FROM (SELECT * FROM logged UNION ALL SELECT * FROM from_crm)"""


def unmapped_skus() -> str:
    """Order lines whose SKU the SKU map does not name (issue 13): per SKU, lines, quantity and
    revenue. They stay in star.fact_transactions under division 'Unmapped SKUs', not sellable."""
    return f"""
    SELECT product_id AS sku, count(*)::BIGINT AS lines, sum(quantity) AS quantity, sum(amount) AS revenue,
           min(order_date) AS first_order, max(order_date) AS last_order,
           min({'{'}'line': _line, 'file': source_file{'}'}).file AS source_file, min(_line) AS first_line
    FROM staging.transactions WHERE division = {lit(UNMAPPED)}
    GROUP BY 1 ORDER BY revenue DESC, sku"""


def dim_date() -> str:
    """Every day from the first date in the data to a year past the last (forecast horizon)."""
    return """
    WITH bounds AS (
        SELECT min(d) AS lo, max(d) AS hi FROM (
            SELECT created_date AS d FROM star.fact_opportunity
            UNION ALL SELECT coalesce(close_date, expected_close_date) FROM star.fact_opportunity
            UNION ALL SELECT order_date FROM staging.transactions))
    SELECT d::DATE AS date, date_trunc('week', d)::DATE AS week_start,
           date_trunc('month', d)::DATE AS month_start, quarter(d) AS quarter,
           date_trunc('quarter', d)::DATE AS quarter_start, year(d) AS year,
           isodow(d) AS day_of_week
    FROM bounds, generate_series(coalesce(lo, DATE '2000-01-01'),
                                 coalesce(hi, DATE '2000-01-01') + INTERVAL 400 DAY, INTERVAL 1 DAY) t(d)"""


def reconciliation() -> str:
    """Per source file: raw rows read, rows that reached the star schema, rows quarantined.
    Dimension files map 1:1 onto their dimension's non-stub rows; fact files by source line."""
    return """
    WITH star_lines AS (
        SELECT source_file, source_line FROM star.fact_opportunity
        UNION SELECT source_file, source_line FROM star.fact_opportunity_history WHERE NOT derived
        UNION SELECT source_file, source_line FROM star.fact_transactions WHERE source <> 'crm_won'
        UNION SELECT source_file, _line FROM staging.accounts
        UNION SELECT source_file, _line FROM staging.reps
        UNION SELECT source_file, _line FROM staging.products
        UNION SELECT source_file, _line FROM staging.sku_map
        UNION SELECT source_file, _line FROM staging.quotas
        UNION SELECT source_file, _line FROM staging.price_entries
        UNION SELECT source_file, _line FROM staging.currency_rates),
    star AS (SELECT source_file, count(*) AS star_rows FROM star_lines GROUP BY 1),
    q AS (SELECT source_file, count(*) AS quarantined_rows FROM star.quarantine GROUP BY 1)
    SELECT f.source_file, f.raw_rows, coalesce(s.star_rows, 0) AS star_rows,
           coalesce(q.quarantined_rows, 0) AS quarantined_rows,
           f.raw_rows - coalesce(s.star_rows, 0) - coalesce(q.quarantined_rows, 0) AS unaccounted
    FROM meta.source_files f LEFT JOIN star s USING (source_file) LEFT JOIN q USING (source_file)
    ORDER BY 1"""


def unknown_references() -> str:
    """Keys of kept rows that name no real member of their dimension (they point at stubs)."""
    return """
    WITH refs AS (
        SELECT 'account' AS member, account_id AS key, source_file, source_line FROM star.fact_opportunity
        WHERE account_id IN (SELECT account_id FROM star.dim_account WHERE is_stub)
        UNION ALL
        SELECT 'rep', rep_id, source_file, source_line FROM star.fact_opportunity
        WHERE rep_id IN (SELECT rep_id FROM star.dim_rep WHERE is_stub)
        UNION ALL
        SELECT 'product', product_id, source_file, source_line FROM star.fact_opportunity
        WHERE product_id IN (SELECT product_id FROM star.dim_product WHERE is_stub)
        UNION ALL
        SELECT 'account', customer_id, source_file, _line FROM staging.transactions
        WHERE customer_id IN (SELECT account_id FROM star.dim_account WHERE is_stub)
        UNION ALL
        SELECT 'rep', rep_name, source_file, _line FROM staging.transactions
        WHERE rep_name IN (SELECT rep_id FROM star.dim_rep WHERE is_stub)
        UNION ALL
        SELECT 'product', product_id, source_file, _line FROM staging.transactions
        WHERE product_id IN (SELECT product_id FROM star.dim_product WHERE is_stub))
    SELECT member, key, count(*)::BIGINT AS referencing_rows,
           -- the first line of the first file to hold it: lines of two files tie (both files' line 9), and
           -- arg_min broke the tie as rows arrived (one export named either file on two runs)
           min({'line': source_line, 'file': source_file}).file AS source_file, min(source_line) AS first_line
    FROM refs GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"""
