"""The ICP model fits as self-contained tasks for `parallel.map_tasks` (this machine's worker
processes or a Dask cluster). Its own small module because a worker imports the module of the
function it runs: this one pulls in the model code only (LightGBM, scikit-learn), not Dagster and
MLflow as assets.py would (~2.5x the import time)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from revintel_assets.defs.icp.model import DivisionModel, NotEnoughData, train_division


def fit_division(rows: pl.DataFrame, division: str, cutoff: dt.date) -> DivisionModel | NotEnoughData:
    """One division's candidates on its training rows; the NotEnoughData that stops a fit is
    returned, not raised, so the other fits go on (and the caller says which were skipped)."""
    try:
        return train_division(rows, division, cutoff=cutoff)
    except NotEnoughData as e:
        return e
