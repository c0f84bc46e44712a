"""The Forecast page's what-if: the stored forecast's inputs for one as-of date, rebuilt from the
published tables (whatif.prepare_date) once per date, then recomputed for each set of edits by
revintel_assets.defs.forecast.whatif (the forecast's own engine). Nothing is written."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboards import db
from revintel_assets.defs.forecast import whatif
from revintel_resources.settings import settings

TIMING_COLUMNS = ("as_of_date, opportunity_id, stage, days_to_expected_close, n_pushes, deal_age_days, rep_id, "
                  "product_id, outcome_date, is_won")
TABLES = ("forecast.revenue_forecast", "forecast.deal_contributions", "features.deal_snapshot",
          "star.fact_opportunity", "star.dim_rep", "star.dim_product")


def available() -> bool:
    return all(db.table_exists(t) for t in TABLES)


@st.cache_resource(show_spinner="Rebuilding the forecast's inputs for the what-if…", max_entries=4)
def _prepared(version, as_of: dt.date):
    del version  # only part of the cache key: a newly published file rebuilds
    run = db.query("SELECT any_value(timing_cutoff) AS cutoff, any_value(sigma_horizon) AS sh, "
                   "any_value(sigma_week) AS sw, any_value(n_sims) AS n_sims, "
                   "count(DISTINCT period_start) FILTER (WHERE period_type = 'week') AS weeks "
                   "FROM forecast.revenue_forecast WHERE as_of_date = ?", [as_of]).row(0, named=True)
    cutoff = run["cutoff"] or as_of  # forecasts stored before timing_cutoff was: fitted on the date
    rows = db.query("SELECT * EXCLUDE (outcome_date, is_won) FROM features.deal_snapshot WHERE as_of_date = ?", [as_of])
    stored = db.query("SELECT opportunity_id, win_probability, expected_close_date FROM forecast.deal_contributions "
                      "WHERE as_of_date = ?", [as_of])
    snaps = db.query(f"SELECT {TIMING_COLUMNS} FROM features.deal_snapshot WHERE as_of_date < ? AND as_of_date >= ?",
                     [cutoff, cutoff - dt.timedelta(days=whatif.TIMING_DAYS)])
    opps = db.query("SELECT o.opportunity_id, o.account_id, o.rep_id, o.product_id, o.division, o.created_date, "
                    "o.close_date, o.is_won, o.amount, p.list_price FROM star.fact_opportunity o "
                    "LEFT JOIN star.dim_product p USING (product_id)")
    dim_rep = db.query("SELECT rep_id, manager, region FROM star.dim_rep")
    prep = whatif.prepare_date(as_of, rows, stored, snaps, opps, dim_rep, cutoff, int(run["weeks"] or 13),
                                 settings().fiscal_year_start_month)
    return prep, (float(run["sh"] or 0.0), float(run["sw"] or 0.0)), int(run["n_sims"] or 10_000)


def base(as_of: dt.date, segment_type: str, segment: str) -> tuple[whatif.Base, int]:
    prep, sigma, n_sims = _prepared(db.data_version(), as_of)
    return whatif.segment_base(prep, segment_type, segment, sigma), n_sims


def remaining_quota(as_of: dt.date, segment_type: str, segment: str) -> float | None:
    """Quota minus booked so far for the quarter, when forecast.quota_attainment holds it (optional)."""
    if not db.table_exists("forecast.quota_attainment"):
        return None
    try:
        # the quarter's row: "month" sorts first, and its quota (NULL without monthly quotas) hid the chance
        row = db.query("SELECT quota, booked_to_date FROM forecast.quota_attainment WHERE as_of_date = ? "
                       "AND segment_type = ? AND segment = ? AND period = 'quarter'", [as_of, segment_type, segment])
    except Exception:  # another layout of the table: no chance shown rather than a wrong one
        return None
    if row.is_empty() or row["quota"][0] is None:
        return None
    return float(row["quota"][0]) - float(row["booked_to_date"][0] or 0.0)


def choices(b: whatif.Base, n: int = 40) -> pl.DataFrame:
    """The segment's deals worth most to the quarter (the ones worth editing), for the pickers."""
    inside = b.q @ b.cal.period_matrix("quarter")[:, 0] if "quarter" in b.cal.period_types() else b.q.sum(axis=1)
    return (b.deals.select("opportunity_id", "rep_id", "stage", "amount", "win_probability", "expected_close_date")
            .with_columns(pl.Series("expected_in_quarter", inside * b.deals["amount"].to_numpy()))
            .sort("expected_in_quarter", descending=True).head(n))
