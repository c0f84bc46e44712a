"""Revenue from deals that do not exist yet: created after the as-of date and won inside the horizon.

Learned from the past only, per (rep, division):
* creation rate: deals created per day over the last `lookback_days` before T;
* conversion: of the deals created in the year that ended `horizon` days before T (so that every
  close inside `horizon` days of their creation is already known on T), the share won by each
  age in days, per division, shrunk toward the company-wide curve;
* amounts: the won amounts of that cohort (list price where the amount is missing), resampled.

A deal created on day T+c and won at age a closes on T+c+a, so the expected number of new deals
won on day T+t is rate * sum_{a < t} P(won at age a) = rate * F(t - 1), F the cumulative curve.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revintel_assets.defs.forecast.periods import Calendar

PSEUDO_DEALS = 50.0  # a division's conversion curve is shrunk toward the company's with this many deals


def code_opps(opps: pl.DataFrame, reps: list[str], divisions: list[str]) -> pl.DataFrame:
    """What fit_new_pipeline reads of `opps`, coded once for many dates with the same segments:
    rows with a created date, the amount (list price where missing), and `r` / `d`, the rep's and
    the division's places in reps / divisions (null when not there). Coding 2M rows' reps took
    most of a fit's 0.4 s at scale 100, for each of a range's 153 dates."""
    known = opps.filter(pl.col("created_date").is_not_null())
    if "list_price" in known.columns:
        known = known.with_columns(pl.col("amount").fill_null(pl.col("list_price")))
    rep_ix = {r: i for i, r in enumerate(reps)}
    div_ix = {d: i for i, d in enumerate(divisions)}
    return known.select(
        "created_date", "close_date", "is_won", "amount",
        pl.col("rep_id").replace_strict(rep_ix, default=None, return_dtype=pl.Int64).alias("r"),
        pl.col("division").replace_strict(div_ix, default=None, return_dtype=pl.Int64).alias("d"))


def fit_new_pipeline(opps: pl.DataFrame, cal: Calendar, reps: list[str], divisions: list[str],
                     lookback_days: int = 182, coded: pl.DataFrame | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(mu (n_reps, n_divisions, n_atoms), won amounts per division, typical_won) known on cal.as_of.

    `opps` needs opportunity_id, rep_id, division, created_date, close_date, is_won, amount
    (list price optional). Only rows created on or before T and outcomes closed on or before T are
    read. coded: code_opps(opps, reps, divisions) when the caller has it (then opps is not read)."""
    t = cal.as_of
    horizon = cal.n_days
    n_rep, n_div = len(reps), len(divisions)
    coded = code_opps(opps, reps, divisions) if coded is None else coded
    known = coded.filter(pl.col("created_date") <= t)

    recent = known.filter(pl.col("created_date") > t - dt.timedelta(days=lookback_days)).drop_nulls(["r", "d"])
    rate = np.zeros((n_rep, n_div))
    np.add.at(rate, (recent["r"].to_numpy(), recent["d"].to_numpy()), 1.0 / lookback_days)

    lo, hi = t - dt.timedelta(days=horizon + 365), t - dt.timedelta(days=horizon)
    cohort = known.filter((pl.col("created_date") > lo) & (pl.col("created_date") <= hi)).drop_nulls("d")
    age = (cohort["close_date"] - cohort["created_date"]).dt.total_days().to_numpy()
    won = (cohort["is_won"].fill_null(False).to_numpy() & (cohort["close_date"] <= t).fill_null(False).to_numpy()
           & (age < horizon))
    d = cohort["d"].to_numpy()
    n_cohort = np.bincount(d, minlength=n_div).astype(np.float64)
    wins = np.zeros((n_div, horizon))
    np.add.at(wins, (d[won], age[won].astype(np.int64)), 1.0)
    overall = wins.sum(axis=0) / max(n_cohort.sum(), 1.0)
    f = (wins + PSEUDO_DEALS * overall) / (n_cohort[:, None] + PSEUDO_DEALS)  # P(won at age a), per division
    cum = np.cumsum(f, axis=1)
    won_by_day = np.c_[np.zeros(n_div), cum[:, :-1]]  # F(t - 1) for t = 1..horizon
    per_atom = np.zeros((n_div, cal.n_atoms))
    for k in range(n_div):  # loop over a handful of divisions
        per_atom[k] = np.bincount(cal.atom_of_day, won_by_day[k], minlength=cal.n_atoms)
    mu = rate[:, :, None] * per_atom[None, :, :]

    amounts = cohort.filter(pl.Series(won))
    # sorted: the engine draws amounts by position, so a pool in the rows' order made the draws depend on
    # the order a query returned them in (a hash join's: it moved the backtest's chosen swing on a rerun)
    pools = [np.sort(amounts.filter(pl.col("d") == k)["amount"].drop_nulls().to_numpy()) for k in range(n_div)]
    everyone = np.sort(amounts["amount"].drop_nulls().to_numpy())
    pools = [p if len(p) >= 5 else everyone for p in pools]  # too few wins: the company's amounts
    return mu, pools, typical_won(known, t, n_div)


def typical_won(known: pl.DataFrame, t: dt.date, n_div: int, days: int = 365) -> np.ndarray:
    """Per division, the mean amount of the deals won in the `days` before t (the company's where a
    division has fewer than 5; 0 without any): what model.prepare values a deal at that has neither an
    amount nor a list price. `known`: code_opps rows created by t."""
    won = known.filter(pl.col("is_won").fill_null(False) & (pl.col("close_date") <= t)
                       & (pl.col("close_date") > t - dt.timedelta(days=days))).drop_nulls(["d", "amount"])
    d, amount = won["d"].to_numpy(), won["amount"].to_numpy().astype(np.float64)
    n, total = np.bincount(d, minlength=n_div), np.bincount(d, amount, minlength=n_div)
    overall = float(amount.mean()) if len(amount) else 0.0
    return np.where(n >= 5, total / np.maximum(n, 1), overall)
