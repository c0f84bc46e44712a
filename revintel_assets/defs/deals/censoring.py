"""Deals still open at a training cutoff: what their rows would have taught, from data known then.

A model trained for cutoff C learns only from rows whose deal had closed by C. The deals still
open then are mostly losers (losers linger), so a slice made of the closed ones alone wins more
often than the deals open on its as-of dates did: the validation slice that calibrates the model
([C - 182, C - 91) days) drops ~15 % of its rows this way on the demo, and those deals won 8-18 %
against 40-47 % for the rows kept.

The correction (`impute`), from rows known at C only (no outcome after C is read): each censored
row is kept twice, once won and once lost, weighted q and 1 - q, where q = P(eventually won |
still open at the age the deal has on C), an Aalen-Johansen estimate of the won / lost cumulative
incidence over deal age from the deals' exposure in the year up to C (WINDOW_DAYS; deals closed
by C are events at their closing age, the others are censored at their age on C). The weighting alternatives it was
judged against live in benchmarks/tune_censoring.py.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

# q at age a rests on the closes after age a: past the oldest ages a handful of late closes (or
# one) would set it alone. The tail is pooled instead: every age with fewer than MIN_CLOSES closes
# after it takes q of the oldest age that has MIN_CLOSES (the estimate from those closes). A
# generic small count, not tuned: motivated by MavenTech (no deal closed past ~140 days of age,
# one late win set q = 1.0 for every older open deal), checked on the design seeds 42 / 7 only
# (their tails hold hundreds of closes: q moves past ~400 days of age, the figures barely).
MIN_CLOSES = 30


def closed_by(cutoff: dt.date) -> pl.Expr:
    return pl.col("is_won").is_not_null() & (pl.col("outcome_date") <= cutoff)


# Hazards from recent exposure only (a period estimate): a deal counts at risk, and its close as
# an event, only on the days of [C - WINDOW_DAYS, C]; a deal opened before the window enters at its
# age on the window's first day. None (or 0): every deal's whole history. Why: when win odds fall,
# the whole history's q over-estimates the open deals' chances (design seed 7 at drift 1: mean q
# 0.174 against 0.076 won eventually; 0.153 with a 365-day window). Chosen on the design seeds
# 42 / 7 by the calibration rule of benchmarks/tune_drift.py (README design log): drift-1 holdout
# ECE -0.0011 (export labels) / -0.0021 (eventual outcomes), drift 0 within 0.0004, AUC unchanged;
# 730 days moved everything by <= 0.0003.
WINDOW_DAYS: int | None = 365


def eventual_win_rate(snap: pl.DataFrame, cutoff: dt.date, min_closes: int | None = None,
                      window_days: int | None = None) -> np.ndarray:
    """q[a] = P(eventually won | still open at age a days), a = 0 .. the oldest age seen by C.

    Aalen-Johansen over deal age: a deal known at C is at risk from age 0 to its closing age
    (closed by C: an event, won or lost) or to its age on C (open: censored). The estimate needs
    no outcome after C. Ages with fewer than `min_closes` (default MIN_CLOSES) closes after them
    pool their tail (see MIN_CLOSES); 1 carries the last estimable value past the last close.
    `window_days` (default WINDOW_DAYS; 0: none): hazards from the exposure of that many days up
    to C only (see WINDOW_DAYS)."""
    deals = (snap.filter(pl.col("created_date") <= cutoff)
             .unique("opportunity_id", keep="first")
             .with_columns(closed_by(cutoff).alias("closed")))
    end = pl.when(pl.col("closed")).then(pl.col("outcome_date")).otherwise(pl.lit(cutoff))
    age = deals.select((end - pl.col("created_date")).dt.total_days().clip(0)).to_series().to_numpy().astype(int)
    window = WINDOW_DAYS if window_days is None else window_days
    start = (deals.select((pl.lit(cutoff - dt.timedelta(days=window)) - pl.col("created_date")).dt.total_days()
                          .clip(0)).to_series().to_numpy().astype(int) if window else np.zeros(len(age), dtype=int))
    keep = age >= start  # closed before the window opened: never at risk in it
    age, start, deals = age[keep], start[keep], deals.filter(pl.Series(keep))
    closed = deals["closed"].to_numpy()
    won = closed & deals["is_won"].fill_null(False).to_numpy()
    n_ages = int(age.max()) + 2 if len(age) else 2
    # at risk at age u: entry age <= u <= exit age; events at the exit age
    exits = np.bincount(age, minlength=n_ages)
    at_risk = (np.cumsum(np.bincount(start, minlength=n_ages)) - np.concatenate([[0], np.cumsum(exits)[:-1]])).astype(float)
    d_won = np.bincount(age[won], minlength=n_ages).astype(float)
    d_all = np.bincount(age[closed], minlength=n_ages).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_all = np.where(at_risk > 0, d_all / at_risk, 0.0)
        h_won = np.where(at_risk > 0, d_won / at_risk, 0.0)
    surv = np.cumprod(1 - h_all)  # S(u): open after age u
    before = np.concatenate([[1.0], surv[:-1]])  # S(u - 1)
    inc_won, inc_all = before * h_won, before * h_all
    # incidence after age a: sums over u > a (reverse cumulative sums, shifted by one)
    tail_won = np.concatenate([np.cumsum(inc_won[::-1])[::-1][1:], [0.0]])
    tail_all = np.concatenate([np.cumsum(inc_all[::-1])[::-1][1:], [0.0]])
    n_after = np.concatenate([np.cumsum(d_all[::-1])[::-1][1:], [0.0]])  # closes at ages > a
    m = MIN_CLOSES if min_closes is None else min_closes
    # the oldest age with at least m closes after it; older ages pool their tail with it
    supported = np.flatnonzero(n_after >= max(m, 1))
    last = supported[-1] if len(supported) else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(tail_all > 1e-12, tail_won / tail_all, np.nan)
    q[last + 1:] = q[last]
    pooled = inc_won.sum() / inc_all.sum() if inc_all.sum() > 0 else 0.0
    return np.nan_to_num(q, nan=pooled)


def imputed_rows(rows: pl.DataFrame, cutoff: dt.date, q: np.ndarray) -> pl.DataFrame:
    """The rows (of one slice) whose deal had not closed by C, each twice: won with weight q and
    lost with weight 1 - q (`label_weight`), q read at the deal's age on C."""
    open_rows = rows.filter(~closed_by(cutoff))
    if len(open_rows) == 0:
        return open_rows.with_columns(pl.lit(1.0).alias("label_weight"))
    age_at_cutoff = (pl.lit(cutoff) - pl.col("created_date")).dt.total_days().clip(0, len(q) - 1)
    qs = pl.Series("q", q)
    base = open_rows.with_columns(age_at_cutoff.alias("_age")).with_columns(
        pl.col("_age").map_batches(lambda a: qs.gather(a.cast(pl.UInt32)), return_dtype=pl.Float64).alias("_q"))
    won = base.with_columns(pl.lit(True).alias("is_won"), pl.col("_q").alias("label_weight"))
    lost = base.with_columns(pl.lit(False).alias("is_won"), (1 - pl.col("_q")).alias("label_weight"))
    return pl.concat([won, lost]).drop("_age", "_q")
