"""Ground truth for the demo company, read ONLY to report how far a model is from the ceiling.

The truth never feeds a feature, a model or a score. It is found only through
REVINTEL_TRUTH_DIR, which `revintel demo` sets to the generated company's truth/ folder; real
sources have none and the oracle metrics are simply absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl


def truth_dir() -> Path | None:
    value = os.environ.get("REVINTEL_TRUTH_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def deal_truth() -> pl.DataFrame | None:
    folder = truth_dir()
    if folder is None or not (folder / "deal_truth.csv").exists():
        return None
    return pl.read_csv(folder / "deal_truth.csv", schema_overrides={"opportunity_id": pl.Utf8,
                                                                     "true_win_probability": pl.Float64})
