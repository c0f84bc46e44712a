"""One forecast, as-of date T: open deals (win probability x timing) + new pipeline -> engine ->
P10 / P50 / P90 / mean per (period, segment). Pure: frames in, frames out; no Dagster, no clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from revintel_assets.defs.forecast import simulate
from revintel_assets.defs.forecast.new_pipeline import fit_new_pipeline
from revintel_assets.defs.forecast.periods import Calendar
from revintel_assets.defs.forecast.timing import TimingModel
from revintel_assets.rules import UNASSIGNED, deal_value

QUANTILES = (0.1, 0.5, 0.9)
SEGMENT_TYPES = ("total", "region", "manager", "rep", "division")


@dataclass
class Segments:
    """Reps (with manager and region) and divisions, and which rep belongs to which segment."""

    reps: list[str]
    divisions: list[str]
    members: list[tuple[str, str, np.ndarray]]  # (segment_type, segment, 0/1 over reps) for total/region/manager

    @classmethod
    def build(cls, dim_rep: pl.DataFrame, rep_ids: list, divisions: list) -> Segments:
        dim = dim_rep.select("rep_id", "manager", "region").unique("rep_id")
        reps = sorted(set(dim["rep_id"].drop_nulls().to_list()) | {r if r is not None else UNASSIGNED for r in rep_ids})
        info = {r["rep_id"]: r for r in dim.iter_rows(named=True)}
        members = [("total", "total", np.ones(len(reps)))]
        for col in ("region", "manager"):
            labels = np.array([(info.get(r, {}).get(col) or UNASSIGNED) for r in reps], dtype=object)
            members += [(col, v, (labels == v).astype(np.float64)) for v in sorted(set(labels))]
        return cls(reps, sorted({d if d is not None else UNASSIGNED for d in divisions}), members)

    def __getstate__(self) -> dict:
        """Pickled (with every task sent to a pool process or a Dask worker) with each member's
        weights as its non-zero entries: a dense array over every rep per manager was 29 MB of each
        past date's task at scale 100, the same every date. Rebuilt exactly by __setstate__."""
        nz = [np.flatnonzero(m) for _, _, m in self.members]
        return {"reps": self.reps, "divisions": self.divisions,
                "members": [(t, s, ix, m[ix], len(m), m.dtype.str) for (t, s, m), ix in zip(self.members, nz)]}

    def __setstate__(self, state: dict) -> None:
        members = []
        for t, s, ix, values, n, dtype in state["members"]:
            weights = np.zeros(n, dtype)
            weights[ix] = values
            members.append((t, s, weights))
        self.reps, self.divisions, self.members = state["reps"], state["divisions"], members


# the columns of a date's open deals that forecast() and deal_contributions() read (prepare, the
# timing model, the calls, the contributions): what a past date's task ships (not the snapshot's ~40,
# 102 of its 136 MB at scale 100)
DEAL_COLUMNS = ("opportunity_id", "account_id", "rep_id", "division", "product_id", "stage", "amount", "list_price",
                "win_probability", "expected_close_date", "days_to_expected_close", "n_pushes", "deal_age_days")


@dataclass
class Prepared:
    deals: pl.DataFrame  # open deals with amount, win_probability, p_horizon, expected
    engine: simulate.EngineInput
    cal: Calendar
    segments: Segments


def prepare(deals: pl.DataFrame, timing: TimingModel, cal: Calendar, segments: Segments,
            opps: pl.DataFrame | None, new: tuple | None = None) -> Prepared:
    """`deals`: open deals on T with snapshot features, `win_probability`, `amount`, `list_price`.
    new: fit_new_pipeline's (mu, pools, typical_won) when the caller has it (else fitted here from `opps`).
    A deal without an amount or a list price is valued at its division's typical_won (new_pipeline.py): it
    counted as 0, and an export without a change log has no open deal's amount on any past date, so every
    backtest origin forecast a fraction of what was booked (P50 1.8M of 9.0M a year, coverage 0.12-0.15).
    The deals are sorted by id: a deal's place decides which draws the engine gives it, and the
    warehouse returns a date's rows in an order that varies from run to run (a join's, an IN-list's)."""
    rep_ix = {r: i for i, r in enumerate(segments.reps)}
    div_ix = {d: i for i, d in enumerate(segments.divisions)}
    new_mu, pools, typical = new if new is not None else (
        fit_new_pipeline(opps, cal, segments.reps, segments.divisions) if opps is not None else (None, [], None))
    deals = deals.sort("opportunity_id").with_columns(pl.col("rep_id").fill_null(UNASSIGNED),
                                                      pl.col("division").fill_null(UNASSIGNED))
    otherwise = None if typical is None else pl.Series(
        typical[deals["division"].replace_strict(div_ix, return_dtype=pl.Int64).to_numpy()], dtype=pl.Float64)
    deals = deals.with_columns(deal_value(otherwise=otherwise).alias("amount"))
    q = deal_atoms(deals, timing, cal)
    engine = simulate.EngineInput(
        q=q, amount=deals["amount"].to_numpy().astype(np.float64),
        rep=deals["rep_id"].replace_strict(rep_ix, return_dtype=pl.Int64).to_numpy(),
        division=deals["division"].replace_strict(div_ix, return_dtype=pl.Int64).to_numpy(),
        n_reps=len(segments.reps), n_divisions=len(segments.divisions), new_mu=new_mu, new_amounts=pools)
    return Prepared(deals, engine, cal, segments)


def deal_atoms(deals: pl.DataFrame, timing: TimingModel, cal: Calendar) -> np.ndarray:
    """(n_deals, n_atoms) P(won and closes in atom a): win_probability x the timing model's close day given won."""
    given_won = timing.close_given_won_atoms(deals, cal.as_of, cal.atom_of_day, cal.n_atoms)
    return deals["win_probability"].to_numpy()[:, None] * given_won


SEGMENT_BLOCK_CELLS = 4_000_000  # period_stats works on this many (segment, atom, sim) values at a time (16 MB)


def group_matrix(segments: Segments, types=SEGMENT_TYPES) -> tuple[list, np.ndarray]:
    """(labels, (n_groups, n_reps) 0/1) of the total / region / manager segments among `types`."""
    grouped = [m for m in segments.members if m[0] in types]
    matrix = np.stack([m[2] for m in grouped]) if grouped else np.zeros((0, len(segments.reps)))
    return [(t, s) for t, s, _ in grouped], matrix


def segment_sims(result: simulate.SimResult, segments: Segments, types=SEGMENT_TYPES) -> tuple[list, np.ndarray]:
    """(labels [(segment_type, segment)], sims (n_segments, n_sims, n_atoms) float32), un-shocked.
    Holds every segment x sim: for tests and benchmarks (the forecast summarises in blocks)."""
    n_reps = result.rep_grid.shape[0]
    flat = result.rep_grid.reshape(n_reps, -1)
    labels, blocks = [], []
    grouped = [m for m in segments.members if m[0] in types]
    if grouped:
        matrix = np.stack([m[2] for m in grouped])
        blocks.append((matrix @ flat).astype(np.float32).reshape(len(grouped), result.n_sims, -1))
        labels += [(t, s) for t, s, _ in grouped]
    if "rep" in types:
        blocks.append(result.rep_grid.astype(np.float32))
        labels += [("rep", r) for r in segments.reps]
    if "division" in types:
        blocks.append(result.division_grid.astype(np.float32))
        labels += [("division", d) for d in segments.divisions]
    return labels, np.concatenate(blocks) if blocks else np.zeros((0, result.n_sims, 0), np.float32)


def period_sims(sims: np.ndarray, cal: Calendar, shock_m: np.ndarray | None, period_type: str) -> np.ndarray:
    """(n_segments, n_periods, n_sims) revenue per period, with the shared shock applied
    (sims: (n_segments, n_sims, n_atoms), segment_sims' layout)."""
    x = sims if shock_m is None else sims * shock_m[None, :, :].astype(np.float32)
    out = x @ cal.period_matrix(period_type).astype(np.float32)  # (seg, sims, periods)
    return np.ascontiguousarray(out.transpose(0, 2, 1))


def sorted_quantiles(s: np.ndarray) -> np.ndarray:
    """QUANTILES of samples already sorted along the last axis (numpy's default 'linear' rule)."""
    pos = np.array(QUANTILES) * (s.shape[-1] - 1)
    lo, frac = np.floor(pos).astype(int), pos - np.floor(pos)
    hi = np.minimum(lo + 1, s.shape[-1] - 1)
    return np.stack([s[..., lo[i]] * (1 - frac[i]) + s[..., hi[i]] * frac[i] for i in range(len(pos))])


def _quantiles(x: np.ndarray) -> np.ndarray:
    """np.quantile(x, QUANTILES, axis=-1) (method 'linear', the same lerp): bit-identical, from one
    sort (numpy's vectorised sort beats its multi-kth partition several times over)."""
    n = x.shape[-1]
    pos = np.array(QUANTILES) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    part = np.sort(x, axis=-1)  # SIMD sort: ~10x faster than np.partition around six order statistics
    out = []
    for k, t in enumerate(pos - lo):
        a, b = part[..., lo[k]], part[..., hi[k]]
        diff = b - a
        out.append(np.where(t >= 0.5, b - diff * (1 - t), a + diff * t))  # numpy's _lerp
    return np.stack(out)


STATS = ("p10", "p50", "p90", "mean")  # period_stats' last axis (+ "crps" when scored against actuals)


def period_stats(x: np.ndarray, period_t: np.ndarray, shock_t: np.ndarray | None,
                 actual: np.ndarray | None = None) -> np.ndarray:
    """Summary of segments' simulated revenue per period, a block of segments at a time.

    x: (n, n_atoms, n_sims) un-shocked sims (sims last); period_t: (n_periods, n_atoms) 0/1;
    shock_t: (n_atoms, n_sims) multipliers or None. Returns (n, n_periods, 4) p10 / p50 / p90 / mean,
    or with `actual` (n, n_periods): (n, n_periods, 6) + crps + covered (p10 <= actual <= p90)."""
    n, n_atoms, n_sims = x.shape
    pt = np.ascontiguousarray(period_t, dtype=np.float32)
    st = None if shock_t is None else np.ascontiguousarray(shock_t, dtype=np.float32)
    out = np.empty((n, len(pt), 4 if actual is None else 6))
    step = max(1, SEGMENT_BLOCK_CELLS // max(1, n_atoms * n_sims))
    for i in range(0, n, step):  # blocks of segments: bounded temporaries
        xs = np.asarray(x[i:i + step], dtype=np.float32)
        if st is not None:
            xs = xs * st
        per = np.matmul(pt, xs)  # (k, n_periods, n_sims)
        j = i + len(per)
        if actual is None:
            out[i:j, :, 3] = per.mean(axis=2, dtype=np.float64)  # as the plan's (attainment.summarise)
            out[i:j, :, :3] = np.moveaxis(_quantiles(per), 0, -1)
        else:
            per.sort(axis=2)
            _scored_stats(per, np.ascontiguousarray(actual[i:j], dtype=np.float64), out[i:j])
    return out


@numba.njit(cache=True, nogil=True)
def _scored_stats(s, y, out):  # pragma: no cover (compiled; tests/test_forecast_backtest.py checks it)
    """period_stats' scored columns of sorted samples s (k, n_periods, n_sims) against y (k,
    n_periods), into out (k, n_periods, 6): QUANTILES (sorted_quantiles' rule), mean, CRPS
    (crps_sorted's formula) and covered, in one float64 pass per cell instead of numpy temporaries
    as large as the samples (the backtest's evaluation spent a third of its workers' time there)."""
    n = s.shape[2]
    for k in range(s.shape[0]):
        for p in range(s.shape[1]):
            for q in range(3):
                pos = QUANTILES[q] * (n - 1)
                lo = int(np.floor(pos))
                hi = min(lo + 1, n - 1)
                frac = pos - lo
                out[k, p, q] = s[k, p, lo] * (1 - frac) + s[k, p, hi] * frac
            total = dist = spread = 0.0
            for i in range(n):
                v = float(s[k, p, i])
                total += v
                dist += abs(v - y[k, p])
                spread += v * (2 * (i + 1) - n - 1)
            out[k, p, 3] = total / n
            out[k, p, 4] = dist / n - spread / (n * n)
            out[k, p, 5] = 1.0 if out[k, p, 0] <= y[k, p] <= out[k, p, 2] else 0.0


def crps_sorted(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of the sample (sorted along the last axis) against y: E|X - y| - E|X - X'| / 2."""
    n = s.shape[-1]
    first = np.abs(s - y[..., None]).mean(axis=-1)
    w = (2 * np.arange(1, n + 1) - n - 1) / (n * n)
    return first - (s * w).sum(axis=-1)


def summarise(labels: list, per_period: dict[str, np.ndarray], cal: Calendar, presorted: bool = False) -> pl.DataFrame:
    """Rows of forecast.revenue_forecast for one as-of date (samples along the last axis)."""
    stats = {}
    for ptype, x in per_period.items():
        qs = sorted_quantiles(x) if presorted else np.quantile(x, QUANTILES, axis=2)  # (3, seg, periods)
        stats[ptype] = np.concatenate([np.moveaxis(qs, 0, -1), x.mean(axis=2)[..., None]], axis=-1)
    return summary_frame(labels, stats, cal)


def summary_frame(labels: list, stats: dict[str, np.ndarray], cal: Calendar) -> pl.DataFrame:
    """Rows of forecast.revenue_forecast from period_stats' (n_segments, n_periods, >= 4) arrays."""
    frames = []
    seg_type = pl.Series("segment_type", [t for t, _ in labels], dtype=pl.Utf8)
    seg = pl.Series("segment", [s for _, s in labels], dtype=pl.Utf8)
    for ptype, st in stats.items():
        bounds = cal.period_bounds(ptype)
        n_seg, n_p = st.shape[:2]
        period = pl.Series(np.tile(np.arange(n_p), n_seg))  # segment-major, periods within (gathers, not Python lists)
        segment = pl.Series(np.repeat(np.arange(n_seg), n_p))
        frames.append(pl.DataFrame([
            pl.Series("as_of_date", [cal.as_of], dtype=pl.Date).gather(np.zeros(n_seg * n_p, dtype=np.int64)),
            pl.Series("period_type", [ptype], dtype=pl.Utf8).gather(np.zeros(n_seg * n_p, dtype=np.int64)),
            pl.Series("period_start", cal.period_starts(ptype), dtype=pl.Date).gather(period),
            pl.Series("first_day", [b[0] for b in bounds], dtype=pl.Date).gather(period),
            pl.Series("last_day", [b[1] for b in bounds], dtype=pl.Date).gather(period),
            seg_type.gather(segment), seg.gather(segment),
            *[pl.Series(name, st[:, :, k].ravel().astype(np.float64)) for k, name in enumerate(STATS)],
        ]))
    return pl.concat(frames)


def deal_contributions(prep: Prepared) -> pl.DataFrame:
    """Per open deal: `p_within_weeks[k]` (k = 1 .. the horizon) = P(won and booked within k weeks),
    and for the whole horizon the expected revenue and the standard deviation it adds (amount *
    sqrt(p (1 - p)), the Bernoulli spread): the deals that make the range wide.

    One row per deal, not one per deal and horizon: any shorter horizon's figures follow from the
    list (the forecast page does so in SQL), and ten copies of each deal were 287 M rows, most of
    the analyst file, at scale 100."""
    cal = prep.cal
    weeks = cal.horizon_weeks
    q = prep.engine.q
    in_week = np.zeros((len(cal.atom_week), weeks), dtype=q.dtype)  # atoms x weeks: 1 where the atom is in the week
    inside = cal.atom_week >= 0
    in_week[np.flatnonzero(inside), cal.atom_week[inside]] = 1
    cumulative = np.cumsum((q @ in_week).astype(np.float64), axis=1)  # (deals, weeks)
    p = cumulative[:, -1]
    sd = prep.engine.amount * np.sqrt(np.clip(p * (1 - p), 0.0, None))
    variance = sd ** 2
    return prep.deals.select("opportunity_id", "account_id", "rep_id", "division", "stage", "amount",
                             "win_probability", "expected_close_date").with_columns(
        pl.lit(cal.as_of).alias("as_of_date"), pl.lit(weeks, dtype=pl.Int32).alias("horizon_weeks"),
        pl.Series("p_within_weeks", cumulative).cast(pl.List(pl.Float64)),
        pl.Series("p_in_horizon", p), pl.Series("expected_revenue", p * prep.engine.amount),
        pl.Series("sd_revenue", sd),
        pl.Series("variance_share", variance / variance.sum() if variance.sum() > 0 else np.zeros(len(p))))


def segments_of(dim_rep: pl.DataFrame, opps: pl.DataFrame, deals: pl.DataFrame) -> Segments:
    """The forecast's segments of a date: every rep and division of the opportunities and open deals."""
    return segments_for(dim_rep, opps)(deals)


def segments_for(dim_rep: pl.DataFrame, opps: pl.DataFrame) -> Callable[[pl.DataFrame], Segments]:
    """segments_of(dim_rep, opps, deals) for many dates' deals: the opportunities' reps and divisions
    read once (2M rows at scale 100), and one Segments per distinct set of reps and divisions the
    deals add to them (none, as a rule: a date's open deals are opportunities)."""
    reps, divisions = opps["rep_id"].unique().to_list(), opps["division"].unique().to_list()
    known = (set(reps), set(divisions))
    built: dict[tuple, Segments] = {}

    def of(deals: pl.DataFrame) -> Segments:
        key = tuple(frozenset(set(deals[c].unique().to_list()) - k) for c, k in zip(("rep_id", "division"), known))
        if key not in built:
            built[key] = Segments.build(dim_rep, reps + list(key[0]), divisions + list(key[1]))
        return built[key]

    return of


def forecast(deals: pl.DataFrame, timing_model: TimingModel, cal: Calendar, dim_rep: pl.DataFrame | None,
             opps: pl.DataFrame | None, n_sims: int, seed: int, sigma_horizon: float, sigma_week: float,
             workers: int | None = None, segments: Segments | None = None,
             new: tuple | None = None) -> tuple[pl.DataFrame, Prepared, int]:
    """(forecast.revenue_forecast rows, the prepared inputs, bookings simulated) for one as-of date.
    segments / new: segments_of(...) and fit_new_pipeline's (mu, pools, typical_won) when the caller has them
    (a task sent to another process: then dim_rep and opps need not travel with it).

    Reps are summarised chunk by chunk inside the engine (their quantiles need only their own
    sims), groups and divisions are summed across chunks: memory does not grow with reps x sims."""
    segments = segments if segments is not None else segments_of(dim_rep, opps, deals)
    prep = prepare(deals, timing_model, cal, segments, opps, new)
    shock_t = np.ascontiguousarray(simulate.shock(n_sims, cal.atom_week_all, sigma_horizon, sigma_week, seed).T,
                                   dtype=np.float32)
    ptypes = cal.period_types()
    pts = {p: cal.period_matrix(p).T for p in ptypes}
    widths = [len(pts[p]) * len(STATS) for p in ptypes]

    def reduce(lo: int, hi: int, block: np.ndarray) -> np.ndarray:
        return np.concatenate([period_stats(block, pts[p], shock_t).reshape(hi - lo, -1) for p in ptypes], axis=1)

    group_labels, groups = group_matrix(segments)
    res = simulate.simulate_blocks(prep.engine, n_sims, seed, groups=groups, reduce=reduce, n_out=sum(widths),
                                   workers=workers)
    stats = {}
    for k, p in enumerate(ptypes):
        rep = res.rep_out[:, sum(widths[:k]):sum(widths[:k + 1])].reshape(len(segments.reps), len(pts[p]), len(STATS))
        stats[p] = np.concatenate([period_stats(res.group_grid, pts[p], shock_t), rep,
                                   period_stats(res.division_grid, pts[p], shock_t)])
    labels = group_labels + [("rep", r) for r in segments.reps] + [("division", d) for d in segments.divisions]
    return summary_frame(labels, stats, cal), prep, res.bookings
