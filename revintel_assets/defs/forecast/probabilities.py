"""Win probabilities as known on a past date, by scoring.py's rule: the latest *promoted* win model
with training cutoff <= that date, else the stage baseline fitted on outcomes known by then."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import polars as pl

from revintel_assets.defs.deals.baselines import stage_rate
from revintel_assets.defs.deals.evaluate import MODEL_NAME
from revintel_assets.rules import expected_close, known_history, stage_counts, stage_win_rate, weighted_median


def label_counts(history: pl.DataFrame) -> pl.DataFrame:
    """Labelled snapshot rows counted per (as_of_date, outcome_date, stage, is_won): all that the
    stage baseline and the expected-close fallback read of them (scoring.LABEL_COUNTS_SQL in SQL)."""
    return (history.filter(pl.col("is_won").is_not_null())
            .group_by("as_of_date", "outcome_date", "stage", "is_won").agg(pl.len().cast(pl.Int64).alias("n")))


def _known_counts(counts: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """rules.known_history(history before as_of, as_of), counted."""
    return counts.filter((pl.col("as_of_date") < as_of) & (pl.col("outcome_date") <= as_of)
                         & pl.col("is_won").is_not_null())


def stage_rate_from_counts(known: pl.DataFrame, rows: pl.DataFrame) -> np.ndarray:
    """baselines.stage_rate from counted rows: the same integer counts, so the same probabilities."""
    return stage_win_rate(stage_counts(known, weight="n"), rows)[0]


def expected_close_from_counts(rows: pl.DataFrame, counts: pl.DataFrame, as_of: dt.date) -> pl.Series:
    """rules.expected_close with the stage-to-win medians of counted rows (weighted medians: the
    same values scoring.expected_close_from_rows takes from the rows themselves)."""
    col = rows["expected_close_date"]
    if col.null_count() == 0:  # nothing to fill (the lags would not be read)
        return col.alias("expected_close_date")
    won = _known_counts(counts, as_of).filter(pl.col("is_won")).with_columns(
        (pl.col("outcome_date") - pl.col("as_of_date")).dt.total_days().alias("lag_days"))
    lags = {s: weighted_median(g["lag_days"].to_numpy(), g["n"].to_numpy())
            for (s,), g in won.group_by("stage")}
    lag = pl.DataFrame({"stage": list(lags), "lag": list(lags.values())},
                       schema={"stage": rows.schema["stage"], "lag": pl.Float64})
    return expected_close(rows, lag, weighted_median(won["lag_days"].to_numpy(), won["n"].to_numpy()))


def known_deals(as_of: dt.date, rows: pl.DataFrame, scored: pl.DataFrame | None, prob_fn,
                counts: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The open deals of `as_of` (snapshot rows, outcomes excluded) with win_probability and an
    expected close date: the deal scores of the date when it has them, else prob_fn(as_of, rows)
    and the expected-close rule of scoring (stage-to-win medians of outcomes known by as_of)."""
    if scored is not None and len(scored):
        deals = rows.join(scored, on="opportunity_id", how="inner", maintain_order="left").with_columns(
            pl.col("expected_close_date").fill_null(pl.col("scored_close")))
        return deals, ", ".join(sorted(scored["model_version"].unique().to_list()))
    p, source = prob_fn(as_of, rows)
    close = expected_close_from_counts(rows, counts, as_of)
    return rows.with_columns(pl.Series("win_probability", p, dtype=pl.Float64), close), source


def stage_baseline(history: pl.DataFrame, counts: bool = False):
    """fn(date, rows) -> (p, version) from the stage baseline only (no model registry needed).
    history: labelled snapshot rows, or (counts=True) label_counts of them."""

    def fn(as_of: dt.date, rows: pl.DataFrame) -> tuple[np.ndarray, str]:
        if counts:
            known = _known_counts(history, as_of)
            p = stage_rate_from_counts(known, rows) if known["n"].sum() else np.full(len(rows), 0.5)
        else:
            known = known_history(history.filter(pl.col("as_of_date") < as_of), as_of)
            p = stage_rate(known, rows) if len(known) else np.full(len(rows), 0.5)
        return p, f"baseline_stage@{as_of}"

    return fn


def registry(tracking, history: pl.DataFrame, counts: bool = False):
    """fn(date, rows) -> (p, version) with the model that was champion-eligible on that date."""
    from revintel_assets.defs.deals.registry import eligible_on, load

    fallback = stage_baseline(history, counts=counts)
    cached = lru_cache(maxsize=8)(lambda version: load(tracking, version))
    eligible = eligible_on(tracking)  # the registry as it stands when the run starts, read once

    def fn(as_of: dt.date, rows: pl.DataFrame) -> tuple[np.ndarray, str]:
        version = eligible(as_of)
        if version is None:
            return fallback(as_of, rows)
        return cached(version).predict(rows), f"{MODEL_NAME}/{version}"

    return fn
