"""How good were past forecasts? Each stored forecast (forecast.revenue_forecast, one per as-of
date) against the revenue booked in its period, once the period is over, for three callers:
revintel (P10 / P50 / P90), the weighted pipeline and the commit category (point calls, stored
beside it by history.py). Booked = won amount (list price where the amount is missing) by close
date, per segment: the rule of backtest.booked. SQL for the join (large), polars for the scores."""

from __future__ import annotations

import datetime as dt

import polars as pl

from revintel_assets.defs.forecast.history import week_of_quarter
from revintel_assets.defs.forecast.model import UNASSIGNED

MODELS = ("revenue_forecast", "weighted_pipeline", "commit")

# won deals once per segment type they count in (the segments of model.Segments)
_WON = f"""
WITH won AS (
  SELECT o.close_date, coalesce(o.amount, p.list_price, 0) AS amount,
         coalesce(o.rep_id, '{UNASSIGNED}') AS rep, coalesce(o.division, '{UNASSIGNED}') AS division,
         coalesce(r.region, '{UNASSIGNED}') AS region, coalesce(r.manager, '{UNASSIGNED}') AS manager
  FROM star.fact_opportunity o LEFT JOIN star.dim_product p USING (product_id)
  LEFT JOIN (SELECT DISTINCT ON (rep_id) rep_id, region, manager FROM star.dim_rep) r USING (rep_id)
  WHERE o.is_won AND o.close_date IS NOT NULL),
seg AS (
  SELECT close_date, amount, 'total' AS segment_type, 'total' AS segment FROM won
  UNION ALL SELECT close_date, amount, 'region', region FROM won
  UNION ALL SELECT close_date, amount, 'manager', manager FROM won
  UNION ALL SELECT close_date, amount, 'rep', rep FROM won
  UNION ALL SELECT close_date, amount, 'division', division FROM won),
-- booked per segment and day, summed exactly: a forecast row then joins the days of its period, not
-- every deal won in it (scale 100: the total's quarters joined ~60,000 deals each, the query took
-- a minute), and the sums do not depend on how DuckDB's threads split the rows
booked AS (SELECT segment_type, segment, close_date, sum(amount::DECIMAL(38, 6)) AS amount FROM seg GROUP BY ALL)"""


def booked_sql(n_dates: int) -> str:
    """Stored forecast rows of the given as-of dates (n_dates placeholders, then the evaluation
    date) whose period is over by the evaluation date, with `actual` (booked from first_day to
    last_day) and `booked_before` (booked in the period before the forecast began: the days of a
    partial first week / month / quarter up to the as-of date, known on it)."""
    dates = ", ".join("?" * n_dates)
    return f"""{_WON},
f AS (SELECT * FROM forecast.revenue_forecast WHERE as_of_date IN ({dates}) AND last_day <= ?)
SELECT f.as_of_date, f.period_type, f.period_start, f.first_day, f.last_day, f.segment_type, f.segment,
       f.p10, f.p50, f.p90, f.weighted_pipeline, f."commit", f.sigma_horizon, f.sigma_week, f.win_model_version,
       coalesce(sum(s.amount) FILTER (WHERE s.close_date >= f.first_day), 0)::DOUBLE AS actual,
       coalesce(sum(s.amount) FILTER (WHERE s.close_date < f.first_day), 0)::DOUBLE AS booked_before
FROM f LEFT JOIN booked s ON s.segment_type = f.segment_type AND s.segment = f.segment
  AND s.close_date >= least(f.period_start, f.first_day) AND s.close_date <= f.last_day
GROUP BY ALL"""


def _pinball(y: pl.Expr, q: pl.Expr, tau: float) -> pl.Expr:
    d = y - q
    return pl.max_horizontal(tau * d, (tau - 1) * d)


def score(rows: pl.DataFrame, evaluated_as_of: dt.date) -> pl.DataFrame:
    """forecast.forecast_accuracy: one row per (forecast row, caller). Point calls (weighted
    pipeline, commit) have p50 only: no range, so coverage and the P10 / P90 losses are NULL; a
    NULL call (no commit category in the source) stays NULL, with NULL errors."""
    y = pl.col("actual")
    parts = []
    for name in MODELS:
        if name == "revenue_forecast":
            q10, q50, q90 = pl.col("p10"), pl.col("p50"), pl.col("p90")
        else:
            q50 = pl.col(name).cast(pl.Float64)
            q10 = q90 = pl.lit(None, dtype=pl.Float64)
        parts.append(rows.select(
            "as_of_date", "period_type", "period_start", "first_day", "last_day", "segment_type", "segment",
            pl.lit(name).alias("model_name"), q10.alias("p10"), q50.alias("p50"), q90.alias("p90"),
            y.cast(pl.Float64).alias("actual"), pl.col("booked_before").cast(pl.Float64),
            (q50 - y).alias("error"), (q50 - y).abs().alias("abs_error"),
            ((q10 <= y) & (y <= q90)).alias("covered"),
            _pinball(y, q10, 0.1).alias("pinball_p10"), _pinball(y, q50, 0.5).alias("pinball_p50"),
            _pinball(y, q90, 0.9).alias("pinball_p90"),
            pl.col("sigma_horizon"), pl.col("win_model_version")))
    return pl.concat(parts).with_columns(
        week_of_quarter(pl.col("as_of_date")).alias("week_of_quarter"),
        (pl.col("first_day") - pl.col("as_of_date")).dt.total_days().cast(pl.Int32).alias("lead_days"),
        pl.lit(evaluated_as_of).alias("evaluated_as_of"))


def summary(acc: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Per caller and `by`: forecasts scored, error of P50 relative to the period's whole bookings
    (booked before the forecast + after it: the call of the quarter, not of its rest), bias (signed,
    > 0 over-called), P10-P90 coverage (revintel only) and the mean pinball losses."""
    whole = pl.col("actual") + pl.col("booked_before")
    known = acc.filter(pl.col("p50").is_not_null())
    out = known.group_by(["model_name", *by]).agg(
        pl.len().alias("n"), pl.col("as_of_date").n_unique().alias("as_of_dates"),
        (pl.col("abs_error").sum() / whole.sum()).alias("wape"),
        (pl.col("error").sum() / whole.sum()).alias("bias"),
        pl.col("covered").cast(pl.Float64).mean().alias("coverage_p10_p90"),
        pl.col("pinball_p50").mean().alias("pinball_p50"),
        ((pl.col("pinball_p10") + pl.col("pinball_p50") + pl.col("pinball_p90")) / 3).mean().alias("pinball_mean"))
    # a caller with no call at all (commit without categories) is listed, with NULL figures
    missing = [m for m in MODELS if m in acc["model_name"].unique().to_list()
               and m not in known["model_name"].unique().to_list()]
    if missing:
        keys = acc.filter(pl.col("model_name").is_in(missing)).select(["model_name", *by]).unique()
        out = pl.concat([out, keys], how="diagonal_relaxed")
    return out.sort([*by, "model_name"])
