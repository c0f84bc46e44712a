"""Will it close this quarter, slip, or be lost? Per open deal and period (this and next quarter
of the as-of date: the quarter holding the day after it, as the forecast's): p_win_in_period = p_win x P(close in the period | won), p_slip = p_win - that
(won, but not in the period), p_lose = 1 - p_win. The three sum to 1 by construction.

p_win is the calibrated win probability of the date (scores.deal_scores, or the rule that was
champion then for past dates); the timing is the forecast's competing-risks model fitted on
snapshots before the date (timing.py). Pure: frames and a fitted model in, a frame out.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revintel_assets.defs.forecast.timing import TimingModel
from revintel_assets.rules import add_months, current_quarter_start

PERIODS = ("this_quarter", "next_quarter")


def quarter_bounds(as_of: dt.date, fy: int = 1) -> dict[str, tuple[dt.date, dt.date]]:
    """period -> [start, end) of this and next fiscal quarter of the as-of date (rules.current_quarter_start:
    the quarter holding the day after it; fy: the month the fiscal year starts in,
    settings.fiscal_year_start_month; 1 = calendar quarters)."""
    q0 = current_quarter_start(as_of, fy)
    q1, q2 = add_months(q0, 3), add_months(q0, 6)
    return {"this_quarter": (q0, q1), "next_quarter": (q1, q2)}


def outlook(rows: pl.DataFrame, p_win: np.ndarray, timing: TimingModel, as_of: dt.date, fy: int = 1) -> pl.DataFrame:
    """rows: the snapshot rows of the deals open on as_of (timing's columns); p_win aligned with them."""
    bounds = quarter_bounds(as_of, fy)
    n_days = (bounds["next_quarter"][1] - as_of).days - 1  # days as_of+1 .. the last day of next quarter
    dist = timing.close_given_won(rows, as_of, n_days)  # (deals, n_days + 1): day 1.., then later
    day = np.arange(1, n_days + 1)
    out = []
    for period, (start, end) in bounds.items():
        lo, hi = max((start - as_of).days, 1), (end - as_of).days  # days in [start, end)
        in_period = dist[:, :n_days][:, (day >= lo) & (day < hi)].sum(axis=1)
        p_in = np.clip(p_win * in_period, 0.0, 1.0)
        out.append(rows.select("opportunity_id").with_columns(
            pl.lit(as_of).alias("as_of_date"), pl.lit(period).alias("period"),
            pl.Series("p_win_in_period", p_in), pl.Series("p_slip", np.clip(p_win - p_in, 0.0, 1.0)),
            pl.Series("p_lose", 1.0 - p_win)))
    return pl.concat(out).select("as_of_date", "opportunity_id", "period", "p_win_in_period", "p_slip", "p_lose")


def labels(frame: pl.DataFrame, outcomes: pl.DataFrame, known_by: dt.date, fy: int = 1) -> pl.DataFrame:
    """Adds won_in_period / slipped for periods that ended by `known_by`: won_in_period is known
    for every deal once the period is over; slipped (won, but not in the period) only for deals
    whose outcome is known by then (NULL otherwise)."""
    bounds = {p: quarter_bounds(frame["as_of_date"][0], fy)[p] for p in PERIODS}
    ends = pl.DataFrame({"period": list(bounds), "p_start": [b[0] for b in bounds.values()],
                         "p_end": [b[1] for b in bounds.values()]})
    closed = pl.col("outcome_date").is_not_null() & (pl.col("outcome_date") <= known_by)
    in_period = (pl.col("outcome_date") >= pl.col("p_start")) & (pl.col("outcome_date") < pl.col("p_end"))
    return (frame.join(ends, on="period").join(outcomes, on="opportunity_id", how="left")
            .filter(pl.col("p_end") <= known_by)
            .with_columns((closed & pl.col("is_won") & in_period).fill_null(False).alias("won_in_period"),
                          pl.when(closed).then(pl.col("is_won") & ~in_period).alias("slipped")))
