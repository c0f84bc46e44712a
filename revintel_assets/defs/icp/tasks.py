"""The ICP model fits as self-contained tasks for `parallel.map_tasks` (this machine's worker
processes or a Dask cluster). Its own small module because a worker imports the module of the
function it runs: this one pulls in the model code only (LightGBM, scikit-learn), not Dagster and
MLflow as assets.py would (~2.5x the import time)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from threadpoolctl import threadpool_limits

from revintel_assets.defs.icp.model import DivisionModel, NotEnoughData, train_division


def fit_division(rows: pl.DataFrame, division: str, cutoff: dt.date) -> DivisionModel | NotEnoughData:
    """One division's candidates on its training rows; the NotEnoughData that stops a fit is
    returned, not raised, so the other fits go on (and the caller says which were skipped).

    One BLAS / OpenMP thread wherever it runs, as in a pool process (parallel.ONE_THREAD): a fit
    that map_tasks ran in the calling process had 2 BLAS threads for the season shift's and the
    calibrators' matrix products, which then summed in another order, so a model's scores
    differed in the last bit with the process that fitted it (icp_scores of the scoring cutoff:
    285 rows of one division between two runs of the same code and warehouse)."""
    try:
        with threadpool_limits(1):
            return train_division(rows, division, cutoff=cutoff)
    except NotEnoughData as e:
        return e
