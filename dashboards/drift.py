"""Feature drift for Model Health: how far today's open deals sit from the rows the champion
learned from, per feature, as a population stability index (PSI). Pure numpy, no clock.

PSI = Σ (cur% − ref%) · ln(cur% / ref%) over the reference's decile bins (a missing value is a bin
of its own; a feature with ten values or fewer, a bin per value, split halfway between them). The usual reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
"""

from __future__ import annotations

import numpy as np
import polars as pl

MODERATE, MAJOR = 0.1, 0.25
_FLOOR = 1e-4  # an empty bin counts as 0.01 % so the log stays finite


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float | None:
    """PSI of `current` against `reference` (1-D floats, NaN = missing); None when either is empty."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if reference.size == 0 or current.size == 0:
        return None
    ref_ok, cur_ok = reference[~np.isnan(reference)], current[~np.isnan(current)]
    values = np.unique(ref_ok)
    if 1 < values.size <= bins:
        # a few values only (a per-stage median, a count): a bin per value, split halfway to the next.
        # Edges at the values themselves put a value that moved by a fraction of a day into the next
        # bin: "usual days in this stage" (49.8 -> 50.6) read as a major shift (PSI 4.4)
        edges = (values[:-1] + values[1:]) / 2
    else:
        edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1)[1:-1])) if ref_ok.size else np.array([])

    def shares(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, ok, side="right"), minlength=edges.size + 1)
        return np.append(counts, x.size - ok.size) / x.size

    r, c = np.maximum(shares(reference, ref_ok), _FLOOR), np.maximum(shares(current, cur_ok), _FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def feature_drift(reference: pl.DataFrame, current: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """feature, psi, level (stable / moderate / major), most drifted first."""
    rows = []
    for f in features:  # a few dozen features, each vectorised
        if f not in reference.columns or f not in current.columns:
            continue
        value = psi(reference[f].cast(pl.Float64).fill_nan(None).to_numpy(),
                    current[f].cast(pl.Float64).fill_nan(None).to_numpy())
        if value is not None:
            rows.append((f, value))
    out = pl.DataFrame(rows, schema={"feature": pl.String, "psi": pl.Float64}, orient="row")
    return out.with_columns(pl.when(pl.col("psi") >= MAJOR).then(pl.lit("major shift"))
                            .when(pl.col("psi") >= MODERATE).then(pl.lit("moderate shift"))
                            .otherwise(pl.lit("stable")).alias("level")).sort("psi", descending=True)
