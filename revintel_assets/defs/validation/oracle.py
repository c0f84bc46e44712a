"""Ground truth of the demo company, for evaluation only (oracle_auc / oracle_brier).

No asset reads truth for features, training or scores; this module is called by the model
asset *after* a model is trained, to report how far it is from the ceiling on the same holdout
rows. The truth folder is given explicitly (`SourceResource.truth_folder()`: set by `revintel demo`,
or the generated demo's own truth/ folder when the loaded source *is* the demo folder). Real sources
have neither, and the oracle metrics are simply absent.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl


def division_truth(folder: Path | None, cutoffs: list[dt.date], window_months: int) -> pl.DataFrame | None:
    """(account_id, division, cutoff_date, true_probability) for the cutoffs and window, or None."""
    if folder is None or not (folder / "division_truth.csv").exists():
        return None
    truth = (pl.scan_csv(folder / "division_truth.csv",
                         schema_overrides={"account_id": pl.Utf8, "division": pl.Utf8, "cutoff_date": pl.Date,
                                           "window_months": pl.Int64, "true_probability": pl.Float64})
             .filter(pl.col("cutoff_date").is_in(cutoffs) & (pl.col("window_months") == window_months))
             .select("account_id", "division", "cutoff_date", "true_probability").collect())
    return truth if truth.height else None


def deal_truth(folder: Path | None) -> pl.DataFrame | None:
    """(opportunity_id, true_win_probability) of the demo company, or None."""
    if folder is None or not (folder / "deal_truth.csv").exists():
        return None
    return pl.read_csv(folder / "deal_truth.csv", schema_overrides={"opportunity_id": pl.Utf8,
                                                                     "true_win_probability": pl.Float64})
