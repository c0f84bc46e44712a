"""Monte-Carlo revenue engine: open deals + new pipeline + a shared period effect -> sims per segment.

numpy, and one compiled (numba) kernel for the scatter of bookings; no Dagster, no Python loop over
deals or simulations.

Time is cut into *atoms*: the pieces of the horizon where one week and one month overlap, so a
single draw per deal serves both weekly and monthly periods (weeks = sums of atoms, months too).

Why not draw an n_sims x n_deals matrix of uniforms: 10,000 x 100,000 = 1e9 draws is ~10 s of
random numbers alone. Instead every open deal gets, in O(n_deals x n_atoms) work,

1. counts: how many simulations book it in each atom, ~ Multinomial(n_sims, [q_1..q_A, rest])
   (the exact law of the per-atom counts of n_sims independent categorical draws);
2. which simulations: positions (offset + j * stride) mod P for j < count, with a random offset
   and a random stride in 1..P-1, P the smallest prime >= n_sims (positions >= n_sims dropped).
   For any one simulation the deal is booked in atom a with probability exactly q_a,
   independently of every other deal (offsets are independent), and for any two simulations the
   joint inclusion probability equals that of a uniformly random subset (the stride is uniform
   over the units of Z/P), so the simulations are as good as i.i.d. for quantiles.

The work is then proportional to the number of bookings (sim, deal) actually made, which one
compiled pass per chunk of reps adds up (rep, atom) row by row (`_chunk_kernel`). Deals are
sorted by rep so that each chunk holds a contiguous slice of reps (bounded memory).
"""

from __future__ import annotations

import functools

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

from revintel_assets import parallel

MAX_BOOKINGS_PER_CHUNK = 8_000_000  # bounds a chunk's work (and, before the compiled pass, its index arrays)
PARALLEL_BOOKINGS = 8_000_000  # below this, shipping chunks to worker processes costs more than it saves
# MAX_GRID_CELLS bounds a chunk's float32 (rep, atom, sim) block (64 MB: the scratch). Not smaller: every
# chunk ships its division grid and its groups' sums back to be added, so chunks of ~11 reps (2M cells,
# at 10,000 sims) cost the scale-100 nightly 18 s of its 158 s (262 -> 229 s of CPU at 16M; 32M: no gain)
MAX_GRID_CELLS = 16_000_000


def next_prime(n: int) -> int:
    def is_prime(k: int) -> bool:
        return k >= 2 and all(k % d for d in range(2, math.isqrt(k) + 1))
    while not is_prime(n):
        n += 1
    return n


@dataclass
class EngineInput:
    """Everything the engine needs, as arrays.

    q:        (n_deals, n_atoms) P(deal is won AND closes in atom a); rows sum to <= 1
    amount:   (n_deals,) booked amount if won
    rep:      (n_deals,) rep index 0..n_reps-1;  division: (n_deals,) division index
    new_mu:   (n_reps, n_divisions, n_atoms) expected number of *new* deals (created after the
              as-of date) won in each atom; new_amounts: per division, amounts to resample from
    """

    q: np.ndarray
    amount: np.ndarray
    rep: np.ndarray
    division: np.ndarray
    n_reps: int
    n_divisions: int
    new_mu: np.ndarray | None = None
    new_amounts: list[np.ndarray] = field(default_factory=list)


@dataclass
class SimResult:
    """Raw (un-shocked) revenue per simulation: rep_grid (n_reps, n_sims, n_atoms) and
    division_grid (n_divisions, n_sims, n_atoms); every booking is in both. Holds every rep's
    every simulation: for tests and small inputs only (the forecast uses `simulate_blocks`)."""

    rep_grid: np.ndarray
    division_grid: np.ndarray
    n_sims: int
    bookings: int


@dataclass
class Blocked:
    """What `simulate_blocks` keeps, with sims along the LAST axis (n, n_atoms, n_sims):

    rep_out:       (n_reps, k) float64, the `reduce` callback's summary of each rep (None without one)
    group_grid:    (n_groups, n_atoms, n_sims) float32, sums over the reps of each group
    division_grid: (n_divisions, n_atoms, n_sims) float64
    rep_grid:      (n_reps, n_atoms, n_sims) float32 only with keep_reps=True (small inputs)
    Peak memory: the group and division grids plus a chunk per worker (and the chunk results
    waiting their turn to be added), whatever n_reps x n_sims is."""

    rep_out: np.ndarray | None
    group_grid: np.ndarray
    division_grid: np.ndarray
    rep_grid: np.ndarray | None
    n_sims: int
    bookings: int


def _open_deal_bookings(inp: EngineInput, n_sims: int, rng: np.random.Generator):
    """Per deal: multinomial counts per atom, offset and stride (all O(n_deals x n_atoms))."""
    modulus = next_prime(n_sims)
    q = np.clip(np.asarray(inp.q, dtype=np.float64), 0, 1)
    rest = np.clip(1.0 - q.sum(axis=1, keepdims=True), 0, 1)
    pvals = np.concatenate([q, rest], axis=1)
    pvals /= pvals.sum(axis=1, keepdims=True)
    counts = rng.multinomial(modulus, pvals)[:, :-1]  # (n_deals, n_atoms); last column: not booked
    offset = rng.integers(0, modulus, len(q))
    stride = rng.integers(1, modulus, len(q))
    return counts, offset, stride, modulus


def _chunk_block(deals: tuple | None, new: tuple | None, modulus: int, n_sims: int, n_atoms: int, n_div: int,
                 lo: int, hi: int, block: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Reps lo..hi-1 of a chunk into `block` (hi - lo, n_atoms, n_sims) float32: the open deals'
    bookings and the new pipeline's events, summed in float64 then rounded once. deals: (counts,
    offset, stride, amount, rep, division) of the chunk's deals, sorted by rep, or None; new:
    _new_draws' (events, sim, amount) for the chunk's reps, or None. Returns the open deals'
    (division, atom, sim) grid with `modulus` sim slots (None without deals) and the new pipeline's
    with n_sims (None without it).

    One compiled pass (`_chunk_kernel`), one (rep, atom) row at a time in a small float64 buffer:
    the chunk's float64 (rep, atom, sim) grid (128 MB at 16 M cells) and its float32 copy are never
    allocated. Fresh memory is what costs on this VM (first touch runs at ~1 GB/s; the kernel's
    page zeroing took 17-19 % of all CPU in a scale-10 profile), and numpy allocations above 32 MB
    are fresh pages every time: the scale-100 backtest's CPU fell 12-14 % (docs/BENCHMARKS.md).
    Bit for bit the numpy scatter and bincounts it replaced (tests/test_forecast_engine.py): every
    cell still receives its amounts in the same order."""
    n_reps = hi - lo
    if deals is not None:
        counts, offset, stride, amount, rep, division = deals
        rep_start = np.searchsorted(np.asarray(rep, dtype=np.int64) - lo, np.arange(n_reps + 1))
        div_open = np.zeros((n_div, n_atoms, modulus))
    else:
        counts, amount = np.zeros((0, n_atoms), np.int64), np.zeros(0)
        offset = stride = division = np.zeros(0, np.int64)
        rep_start, div_open = np.zeros(n_reps + 1, np.int64), np.zeros((0, 0, 0))
    if new is not None:
        events, sim, w = new
        starts, div_new = np.concatenate([[0], np.cumsum(events)]), np.zeros((n_div, n_atoms, n_sims))
    else:
        starts, sim, w, div_new = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 0, 0))
    _chunk_kernel(np.ascontiguousarray(counts, dtype=np.int64), np.array(offset, dtype=np.int64),
                  np.asarray(stride, dtype=np.int64), np.asarray(amount, dtype=np.float64), rep_start,
                  np.asarray(division, dtype=np.int64), modulus, starts, np.asarray(sim, dtype=np.int64), w, n_div,
                  block, div_open, div_new)
    return (div_open if deals is not None else None), (div_new if new is not None else None)


@numba.njit(cache=True, nogil=True)
def _chunk_kernel(counts, slot, stride, amount, rep_start, division, modulus, starts, sim, w, n_div,
                  block, div_open, div_new):  # pragma: no cover
    """Rep by rep, atom by atom: the row of sims of (rep, atom) is summed in `row` (float64, the
    prime modulus' slots included), first the open deals' bookings deal by deal (within a deal,
    consecutive terms of offset + k * stride mod modulus; `slot` carries a deal's progression from
    one atom to the next), then, if any new-pipeline event falls in it, the events' own sum (from
    0.0, in event order, divisions in turn), added once; the row's first n_sims slots are then
    rounded into block. The divisions' grids take the same amounts in the same order. Rep-major
    keeps the row in cache while its deals add to it (2x less CPU than deal-major, measured)."""
    n_reps, n_atoms, n_sims = block.shape
    row = np.empty(modulus)
    new_row = np.empty(n_sims)
    has_new = len(starts) > 1
    for r in range(n_reps):
        for a in range(n_atoms):
            row[:] = 0.0
            for d in range(rep_start[r], rep_start[r + 1]):
                c = counts[d, a]
                if c == 0:
                    continue
                s, step, x, v = slot[d], stride[d], amount[d], division[d]  # 0 <= s < modulus, 1 <= step < modulus
                for _ in range(c):
                    row[s] += x
                    div_open[v, a, s] += x
                    s += step  # the next term, mod modulus (branch-free: the test is a coin flip)
                    s -= modulus if s >= modulus else 0
                slot[d] = s
            touched = False
            for v in range(n_div if has_new else 0):
                cell = (r * n_div + v) * n_atoms + a
                for e in range(starts[cell], starts[cell + 1]):
                    if not touched:
                        new_row[:] = 0.0
                        touched = True
                    new_row[sim[e]] += w[e]
                    div_new[v, a, sim[e]] += w[e]
            if touched:
                for s in range(n_sims):
                    row[s] += new_row[s]
            for s in range(n_sims):
                block[r, a, s] = row[s]


@numba.njit(cache=True, nogil=True)
def _group_sums(groups, block, part):  # pragma: no cover
    """part[g] = sum over reps r of groups[g, r] * block[r] (block: (n_reps, cells) float32), each
    group's sum added in float64, rep by rep, then stored as float32. The groups (total, regions,
    managers) hold each rep three times among hundreds of columns: a dense float32 matrix product
    did ~80x the work (74 s of the scale-100 forecast's 154 dates), and its rounding depended on the
    BLAS build and threads; this sum depends on neither."""
    acc = np.empty(block.shape[1])
    for g in range(groups.shape[0]):
        acc[:] = 0.0
        for r in range(groups.shape[1]):
            w = groups[g, r]
            if w != 0:
                for c in range(block.shape[1]):
                    acc[c] += w * block[r, c]
        for c in range(block.shape[1]):
            part[g, c] = acc[c]


_LOCAL = threading.local()  # per thread: a Dask worker runs tasks in several threads of one process


def _scratch(shape: tuple) -> np.ndarray:
    """A float32 array of `shape` from this thread's scratch buffer, grown as needed and kept (at most
    MAX_GRID_CELLS: 64 MB): a chunk's block, which lives only inside _simulate_chunk, reuses the same
    pages from one chunk (and one as-of date or backtest origin) to the next instead of fresh ones."""
    n = math.prod(shape)
    buf = getattr(_LOCAL, "block", None)
    if buf is None or buf.size < n:
        buf = _LOCAL.block = np.empty(n, np.float32)
    return buf[:n].reshape(shape)


def _rep_chunks(work: np.ndarray, max_reps: int) -> list[tuple[int, int]]:
    """Cut reps 0..n-1 into contiguous ranges of at most max_reps reps and (unless one rep alone
    exceeds it) MAX_BOOKINGS_PER_CHUNK expected bookings. Depends on the inputs only, never on
    the number of workers, so every random draw lands in the same chunk whatever `workers` is."""
    out, lo, acc = [], 0, 0.0
    for i in range(len(work)):  # loop over reps (a few thousand at most), never over deals or sims
        if i > lo and (acc + work[i] > MAX_BOOKINGS_PER_CHUNK or i - lo >= max_reps):
            out.append((lo, i))
            lo, acc = i, 0.0
        acc += work[i]
    if len(work):
        out.append((lo, len(work)))
    return out


def simulate_blocks(inp: EngineInput, n_sims: int = 10_000, seed: int = 0, *, groups: np.ndarray | None = None,
                    reduce: Callable[[int, int, np.ndarray], np.ndarray] | None = None, n_out: int = 0,
                    keep_reps: bool = False, workers: int | None = None) -> Blocked:
    """Simulate chunk by chunk of reps; seeded and deterministic whatever `workers` is.

    groups: (n_groups, n_reps) 0/1 membership (total / regions / managers): their sims are summed
    chunk by chunk. reduce(lo, hi, block) gets the float32 (hi - lo, n_atoms, n_sims) sims of reps
    lo..hi-1 and returns their (hi - lo, n_out) summary (quantiles...): the full rep x sim grid is
    never held (unless keep_reps). With workers > 1 (default `parallel.workers()`) and enough
    bookings, chunks run in worker processes (chosen when the scatter was numpy's and held the
    GIL; threads have not been measured since it was compiled); `reduce` runs there too, so it
    must pickle (keep what it refers to small). `reduce` must not keep `block`: it is this
    thread's scratch, overwritten by the next chunk (unless keep_reps)."""
    if not 1 <= n_sims <= 40_000:
        raise ValueError(f"n_sims must be in 1..40,000 (int32 slots), got {n_sims}")
    workers = workers or parallel.workers()
    expected = n_sims * (float(np.sum(inp.q)) + (float(inp.new_mu.sum()) if inp.new_mu is not None else 0.0))
    if workers > 1 and expected >= PARALLEL_BOOKINGS:  # the pool starts while this process draws
        parallel.warm_up(_simulate_chunk, workers)
    rng = np.random.default_rng(seed)
    n_atoms, n_reps, n_div = inp.q.shape[1], inp.n_reps, inp.n_divisions
    order = np.argsort(inp.rep, kind="stable")
    s = EngineInput(q=inp.q[order], amount=np.asarray(inp.amount, dtype=np.float64)[order],
                    rep=np.asarray(inp.rep, dtype=np.int64)[order],
                    division=np.asarray(inp.division, dtype=np.int64)[order],
                    n_reps=n_reps, n_divisions=n_div)
    deal_start = np.searchsorted(s.rep, np.arange(n_reps + 1))
    modulus = next_prime(n_sims)
    work = np.zeros(n_reps)
    counts = offset = stride = None
    total = 0
    if len(order):
        counts, offset, stride, modulus = _open_deal_bookings(s, n_sims, rng)
        per_deal = counts.sum(axis=1)
        total = int(per_deal.sum())  # bookings drawn (a few land in the prime's spare slots and are dropped)
        work += np.bincount(s.rep, per_deal, minlength=n_reps)
    new_mu = inp.new_mu if inp.new_mu is not None and inp.new_mu.sum() > 0 else None
    pools = None
    if new_mu is not None:
        work += n_sims * new_mu.sum(axis=(1, 2))
        pools = [np.asarray(a, dtype=np.float64) if len(a) else np.zeros(1) for a in inp.new_amounts]
    max_reps = max(1, MAX_GRID_CELLS // (n_atoms * modulus))
    chunks = _rep_chunks(work, max_reps)
    n_groups = 0 if groups is None else len(groups)
    use = workers if workers > 1 and len(chunks) > 1 and float(work.sum()) >= PARALLEL_BOOKINGS else 1

    def task(lo: int, hi: int) -> tuple:  # a chunk's own slices only: no task ships the whole input
        d0, d1 = deal_start[lo], deal_start[hi]
        deals = (counts[d0:d1], offset[d0:d1], stride[d0:d1], s.amount[d0:d1], s.rep[d0:d1],
                 s.division[d0:d1]) if counts is not None and d1 > d0 else None
        return (lo, hi, n_sims, seed, modulus, n_atoms, n_div, deals, None if new_mu is None else new_mu[lo:hi],
                pools, groups[:, lo:hi] if n_groups else None, reduce, keep_reps)

    group_grid = np.zeros((n_groups, n_atoms, n_sims), np.float32)
    div_grid = np.zeros((n_div, n_atoms, n_sims))
    rep_out = np.zeros((n_reps, n_out)) if reduce is not None else None
    rep_keep = np.zeros((n_reps, n_atoms, n_sims), np.float32) if keep_reps else None
    # added up here in chunk order, as one process always did: the same sums whatever `use` is
    results = parallel.map_tasks(_simulate_chunk, [task(lo, hi) for lo, hi in chunks], use)
    div_flat = div_grid.reshape(-1)
    for (lo, hi), (div_open, new_cells, new_sums, n_new, touched, part, out, block32) in zip(chunks, results,
                                                                                             strict=True):
        if div_open is not None:
            div_grid += div_open
        if new_cells is not None:  # x + 0.0 == x: adding the non-zero cells only is the same sum
            div_flat[new_cells] += new_sums
            total += n_new
        if part is not None:
            group_grid[touched] += part
        if rep_out is not None:
            rep_out[lo:hi] = out
        if rep_keep is not None:
            rep_keep[lo:hi] = block32
    return Blocked(rep_out, group_grid, div_grid, rep_keep, n_sims, total)


def _simulate_chunk(lo: int, hi: int, n_sims: int, seed: int, modulus: int, n_atoms: int, n_div: int,
                    deals: tuple | None, new_mu: np.ndarray | None, pools: list | None, groups: np.ndarray | None,
                    reduce: Callable | None, keep_reps: bool) -> tuple:
    """Reps lo..hi-1: the task `simulate_blocks` hands to `parallel.map_tasks` (module level, so a
    worker process can import it). deals: (counts, offset, stride, amount, rep, division) of the
    chunk's deals or None; new_mu and groups: the chunk's reps only. Returns the open deals' and
    the new pipeline's division grids, the new bookings, the touched groups and their sums, the
    reduce output and (keep_reps) the float32 block. The new pipeline's division grid comes as
    its non-zero cells (~10 %: a sixth of the bytes to ship back and add)."""
    new_cells = new_sums = part = out = None
    n_new = 0
    new = None
    if new_mu is not None:  # seeded per chunk (by its first rep): the draws do not depend on who runs it
        new = _new_draws(new_mu, pools, n_sims, np.random.default_rng([seed, 11, lo]))
        n_new = len(new[2])
    shape = (hi - lo, n_atoms, n_sims)
    # the block never leaves this call unless keep_reps: then a fresh array, else this thread's scratch
    block32 = np.empty(shape, np.float32) if keep_reps else _scratch(shape)
    div_open, div_new = _chunk_block(deals, new, modulus, n_sims, n_atoms, n_div, lo, hi, block32)
    if div_open is not None:
        div_open = div_open[..., :n_sims]  # drop the prime modulus' spare slots
    if div_new is not None:
        new_cells = np.flatnonzero(div_new)
        new_sums = div_new.reshape(-1)[new_cells]
        del div_new
    touched = None
    if groups is not None:
        touched = np.flatnonzero(groups.any(axis=1))
        if len(touched):
            part = np.empty((len(touched), n_atoms, n_sims), np.float32)
            _group_sums(np.ascontiguousarray(groups[touched]), block32.reshape(hi - lo, -1),
                        part.reshape(len(touched), -1))
    if reduce is not None:
        out = reduce(lo, hi, block32)
    return div_open, new_cells, new_sums, n_new, touched, part, out, block32 if keep_reps else None


def simulate(inp: EngineInput, n_sims: int = 10_000, seed: int = 0, workers: int | None = None) -> SimResult:
    """Raw simulated revenue grids (n, n_sims, n_atoms), the same draws as `simulate_blocks`; holds
    every rep x sim, so for tests, benchmarks and small inputs only."""
    res = simulate_blocks(inp, n_sims, seed, keep_reps=True, workers=workers)
    return SimResult(np.ascontiguousarray(res.rep_grid.transpose(0, 2, 1), dtype=np.float64),
                     np.ascontiguousarray(res.division_grid.transpose(0, 2, 1)), n_sims, res.bookings)


def _new_draws(mu: np.ndarray, pools: list[np.ndarray], n_sims: int, rng: np.random.Generator):
    """Bookings of deals not yet created, for the reps of `mu` (rep, division, atom): the events of
    all sims of a cell are Poisson(n_sims * mu), each in a uniformly random simulation (Poisson
    splitting), with an amount resampled from its division's pool. Returns (events per cell, in
    mu's C order; sim and amount per event, cell by cell)."""
    _, n_div, n_atoms = mu.shape
    events = rng.poisson(n_sims * mu.ravel())
    n = int(events.sum())
    sim = rng.integers(0, n_sims, n)
    sizes = np.array([len(p) for p in pools], dtype=np.int64)
    if n and not sizes[np.unique(np.flatnonzero(events) // n_atoms % n_div)].all():
        raise ValueError("new pipeline: events in a division with no won amount to draw from")
    pool = np.concatenate(pools).astype(np.float64) if pools else np.zeros(0)
    return events, sim, _pick_amounts(events, n_atoms, n_div, rng.random(n), np.cumsum(sizes) - sizes, sizes, pool)


@numba.njit(cache=True, nogil=True)
def _pick_amounts(events, n_atoms, n_div, u, starts, sizes, pool):  # pragma: no cover
    """The amount of every event, cell by cell (a cell's division: its index // n_atoms % n_div):
    pool[starts[d] + int(u * sizes[d])], the element the numpy gathers it replaces picked (their
    five event-long temporaries were most of the new pipeline's time at scale 100)."""
    out = np.empty(len(u))
    j = 0
    for c in range(len(events)):
        d = c // n_atoms % n_div
        for _ in range(events[c]):
            out[j] = pool[starts[d] + np.int64(u[j] * sizes[d])]
            j += 1
    return out


def _new_bookings(mu: np.ndarray, pools: list[np.ndarray], n_sims: int, rng: np.random.Generator):
    """_new_draws as (rep, div, atom, sim, amount) per event (the naive engine's layout)."""
    _, n_div, n_atoms = mu.shape
    events, sim, w = _new_draws(mu, pools, n_sims, rng)
    cell = np.repeat(np.arange(events.size), events)
    rep, rest = np.divmod(cell, n_div * n_atoms)
    div, atom = np.divmod(rest, n_atoms)
    return rep, div, atom, sim, w


def _new_pipeline(inp: EngineInput, n_sims: int, rng: np.random.Generator, rep_grid, div_grid) -> int:
    """The naive engine's new pipeline, on full (n, n_sims, n_atoms) grids."""
    pools = [np.asarray(a, dtype=np.float64) if len(a) else np.zeros(1) for a in inp.new_amounts]
    rep, div, atom, sim, w = _new_bookings(inp.new_mu, pools, n_sims, rng)
    n_atoms = inp.new_mu.shape[2]
    rep_grid += np.bincount((rep * n_sims + sim) * n_atoms + atom, w, rep_grid.size).reshape(rep_grid.shape)
    div_grid += np.bincount((div * n_sims + sim) * n_atoms + atom, w, div_grid.size).reshape(div_grid.shape)
    return len(w)


@functools.lru_cache(maxsize=8)
def _shock_normals(n_sims: int, n_weeks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """shock's standard normals, drawn once per (n_sims, n_weeks, seed): the backtest scores 63
    shock sizes per origin on the same draws, only scaled (read-only: shared between calls)."""
    rng = np.random.default_rng([seed, 7])
    horizon, week = rng.standard_normal((n_sims, 1)), rng.standard_normal((n_sims, n_weeks))
    horizon.flags.writeable = week.flags.writeable = False
    return horizon, week


def shock(n_sims: int, week_of_atom: np.ndarray, sigma_horizon: float, sigma_week: float,
          seed: int) -> np.ndarray:
    """(n_sims, n_atoms) mean-one lognormal multipliers: a horizon-wide swing per simulation plus an
    independent swing per week (atoms of one week share it). This is the shared period-level effect:
    every deal and segment of a simulation moves together, which independent deals cannot produce.
    Its two sizes are tuned on backtests (backtest.tuning_hits, choose_shock), not set by hand."""
    n_weeks = int(week_of_atom.max()) + 1 if len(week_of_atom) else 0
    horizon, week = _shock_normals(n_sims, n_weeks, seed)
    z = horizon * sigma_horizon + week * sigma_week
    log_m = z[:, week_of_atom] - 0.5 * (sigma_horizon ** 2 + sigma_week ** 2)
    return np.exp(log_m)


def naive_simulate(inp: EngineInput, n_sims: int = 10_000, seed: int = 0, chunk: int = 250) -> SimResult:
    """The straightforward implementation, for the benchmark's ratio and as a cross-check: an
    (n_sims x n_deals) uniform matrix per chunk of simulations, inverse CDF per deal by counting
    the cumulative probabilities below u, then bincount. Same distribution, ~n_atoms x more work."""
    rng = np.random.default_rng(seed)
    q = np.asarray(inp.q, dtype=np.float64)
    n_deals, n_atoms = q.shape
    cdf = np.cumsum(q, axis=1)
    rep_grid = np.zeros((inp.n_reps, n_sims, n_atoms))
    div_grid = np.zeros((inp.n_divisions, n_sims, n_atoms))
    total = 0
    for s0 in range(0, n_sims, chunk):  # loop over chunks of sims only
        s1 = min(n_sims, s0 + chunk)
        u = rng.random((s1 - s0, n_deals))
        atom = np.zeros(u.shape, dtype=np.int64)
        for a in range(n_atoms):  # n_atoms comparisons per (sim, deal): the naive inverse CDF
            atom += u >= cdf[:, a]
        sim, deal = np.nonzero(atom < n_atoms)
        a = atom[sim, deal]
        w = inp.amount[deal]
        rep_grid += np.bincount((inp.rep[deal] * n_sims + sim + s0) * n_atoms + a, w,
                                rep_grid.size).reshape(rep_grid.shape)
        div_grid += np.bincount((inp.division[deal] * n_sims + sim + s0) * n_atoms + a, w,
                                div_grid.size).reshape(div_grid.shape)
        total += len(sim)
    if inp.new_mu is not None and inp.new_mu.sum() > 0:
        total += _new_pipeline(inp, n_sims, rng, rep_grid, div_grid)
    return SimResult(rep_grid, div_grid, n_sims, total)
