"""A past date's forecast as a self-contained task for `parallel.map_tasks` (this machine's worker
processes or a Dask cluster), so the dates of a range run are forecast at once. Its own small
module because a worker imports the module of the function it runs: this one pulls in the
forecast code only, not Dagster and MLflow as assets.py would."""

from __future__ import annotations

import polars as pl

from revintel_assets import parallel
from revintel_assets.defs.forecast import history, model
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
