"""Score the deals open on a date with the model that was champion then (pure, no Dagster).

If no LightGBM version has earned promotion by that date, the stage baseline scores instead,
fitted on outcomes known by then, and `model_version` says so: an honest baseline beats a
model that does not beat it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revintel_assets.defs.deals.explain import direction, top_contributions
from revintel_assets.defs.deals.risk import RiskWeights, score_risk
from revintel_assets.defs.deals.win_model import WinModel
from revintel_assets.rules import (deal_value, expected_close, known_history, stage_win_rate, value_is_estimate,
                                   weighted_median)

SCORE_COLUMNS = ["as_of_date", "opportunity_id", "account_id", "rep_id", "product_id", "division", "stage",
                 "amount", "value", "value_is_estimate", "win_probability", "expected_close_date",
                 "expected_close_estimated", "risk_score", "risk_category", "risk_drivers", "recommended_action",
                 "model_version"]


def expected_close_from_rows(rows: pl.DataFrame, known: pl.DataFrame) -> pl.Series:
    """rules.expected_close with the stage-to-win medians of labelled rows (`known_history`)."""
    won = known.filter(pl.col("is_won"))
    days = (pl.col("outcome_date") - pl.col("as_of_date")).dt.total_days()
    lag = won.group_by("stage").agg(days.median().alias("lag"))
    return expected_close(rows, lag, won.select(days.median()).item())


# What scoring needs of the outcomes known on a date, per stage (and overall: stage NULL): labelled
# (deal, as-of) rows, wins, and the median days from that stage to a win. At scale 100 the labelled
# history is ~25 M rows; DuckDB reduces it to a handful, so scoring never holds it in memory.
OUTCOME_STATS_SQL = """
    SELECT stage, count(*) AS n, sum(is_won::INT) AS won,
           median(CASE WHEN is_won THEN outcome_date - as_of_date END) AS lag
    FROM features.deal_snapshot
    WHERE is_won IS NOT NULL AND as_of_date < ? AND outcome_date <= ?
    GROUP BY GROUPING SETS ((stage), ())"""


# Labelled snapshot rows counted per (as-of date, outcome date, stage, won): all the stage baseline
# and the expected-close fallback read of them, for every date up to the parameter at once (a few
# hundred thousand rows at scale 100, however many dates). Scoring, the forecast and its backtest
# and the quota attainment read them.
LABEL_COUNTS_SQL = ("SELECT as_of_date, outcome_date, stage, is_won, count(*) AS n FROM features.deal_snapshot "
                    "WHERE is_won IS NOT NULL AND as_of_date <= ? GROUP BY ALL")


def outcome_stats_by_date(query, dates: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
    """OUTCOME_STATS_SQL for every date (`query(sql, params)`: the warehouse's), from one statement:
    LABEL_COUNTS_SQL, then each date's figures from the counts. A statement per date re-read the
    labelled history each time: 154 passes over ~25 M rows, 70 s of scale 100's scoring."""
    return stats_from_counts(query(LABEL_COUNTS_SQL, [max(dates)]), dates) if dates else {}


def stats_from_counts(counts: pl.DataFrame, dates: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
    """OUTCOME_STATS_SQL's result for each date from LABEL_COUNTS_SQL's rows (which must reach the
    latest date): per stage with rows, then overall (stage NULL, always there), n, won and the
    median days from the as-of date to the win (NULL without a win). Exact: integer counts and days."""
    stage_col = counts["stage"]
    stages = sorted(stage_col.drop_nulls().unique().to_list()) + ([None] if stage_col.null_count() else [])
    code = stage_col.cast(pl.Utf8).replace_strict({s: i for i, s in enumerate(stages) if s is not None},
                                                   default=len(stages) - 1, return_dtype=pl.Int64).to_numpy()
    day = lambda c: counts[c].cast(pl.Date).to_physical().to_numpy().astype(np.int64)  # noqa: E731
    as_of, outcome, n = day("as_of_date"), day("outcome_date"), counts["n"].cast(pl.Int64).to_numpy()
    won = counts["is_won"].fill_null(False).to_numpy()
    lag = outcome - as_of
    out = {}
    for d in dates:
        t = (d - dt.date(1970, 1, 1)).days
        known = (as_of < t) & (outcome <= t)
        k_won = known & won
        per_n = np.bincount(code[known], n[known], len(stages)).astype(np.int64)
        per_won = np.bincount(code[k_won], n[k_won], len(stages)).astype(np.int64)
        rows = [(stages[i], int(per_n[i]), int(per_won[i]), weighted_median(lag[k_won & (code == i)], n[k_won & (code == i)]))
                for i in range(len(stages)) if per_n[i]]
        # (an empty sum is NULL in SQL)
        rows.append((None, int(per_n.sum()), int(per_won.sum()) if per_n.sum() else None,
                     weighted_median(lag[k_won], n[k_won])))
        out[d] = pl.DataFrame(rows, schema={"stage": pl.Utf8, "n": pl.Int64, "won": pl.Int64, "lag": pl.Float64},
                              orient="row")
    return out


def outcome_stats(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """OUTCOME_STATS_SQL on a frame of labelled snapshot rows (tests, small data)."""
    known = known_history(history.filter(pl.col("as_of_date") < as_of), as_of)
    aggs = [pl.len().alias("n"), pl.col("is_won").cast(pl.Int64).sum().alias("won"),
            (pl.col("outcome_date") - pl.col("as_of_date")).dt.total_days().filter(pl.col("is_won"))
            .median().alias("lag")]
    return pl.concat([known.group_by("stage").agg(aggs),
                      known.select(pl.lit(None, dtype=pl.Utf8).alias("stage"), *aggs)], how="vertical_relaxed")


def _stage_probability(stats: pl.DataFrame, rows: pl.DataFrame) -> tuple[np.ndarray, float]:
    """rules.stage_win_rate from the per-stage rows of outcome_stats (the NULL-stage total aside)."""
    per_stage = stats.filter(pl.col("stage").is_not_null()).select(
        "stage", pl.col("n").cast(pl.Int64), pl.col("won").cast(pl.Int64))
    return stage_win_rate(per_stage, rows)


def _expected_close(rows: pl.DataFrame, stats: pl.DataFrame) -> pl.Series:
    """rules.expected_close from the per-stage medians of outcome_stats."""
    overall = stats.filter(pl.col("stage").is_null())["lag"].cast(pl.Float64)
    return expected_close(rows, stats.filter(pl.col("stage").is_not_null()).select("stage", "lag"),
                          overall[0] if len(overall) else None)


def score_deals(rows: pl.DataFrame, stats: pl.DataFrame, as_of: dt.date, model: WinModel | None,
                model_version: str | None, weights: RiskWeights = RiskWeights()
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scores, explanations) for the snapshot `rows` of `as_of`; `stats` = outcome_stats() of the
    labelled history known on `as_of` (or OUTCOME_STATS_SQL's result)."""
    return score_dates(rows, {as_of: stats}, model, model_version, weights)


def score_dates(rows: pl.DataFrame, stats: dict[dt.date, pl.DataFrame], model: WinModel | None,
                model_version: str | None, weights: RiskWeights = RiskWeights()
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """score_deals for the snapshot rows of several as-of dates that share one model (None: the
    stage baseline of each date). The model predicts and explains all rows in one pass (TreeSHAP
    in blocks across threads); only what depends on the date's known outcomes (`stats[date]`:
    the stage baseline, the expected-close fallback) is looked up per date, on a few rows each.
    Each row's numbers are the same as a run for its date alone."""
    rows = rows.sort("as_of_date", "opportunity_id")
    ids = rows.select("as_of_date", "opportunity_id")
    per_date = rows.partition_by("as_of_date", maintain_order=True, as_dict=True)
    close = pl.concat([_expected_close(part, stats[d]) for (d,), part in per_date.items()]) if len(rows) \
        else rows["expected_close_date"]
    if model is not None:
        p, contrib = model.explain(rows)  # one pass: the probability and its TreeSHAP
        explanations = top_contributions(ids, rows, contrib, names=model.encoder.features)
        version = pl.lit(model_version)
    else:
        parts = [(_stage_probability(stats[d], part), len(part)) for (d,), part in per_date.items()]
        p = np.concatenate([pb[0] for pb, _ in parts]) if parts else np.zeros(0)
        base = np.concatenate([np.full(n, pb[1]) for pb, n in parts]) if parts else np.zeros(0)
        logit = lambda x: np.log(np.clip(x, 1e-6, 1 - 1e-6) / (1 - np.clip(x, 1e-6, 1 - 1e-6)))
        explanations = _stage_only(ids, rows, logit(p) - logit(base))
        version = pl.lit("baseline_stage@") + pl.col("as_of_date").cast(pl.Utf8)
    # the CRM gave no expected close date known then (MavenTech gives none): `close` estimated it
    estimated = rows["expected_close_date"].is_null().alias("expected_close_estimated")
    scored = rows.with_columns(pl.Series("win_probability", p, dtype=pl.Float64), close, estimated,
                               version.alias("model_version"))
    # what the deal is worth where pipeline is summed (CONTRACT §3): its amount, else its product's list
    # price; an analyst summing `amount` got NULL for MavenTech's every open deal (an audit)
    scored = score_risk(scored, weights).with_columns(deal_value().alias("value"),
                                                      value_is_estimate().alias("value_is_estimate"))
    return scored.select(SCORE_COLUMNS), explanations


def _stage_only(ids: pl.DataFrame, rows: pl.DataFrame, contribution: np.ndarray) -> pl.DataFrame:
    """The stage baseline has one input; its explanation says exactly that."""
    return ids.with_columns(
        pl.lit(1, dtype=pl.Int32).alias("rank"), pl.lit("stage").alias("feature"),
        rows["stage"].alias("feature_value"), pl.Series("contribution", contribution, dtype=pl.Float64),
    ).with_columns(*direction()).with_columns(
        pl.when(pl.col("direction") == "none")  # no stage rate of its own (MavenTech: none has one)
        .then(pl.lit("Stage is ") + pl.col("feature_value")
              + "; the stage baseline has no win rate of its own for it: the deal gets the overall win rate")
        .otherwise(pl.lit("Stage is ") + pl.col("feature_value")
                   + "; the stage baseline scores every deal in it at that stage's historical win rate")
        .alias("explanation"))
