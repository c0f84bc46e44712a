"""A past date's forecast and a backtest origin's simulations as self-contained tasks for
`parallel.map_tasks` (this machine's worker processes or a Dask cluster), so the dates of a range
run, and the origins of a backtest, are simulated at once. Its own small module because a worker
imports the module of the function it runs: this one pulls in the forecast code only, not Dagster
and MLflow as assets.py would."""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets import parallel
from revintel_assets.defs.forecast import backtest, history, model, simulate
from revintel_assets.defs.forecast.periods import Calendar


def forecast_past_date(cal: Calendar, deals: pl.DataFrame, fitted, segments: model.Segments, new: tuple,
                       n_sims: int, seed: int, sigma: tuple[float, float]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """history.forecast_date of one date whose segments and new pipeline the caller computed
    (the opportunities table stays with it): its revenue_forecast and deal_contributions rows (not
    its simulated bookings: nothing reads a past date's, so they do not travel back). The engine
    runs here, in one process (never a pool or a cluster of its own: the dates are the parallelism;
    forecast_date has one BLAS thread), so the numbers are the same whichever process ran the date,
    and the same as the engine split over chunks (seeded per chunk)."""
    with parallel.using(""):
        frame, prep, _ = history.forecast_date(cal, deals, fitted, None, None, n_sims, seed, sigma,
                                               workers=1, segments=segments, new=new)
        return frame, model.deal_contributions(prep)


def backtest_tuning(origin: backtest.Origin, seed: int) -> np.ndarray:
    """backtest.tuning_hits of one prepared origin on its TUNING_SIMS sims drawn with `seed`. The
    engine runs here, in one process (the origins are the parallelism): the same hits whichever
    process ran it, and the same as the engine split over chunks of reps (seeded per chunk)."""
    with parallel.using(""):
        return backtest.tuning_hits(origin, backtest.tuning_sims(origin, seed, workers=1), seed)


def backtest_evaluation(origin: backtest.Origin, n_sims: int, seed: int,
                        shocks: list[tuple[float, float]]) -> list[pl.DataFrame]:
    """backtest.evaluate_origin_blocked's rows of one origin for each (sigma_horizon, sigma_week)
    of `shocks`, on n_sims sims drawn with `seed`, in one process (as backtest_tuning)."""
    with parallel.using(""):
        mats = [simulate.shock(n_sims, origin.cal.atom_week_all, s_h, s_w, seed) for s_h, s_w in shocks]
        return backtest.evaluate_origin_blocked(origin, n_sims, seed, mats, workers=1)
