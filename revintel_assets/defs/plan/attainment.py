"""Am I on plan? For one as-of date T: per segment (total, region, manager, rep) and period (the
fiscal quarter and the month holding T+1), quota, booked to date, open pipeline and coverage, the
reps' own call (commit, commit + best case), the weighted pipeline, and the forecast engine's
P10 / P50 / P90 of the period total with the chance of making the quota.

The totals come from the revenue forecast's engine (simulate.simulate_blocks, the same inputs as
a backtest origin, the same seed and shared shock): a segment's period total in simulation s is
booked_to_date + its simulated remaining revenue in s, so P(total >= quota) is the share of
simulations that make it. Managers, regions and the total have their own sims (sums over their
reps inside the engine), so a manager's chance is not the sum (nor the mean) of the reps' chances.

Pure: an Origin (backtest.prepare_origin), frames and numbers in, frames out; no Dagster, no clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from revintel_assets.defs.forecast import model, simulate
from revintel_assets.defs.forecast.backtest import Origin
from revintel_assets.rules import add_months, current_quarter_start, fiscal_quarter_label, forecast_category_expr

GROUP_TYPES = ("total", "region", "manager")
STATS = ("p10", "p50", "p90", "mean", "p_hit_quota")
SEGMENT_BLOCK = 64  # segments summarised at a time (bounded (segments, periods, sims) temporaries)

DOC = ("Am I on plan: per as-of date, period (the fiscal quarter and the month holding the day after it) and "
       "segment, the quota next to what is booked, the open pipeline, the reps' call and the forecast of the "
       "period total (simulations of the revenue forecast's engine), with the chance of making the quota.", {
           "period": "quarter or month", "period_label": "e.g. FY2026 Q1 or 2026-01",
           "quota": "Quota of the segment and period (star.quotas; NULL: none)",
           "quota_source": "given, sum of months (a quarter from its monthly quotas) or sum of reps (a group "
                           "without its own quota, every rep of it with one; else 'none: k of n reps without a "
                           "quota' and no quota)",
           "booked_to_date": "Won amount closed from the period start to the as-of date",
           "open_pipeline": "Amount of deals open on the as-of date expected to close by the period end "
                            "(overdue ones included)",
           "coverage_ratio": "open_pipeline / (quota - booked_to_date); NULL when nothing remains to book",
           "weighted_pipeline": "booked_to_date + sum of win probability x amount of that open pipeline",
           "commit": "booked_to_date + open Commit deals expected by the period end (the reps' call)",
           "best_case": "commit + open Best Case deals expected by the period end",
           "p10": "10th percentile of the simulated period total (booked_to_date + simulated revenue to come)",
           "p50": "Median simulated period total", "p90": "90th percentile", "mean": "Mean simulated total",
           "p_hit_quota": "Share of simulations whose period total reaches the quota",
           "gap_to_plan": "quota - p50: how far the likely total falls short of plan (negative: ahead)"})
DEALS_DOC = ("The open deals behind each period's plan: chance to be won inside the period, expected revenue, "
             "the spread it adds and what it would add if won (what could close a gap).", {
                 "p_in_period": "Win probability x P(close inside the period | won), from the engine's inputs",
                 "expected_in_period": "amount x p_in_period",
                 "sd_in_period": "amount x sqrt(p (1 - p)): the spread the deal adds to the period total",
                 "upside": "amount x (1 - p_in_period): what winning it inside the period adds over expectation",
                 "forecast_category": "The deal's category on the as-of date (the CRM's, or the stage rule)"})


@dataclass(frozen=True)
class Period:
    kind: str  # quarter / month
    start: dt.date
    end: dt.date  # last day
    label: str


def periods(as_of: dt.date, fy_start_month: int, quarter_start: dt.date | None = None) -> list[Period]:
    """The fiscal quarter and the month holding as_of + 1 (the periods a forecast of T is about);
    with `quarter_start`, that quarter alone (the honesty check's origins just before a quarter)."""
    first = as_of + dt.timedelta(days=1)
    q0 = quarter_start or current_quarter_start(as_of, fy_start_month)
    if quarter_start is not None:
        return [Period("quarter", q0, add_months(q0, 3) - dt.timedelta(days=1), fiscal_quarter_label(q0, fy_start_month))]
    m0 = first.replace(day=1)
    return [Period("quarter", q0, add_months(q0, 3) - dt.timedelta(days=1), fiscal_quarter_label(q0, fy_start_month)),
            Period("month", m0, add_months(m0, 1) - dt.timedelta(days=1), m0.strftime("%Y-%m"))]


def atom_periods(o: Origin, pers: list[Period]) -> np.ndarray:
    """(n_periods, n_atoms) 0/1: atoms (day runs of one week and month) inside each period."""
    first_day = np.array([o.cal.days[i] for i in np.searchsorted(o.cal.atom_of_day, np.arange(o.cal.n_atoms))])
    return np.stack([(first_day >= p.start) & (first_day <= p.end) for p in pers]).astype(np.float32)


def segment_labels(segments: model.Segments) -> tuple[list, np.ndarray]:
    """(labels of groups then reps, (n_groups, n_reps) membership)."""
    labels, groups = model.group_matrix(segments, GROUP_TYPES)
    return labels + [("rep", r) for r in segments.reps], groups


def _by_rep(frame: pl.DataFrame, value: pl.Expr, segments: model.Segments) -> np.ndarray:
    """Sum of `value` per rep of `segments` (rows of other reps ignored)."""
    ix = {r: i for i, r in enumerate(segments.reps)}
    agg = frame.group_by("rep_id").agg(value.sum().alias("v"))
    out = np.zeros(len(segments.reps))
    rep = agg["rep_id"].fill_null(model.UNASSIGNED).replace_strict(ix, default=-1, return_dtype=pl.Int64).to_numpy()
    ok = rep >= 0
    out[rep[ok]] = agg["v"].to_numpy()[ok]
    return out


def per_segment(rep_values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n_groups + n_reps, ...) from per-rep values: group sums, then the reps."""
    return np.concatenate([groups @ rep_values, rep_values])


def booked(opps: pl.DataFrame, as_of: dt.date, pers: list[Period], segments: model.Segments,
           groups: np.ndarray) -> np.ndarray:
    """(n_segments, n_periods) won amount closed from each period's start to as_of (the same amount
    rule as the backtest's actuals: amount, else the product's list price)."""
    amount = pl.col("amount").fill_null(pl.col("list_price")) if "list_price" in opps.columns else pl.col("amount")
    won = opps.filter(pl.col("is_won").fill_null(False) & (pl.col("close_date") <= as_of))
    cols = [_by_rep(won.filter(pl.col("close_date") >= p.start), amount.fill_null(0.0), segments) for p in pers]
    return per_segment(np.stack(cols, axis=1), groups)


def deal_periods(deals: pl.DataFrame, q: np.ndarray, pt: np.ndarray, pers: list[Period],
                 categories: pl.DataFrame | None) -> pl.DataFrame:
    """Per open deal and period: in the pipeline of the period (expected close by its end), its
    category on the as-of date, and the engine's chance to win it inside the period."""
    cat = forecast_category_expr(pl.col("stage"))
    base = deals.select("opportunity_id", "account_id", "rep_id", "division", "stage", "amount", "win_probability",
                        "expected_close_date")
    if categories is not None and len(categories):
        base = base.join(categories.select("opportunity_id", pl.col("forecast_category").alias("_crm")),
                         on="opportunity_id", how="left", maintain_order="left")
        base = base.with_columns(pl.coalesce("_crm", cat).alias("forecast_category")).drop("_crm")
    else:
        base = base.with_columns(cat.alias("forecast_category"))
    p_in = q @ pt.T.astype(np.float64)  # (n_deals, n_periods)
    frames = []
    for k, p in enumerate(pers):
        pi = np.clip(p_in[:, k], 0, 1)
        amt = base["amount"].to_numpy()
        frames.append(base.with_columns(
            pl.lit(p.kind).alias("period"), pl.lit(p.start).alias("period_start"),
            (pl.col("expected_close_date").fill_null(dt.date.max) <= p.end).alias("in_pipeline"),
            pl.Series("p_in_period", pi), pl.Series("expected_in_period", pi * amt),
            pl.Series("sd_in_period", amt * np.sqrt(pi * (1 - pi))), pl.Series("upside", amt * (1 - pi))))
    return pl.concat(frames)


def call_totals(dp: pl.DataFrame, pers: list[Period], segments: model.Segments, groups: np.ndarray) -> dict:
    """(n_segments, n_periods) open pipeline, weighted pipeline (open part), commit and best case
    (open parts) from deal_periods' rows."""
    out = {}
    exprs = {"open_pipeline": pl.col("amount"),
             "weighted_open": pl.col("amount") * pl.col("win_probability"),
             "commit_open": pl.when(pl.col("forecast_category") == "Commit").then(pl.col("amount")).otherwise(0.0),
             "best_case_open": pl.when(pl.col("forecast_category") == "Best Case").then(pl.col("amount")).otherwise(0.0)}
    for name, e in exprs.items():
        cols = [_by_rep(dp.filter((pl.col("period") == p.kind) & pl.col("in_pipeline")), e.fill_null(0.0), segments)
                for p in pers]
        out[name] = per_segment(np.stack(cols, axis=1), groups)
    return out


def quota_matrix(quotas: pl.DataFrame, labels: list, pers: list[Period], groups: np.ndarray) -> tuple[np.ndarray, list]:
    """(n_segments, n_periods) quota (NaN: none) and its source per cell: the segment's own; a
    quarter without one from its three monthly quotas; a group without one the sum of its reps'
    when every rep of it has one (else none, its source saying how many lack one)."""
    n_g = len(groups)
    q = np.full((len(labels), len(pers)), np.nan)
    source = [[None] * len(pers) for _ in labels]
    ix = {lab: i for i, lab in enumerate(labels)}
    own = quotas.with_columns(pl.when(pl.col("owner_type") == "total").then(pl.lit("total")).otherwise(pl.col("owner"))
                              .alias("owner"))
    for k, p in enumerate(pers):
        given = own.filter((pl.col("period_type") == ("quarter" if p.kind == "quarter" else "month"))
                           & (pl.col("period_start") == p.start))
        months = own.filter((pl.col("period_type") == "month") & (pl.col("period_start") >= p.start)
                            & (pl.col("period_start") <= p.end)).group_by("owner_type", "owner").agg(
            pl.col("amount").sum(), pl.len().alias("n"))
        if p.kind == "quarter":
            for r in months.filter(pl.col("n") == 3).iter_rows(named=True):  # segments x periods: a few hundred
                i = ix.get((r["owner_type"], r["owner"]))
                if i is not None:
                    q[i, k], source[i][k] = r["amount"], "sum of months"
        for r in given.iter_rows(named=True):
            i = ix.get((r["owner_type"], r["owner"]))
            if i is not None:
                q[i, k], source[i][k] = r["amount"], "given"
        reps = q[n_g:, k]
        for g in range(n_g):
            members = groups[g] > 0
            missing = int(np.isnan(reps[members]).sum())
            if not np.isnan(q[g, k]) or not members.any() or missing == members.sum():
                continue
            if missing:  # a sum of some reps' quotas set against every rep's bookings reads as made or missed
                source[g][k] = f"none: {missing} of {int(members.sum())} reps without a quota"
            else:
                q[g, k], source[g][k] = float(reps[members].sum()), "sum of reps"
    return q, source


def summarise(x: np.ndarray, pt: np.ndarray, shock_t: np.ndarray, booked_: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """x: (n, n_atoms, n_sims) un-shocked sims; pt: (n_periods, n_atoms); shock_t: (n_atoms, n_sims).
    Returns (n, n_periods, 5): p10, p50, p90, mean of booked + shocked revenue to come, and the
    share of sims reaching the quota (NaN without one), a block of segments at a time."""
    out = np.empty((len(x), len(pt), len(STATS)))
    for i in range(0, len(x), SEGMENT_BLOCK):
        xs = np.asarray(x[i:i + SEGMENT_BLOCK], dtype=np.float32) * shock_t
        total = np.matmul(pt, xs).astype(np.float64) + booked_[i:i + SEGMENT_BLOCK, :, None]  # (k, P, S)
        j = i + len(total)
        out[i:j, :, :3] = np.moveaxis(model._quantiles(total), 0, -1)  # np.quantile's values, from one sort
        out[i:j, :, 3] = total.mean(axis=2)
        qt = quota[i:j]
        with np.errstate(invalid="ignore"):
            out[i:j, :, 4] = np.where(np.isnan(qt), np.nan, (total >= qt[:, :, None]).mean(axis=2))
    return out


def attainment(o: Origin, quotas: pl.DataFrame, opps: pl.DataFrame, n_sims: int, seed: int, sigma_horizon: float,
               sigma_week: float, fy_start_month: int, categories: pl.DataFrame | None = None,
               workers: int | None = None, quarter_start: dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(forecast.quota_attainment rows, forecast.plan_deals rows) of the origin's as-of date.

    quotas: star.quotas; opps: star.fact_opportunity (+ list_price), read for what was booked up
    to the as-of date only; categories: (opportunity_id, forecast_category) the CRM holds for the
    as-of date (None: the stage rule for every deal); quarter_start: that quarter only (periods())."""
    as_of, segments = o.cal.as_of, o.prep.segments
    pers = periods(as_of, fy_start_month, quarter_start)
    if pers[0].end > o.cal.days[-1]:
        raise ValueError(f"the quarter from {pers[0].start} ends after the forecast calendar of {as_of} "
                         f"({o.cal.days[-1]})")
    pt = atom_periods(o, pers)
    labels, groups = segment_labels(segments)
    n_g = len(groups)
    booked_ = booked(opps, as_of, pers, segments, groups)
    quota, source = quota_matrix(quotas, labels, pers, groups)
    shock_t = np.ascontiguousarray(simulate.shock(n_sims, o.cal.atom_week_all, sigma_horizon, sigma_week, seed).T,
                                   dtype=np.float32)
    rep_booked, rep_quota = booked_[n_g:], quota[n_g:]

    def reduce(lo: int, hi: int, block: np.ndarray) -> np.ndarray:  # reps lo..hi-1, inside the engine
        return summarise(block, pt, shock_t, rep_booked[lo:hi], rep_quota[lo:hi]).reshape(hi - lo, -1)

    res = simulate.simulate_blocks(o.prep.engine, n_sims, seed, groups=groups, reduce=reduce,
                                   n_out=len(pers) * len(STATS), workers=workers)
    stats = np.concatenate([summarise(res.group_grid, pt, shock_t, booked_[:n_g], quota[:n_g]),
                            res.rep_out.reshape(len(segments.reps), len(pers), len(STATS))])
    dp = deal_periods(o.prep.deals, o.prep.engine.q, pt, pers, categories)
    calls = call_totals(dp, pers, segments, groups)
    n_s, n_p = len(labels), len(pers)
    remaining = quota - booked_
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(remaining > 0, calls["open_pipeline"] / remaining, np.nan)
    frame = pl.DataFrame({
        "as_of_date": [as_of] * (n_s * n_p),
        "period": [p.kind for _ in labels for p in pers],
        "period_label": [p.label for _ in labels for p in pers],
        "period_start": [p.start for _ in labels for p in pers],
        "period_end": [p.end for _ in labels for p in pers],
        "segment_type": [t for t, _ in labels for _ in pers],
        "segment": [s for _, s in labels for _ in pers],
        "quota": quota.ravel(), "quota_source": pl.Series([s for row in source for s in row], dtype=pl.String),
        "booked_to_date": booked_.ravel(), "open_pipeline": calls["open_pipeline"].ravel(),
        "coverage_ratio": coverage.ravel(),
        "weighted_pipeline": (booked_ + calls["weighted_open"]).ravel(),
        "commit": (booked_ + calls["commit_open"]).ravel(),
        "best_case": (booked_ + calls["commit_open"] + calls["best_case_open"]).ravel(),
        **{name: stats[:, :, k].ravel() for k, name in enumerate(STATS)},
    }, nan_to_null=True).with_columns((pl.col("quota") - pl.col("p50")).alias("gap_to_plan"),
                                      pl.lit(n_sims).alias("n_sims"), pl.lit(sigma_horizon).alias("sigma_horizon"),
                                      pl.lit(sigma_week).alias("sigma_week"), pl.lit(o.model_version).alias("win_model_version"))
    deals = dp.filter(pl.col("in_pipeline") | (pl.col("p_in_period") > 0)).with_columns(
        pl.lit(as_of).alias("as_of_date")).drop("in_pipeline")
    return frame, deals
