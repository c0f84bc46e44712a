"""Business rules that deals, the forecast and their baselines share, each written once.

Pure functions on polars frames; callers reduce their inputs (labelled snapshot rows, counted
rows, or DuckDB's per-stage statistics) to the small frames these take, so the rule itself has
one implementation however the history reaches it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

OPEN_STAGES = ("Prospecting", "Engaging", "Proposal", "Negotiation")  # revintel's open stages, in order
STAGE_PRIOR = 20.0  # pseudo-deals at the base rate behind each stage's win rate
DEFAULT_LAG_DAYS = 30  # expected close when no deal was ever won: a month out


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    """Median of `values` each repeated `weights` times, the mean of the middle two for an even
    count (polars' and DuckDB's median); None without weight. Counted rows give the median of the
    rows themselves."""
    total = int(weights.sum())
    if total == 0:
        return None
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[order])
    lo = v[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = v[np.searchsorted(cum, total // 2, side="right")]
    return (float(lo) + float(hi)) / 2


def known_history(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Labelled snapshot rows whose outcome was known on `as_of` (each deal's rows weighted 1/n)."""
    known = history.filter((pl.col("outcome_date") <= as_of) & pl.col("is_won").is_not_null())
    return known.with_columns((1.0 / pl.len().over("opportunity_id")).alias("weight"))


def stage_counts(labelled: pl.DataFrame, weight: str | None = None) -> pl.DataFrame:
    """(stage, n, won) from labelled rows; `weight`: a column of row counts (counted rows)."""
    won = pl.col("is_won").cast(pl.Int64)
    if weight:
        return labelled.group_by("stage").agg(pl.col(weight).sum().cast(pl.Int64).alias("n"),
                                              (pl.col(weight) * won).sum().cast(pl.Int64).alias("won"))
    return labelled.group_by("stage").agg(pl.len().cast(pl.Int64).alias("n"), won.sum().alias("won"))


def stage_win_rate(counts: pl.DataFrame, rows: pl.DataFrame, prior: float = STAGE_PRIOR) -> tuple[np.ndarray, float]:
    """Each row's stage win rate shrunk toward the base rate, and the base rate.

    counts: (stage, n, won) per stage (labelled (deal, as-of) rows and wins); integers, so every
    caller gets the same bits. No history: 0.5 for every row."""
    n, won = int(counts["n"].sum() or 0), int(counts["won"].sum() or 0)
    if n == 0:
        return np.full(len(rows), 0.5), 0.5
    base = won / n
    table = counts.select("stage", ((pl.col("won") + prior * base) / (pl.col("n") + prior)).alias("p"))
    p = rows.select("stage").join(table, on="stage", how="left", maintain_order="left")["p"].fill_null(base)
    # never a certainty: while every known outcome is a win (or a loss), base and every stage were
    # exactly 1 (0); bounded by Laplace's rule of succession, which moves no rate strictly inside it
    lo, hi = 1 / (n + 2), (n + 1) / (n + 2)
    return np.clip(p.to_numpy(), lo, hi), min(max(base, lo), hi)


def expected_close(rows: pl.DataFrame, lags: pl.DataFrame, overall: float | None) -> pl.Series:
    """The expected close date the CRM holds on the row's date; where it holds none (MavenTech),
    the as-of date plus the median days from the row's stage to a win among deals already won
    (`lags`: stage, lag), else the overall median, else DEFAULT_LAG_DAYS."""
    lag = lags.select("stage", pl.col("lag").cast(pl.Float64))
    filled = rows.join(lag, on="stage", how="left", maintain_order="left").with_columns(
        pl.col("lag").fill_null(pl.lit(overall, dtype=pl.Float64)).fill_null(DEFAULT_LAG_DAYS)
        .round(0).cast(pl.Int64))
    estimate = filled.select((pl.col("as_of_date") + pl.duration(days=pl.col("lag"))).cast(pl.Date))
    return rows["expected_close_date"].fill_null(estimate.to_series()).alias("expected_close_date")


# The segment (region, manager, rep, division) of a deal or line nobody is assigned to, in every table
# that groups by one: the forecast, the plan, the waterfall, and the division of a deal whose product
# is unknown (star schema). The waterfall said 'unknown' (and 'all' for the total) where the forecast
# said 'Unassigned' ('total'): a join across the two lost those segments.
UNASSIGNED = "Unassigned"


# ------------------------------------------------------------------ fiscal quarters (one rule)
def fiscal_quarter_start(d: dt.date, fy_start_month: int = 1) -> dt.date:
    """First day of the fiscal quarter holding `d`, the fiscal year starting in `fy_start_month`
    (settings.fiscal_year_start_month): quarters are the 3-month runs counted from that month."""
    months_in = (d.month - fy_start_month) % 3  # months since the quarter began
    m = d.month - months_in
    return dt.date(d.year - (m < 1), (m - 1) % 12 + 1, 1)


def current_quarter_start(as_of: dt.date, fy_start_month: int = 1) -> dt.date:
    """The quarter an as-of date looks at ("this quarter" everywhere: the forecast, the plan, the
    deal outlook, the waterfall, the pages): the fiscal quarter holding the day after it. An export
    dated a quarter's last day (2025-12-31, the demo's) looks at the next one; the quarter of the
    date itself had no day left, and its deals could only be overdue."""
    return fiscal_quarter_start(as_of + dt.timedelta(days=1), fy_start_month)


def add_months(d: dt.date, n: int) -> dt.date:
    """The first day of the month n months after d's month."""
    k = d.year * 12 + d.month - 1 + n
    return dt.date(k // 12, k % 12 + 1, 1)


def fiscal_quarter_start_expr(col: pl.Expr, fy_start_month: int = 1) -> pl.Expr:
    """fiscal_quarter_start as a polars expression over a Date column (the same rule, vectorised)."""
    months_in = (col.dt.month().cast(pl.Int32) - fy_start_month) % 3
    return col.dt.month_start().dt.offset_by(pl.format("-{}mo", months_in))


def fiscal_quarter_label(q_start: dt.date, fy_start_month: int = 1) -> str:
    """'FY2025 Q1': the fiscal year is named after the calendar year it ends in (a year starting in
    February 2025 is FY2026), as most companies with a shifted year do; January start: the calendar year."""
    n = ((q_start.month - fy_start_month) % 12) // 3 + 1
    end = add_months(dt.date(q_start.year, fy_start_month, 1) if q_start.month >= fy_start_month
                     else dt.date(q_start.year - 1, fy_start_month, 1), 11)
    return f"FY{end.year} Q{n}"


def quarter_name(q_start: dt.date, fy_start_month: int = 1) -> str:
    """How the pages and the CLI name a quarter: 'Q1 2026' for calendar quarters, else the fiscal
    label ('FY2026 Q1')."""
    if fy_start_month == 1:
        return f"Q{(q_start.month - 1) // 3 + 1} {q_start.year}"
    return fiscal_quarter_label(q_start, fy_start_month)


# ------------------------------------------------------------------ forecast categories (one rule)
FORECAST_CATEGORIES = ("Commit", "Best Case", "Pipeline", "Omitted", "Closed")
# Where the CRM has no category of its own (MavenTech, HubSpot, sales logs, or a past as-of date,
# whose category the CRM no longer holds), it is derived from the stage as Salesforce's default
# stage picklist does: Won -> Closed, Lost -> Omitted, Negotiation -> Commit, Proposal -> Best Case,
# Prospecting / Engaging -> Pipeline; any other stage -> Pipeline.
FORECAST_CATEGORY_BY_STAGE = {"Won": "Closed", "Lost": "Omitted", "Negotiation": "Commit",
                              "Proposal": "Best Case", "Prospecting": "Pipeline", "Engaging": "Pipeline"}


# The stages whose deals are in Commit. A source with none of them (MavenTech: Prospecting, Engaging,
# Won, Lost) has no commit call at all: its forecasts carry commit NULL, not a constant 0 that reads as
# a call (and, judged, looked more accurate than the weighted pipeline).
COMMIT_STAGES = tuple(s for s, c in FORECAST_CATEGORY_BY_STAGE.items() if c == "Commit")
# (the stage of a snapshot row is the one the forecast's commit call reads: forecast/history.py)
HAS_COMMIT_SQL = (f"SELECT EXISTS (SELECT 1 FROM features.deal_snapshot "
                  f"WHERE stage IN ({', '.join(repr(s) for s in COMMIT_STAGES)})) AS has_commit")
# The reps' call of the plan (commit, commit + best case): none when no deal is ever in Commit or Best
# Case, by its stage or by the CRM's own category (Salesforce's ForecastCategoryName). MavenTech's plan
# showed a commit and a best case of 0 (booked to date) beside a forecast whose commit was NULL.
CALL_STAGES = tuple(s for s, c in FORECAST_CATEGORY_BY_STAGE.items() if c in ("Commit", "Best Case"))
# The quota file's rows the import quarantined, per file and reason: a file whose every row was
# rejected (calendar quarters under a February fiscal year) read "no quotas ... load quotas.csv".
QUARANTINED_QUOTAS_SQL = ("SELECT source_file, reason, count(*) AS n FROM star.quarantine "
                          "WHERE regexp_matches(lower(source_file), '(^|/)(quotas|forecastingquota)[.](csv|xlsx)$') "
                          "GROUP BY ALL ORDER BY n DESC, reason")


def quarantined_quotas_note(rows: list[tuple]) -> str | None:
    """What QUARANTINED_QUOTAS_SQL's rows say, in one sentence (None without any)."""
    if not rows:
        return None
    files = sorted({r[0] for r in rows})
    n = sum(r[2] for r in rows)
    # the reason sentences name the row's own values (a date), so one is given as an example
    return (f"{' and '.join(files)} {'was' if len(files) == 1 else 'were'} read, but every one of its {n:,} rows was "
            f"quarantined (star.quarantine), e.g. {rows[0][1]}")


HAS_CALL_SQL = (f"SELECT EXISTS (SELECT 1 FROM features.deal_snapshot WHERE stage IN "
                f"({', '.join(repr(s) for s in CALL_STAGES)})) OR EXISTS (SELECT 1 FROM star.fact_opportunity "
                f"WHERE forecast_category IN ('Commit', 'Best Case')) AS has_call")


def forecast_category_expr(stage: pl.Expr) -> pl.Expr:
    """The derived category of a stage column (FORECAST_CATEGORY_BY_STAGE, else Pipeline)."""
    return stage.replace_strict(FORECAST_CATEGORY_BY_STAGE, default="Pipeline", return_dtype=pl.Utf8)


def fiscal_quarter_start_sql(expr: str, fy_start_month: int = 1) -> str:
    """fiscal_quarter_start in DuckDB SQL over a DATE expression (the same rule, for the import)."""
    return f"(date_trunc('month', {expr}) - to_months((month({expr}) - {int(fy_start_month)} + 12) % 3))::DATE"


def current_quarter_start_sql(expr: str, fy_start_month: int = 1) -> str:
    """current_quarter_start in DuckDB SQL over a DATE expression (the same rule)."""
    return fiscal_quarter_start_sql(f"({expr} + 1)", fy_start_month)


# What an open deal is worth wherever pipeline is summed (risk, forecast, pipeline changes, the
# pages): its amount; where the source has none yet (MavenTech leaves open deals' close_value
# empty), its product's list price; else 0. Such a value is an estimate: it never makes a deal
# "large". The SQL and the polars form are the same rule for the two engines that apply it.
VALUE_SQL = "coalesce(amount, list_price, 0)"

# Deals closed (won or lost) by an as-of date (the one parameter): what any win probability of that
# date is learned from. None closed: the stage baseline's probabilities are a prior, and the
# headline and the app say so instead of presenting an expected value.
CLOSED_BY_SQL = "SELECT count(*) FROM star.fact_opportunity WHERE is_closed AND close_date <= ?"


def deal_value(amount: str = "amount", list_price: str = "list_price", otherwise: pl.Expr | pl.Series | None = None
               ) -> pl.Expr:
    """VALUE_SQL as a polars expression (Float64); `otherwise`: the value of a deal with neither (the
    forecast's: its division's typical win), else 0."""
    parts = [pl.col(amount).cast(pl.Float64), pl.col(list_price).cast(pl.Float64)]
    return pl.coalesce(*parts, *([otherwise] if otherwise is not None else [])).fill_null(0.0)


# Why every open deal can score alike: said by the run's summary (headline.py) and Pipeline Risk
FLAT_BASELINE_REASON = ("No model was promoted, and the stage baseline learned no stage's own rate (a source "
                        "without a change log has no closed deal's stage before it closed; or the closed deals "
                        "are all won or all lost).")


def value_is_estimate(amount: str = "amount") -> pl.Expr:
    """True where deal_value is the list price (or 0), not an amount the source gave."""
    return pl.col(amount).is_null()
