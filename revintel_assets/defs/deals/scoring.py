"""Score the deals open on a date with the model that was champion then (pure, no Dagster).

If no LightGBM version has earned promotion by that date, the stage baseline scores instead,
fitted on outcomes known by then, and `model_version` says so: an honest baseline beats a
model that does not beat it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revintel_assets.defs.deals.explain import top_contributions
from revintel_assets.defs.deals.risk import RiskWeights, score_risk
from revintel_assets.defs.deals.win_model import WinModel

SCORE_COLUMNS = ["as_of_date", "opportunity_id", "account_id", "rep_id", "product_id", "division", "stage",
                 "amount", "win_probability", "expected_close_date", "risk_score", "risk_category",
                 "risk_drivers", "recommended_action", "model_version"]


def _history_rows(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    known = history.filter((pl.col("outcome_date") <= as_of) & pl.col("is_won").is_not_null())
    return known.with_columns((1.0 / pl.len().over("opportunity_id")).alias("weight"))


def expected_close(rows: pl.DataFrame, known: pl.DataFrame) -> pl.Series:
    """The expected close date the CRM holds on that date; where it holds none (MavenTech), the
    median time from this stage to a win among deals already won."""
    won = known.filter(pl.col("is_won"))
    lag = won.group_by("stage").agg((pl.col("outcome_date") - pl.col("as_of_date")).dt.total_days()
                                     .median().alias("lag"))
    overall = won.select((pl.col("outcome_date") - pl.col("as_of_date")).dt.total_days().median()).item()
    filled = rows.join(lag, on="stage", how="left", maintain_order="left").with_columns(
        pl.col("lag").fill_null(overall).fill_null(30).round(0).cast(pl.Int64))
    estimate = filled.select((pl.col("as_of_date") + pl.duration(days=pl.col("lag"))).cast(pl.Date))
    return rows["expected_close_date"].fill_null(estimate.to_series()).alias("expected_close_date")


# What scoring needs of the outcomes known on a date, per stage (and overall: stage NULL): labelled
# (deal, as-of) rows, wins, and the median days from that stage to a win. At scale 100 the labelled
# history is ~25 M rows; DuckDB reduces it to a handful, so scoring never holds it in memory.
OUTCOME_STATS_SQL = """
    SELECT stage, count(*) AS n, sum(is_won::INT) AS won,
           median(CASE WHEN is_won THEN outcome_date - as_of_date END) AS lag
    FROM features.deal_snapshot
    WHERE is_won IS NOT NULL AND as_of_date < ? AND outcome_date <= ?
    GROUP BY GROUPING SETS ((stage), ())"""


def outcome_stats(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """OUTCOME_STATS_SQL on a frame of labelled snapshot rows (tests, small data)."""
    known = _history_rows(history.filter(pl.col("as_of_date") < as_of), as_of)
    aggs = [pl.len().alias("n"), pl.col("is_won").cast(pl.Int64).sum().alias("won"),
            (pl.col("outcome_date") - pl.col("as_of_date")).dt.total_days().filter(pl.col("is_won"))
            .median().alias("lag")]
    return pl.concat([known.group_by("stage").agg(aggs),
                      known.select(pl.lit(None, dtype=pl.Utf8).alias("stage"), *aggs)], how="vertical_relaxed")


def _stage_probability(stats: pl.DataFrame, rows: pl.DataFrame, prior: float = 20.0) -> tuple[np.ndarray, float]:
    """baselines.stage_rate from the counts: the stage's win rate shrunk toward the base rate."""
    total = stats.filter(pl.col("stage").is_null())
    n, won = (int(total["n"][0] or 0), int(total["won"][0] or 0)) if len(total) else (0, 0)
    if n == 0:
        return np.full(len(rows), 0.5), 0.5
    base = won / n
    table = stats.filter(pl.col("stage").is_not_null()).select(
        "stage", ((pl.col("won") + prior * base) / (pl.col("n") + prior)).alias("p"))
    p = rows.select("stage").join(table, on="stage", how="left", maintain_order="left")["p"].fill_null(base)
    return p.to_numpy(), base


def _expected_close(rows: pl.DataFrame, stats: pl.DataFrame) -> pl.Series:
    """expected_close() from the per-stage medians."""
    overall = stats.filter(pl.col("stage").is_null())["lag"].cast(pl.Float64)
    lag = stats.filter(pl.col("stage").is_not_null()).select("stage", pl.col("lag").cast(pl.Float64))
    filled = rows.join(lag, on="stage", how="left", maintain_order="left").with_columns(
        pl.col("lag").fill_null(pl.lit(overall[0] if len(overall) else None, dtype=pl.Float64))
        .fill_null(30).round(0).cast(pl.Int64))
    estimate = filled.select((pl.col("as_of_date") + pl.duration(days=pl.col("lag"))).cast(pl.Date))
    return rows["expected_close_date"].fill_null(estimate.to_series()).alias("expected_close_date")


def score_deals(rows: pl.DataFrame, stats: pl.DataFrame, as_of: dt.date, model: WinModel | None,
                model_version: str | None, weights: RiskWeights = RiskWeights()
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scores, explanations) for the snapshot `rows` of `as_of`; `stats` = outcome_stats() of the
    labelled history known on `as_of` (or OUTCOME_STATS_SQL's result)."""
    ids = rows.select("as_of_date", "opportunity_id")
    if model is not None:
        p = model.predict(rows)
        explanations = top_contributions(ids, rows, model.contributions(rows))
    else:
        p, base = _stage_probability(stats, rows)
        model_version = f"baseline_stage@{as_of}"
        logit = lambda x: np.log(np.clip(x, 1e-6, 1 - 1e-6) / (1 - np.clip(x, 1e-6, 1 - 1e-6)))
        explanations = _stage_only(ids, rows, logit(p) - logit(base))
    scored = rows.with_columns(pl.Series("win_probability", p, dtype=pl.Float64),
                               _expected_close(rows, stats), pl.lit(model_version).alias("model_version"))
    scored = score_risk(scored, weights)
    return scored.select(SCORE_COLUMNS), explanations


def _stage_only(ids: pl.DataFrame, rows: pl.DataFrame, contribution: np.ndarray) -> pl.DataFrame:
    """The stage baseline has one input; its explanation says exactly that."""
    return ids.with_columns(
        pl.lit(1, dtype=pl.Int32).alias("rank"), pl.lit("stage").alias("feature"),
        rows["stage"].alias("feature_value"), pl.Series("contribution", contribution, dtype=pl.Float64),
    ).with_columns(
        pl.when(pl.col("contribution") >= 0).then(pl.lit("raises")).otherwise(pl.lit("lowers")).alias("direction"),
    ).with_columns(
        (pl.lit("Stage is ") + pl.col("feature_value")
         + "; the stage baseline scores every deal in it at that stage's historical win rate").alias("explanation"))
