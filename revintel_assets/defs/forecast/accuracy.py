"""How good were past forecasts? Each stored forecast (forecast.revenue_forecast, one per as-of
date) against the revenue booked in its period, once the period is over, for three callers:
revintel (P10 / P50 / P90), the weighted pipeline and the commit category (point calls, stored
beside it by history.py). Booked = won amount (list price where the amount is missing) by close
date, per segment: the rule of backtest.booked. SQL for the join and the scores (large), polars
for the summaries."""

from __future__ import annotations

import polars as pl

from revintel_assets.rules import UNASSIGNED, current_quarter_start_sql

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


def scored_sql(n_dates: int, fy: int = 1) -> str:
    """The rows of forecast.forecast_accuracy from booked_sql's (its placeholders, then the
    evaluation date again): one row per (forecast row, caller); fy: settings.fiscal_year_start_month. Point calls (weighted pipeline,
    commit) have p50 only: no range, so coverage and the P10 / P90 losses are NULL; a NULL call (no
    commit category in the source) stays NULL, with NULL errors. SQL, so that the rows go from the
    join to the table inside DuckDB: scored in polars, a scale-100 batch's joined rows came out of
    DuckDB and three times as many scored rows went back in."""
    # greatest skips a NULL as polars' max_horizontal does, and on a tie (0.0 vs -0.0) keeps the first
    # where max_horizontal keeps the last: the arguments in the other order give the same bits
    def pinball(q: str, tau: float) -> str:
        return f"greatest({tau - 1!r} * (actual - {q}), {tau!r} * (actual - {q}))"

    parts = []
    for name in MODELS:
        q10, q50, q90 = (("p10", "p50", "p90") if name == "revenue_forecast"
                         else ("NULL::DOUBLE", f'"{name}"::DOUBLE', "NULL::DOUBLE"))
        parts.append(f"""SELECT as_of_date, period_type, period_start, first_day, last_day, segment_type, segment,
  '{name}' AS model_name, {q10} AS p10, {q50} AS p50, {q90} AS p90, actual, booked_before,
  {q50} - actual AS error, abs({q50} - actual) AS abs_error, ({q10} <= actual) AND (actual <= {q90}) AS covered,
  {pinball(q10, 0.1)} AS pinball_p10, {pinball(q50, 0.5)} AS pinball_p50, {pinball(q90, 0.9)} AS pinball_p90,
  sigma_horizon, win_model_version,
  -- the week of the fiscal quarter the forecast is about (the quarter of as_of_date + 1 day), 1..14
  ((as_of_date + 1 - {current_quarter_start_sql('as_of_date', fy)}) // 7 + 1)::INTEGER AS week_of_quarter,
  (first_day - as_of_date)::INTEGER AS lead_days,
  -- whole weeks from the as-of date to the period's last day (0: its last week), the contract's name
  ((last_day - as_of_date) // 7)::INTEGER AS weeks_before_period_end, evaluated_as_of
FROM rows, evaluated""")
    return (f"WITH rows AS ({booked_sql(n_dates)}),\nevaluated AS (SELECT ?::DATE AS evaluated_as_of)\n"
            + "\nUNION ALL\n".join(parts))


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
