"""The forecast of every as-of date of a range, each from what was known on it.

What "known on T" means is the backtest's (backtest.py): the snapshot of T with its outcomes
blanked, win probabilities from the source of T (the deal scores of T when there are any, else
the latest promoted model with cutoff <= T, else the stage baseline of outcomes known by T),
timing fitted on snapshots before T, new pipeline from deals created by T, and the shared swing
tuned on backtest horizons that were over before T (assets._shock). Pure: frames in, frames out.

Beside P10-P90 each row carries the calls a sales team makes without a model, so that
forecast_accuracy can judge all three on the same periods: the weighted pipeline (win
probability x amount) and the commit category's total, each in the period of the deal's
expected close date.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from revintel_assets import rules
from revintel_assets.defs.forecast import backtest, model
from revintel_assets.defs.forecast.periods import Calendar

TIMING_EPOCH = dt.date(1970, 1, 5)  # a Monday: refit blocks are counted from it
# the timing model of a date is the one fitted on the first Monday of its 4-week block: the forecast,
# the deal outlook and the quota attainment of a date use that one model (their figures reconcile,
# and the nightly fits it once, shared: forecast/assets.py timing_fit)
REFIT_TIMING_WEEKS = 4


def timing_cutoff(day: dt.date, every_weeks: int) -> dt.date:
    """The cutoff of the timing model a date's forecast uses: the first Monday of its block of
    `every_weeks` weeks (counted from TIMING_EPOCH). A fit on an earlier cutoff only knows less, and
    the cutoff depends on the date alone: a date's forecast is the same whatever range computed it."""
    weeks = (day - dt.timedelta(days=day.weekday()) - TIMING_EPOCH).days // 7
    return TIMING_EPOCH + dt.timedelta(weeks=weeks - weeks % max(1, every_weeks))


def commit_category(crm: dict[str, str] | None = None) -> pl.Expr:
    """The forecast category of a snapshot row, from its stage on that date (rules.py's rule: the
    CRM's own category of a past date is not kept); on the export date `crm` (opportunity id ->
    the category the CRM holds) wins where it names one, as forecast.quota_attainment's call does
    (an audit: the two tables' commit for one quarter read 973,818 and 737,999: 12 Negotiation deals
    the reps had marked Omitted)."""
    rule = rules.forecast_category_expr(pl.col("stage").cast(pl.Utf8))
    if not crm:
        return rule
    return pl.col("opportunity_id").cast(pl.Utf8).replace_strict(crm, default=None, return_dtype=pl.Utf8).fill_null(rule)


def calls(prep: model.Prepared, labels: list, category: pl.Expr | None) -> pl.DataFrame:
    """weighted_pipeline and commit per (period_type, segment, period), in summary_frame's row order."""
    deals, cal = prep.deals, prep.cal
    weighted = backtest.weighted_pipeline(deals, cal, prep.segments, labels)
    commit = None
    if category is not None:
        is_commit = deals.select(category.fill_null("") == "Commit").to_series().to_numpy()
        commit = backtest.by_expected_close(deals, np.where(is_commit, deals["amount"].to_numpy(), 0.0), cal,
                                            prep.segments, labels)
    types = cal.period_types()
    return pl.DataFrame({
        "weighted_pipeline": np.concatenate([weighted[p].ravel() for p in types]),
        "commit": (np.concatenate([commit[p].ravel() for p in types]) if commit is not None
                   else pl.Series([None] * sum(weighted[p].size for p in types), dtype=pl.Float64))})


def forecast_date(cal: Calendar, deals: pl.DataFrame, fitted, dim_rep: pl.DataFrame | None, opps: pl.DataFrame | None,
                  n_sims: int, seed: int, sigma: tuple[float, float], crm: dict[str, str] | None = None,
                  **engine) -> tuple[pl.DataFrame, model.Prepared, int]:
    """One date's forecast.revenue_forecast rows (with the calls), its prepared inputs and bookings.
    crm: the CRM's forecast categories on the export date (commit_category). engine: model.forecast's
    workers / segments / new.

    With one BLAS thread: the float32 products behind the segments' sums (model.period_stats) are
    then summed in the same order whatever the machine's cores and whichever process ran the date
    (a pool process has one thread; this process had as many as cores: 54 of 1.6 M rows at scale
    10, month totals, differed in the 7th digit between the two)."""
    with threadpool_limits(1):
        frame, prep, bookings = model.forecast(deals, fitted, cal, dim_rep, opps, n_sims, seed, *sigma, **engine)
    labels = list(dict.fromkeys(zip(frame["segment_type"].to_list(), frame["segment"].to_list())))
    return pl.concat([frame, calls(prep, labels, commit_category(crm))], how="horizontal"), prep, bookings
