"""The win model's fit as a self-contained task for `parallel.map_tasks` (this machine's worker
processes or a Dask cluster), so the training cutoffs of one run fit at once. Its own small module
because a worker imports the module of the function it runs: this one pulls in the model code
only (LightGBM, scikit-learn), not Dagster and MLflow as assets.py would."""

from __future__ import annotations

import dataclasses

from threadpoolctl import threadpool_limits

from revintel_assets.defs.deals.win_model import Split, WinModel, train


def fit_part(split: Split) -> Split:
    """What `train` reads of a split (training, validation and censored rows): the holdout and
    the baselines' rows stay with the caller, so a worker is sent only what it fits on."""
    return dataclasses.replace(split, holdout=split.holdout.clear(), baseline_rows=None)


def fit_win_model(split: Split, numeric: list[str] | None = None, categorical: list[str] | None = None) -> WinModel:
    """`train(split)` on these features (default: all) with one BLAS / OpenMP thread wherever it
    runs, as in a pool process (parallel.ONE_THREAD), so the model is the same whichever process
    fitted it (LightGBM runs with num_threads=1 in either case, win_model.PARAMS)."""
    with threadpool_limits(1):
        return train(split, numeric=numeric, categorical=categorical)
