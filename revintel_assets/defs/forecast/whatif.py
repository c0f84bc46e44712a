"""What if? One segment's forecast recomputed on the spot after a manager's edits: deals left out,
close dates moved, win probabilities overridden, hypothetical deals added. The same engine as
the stored forecast (model.prepare -> simulate.simulate_blocks -> period_stats, the same shared
swing), on the segment's own deals only (a segment's total depends on nothing else), seeded, and
nothing is written anywhere. Pure: the page and benchmarks/whatif.py call it.

A moved close date and a hypothetical deal are taken at their word: if won, the deal closes on
that date (the timing model's spread is for dates the rep has not committed to). An overridden
probability keeps the deal's timing and rescales it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from revintel_assets import parallel
from revintel_assets.defs.forecast import model, simulate, timing
from revintel_assets.defs.forecast.periods import Calendar, calendar

TIMING_DAYS = 730  # the fit window of the stored forecast (assets.TIMING_DAYS)


@dataclass(frozen=True)
class NewDeal:
    amount: float
    close_date: dt.date
    win_probability: float
    rep_id: str | None = None  # None: the segment's first rep
    division: str | None = None  # None: the segment's division, else the first one


@dataclass(frozen=True)
class Edits:
    exclude: frozenset[str] = frozenset()
    close_dates: dict[str, dt.date] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)
    added: tuple[NewDeal, ...] = ()


@dataclass
class Base:
    """One segment's engine inputs on one as-of date (what the edits start from)."""

    name: tuple[str, str]  # (segment_type, segment)
    cal: Calendar
    deals: pl.DataFrame  # the segment's open deals: opportunity_id, rep_id, division, stage, amount, win_probability, ...
    q: np.ndarray  # (n_deals, n_atoms) as model.prepare made it
    rep: np.ndarray  # (n_deals,) index into reps
    division: np.ndarray  # (n_deals,) index into divisions
    reps: list[str]
    divisions: list[str]
    new_mu: np.ndarray | None  # (n_reps, n_divisions, n_atoms), the segment's share only
    pools: list[np.ndarray]
    sigma: tuple[float, float]


def prepare_date(as_of: dt.date, rows: pl.DataFrame, stored: pl.DataFrame, snaps: pl.DataFrame, opps: pl.DataFrame,
                 dim_rep: pl.DataFrame, timing_cutoff: dt.date, horizon_weeks: int = 13, fy: int = 1) -> model.Prepared:
    """The stored forecast's inputs of `as_of`, rebuilt from the warehouse: its open deals (snapshot
    rows) with the win probability and expected close date it used (forecast.deal_contributions),
    timing refitted on the same snapshots with the same cutoff, new pipeline from opps."""
    deals = rows.drop("expected_close_date", "win_probability", strict=False).join(
        stored.select("opportunity_id", "win_probability", "expected_close_date"), on="opportunity_id", how="inner")
    fitted = timing.fit(snaps, timing_cutoff, history_days=TIMING_DAYS)
    segments = model.Segments.build(dim_rep, opps["rep_id"].unique().to_list() + deals["rep_id"].unique().to_list(),
                                    opps["division"].unique().to_list() + deals["division"].unique().to_list())
    return model.prepare(deals, fitted, calendar(as_of, horizon_weeks, fy), segments, opps)


def segment_base(prep: model.Prepared, segment_type: str, segment: str, sigma: tuple[float, float]) -> Base:
    """The deals and new pipeline of one segment (total / region / manager / rep / division)."""
    seg, eng = prep.segments, prep.engine
    rep_mask, div_mask = np.ones(len(seg.reps), bool), np.ones(len(seg.divisions), bool)
    if segment_type in ("region", "manager"):
        hit = [m for t, s, m in seg.members if t == segment_type and s == segment]
        rep_mask = hit[0] > 0 if hit else np.zeros(len(seg.reps), bool)
    elif segment_type == "rep":
        rep_mask = np.array([r == segment for r in seg.reps])
    elif segment_type == "division":
        div_mask = np.array([d == segment for d in seg.divisions])
    elif segment_type != "total":
        raise ValueError(f"unknown segment_type {segment_type!r}")
    keep = rep_mask[eng.rep] & div_mask[eng.division]
    reps = np.flatnonzero(rep_mask)
    new_index = np.full(len(seg.reps), -1)
    new_index[reps] = np.arange(len(reps))
    new_mu = None
    if eng.new_mu is not None:
        new_mu = eng.new_mu[reps] * div_mask[None, :, None]
    return Base((segment_type, segment), prep.cal, prep.deals.filter(pl.Series(keep)), eng.q[keep],
                new_index[eng.rep[keep]], eng.division[keep], [seg.reps[i] for i in reps], list(seg.divisions),
                new_mu, list(eng.new_amounts), sigma)


def _point_mass(cal: Calendar, close: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(n, n_atoms): probability p on the atom of each close date (a past date: the first day;
    past the horizon: nowhere, it books later)."""
    day = np.array([(c - cal.as_of).days - 1 for c in close], dtype=np.int64)
    day = np.maximum(day, 0)
    out = np.zeros((len(day), cal.n_atoms))
    inside = day < cal.n_days
    out[np.flatnonzero(inside), cal.atom_of_day[day[inside]]] = p[inside]
    return out


def engine_input(base: Base, edits: Edits) -> simulate.EngineInput:
    """The segment's EngineInput with the edits applied."""
    ids = base.deals["opportunity_id"].to_list()
    q, amount = base.q.copy(), base.deals["amount"].to_numpy().astype(np.float64)
    p_old = base.deals["win_probability"].fill_null(0.0).to_numpy().astype(np.float64)
    p = p_old.copy()
    if edits.probabilities:
        idx = np.array([i for i, o in enumerate(ids) if o in edits.probabilities], dtype=np.int64)
        p[idx] = np.clip([edits.probabilities[ids[i]] for i in idx], 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(p_old[idx] > 0, p[idx] / p_old[idx], 0.0)
        q[idx] *= scale[:, None]
        # a deal the model gave no chance has no timing to rescale: its expected close date then
        lost = idx[p_old[idx] <= 0]
        if len(lost):
            close = base.deals["expected_close_date"].to_numpy()[lost]
            q[lost] = _point_mass(base.cal, np.array([c if c is not None else base.cal.as_of for c in close]), p[lost])
    if edits.close_dates:
        idx = np.array([i for i, o in enumerate(ids) if o in edits.close_dates], dtype=np.int64)
        q[idx] = _point_mass(base.cal, np.array([edits.close_dates[ids[i]] for i in idx]), p[idx])
    keep = np.array([o not in edits.exclude for o in ids], dtype=bool)
    rep, division = base.rep[keep], base.division[keep]
    q, amount = q[keep], amount[keep]
    if edits.added:
        rep_ix, div_ix = {r: i for i, r in enumerate(base.reps)}, {d: i for i, d in enumerate(base.divisions)}
        own_div = base.name[1] if base.name[0] == "division" else None
        new = edits.added
        q = np.vstack([q, _point_mass(base.cal, np.array([d.close_date for d in new]),
                                      np.clip([d.win_probability for d in new], 0.0, 1.0))])
        amount = np.r_[amount, [d.amount for d in new]]
        rep = np.r_[rep, [rep_ix.get(d.rep_id, 0) for d in new]].astype(np.int64)
        division = np.r_[division, [div_ix.get(d.division or own_div, div_ix.get(own_div, 0)) for d in new]]
    return simulate.EngineInput(q=q, amount=amount, rep=rep.astype(np.int64), division=division.astype(np.int64),
                                n_reps=max(1, len(base.reps)), n_divisions=len(base.divisions),
                                new_mu=base.new_mu, new_amounts=base.pools)


def recompute(base: Base, edits: Edits = Edits(), n_sims: int = 10_000, seed: int = 7,
              quota: float | None = None) -> pl.DataFrame:
    """The segment's P10 / P50 / P90 / mean per week, month and quarter after the edits (rows as in
    forecast.revenue_forecast), and with `quota` (the quarter's remaining target: quota minus
    booked so far) p_hit_quota on the quarter row: the share of simulations that reach it."""
    inp = engine_input(base, edits)
    with parallel.using(""):  # a page's edit runs here, never waiting on a Dask cluster (REVINTEL_CLUSTER)
        res = simulate.simulate_blocks(inp, n_sims, seed, groups=np.ones((1, inp.n_reps)), workers=1)
    shock_t = np.ascontiguousarray(simulate.shock(n_sims, base.cal.atom_week_all, *base.sigma, seed).T,
                                   dtype=np.float32)
    ptypes = base.cal.period_types()
    stats = {p: model.period_stats(res.group_grid, base.cal.period_matrix(p).T, shock_t) for p in ptypes}
    frame = model.summary_frame([base.name], stats, base.cal)
    p_hit = None
    if quota is not None and "quarter" in ptypes:
        total = (base.cal.period_matrix("quarter").T.astype(np.float32) @ (res.group_grid[0] * shock_t))[0]
        p_hit = float((total >= quota).mean())
    return frame.with_columns(pl.when(pl.col("period_type") == "quarter").then(pl.lit(p_hit, dtype=pl.Float64))
                              .alias("p_hit_quota"), pl.lit(len(inp.q)).alias("deals"))
