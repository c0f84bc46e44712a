"""Small synthetic CRM histories and large engine inputs, for the tests and the benchmark.

Not the demo company (that is revintel_assets.demo): just enough structure, generated in a few
milliseconds, to check the forecast's properties (time travel, segments, coverage) and to size
the engine at 100,000 deals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revintel_assets.defs.forecast.simulate import EngineInput

STAGES = ["Prospecting", "Engaging", "Proposal", "Negotiation"]


def history(n_deals: int = 3000, start: dt.date = dt.date(2023, 1, 2), days: int = 730, n_reps: int = 8,
            seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(weekly snapshots like features.deal_snapshot, opportunities like star.fact_opportunity + list_price,
    reps like star.dim_rep). The export date is start + days; later outcomes are unknown (open)."""
    rng = np.random.default_rng(seed)
    export = start + dt.timedelta(days=days)
    created = rng.integers(0, days, n_deals)
    p = 1 / (1 + np.exp(-rng.normal(-0.2, 1.0, n_deals)))
    won = rng.random(n_deals) < p
    life = np.maximum(3, rng.lognormal(np.log(70), 0.6, n_deals) * np.where(won, 1.0, 1.4)).astype(int)
    close = created + life
    expected = created + np.maximum(7, (life * rng.lognormal(-0.2, 0.4, n_deals)).astype(int))
    rep = rng.integers(0, n_reps, n_deals)
    division = rng.integers(0, 3, n_deals)
    amount = np.round(rng.lognormal(9.5, 0.8, n_deals), -1)
    ids = [f"D{i:06d}" for i in range(n_deals)]
    day0 = np.datetime64(start, "D")
    opps = pl.DataFrame({
        "opportunity_id": ids, "account_id": [f"A{i % 500:04d}" for i in range(n_deals)],
        "rep_id": [f"rep{r}" for r in rep], "product_id": [f"P{d}" for d in division],
        "division": [f"Div{d}" for d in division], "created_date": day0 + created,
        "close_date": day0 + close, "is_won": won, "amount": amount, "list_price": amount * 1.1})
    opps = opps.with_columns(
        pl.when(pl.col("close_date") > export).then(None).otherwise(pl.col("close_date")).alias("close_date"),
        pl.when(pl.col("close_date") > export).then(None).otherwise(pl.col("is_won")).alias("is_won"))
    # weekly snapshots: every Monday from start to the export date, every deal open then
    first_monday = (7 - start.weekday()) % 7
    mondays = np.arange(first_monday, days + 1, 7)
    d, m = np.nonzero((created[:, None] <= mondays[None, :]) & (close[:, None] > mondays[None, :]))
    s = mondays[m]
    frac = (s - created[d]) / life[d]
    stage_ix = np.minimum((frac * 4).astype(int), 3)
    pushes = np.maximum(0, (s - expected[d]) // 30 + 1)
    exp_now = expected[d] + 30 * pushes
    closed_by_export = close[d] <= days
    snaps = pl.DataFrame({
        "as_of_date": day0 + s, "opportunity_id": [ids[i] for i in d], "account_id": opps["account_id"].gather(d),
        "rep_id": opps["rep_id"].gather(d), "product_id": opps["product_id"].gather(d),
        "division": opps["division"].gather(d), "stage": [STAGES[k] for k in stage_ix],
        "created_date": day0 + created[d], "expected_close_date": day0 + exp_now,
        "deal_age_days": s - created[d], "n_pushes": pushes, "days_to_expected_close": exp_now - s,
        "amount": amount[d], "list_price": amount[d] * 1.1,
        "outcome_date": np.where(closed_by_export, day0 + close[d], np.datetime64("NaT")),
        "is_won": won[d]})
    snaps = snaps.with_columns(
        pl.col("as_of_date").cast(pl.Date), pl.col("created_date").cast(pl.Date),
        pl.col("expected_close_date").cast(pl.Date), pl.col("outcome_date").cast(pl.Date),
        pl.when(pl.col("outcome_date").is_null()).then(None).otherwise(pl.col("is_won")).alias("is_won"))
    opps = opps.with_columns(pl.col("created_date").cast(pl.Date), pl.col("close_date").cast(pl.Date))
    reps = pl.DataFrame({"rep_id": [f"rep{r}" for r in range(n_reps)],
                         "manager": [f"mgr{r // 4}" for r in range(n_reps)],
                         "region": [f"region{r // 8}" for r in range(n_reps)]})
    return snaps, opps, reps


def engine_input(n_deals: int = 100_000, n_atoms: int = 17, n_reps: int = 250, n_divisions: int = 5,
                 seed: int = 0, new_pipeline: bool = True) -> EngineInput:
    """A large engine input shaped like the demo's: win probability ~ Beta(2, 2.5) (mean 0.44),
    timing given won spread over ~3 months with a long tail past the horizon."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 2.5, n_deals)
    median_days = rng.lognormal(np.log(45), 0.8, n_deals)
    edges = np.linspace(0, 120, n_atoms + 1)[None, :]
    cdf = 1 - np.exp(-np.log(2) * edges / median_days[:, None])
    q = p[:, None] * np.diff(cdf, axis=1)
    mu = np.full((n_reps, n_divisions, n_atoms), 0.02) if new_pipeline else None
    return EngineInput(q=q, amount=np.round(rng.lognormal(9.8, 0.9, n_deals), -1),
                       rep=rng.integers(0, n_reps, n_deals), division=rng.integers(0, n_divisions, n_deals),
                       n_reps=n_reps, n_divisions=n_divisions, new_mu=mu,
                       new_amounts=[rng.lognormal(9.5, 0.8, 200) for _ in range(n_divisions)])
