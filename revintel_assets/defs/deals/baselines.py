"""The baselines every win-probability model must beat, fitted on the same training rows and
scored on the same rows as the model (docs/CONTRACT.md §3 names). They are plain frequencies over
(deal, as-of date) rows, the same population they are scored on."""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets.rules import stage_counts, stage_win_rate

NB_FEATURES = ["stage", "product_id", "account_sector", "rep_id", "division"]


def _rate(df: pl.DataFrame) -> float:
    return float(df["is_won"].cast(pl.Float64).mean())


def base_rate(train: pl.DataFrame, rows: pl.DataFrame) -> np.ndarray:
    return np.full(len(rows), _rate(train))


def stage_rate(train: pl.DataFrame, rows: pl.DataFrame) -> np.ndarray:
    """Historical win rate of deals seen in the same stage, shrunk toward the base rate (rules.py)."""
    return stage_win_rate(stage_counts(train), rows)[0]


def naive_bayes(train: pl.DataFrame, rows: pl.DataFrame, alpha: float = 1.0) -> np.ndarray:
    """Frequency naive Bayes over categorical fields (the Odoo CRM approach), Laplace-smoothed."""
    won = pl.col("is_won").cast(pl.Float64)
    n_won = float(train["is_won"].cast(pl.Float64).sum())
    n_lost = len(train) - n_won
    if n_won == 0 or n_lost == 0:  # one outcome only: no odds to start from, and nothing to tell apart
        return base_rate(train, rows)
    log_odds = np.full(len(rows), np.log(n_won / n_lost))
    for col in NB_FEATURES:
        counts = train.group_by(col).agg(won.sum().alias("won"), (1 - won).sum().alias("lost"))
        k = max(len(counts), 1)
        joined = rows.select(col).join(counts, on=col, how="left", maintain_order="left").fill_null(0.0)
        p_won = (joined["won"].to_numpy() + alpha) / (n_won + alpha * k)
        p_lost = (joined["lost"].to_numpy() + alpha) / (n_lost + alpha * k)
        log_odds += np.log(p_won) - np.log(p_lost)
    return 1.0 / (1.0 + np.exp(-log_odds))


BASELINES = {"baseline_base_rate": base_rate, "baseline_stage": stage_rate,
             "baseline_naive_bayes": naive_bayes}
