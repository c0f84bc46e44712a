"""scores.whitespace: every (account, division) the account has never bought, worth a call.

whitespace_score = propensity x expected_value, where expected_value is what similar accounts
spend in that division over a window of the same length: the median share of wallet that the
division's buyers in the account's segment (sector, else country) give it, applied to the
account's own 12-month spend (or, for an account without recent spend, the segment's median
division spend), capped at the 95th percentile of the division's buyers so one outlier cannot
top the list. Pairs with an open opportunity in the division are skipped: someone is on it.
Everything is known at the cutoff (features.customer_division is).
"""

from __future__ import annotations

import datetime as dt

MIN_SEGMENT_BUYERS = 10  # fewer: use the division-wide figures
CAP_QUANTILE = 0.95
TOP_N_PER_REP = 10


def whitespace_sql(cutoff: dt.date, window_months: int) -> str:
    c = f"DATE '{cutoff.isoformat()}'"
    return f"""
    WITH f AS (
        SELECT f.*, coalesce(f.sector, f.country, 'all') AS seg FROM features.customer_division f
        WHERE f.cutoff_date = {c}),
    buyers AS (
        SELECT division, seg, div_monetary_12m AS spend, div_monetary_12m / nullif(monetary_12m, 0) AS share
        FROM f WHERE div_monetary_12m > 0),
    seg_stats AS (SELECT division, seg, count(*) AS n, median(share) AS share, median(spend) AS spend
                  FROM buyers GROUP BY ALL),
    div_stats AS (SELECT division, median(share) AS share, median(spend) AS spend,
                         quantile_cont(spend, {CAP_QUANTILE}) AS cap FROM buyers GROUP BY 1),
    tx_rep AS (  -- the account's rep: on its latest order with a rep, else its latest opportunity
        SELECT account_id, arg_max(rep_id, order_date) AS rep_id FROM star.fact_transactions
        WHERE rep_id IS NOT NULL AND order_date <= {c} GROUP BY 1),
    opp_rep AS (
        SELECT account_id, arg_max(rep_id, coalesce(created_date, engage_date)) AS rep_id
        FROM star.fact_opportunity WHERE rep_id IS NOT NULL AND coalesce(created_date, engage_date) <= {c}
        GROUP BY 1),
    cand AS (
        SELECT f.cutoff_date, f.account_id, f.division, s.propensity, f.account_name, f.sector, f.country,
               f.monetary_12m,
               least(d.cap, CASE WHEN f.monetary_12m > 0
                                 THEN f.monetary_12m * coalesce(CASE WHEN g.n >= {MIN_SEGMENT_BUYERS} THEN g.share END, d.share)
                                 ELSE coalesce(CASE WHEN g.n >= {MIN_SEGMENT_BUYERS} THEN g.spend END, d.spend) END)
                   * {window_months} / 12 AS expected_value
        FROM f JOIN scores.icp_scores s
             ON s.cutoff_date = f.cutoff_date AND s.division = f.division AND s.account_id = f.account_id
        LEFT JOIN seg_stats g ON g.division = f.division AND g.seg = f.seg
        LEFT JOIN div_stats d ON d.division = f.division
        WHERE NOT f.is_buyer AND f.open_opps = 0)
    SELECT c.cutoff_date, c.account_id, c.division, c.propensity, coalesce(c.expected_value, 0) AS expected_value,
           c.propensity * coalesce(c.expected_value, 0) AS whitespace_score,
           row_number() OVER (ORDER BY c.propensity * coalesce(c.expected_value, 0) DESC, c.account_id, c.division)
               AS rank_overall,
           row_number() OVER (PARTITION BY c.account_id
                              ORDER BY c.propensity * coalesce(c.expected_value, 0) DESC, c.division) AS rank_in_account,
           coalesce(t.rep_id, o.rep_id) AS rep_id, r.region, r.manager,
           c.account_name, c.sector, c.country, c.monetary_12m AS account_spend_12m
    FROM cand c LEFT JOIN tx_rep t USING (account_id) LEFT JOIN opp_rep o USING (account_id)
    LEFT JOIN star.dim_rep r ON r.rep_id = coalesce(t.rep_id, o.rep_id)
    ORDER BY rank_overall"""


def rep_view_sql() -> str:
    """Each rep's top-N whitespace per cutoff (a view: always in step with the table)."""
    return f"""
    CREATE OR REPLACE VIEW scores.whitespace_by_rep AS
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY cutoff_date, rep_id
                                     ORDER BY whitespace_score DESC, account_id, division) AS rank_for_rep
        FROM scores.whitespace)
    WHERE rank_for_rep <= {TOP_N_PER_REP}"""


# -- judged on the holdout (issue 14) ---------------------------------------------------------------

TOP_K = (25, 100)
RANKINGS = ("whitespace_score", "propensity_only", "baseline_rfm")


def whitespace_holdout_sql(cutoff: dt.date) -> str:
    """The whitespace rows of a labelled cutoff with what happened next (label, label_amount) and
    the RFM inputs; the features table holds the outcome columns, the whitespace table the ranking."""
    c = f"DATE '{cutoff.isoformat()}'"
    return f"""
    SELECT w.cutoff_date, w.account_id, w.division, w.propensity, w.expected_value, w.whitespace_score,
           f.is_buyer, f.recency_days, f.frequency_12m, f.monetary_12m, f.div_recency_days, f.div_frequency_12m,
           f.div_monetary_12m, f.label, f.label_amount
    FROM scores.whitespace w JOIN features.customer_division f
         ON f.cutoff_date = w.cutoff_date AND f.division = w.division AND f.account_id = w.account_id
    WHERE w.cutoff_date = {c} AND f.label IS NOT NULL"""


def whitespace_holdout_metrics(rows, ks=TOP_K):
    """Revenue (label_amount) and buyers realised in the recommended division among the top-k
    rows of each ranking: the whitespace score (propensity x expected value), the propensity
    alone, and the RFM rule (ties broken by expected value). `rows`: whitespace_holdout_sql's
    rows, already restricted to the accounts to judge on. Returns (ranking, k, revenue, buyers)."""
    import numpy as np
    import polars as pl

    from revintel_assets.defs.icp.model import rfm_score

    if rows.is_empty():
        return []
    rfm = rfm_score(rows)
    keys = {"whitespace_score": [rows["whitespace_score"].to_numpy()],
            "propensity_only": [rows["propensity"].to_numpy()],
            "baseline_rfm": [rfm, rows["expected_value"].to_numpy()]}
    amount = rows["label_amount"].to_numpy().astype(float)
    bought = rows["label"].cast(pl.Int8).to_numpy()
    tie = np.arange(rows.height)  # input order (account, division) breaks the remaining ties
    out = []
    for name in RANKINGS:
        order = np.lexsort((tie, *[-np.nan_to_num(k.astype(float), nan=-np.inf) for k in reversed(keys[name])]))
        for k in ks:
            top = order[:k]
            out.append((name, k, float(amount[top].sum()), float(bought[top].sum())))
    return out
