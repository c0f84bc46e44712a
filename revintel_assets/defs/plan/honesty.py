"""Is p_hit_quota honest? On past fiscal quarters, compute it as the product would have then (only
what was known at the origin: the backtest's prepare_origin) and compare with whether the quota
was made. Of the (segment, quarter) pairs where revintel said 70-90 %, 70-90 % should be made.

Origins per quarter: `start`, the last snapshot date at most a week before the quarter starts
(the quarter is wholly ahead), and `mid`, the snapshot date nearest the quarter's 45th day.
Pure: dates and frames in, frames out.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revintel_assets.defs.validation.metrics import classification_metrics
from revintel_assets.rules import add_months, current_quarter_start

FAMILY = "quota_attainment"
BINS = ((0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0))
MAX_QUARTERS = 8  # the latest quarters judged (two origins each)
START_SLACK_DAYS = 7  # a `start` origin lies at most this many days before its quarter
MID_DAY = 45


def origins(snapshot_dates: list[dt.date], as_of: dt.date, fy_start_month: int,
            max_quarters: int = MAX_QUARTERS) -> list[tuple[dt.date, str, dt.date]]:
    """(origin, kind, quarter_start) for the latest quarters that ended by as_of (their outcome is known)."""
    dates = np.array(sorted(set(snapshot_dates)), dtype="datetime64[D]")
    if not len(dates):
        return []
    q = current_quarter_start(as_of, fy_start_month)
    out = []
    for k in range(1, max_quarters + 1):  # a handful of quarters
        qs = add_months(q, -3 * k)
        if np.datetime64(qs) <= dates[0]:
            break
        before = dates[dates < np.datetime64(qs)]
        if len(before) and (np.datetime64(qs) - before[-1]).astype(int) <= START_SLACK_DAYS:
            out.append((before[-1].astype(dt.date), "start", qs))
        inside = dates[(dates >= np.datetime64(qs)) & (dates < np.datetime64(add_months(qs, 3)))]
        if len(inside):
            mid = inside[np.argmin(np.abs((inside - np.datetime64(qs + dt.timedelta(days=MID_DAY))).astype(int)))]
            out.append((mid.astype(dt.date), "mid", qs))
    return sorted(out)


def judged(rows: pl.DataFrame, actual: pl.DataFrame) -> pl.DataFrame:
    """rows: quota_attainment rows of the origins' quarters (with origin_kind); actual: (period_start,
    segment_type, segment, booked_in_quarter). Keeps rows with a quota; made = booked >= quota;
    baseline_p: 1 when booked_to_date + the weighted pipeline reached the quota, else 0."""
    return (rows.filter(pl.col("quota").is_not_null() & pl.col("p_hit_quota").is_not_null())
            .join(actual, on=["period_start", "segment_type", "segment"], how="left")
            .with_columns((pl.col("booked_in_quarter").fill_null(0.0) >= pl.col("quota")).alias("made"),
                          (pl.col("weighted_pipeline") >= pl.col("quota")).cast(pl.Float64).alias("baseline_p")))


def stack(judged_frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The judged rows of every origin in one frame. Relaxed: an origin whose quarter has no quota
    at all has all-null (Null-typed) columns where the others have text (a quotas file covering
    only the recent quarters, the usual one, failed the run here)."""
    return pl.concat(judged_frames, how="vertical_relaxed")


def _bin_rows(p: np.ndarray, y: np.ndarray) -> list[tuple[str, float]]:
    out = []
    for lo, hi in BINS:
        sel = (p >= lo) & ((p < hi) | (hi == 1.0))
        name = f"bin_{round(lo * 100)}_{round(hi * 100)}"
        n = int(sel.sum())
        out += [(f"{name}_n", float(n)), (f"{name}_made", float(y[sel].sum())),
                (f"{name}_predicted_mean", float(p[sel].mean()) if n else float("nan")),
                (f"{name}_made_rate", float(y[sel].mean()) if n else float("nan"))]
    return out


def metrics(judged_rows: pl.DataFrame) -> pl.DataFrame:
    """validation.model_metrics rows: per origin kind (start / mid / all) and segment type (and
    'all'), the bins (n, made, predicted_mean, made_rate) and brier / log_loss / auc / ece of
    p_hit_quota, beside the weighted-pipeline rule (baseline_weighted_pipeline: 1 when it reaches
    the quota) on the same rows. split: holdout where every origin's shared shock was tuned on
    earlier origins only (walk forward), else validation."""
    out = []
    kinds = [("all", judged_rows)] + [(k, judged_rows.filter(pl.col("origin_kind") == k)) for k in ("start", "mid")]
    for kind, g in kinds:
        for stype in ["all", *sorted(g["segment_type"].unique().to_list())]:
            r = g if stype == "all" else g.filter(pl.col("segment_type") == stype)
            if not len(r):
                continue
            y = r["made"].cast(pl.Float64).to_numpy()
            split = "holdout" if (r["shock"] == "walk_forward").all() else "validation"
            for name, p in (("p_hit_quota", r["p_hit_quota"].to_numpy()),
                            ("baseline_weighted_pipeline", r["baseline_p"].to_numpy())):
                vals = list(classification_metrics(y, p).items())
                if name == "p_hit_quota":
                    vals += _bin_rows(p, y)
                vals += [("n_origins", float(r["as_of_date"].n_unique())), ("n_quarters", float(r["period_start"].n_unique()))]
                out += [{"model_name": name, "period_type": kind, "segment_type": stype, "split": split,
                         "metric": m, "value": v} for m, v in vals]
    return pl.DataFrame(out, schema={"model_name": pl.Utf8, "period_type": pl.Utf8, "segment_type": pl.Utf8,
                                     "split": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64})
