"""Classifier and propensity metrics, gains and calibration tables, and a calibrator.

Pure functions of numpy arrays (or anything array-like), so every model (deals, ICP) reports
the same numbers under the same names (docs/CONTRACT.md §3). Conventions:

* `y` is 0/1, `p` a probability (or, for the ranking metrics, any score: higher = likelier);
* deciles are ranked by `p` descending, decile 1 = the top 10 %; ties are broken by input
  order (a stable sort), so results are deterministic;
* ECE and calibration bins use 10 equal-width bins on [0, 1], the last bin closed at 1.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

MIN_ISOTONIC_ROWS = 1000  # isotonic overfits (a step per few points) below this many rows
EPS = 1e-6
# Isotonic regression maps its emptiest end blocks to exactly 0 or 1 (a block where every
# calibration row lost or won). No prediction is certain: calibrated outputs stay this far inside.
P_GUARD = 1e-4


_POLARS = {"VARCHAR": pl.String, "DATE": pl.Date, "DOUBLE": pl.Float64}


def defined(metrics: pl.DataFrame) -> pl.DataFrame:
    """The rows of a validation.model_metrics frame whose value is a number, as every producer writes
    them: a metric undefined on its rows (an AUC over one class, an empty bin's mean) is left out,
    not stored as NaN, which turns any average an analyst takes over the column into NaN. The
    contract's key columns a family does not use are there, NULL (the table of a source whose deal
    model and forecast wrote it, no ICP, had no `segment`)."""
    from revintel_assets.contract import TABLES

    missing = [pl.lit(None, _POLARS[t]).alias(c) for c, t in TABLES["validation.model_metrics"].items()
               if c not in metrics.columns]
    return metrics.with_columns(missing).filter(pl.col("value").is_not_null() & ~pl.col("value").cast(pl.Float64).is_nan())


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=float).ravel(), np.asarray(p, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p differ in length: {len(y)} vs {len(p)}")
    return y, p


def classification_metrics(y, p, n_bins: int = 10) -> dict[str, float]:
    """auc, pr_auc, brier, log_loss, ece, n, positives. AUC/PR-AUC are NaN when only one class."""
    y, p = _arrays(y, p)
    n, pos = len(y), float(y.sum())
    two_classes = 0 < pos < n
    pc = np.clip(p, EPS, 1 - EPS)
    return {
        "auc": float(roc_auc_score(y, p)) if two_classes else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if two_classes else math.nan,
        "brier": float(np.mean((p - y) ** 2)) if n else math.nan,
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))) if n else math.nan,
        "ece": expected_calibration_error(y, p, n_bins),
        "n": float(n),
        "positives": pos,
    }


def auc_difference_se(y, a, b) -> float:
    """Standard error of AUC(a) - AUC(b) on the same rows (DeLong, DeLong & Clarke-Pearson 1988:
    each row's placement among the other class, midranks for ties), NaN with fewer than 2 of a class.
    Paired: two candidates that rank the same accounts alike differ by less than their own AUCs' noise."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return float("nan")

    def placements(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ranks = rankdata(s)
        v10 = (ranks[y] - rankdata(s[y])) / n  # per positive: the share of negatives ranked below it
        v01 = 1.0 - (ranks[~y] - rankdata(s[~y])) / m  # per negative: the share of positives above it
        return v10, v01

    (a10, a01), (b10, b01) = placements(np.asarray(a, float)), placements(np.asarray(b, float))
    return float(math.sqrt(np.var(a10 - b10, ddof=1) / m + np.var(a01 - b01, ddof=1) / n))


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    # equal-width bins; p == 1 falls into the last bin rather than a bin of its own
    return np.minimum((np.clip(p, 0, 1) * n_bins).astype(int), n_bins - 1)


def calibration_bins(y, p, n_bins: int = 10) -> pl.DataFrame:
    """One row per non-empty equal-width bin: bin (1..n_bins), mean_predicted, observed_rate, n."""
    y, p = _arrays(y, p)
    b = _bin_index(p, n_bins)
    n = np.bincount(b, minlength=n_bins)
    keep = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, p, n_bins) / n
        rate = np.bincount(b, y, n_bins) / n
    return pl.DataFrame({
        "bin": np.arange(1, n_bins + 1)[keep].astype(np.int32),
        "mean_predicted": mean_p[keep], "observed_rate": rate[keep], "n": n[keep].astype(np.int64)})


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    """Sum over bins of (bin share) x |mean predicted - observed rate|."""
    bins = calibration_bins(y, p, n_bins)
    total = bins["n"].sum()
    if not total:
        return math.nan
    gap = (bins["mean_predicted"] - bins["observed_rate"]).abs()
    return float((gap * bins["n"]).sum() / total)


def _deciles(p: np.ndarray) -> np.ndarray:
    """Decile 1..10 of each row by p descending (stable: earlier rows win ties)."""
    order = np.argsort(-p, kind="stable")
    dec = np.empty(len(p), dtype=np.int32)
    dec[order] = np.arange(len(p)) * 10 // max(len(p), 1) + 1
    return dec


def deciles(p) -> np.ndarray:
    return _deciles(np.asarray(p, dtype=float).ravel())


def gains_table(y, p, value=None) -> pl.DataFrame:
    """Per decile of p (1 = top): n, positives, rate, lift (rate / overall rate) and
    cumulative_capture (share of all positives in deciles 1..k); with `value` also the value
    and cumulative_value_capture (share of all value in deciles 1..k)."""
    y, p = _arrays(y, p)
    dec = _deciles(p)
    frame = pl.DataFrame({"decile": dec, "y": y, "v": np.zeros_like(y) if value is None
                          else np.asarray(value, dtype=float).ravel()})
    out = (frame.group_by("decile").agg(n=pl.len().cast(pl.Int64), positives=pl.col("y").sum(),
                                        value=pl.col("v").sum()).sort("decile"))
    base = y.mean() if len(y) else math.nan
    total_pos, total_value = y.sum(), out["value"].sum()
    out = out.with_columns(
        rate=pl.col("positives") / pl.col("n"),
        lift=(pl.col("positives") / pl.col("n")) / base if base else pl.lit(math.nan),
        cumulative_capture=pl.col("positives").cum_sum() / total_pos if total_pos else pl.lit(math.nan),
        cumulative_value_capture=(pl.col("value").cum_sum() / total_value) if total_value else pl.lit(math.nan),
    )
    if value is None:
        out = out.drop("value", "cumulative_value_capture")
    return out


def propensity_metrics(y, p, value=None, k: int | None = None) -> dict[str, float]:
    """lift_top_decile, precision_at_k (k = top 10 % of rows unless given) and
    value_capture_top_decile (share of `value`, e.g. next-window revenue, in the top decile)."""
    y, p = _arrays(y, p)
    n = len(y)
    if n == 0:
        return {"lift_top_decile": math.nan, "precision_at_k": math.nan, "value_capture_top_decile": math.nan}
    top = _deciles(p) == 1
    base = y.mean()
    k = max(1, math.ceil(n / 10)) if k is None else min(k, n)
    first_k = np.argsort(-p, kind="stable")[:k]
    out = {"lift_top_decile": float(y[top].mean() / base) if base else math.nan,
           "precision_at_k": float(y[first_k].mean()),
           "value_capture_top_decile": math.nan}
    if value is not None:
        v = np.asarray(value, dtype=float).ravel()
        out["value_capture_top_decile"] = float(v[top].sum() / v.sum()) if v.sum() else math.nan
    return out


class Calibrator:
    """Maps raw scores (log-odds or probabilities) to calibrated probabilities; picklable."""

    def __init__(self, method: str, model) -> None:
        self.method, self.model = method, model

    def __call__(self, raw) -> np.ndarray:
        raw = np.asarray(raw, dtype=float).ravel()
        if self.method == "isotonic":
            return np.clip(self.model.predict(raw), P_GUARD, 1 - P_GUARD)
        return np.clip(self.model.predict_proba(raw.reshape(-1, 1))[:, 1], P_GUARD, 1 - P_GUARD)

    def __repr__(self) -> str:
        return f"Calibrator({self.method!r})"


def calibrate(p_raw_val, y_val, min_isotonic: int = MIN_ISOTONIC_ROWS, weight=None) -> Calibrator:
    """Fit on held-out (raw score, outcome) pairs: isotonic with at least `min_isotonic` rows
    (and both classes), else sigmoid (Platt) scaling, which has two parameters only. `weight`:
    optional row weights (e.g. inverse-probability weights of a sampled slice)."""
    y, raw = _arrays(y_val, p_raw_val)
    w = None if weight is None else np.asarray(weight, dtype=float).ravel()
    if len(raw) >= min_isotonic and 0 < y.sum() < len(y):
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y, sample_weight=w)
        return Calibrator("isotonic", iso)
    if not 0 < y.sum() < len(y):
        raise ValueError("calibrate(): the calibration rows need both outcomes")
    return Calibrator("sigmoid", LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y, sample_weight=w))


# ICP propensities: the calibrated outputs stay inside [P_FLOOR, 1 - P_FLOOR] (issue 14).
P_FLOOR = 1e-3


class BoundedCalibrator:
    """Isotonic blocks shrunk toward Platt scaling and the pooled rate, interpolated linearly between
    the blocks' mean scores (so the ranking inside a block is kept), clipped to [P_FLOOR, 1 - P_FLOOR].

    Isotonic regression sets each block to its observed rate, which is exactly 0 or 1 whenever
    every calibration row in a (usually small, end) block lost or won; on the demo that put 185 of
    1,847 accounts at >= 0.995. Here each block's rate is shrunk toward the Platt curve's mean over
    the block with `prior_rows` pseudo-rows and toward the calibration rows' pooled rate r with
    `base_rows` pseudo-rows (a Beta prior at the base rate), (buyers + m * platt + k * r) /
    (rows + m + k): a big block keeps its observed rate, a small or extreme one is pulled in. With
    one pseudo-buyer and one pseudo-non-buyer instead (k = 2 at rate 1/2, the rule of succession)
    the top block of a high-rate division stayed where the Platt curve is near 1: on Online Retail
    2.8 % of accounts and on demo seed 7 (drift 1) 9.2 % had a division >= 0.99; with k = 5 at
    the pooled rate none did, at the same validation Brier score (docs/icp_whitespace.md). Platt
    scaling is used alone below MIN_ISOTONIC_ROWS, shrunk with the calibration rows as weight,
    (N * platt + 1) / (N + 2): a smooth curve that stays
    inside (1 / (N + 2), (N + 1) / (N + 2)). Picklable."""

    def __init__(self, centers, values, platt, rows: int = 0) -> None:
        self.centers, self.values, self.platt, self.rows = centers, values, platt, rows
        self.method = "platt" if centers is None else "isotonic-shrunk"

    def __call__(self, raw) -> np.ndarray:
        raw = np.asarray(raw, dtype=float).ravel()
        if self.centers is None:
            p = (self.rows * self.platt.predict_proba(raw.reshape(-1, 1))[:, 1] + 1) / (self.rows + 2)
        else:  # linear between the blocks' mean scores: steps would tie (and so lose) the ranking within a block
            p = np.interp(raw, self.centers, self.values)
        return np.clip(p, P_FLOOR, 1 - P_FLOOR)

    def __repr__(self) -> str:
        return f"BoundedCalibrator({self.method!r})"


PRIOR_ROWS = 30.0  # pseudo-rows of the Platt curve in every isotonic block
# pseudo-rows at the pooled rate in every block: they pull small and extreme blocks toward the
# calibration rows' rate (design: benchmarks/icp_calibration.py, docs/icp_whitespace.md)
BASE_ROWS = 5.0


def calibrate_bounded(p_raw_val, y_val, min_isotonic: int = MIN_ISOTONIC_ROWS, prior_rows: float = PRIOR_ROWS,
                      base_rows: float = BASE_ROWS, base_rate: float | None = None) -> BoundedCalibrator:
    """Fit on held-out (raw score, outcome) pairs; see BoundedCalibrator. `base_rate`: the rate of
    the base_rows pseudo-rows (None: the calibration rows' own rate)."""
    y, raw = _arrays(y_val, p_raw_val)
    if not 0 < y.sum() < len(y):
        raise ValueError("calibrate_bounded(): the calibration rows need both outcomes")
    platt = LogisticRegression(C=1.0).fit(raw.reshape(-1, 1), y)
    if len(raw) < min_isotonic:
        return BoundedCalibrator(None, None, platt, rows=len(raw))
    order = np.argsort(raw, kind="stable")
    xs, ys = raw[order], y[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(xs, ys).predict(xs)
    # blocks: runs of equal fitted value (PAVA pools adjacent violators into one value), and
    # never split between equal scores
    new_block = np.r_[True, (np.diff(fitted) != 0) & (np.diff(xs) != 0)]
    block = np.cumsum(new_block) - 1
    n = np.bincount(block).astype(float)
    buyers = np.bincount(block, weights=ys)
    prior = np.bincount(block, weights=platt.predict_proba(xs.reshape(-1, 1))[:, 1]) / n
    base = y.mean() if base_rate is None else base_rate
    values = np.maximum.accumulate((buyers + prior_rows * prior + base_rows * base) / (n + prior_rows + base_rows))
    return BoundedCalibrator(np.bincount(block, weights=xs) / n, values, platt)
