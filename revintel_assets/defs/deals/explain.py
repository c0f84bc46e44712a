"""Per-deal explanations: the features that moved this deal's score most, in words.

Contributions are TreeSHAP values from LightGBM itself (`pred_contrib=True`): they add up,
with the bias, to the booster's *raw log-odds*, not to the calibrated probability shown to
users. The calibration is monotone, so the direction of every contribution carries over; the
size in probability points does not, which is why `contribution` is labelled log-odds.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets.defs.deals.snapshot import TRAILING, TRAILING_DAYS, with_derived

# feature -> (phrase for the value, with {v}), how values print
PHRASES = {
    "days_in_stage": "{v} days in the current stage",
    "stage_time_ratio": "{v}x the usual time in this stage",
    "stage_norm_days": "deals usually spend {v} days in this stage",
    "n_stage_changes": "{v} stage changes so far",
    "n_pushes": "close date pushed {v} times",
    "total_slip_days": "close date slipped {v} days in total",
    "days_to_expected_close": "{v} days to the expected close date",
    "n_amount_changes": "amount changed {v} times",
    "amount": "amount {v}",
    "amount_change_ratio": "amount is {v}x the first estimate",
    "list_price": "list price {v}",
    "amount_to_list": "priced at {v}x list",
    "account_prior_won": "the account has won {v} deals before",
    "account_prior_lost": "the account has lost {v} deals before",
    "account_win_rate": "account win rate so far {v}",
    "account_employees": "account has {v} employees",
    "account_revenue": "account revenue {v}",
    "rep_prior_closed": "the rep has closed {v} deals",
    "rep_win_rate": "rep's win rate so far {v}",
    "rep_open_deals": "the rep carries {v} open deals",
    "days_to_quarter_end": "{v} days to quarter end",
    "month_of_year": "month {v} of the year",
    "created_month": "opened in month {v} of the year",
    TRAILING[0]: f"rep's win rate over the last {TRAILING_DAYS} days is {{v}} the company's",
    TRAILING[1]: f"product's win rate over the last {TRAILING_DAYS} days is {{v}} the company's",
    "deal_age_days": "deal is {v} days old",
    "stage": "stage is {v}",
    "product_id": "product {v}",
    "division": "division {v}",
    "account_sector": "sector {v}",
    "deal_type": "deal type {v}",
    "lead_source": "lead source {v}",
}
# ... and where the value is unknown, a phrase of its own where "unknown" would not read ("priced at
# unknownx list", an audit, for every deal without an amount)
UNKNOWN_PHRASES = {
    "amount_to_list": "no amount yet to set against the list price",
    "amount_change_ratio": "no earlier amount to compare with",
    "stage_time_ratio": "no usual time known for this stage",
    "amount": "no amount yet",
    "list_price": "no list price",
    "days_to_expected_close": "no expected close date",
    "account_employees": "account size unknown",
    "account_revenue": "account revenue unknown",
}
RATES = {"account_win_rate", "rep_win_rate"}
LIFTS = set(TRAILING)  # rate differences: "12 points below"
RATIOS = {"stage_time_ratio", "amount_change_ratio", "amount_to_list"}


# A contribution this small (in log-odds) is float noise, not an effect: a model or baseline that
# scores every deal alike explained them with +-6e-16, read as "raises" on 77,602 rows and "lowers" on
# 15,121 of MavenTech's. Such a contribution is stored as 0 and its direction is "none".
NO_EFFECT = 1e-9


def direction() -> list[pl.Expr]:
    """contribution (noise set to 0) and direction: raises / lowers the win probability, or none."""
    c = pl.col("contribution")
    return [pl.when(c.abs() < NO_EFFECT).then(0.0).otherwise(c).alias("contribution"),
            pl.when(c >= NO_EFFECT).then(pl.lit("raises")).when(c <= -NO_EFFECT).then(pl.lit("lowers"))
            .otherwise(pl.lit("none")).alias("direction")]


def top_contributions(ids: pl.DataFrame, features: pl.DataFrame, contrib: np.ndarray, k: int = 5, *,
                      names: list[str]) -> pl.DataFrame:
    """Long table: for each row of `ids` (as_of_date, opportunity_id) its k largest |contributions|
    (`names`: the model's features, in the contributions' column order)."""
    c = contrib[:, : len(names)]
    k = min(k, c.shape[1])
    order = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(c)), k)
    cols = order.ravel()
    features = with_derived(features, names)
    out = ids[rows].with_columns(
        pl.Series("rank", np.tile(np.arange(1, k + 1), len(c)), dtype=pl.Int32),
        pl.Series("feature", np.array(names, dtype=object)[cols], dtype=pl.Utf8),
        _cell_text(features, names, rows, cols).alias("feature_value"),
        pl.Series("contribution", c[rows, cols], dtype=pl.Float64),
    )
    return out.with_columns(*direction()).with_columns(_sentence().alias("explanation"))


def _cell_text(features: pl.DataFrame, names: list[str], rows: np.ndarray, cols: np.ndarray) -> pl.Series:
    """features[rows[i], names[cols[i]]] as text, for every i: each feature column gathers its own
    cells and casts them, and the pieces are put back in i's order. Column by column, never a
    Python object per cell (a tuple of text per row: 2.2 s per 300,000 rows x 30 features, this
    0.26 s, the same strings)."""
    by = np.argsort(cols, kind="stable")  # the cells grouped by feature
    bounds = np.searchsorted(cols[by], np.arange(len(names) + 1))
    pieces = [features[name].gather(rows[by[lo:hi]]).cast(pl.Utf8) for name, lo, hi in zip(names, bounds[:-1], bounds[1:])]
    back = np.empty_like(by)
    back[by] = np.arange(len(by))
    return pl.concat(pieces).gather(back) if pieces else pl.Series([], dtype=pl.Utf8)


def _pretty_value() -> pl.Expr:
    num = pl.col("feature_value").cast(pl.Float64, strict=False)
    return (
        pl.when(pl.col("feature_value").is_null() & pl.col("feature").is_in(list(LIFTS)))
        .then(pl.lit("unknown relative to"))  # no deal closed in the window
        .when(pl.col("feature_value").is_null()).then(pl.lit("unknown"))
        .when(pl.col("feature").is_in(list(RATES))).then((num * 100).round(0).cast(pl.Int64).cast(pl.Utf8) + "%")
        .when(pl.col("feature").is_in(list(LIFTS))).then(
            (num.abs() * 100).round(0).cast(pl.Int64).cast(pl.Utf8)
            + pl.when(num >= 0).then(pl.lit(" points above")).otherwise(pl.lit(" points below")))
        .when(pl.col("feature").is_in(list(RATIOS))).then(num.round(1).cast(pl.Utf8))
        .when(num.is_not_null()).then(num.round(0).cast(pl.Int64).cast(pl.Utf8))
        .otherwise(pl.col("feature_value")))


def _sentence() -> pl.Expr:
    phrase = (pl.when(pl.col("feature_value").is_null() & pl.col("feature").is_in(list(UNKNOWN_PHRASES)))
              .then(pl.col("feature").replace_strict(UNKNOWN_PHRASES, default=""))
              .otherwise(pl.col("feature").replace_strict(PHRASES, default="{v}")
                         .str.replace("{v}", _pretty_value(), literal=True)))
    tail = (pl.when(pl.col("direction") == "raises").then(pl.lit("; deals like this win more often"))
            .when(pl.col("direction") == "lowers").then(pl.lit("; deals like this win less often"))
            .otherwise(pl.lit("; no effect on this deal's score")))
    return phrase.str.slice(0, 1).str.to_uppercase() + phrase.str.slice(1) + tail
