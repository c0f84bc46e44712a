"""Risk score, drivers and the recommended action for open deals (pure polars, vectorised).

risk_score (0-100) = probability part + stagnation part + value part:
  (1 - win_probability) * w.probability                      a deal likely to be lost
  + clip((stage_time_ratio - 1) / (w.stagnant_at - 1), 0, 1) * w.stagnation
                                                             time in stage vs the usual time
  + amount percentile among the deals open that day * w.value    what is at stake
Weights live in config (RiskWeights) and must add up to 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from revintel_assets.rules import deal_value, value_is_estimate


CATEGORIES = ("Low", "Medium", "High", "Critical")  # by the bands below, lowest first
AT_RISK = CATEGORIES[2:]  # what the run's headline and the pages count as at risk


@dataclass(frozen=True)
class RiskWeights:
    probability: float = 50.0
    stagnation: float = 30.0
    value: float = 20.0
    stagnant_at: float = 3.0  # this many times the usual time in a stage scores full stagnation
    bands: tuple[float, float, float] = (30.0, 50.0, 70.0)  # Low | Medium | High | Critical

    def __post_init__(self):
        if abs(self.probability + self.stagnation + self.value - 100) > 1e-9:
            raise ValueError("risk weights must add up to 100")


def score_risk(deals: pl.DataFrame, w: RiskWeights = RiskWeights()) -> pl.DataFrame:
    """Adds risk_score, risk_category, risk_drivers, recommended_action to `deals`
    (needs win_probability, stage, stage_time_ratio, amount, list_price, n_pushes,
    days_to_expected_close)."""
    p = pl.col("win_probability")
    ratio = pl.col("stage_time_ratio").fill_null(1.0)
    value = deal_value()
    lo, mid, hi = w.bands
    df = deals.with_columns(
        value.rank("average").truediv(pl.len()).over(_day(deals)).alias("_value_pct"),
        ((ratio - 1) / (w.stagnant_at - 1)).clip(0, 1).alias("_stagnation"),
    ).with_columns(
        ((1 - p) * w.probability + pl.col("_stagnation") * w.stagnation
         + pl.col("_value_pct") * w.value).clip(0, 100).round(1).alias("risk_score"),
    ).with_columns(
        pl.when(pl.col("risk_score") >= hi).then(pl.lit(CATEGORIES[3]))
        .when(pl.col("risk_score") >= mid).then(pl.lit(CATEGORIES[2]))
        .when(pl.col("risk_score") >= lo).then(pl.lit(CATEGORIES[1])).otherwise(pl.lit(CATEGORIES[0]))
        .alias("risk_category"))

    # a deal without an expected close date (or pushes) is not overdue (or pushed): a null here made
    # "Protect" below null too, and a High large deal without a date was "On track" (a re-check)
    overdue = (pl.col("days_to_expected_close") < 0).fill_null(False)
    stalled = ratio >= 1.5
    pushed = (pl.col("n_pushes") >= 2).fill_null(False)
    unlikely = p < 0.35
    big = (pl.col("_value_pct") >= 0.8) & ~value_is_estimate()  # a list-price estimate is not "large"
    # "top N% by value", rounded before the ceiling: (1 - 0.85) * 100 is 15.000000000000002 in one float
    # path and 15.0 in another (Polars' kernels differ with the frame's chunks), and one deal read "top
    # 15%" in a one-pass run and "top 16%" in a batched one
    top = ((1 - pl.col("_value_pct")) * 100).round(6).ceil().cast(pl.Int64).clip(1, 100).cast(pl.Utf8)
    drivers = pl.concat_str([
        pl.when(unlikely).then(pl.lit("low win probability (") + pl.when((p * 100).round(0) < 1).then(pl.lit("<1"))
                               .otherwise((p * 100).round(0).cast(pl.Int64).cast(pl.Utf8)) + "%)"),
        pl.when(stalled).then(ratio.round(1).cast(pl.Utf8) + "x the usual time in " + pl.col("stage")),
        pl.when(pushed).then(pl.lit("close date pushed ") + pl.col("n_pushes").cast(pl.Utf8) + " times"),
        pl.when(overdue).then(pl.lit("past expected close by ")
                              + (-pl.col("days_to_expected_close")).cast(pl.Utf8)
                              + pl.when(pl.col("days_to_expected_close") == -1).then(pl.lit(" day")).otherwise(pl.lit(" days"))),
        pl.when(big).then(pl.lit("large deal (top ") + top + "% by value)"),
    ], separator="; ", ignore_nulls=True)
    action = (
        pl.when(overdue).then(pl.lit("Confirm a realistic close date with the buyer and update the forecast"))
        .when(stalled & big).then(pl.lit("Escalate: bring in the manager or an executive sponsor to unblock it"))
        .when(stalled).then(pl.lit("Re-engage: book a concrete next step to move it out of ") + pl.col("stage"))
        .when(pushed).then(pl.lit("Requalify: ask what changed since the last push; consider a lower forecast category"))
        .when(unlikely & big).then(pl.lit("Review the deal strategy with the manager before investing more time"))
        .when(unlikely).then(pl.lit("Requalify or deprioritise: focus time on likelier deals"))
        .otherwise(pl.lit("On track: confirm the next step and keep momentum")))
    # High or Critical with no single warning sign: the parts that add up to it are said (a moderate
    # win probability, some time in stage, a larger deal), not "no risk signal" and "On track"
    # beside a High badge (0.5 % of the demo's High deal-dates)
    high = pl.col("risk_score") >= mid
    quiet = (drivers == "") & high
    parts = (pl.lit("no single warning sign; together: win probability ")
             + (p * 100).round(0).cast(pl.Int64).cast(pl.Utf8) + "%, " + ratio.round(1).cast(pl.Utf8)
             + "x the usual time in " + pl.col("stage") + ", value in the top " + top + "%")
    # ... and one whose only sign is its size: what is at stake is said with the odds that make it a
    # risk, and it is to be protected, not "On track" (an audit: 366-473 High deal-dates a demo)
    big_only = big & high & ~(overdue | stalled | pushed | unlikely)
    return df.with_columns(
        pl.when(quiet).then(parts).when(drivers == "").then(pl.lit("no risk signal"))
        .when(big_only).then(drivers + "; win probability " + (p * 100).round(0).cast(pl.Int64).cast(pl.Utf8) + "%")
        .otherwise(drivers).alias("risk_drivers"),
        pl.when(quiet).then(pl.lit("Watch: confirm the next step and the buyer's timeline this week"))
        .when(big_only).then(pl.lit("Protect: a large deal at risk; confirm the decision maker, the next step and "
                                    "the timeline this week"))
        .otherwise(action).alias("recommended_action"),
    ).drop("_value_pct", "_stagnation")


def _day(deals: pl.DataFrame) -> pl.Expr:
    """Rows of several as-of dates rank among the deals open on their own date."""
    return pl.col("as_of_date") if "as_of_date" in deals.columns else pl.lit(True)
