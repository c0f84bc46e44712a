"""Monte-Carlo revenue engine: open deals + new pipeline + a shared period effect -> sims per segment.

Pure numpy, no Dagster, no Python loop over deals or simulations.

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

The work is then proportional to the number of bookings (sim, deal) actually made, which are
scattered with np.bincount into (segment, sim, atom) grids. Deals are sorted by rep so that
each chunk touches a contiguous slice of the rep grid (small bincounts, bounded memory).
"""

from __future__ import annotations

import math
import mmap
import os
from dataclasses import dataclass, field

import numpy as np

MAX_BOOKINGS_PER_CHUNK = 8_000_000  # bounds the temporary index arrays (~200 MB per worker)
FORK_BOOKINGS = 20_000_000  # below this, forking costs more than it saves
MAX_GRID_CELLS = 4_000_000  # and the local (rep, division, atom, sim) grid of a chunk (32 MB)


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
    division_grid (n_divisions, n_sims, n_atoms); every booking is in both."""

    rep_grid: np.ndarray
    division_grid: np.ndarray
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


def _scatter_chunk(deals: np.ndarray, counts: np.ndarray, offset, stride, modulus: int, inp: EngineInput,
                   rep_lo: int, rep_hi: int) -> tuple[np.ndarray, int]:
    """Bookings of `deals` (sorted by rep, reps in [rep_lo, rep_hi)) -> a local (rep, division,
    atom, sim) grid with `modulus` sim slots (the slots >= n_sims are dropped by the caller).

    Bookings are laid out deal by deal, atom by atom: within a deal they are consecutive terms of
    the progression offset + k * stride, so the sim slots come from one cumsum (+ mod), and each
    (deal, atom) run adds a constant grid base. Seven passes over the bookings, no random numbers."""
    n_atoms, n_div = counts.shape[1], inp.n_divisions
    c = counts[deals]
    per_deal = c.sum(axis=1)
    has = per_deal > 0
    deals, c, per_deal = deals[has], c[has], per_deal[has]
    n = int(per_deal.sum())
    if n == 0:
        return np.zeros((rep_hi - rep_lo, n_div, n_atoms, modulus)), 0
    # int32 throughout: a deal's terms stay below modulus * (1 + n_sims) < 2**31 (n_sims <= 40,000)
    g, o = stride[deals].astype(np.int32), offset[deals].astype(np.int32)
    # cumsum of the increments gives offset + k * stride inside each deal: the first booking of a
    # deal jumps from the previous deal's last term to this deal's offset
    inc = np.repeat(g, per_deal)
    first = np.cumsum(per_deal) - per_deal
    last_prev = np.r_[np.int32(0), (o + (per_deal.astype(np.int32) - 1) * g)[:-1]]
    inc[first] = o - last_prev
    slot = np.cumsum(inc)
    slot %= modulus
    cell = ((inp.rep[deals] - rep_lo) * n_div + inp.division[deals])[:, None] * n_atoms + np.arange(n_atoms)
    run_len = c.ravel()
    slot += np.repeat((cell.ravel() * modulus).astype(np.int32), run_len)
    w = np.repeat(np.repeat(inp.amount[deals], n_atoms), run_len)
    grid = np.bincount(slot, weights=w, minlength=(rep_hi - rep_lo) * n_div * n_atoms * modulus)
    return grid.reshape(rep_hi - rep_lo, n_div, n_atoms, modulus), n


def _chunks(rep_sorted: np.ndarray, bookings: np.ndarray, max_reps: int) -> list[tuple[np.ndarray, int, int]]:
    """Split deals (sorted by rep) into chunks of whole reps with bounded bookings and grid size."""
    reps, first = np.unique(rep_sorted, return_index=True)
    per_rep = np.add.reduceat(bookings, first) if len(first) else np.array([], dtype=np.int64)
    out, lo, acc = [], 0, 0
    for i in range(len(reps)):  # loop over reps (a few hundred at most), never over deals or sims
        acc += per_rep[i]
        hi = i + 1
        if acc >= MAX_BOOKINGS_PER_CHUNK or hi == len(reps) or reps[hi] - reps[lo] >= max_reps:
            stop = first[hi] if hi < len(reps) else len(rep_sorted)
            out.append((np.arange(first[lo], stop), int(reps[lo]), int(reps[hi - 1]) + 1))
            lo, acc = hi, 0
    return out


def _shared(shape: tuple) -> np.ndarray:
    """A zeroed float64 array in anonymous shared memory (visible to forked children)."""
    size = int(np.prod(shape)) * 8
    return np.frombuffer(mmap.mmap(-1, max(size, 8)), dtype=np.float64, count=int(np.prod(shape))).reshape(shape)


def _parallel(run, chunks, rep_grid: np.ndarray, div_grid: np.ndarray, workers: int) -> None:
    """Run the chunks; with workers > 1, in forked processes writing into shared memory.

    np.repeat and np.bincount hold the GIL, so threads would not use the second core; processes do.
    Each chunk owns whole reps (disjoint slices of the rep grid); each worker has its own division
    grid, summed at the end (so division sums may differ from one worker in the last bits only)."""
    if workers <= 1 or len(chunks) < 2 or not hasattr(os, "fork"):
        for c in chunks:
            run(c, rep_grid, div_grid)
        return
    shared_rep = _shared(rep_grid.shape)
    shared_div = _shared((workers, *div_grid.shape))
    pids = []
    for w in range(workers):  # a couple of processes, never one per deal or simulation
        pid = os.fork()
        if pid == 0:  # child: its share of the chunks, then leave at once (no atexit, no cleanup)
            code = 0
            try:
                for c in chunks[w::workers]:
                    run(c, shared_rep, shared_div[w])
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
    if failed:
        raise RuntimeError(f"simulation worker process(es) {failed} failed")
    rep_grid += shared_rep
    div_grid += shared_div.sum(axis=0)


def simulate(inp: EngineInput, n_sims: int = 10_000, seed: int = 0, workers: int = 2) -> SimResult:
    """Raw simulated revenue grids; seeded and deterministic whatever `workers` is."""
    if not 1 <= n_sims <= 40_000:
        raise ValueError(f"n_sims must be in 1..40,000 (int32 slots), got {n_sims}")
    rng = np.random.default_rng(seed)
    n_atoms = inp.q.shape[1]
    order = np.argsort(inp.rep, kind="stable")
    sorted_inp = EngineInput(q=inp.q[order], amount=np.asarray(inp.amount, dtype=np.float64)[order],
                             rep=np.asarray(inp.rep, dtype=np.int64)[order],
                             division=np.asarray(inp.division, dtype=np.int64)[order],
                             n_reps=inp.n_reps, n_divisions=inp.n_divisions)
    rep_grid = np.zeros((inp.n_reps, n_sims, n_atoms))
    div_grid = np.zeros((inp.n_divisions, n_sims, n_atoms))
    total = 0
    if len(order):
        counts, offset, stride, modulus = _open_deal_bookings(sorted_inp, n_sims, rng)
        max_reps = max(1, MAX_GRID_CELLS // (inp.n_divisions * n_atoms * modulus))
        chunks = _chunks(sorted_inp.rep, counts.sum(axis=1), max_reps)

        def run(chunk, rep_out, div_out):
            deals, lo, hi = chunk
            grid, _ = _scatter_chunk(deals, counts, offset, stride, modulus, sorted_inp, lo, hi)
            grid = grid[..., :n_sims]  # drop the prime modulus' spare slots
            # (rep, div, atom, sim) -> rep grid (rep, sim, atom) and division grid (div, sim, atom)
            rep_out[lo:hi] += grid.sum(axis=1).transpose(0, 2, 1)
            div_out += grid.sum(axis=0).transpose(0, 2, 1)

        total = int(counts.sum())  # bookings drawn (a few land in the prime's spare slots and are dropped)
        _parallel(run, chunks, rep_grid, div_grid, workers if total >= FORK_BOOKINGS else 1)
    if inp.new_mu is not None and inp.new_mu.sum() > 0:
        total += _new_pipeline(inp, n_sims, rng, rep_grid, div_grid)
    return SimResult(rep_grid, div_grid, n_sims, total)


def _new_pipeline(inp: EngineInput, n_sims: int, rng: np.random.Generator, rep_grid, div_grid) -> int:
    """Deals not yet created: a Poisson process per (rep, division, atom). The number of events
    over all sims is Poisson(n_sims * mu); each lands in a uniformly random simulation (Poisson
    splitting: exactly independent Poisson(mu) counts per simulation), with an amount resampled
    from that division's recent won amounts."""
    n_reps, n_div, n_atoms = inp.new_mu.shape
    events = rng.poisson(n_sims * inp.new_mu.ravel())
    cell = np.repeat(np.arange(events.size), events)
    if not len(cell):
        return 0
    rep, rest = np.divmod(cell, n_div * n_atoms)
    div, atom = np.divmod(rest, n_atoms)
    sim = rng.integers(0, n_sims, len(cell))
    pools = [np.asarray(a, dtype=np.float64) if len(a) else np.zeros(1) for a in inp.new_amounts]
    sizes = np.array([len(p) for p in pools])
    starts = np.cumsum(sizes) - sizes
    pick = starts[div] + (rng.random(len(cell)) * sizes[div]).astype(np.int64)
    w = np.concatenate(pools)[pick]
    rep_grid += np.bincount((rep * n_sims + sim) * n_atoms + atom, w, rep_grid.size).reshape(rep_grid.shape)
    div_grid += np.bincount((div * n_sims + sim) * n_atoms + atom, w, div_grid.size).reshape(div_grid.shape)
    return len(cell)


def shock(n_sims: int, week_of_atom: np.ndarray, sigma_horizon: float, sigma_week: float,
          seed: int) -> np.ndarray:
    """(n_sims, n_atoms) mean-one lognormal multipliers: a horizon-wide swing per simulation plus an
    independent swing per week (atoms of one week share it). This is the shared period-level effect:
    every deal and segment of a simulation moves together, which independent deals cannot produce.
    Its two sizes are tuned on backtests (backtest.tune_shock), not set by hand."""
    rng = np.random.default_rng([seed, 7])
    n_weeks = int(week_of_atom.max()) + 1 if len(week_of_atom) else 0
    z = rng.standard_normal((n_sims, 1)) * sigma_horizon + rng.standard_normal((n_sims, n_weeks)) * sigma_week
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
