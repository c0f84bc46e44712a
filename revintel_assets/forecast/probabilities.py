"""Win probabilities as known on a past date, by scoring.py's rule: the latest *promoted* win model
with training cutoff <= that date, else the stage baseline fitted on outcomes known by then."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import polars as pl

from revintel_assets.deals.baselines import stage_rate
from revintel_assets.deals.evaluate import MODEL_NAME
from revintel_assets.deals.scoring import _history_rows


def stage_baseline(history: pl.DataFrame):
    """fn(date, rows) -> (p, version) from the stage baseline only (no model registry needed)."""

    def fn(as_of: dt.date, rows: pl.DataFrame) -> tuple[np.ndarray, str]:
        known = _history_rows(history.filter(pl.col("as_of_date") < as_of), as_of)
        p = stage_rate(known, rows) if len(known) else np.full(len(rows), 0.5)
        return p, f"baseline_stage@{as_of}"

    return fn


def registry(tracking, history: pl.DataFrame):
    """fn(date, rows) -> (p, version) with the model that was champion-eligible on that date."""
    from revintel_assets.deals.registry import latest_eligible, load

    fallback = stage_baseline(history)
    cached = lru_cache(maxsize=8)(lambda version: load(tracking, version))

    def fn(as_of: dt.date, rows: pl.DataFrame) -> tuple[np.ndarray, str]:
        version = latest_eligible(tracking, as_of)
        if version is None:
            return fallback(as_of, rows)
        return cached(version).predict(rows), f"{MODEL_NAME}/{version}"

    return fn
