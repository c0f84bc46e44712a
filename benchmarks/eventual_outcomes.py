"""Every demo deal's eventual outcome, including the deals still open at the export date.

The export cuts the simulated company at 2025-12-31, so a holdout judged on the export's labels
keeps only the deals that had closed by then (on the demo ~15 % of holdout rows are dropped, and
those deals mostly lose). The generator simulates every deal to its natural end; this replays
its deal draws (same seeds, same block order as `generator._simulate_blocks`) and returns the
outcome and close date of every deal, so a benchmark can judge the model on every deal open on
the holdout's as-of dates, as the held-out companies of issue 14 are judged. Benchmarks only: the
product never reads it.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from revintel_assets.demo import catalog as C
from revintel_assets.demo.accounts import make_accounts
from revintel_assets.demo.deals import simulate_deals
from revintel_assets.demo.drift import build_drift
from revintel_assets.demo.generator import BLOCK, World, _rng, company_size
from revintel_assets.demo.purchases import truth_windows
from revintel_resources.settings import settings


def eventual_outcomes(seed: int, scale: float, drift: float = 0.0, fy_start_month: int | None = None) -> pl.DataFrame:
    """opportunity_id, true_win_probability, eventual_won, eventual_close_date (all deals).
    fy_start_month: the fiscal year the company was generated with (None: the setting, as
    `revintel generate` reads it)."""
    fy = settings().fiscal_year_start_month if fy_start_month is None else fy_start_month
    n_accounts, n_reps = company_size(scale)
    cat, team = C.build_catalog(), C.build_team(n_reps, _rng(seed, 1))
    world = World(seed, cat, team, C.name_permutation(_rng(seed, 2)), truth_windows(scale),
                  build_drift(drift, team, cat, _rng(seed, 5)), fy)
    parts, next_opp = [], 1
    for b in range(math.ceil(n_accounts / BLOCK)):
        rngs = [np.random.Generator(np.random.PCG64(s))
                for s in np.random.SeedSequence(seed, spawn_key=(3, b)).spawn(3)]
        first = b * BLOCK
        acc = make_accounts(first, min(BLOCK, n_accounts - first), world.names, world.team, rngs[0])
        drng = None if world.drift is None else _rng(seed, 6, b)
        deals = simulate_deals(acc, world.team, world.cat, rngs[1], world.drift, drng, world.fy_start_month)
        n = len(deals.account)
        parts.append(pl.DataFrame({
            "opportunity_id": C.prefixed_ids("O", next_opp + np.arange(n), 8, "opportunity_id"),
            "true_win_probability": deals.p, "eventual_won": deals.won.astype(bool),
            "eventual_close_date": (C.EPOCH + deals.close.astype("timedelta64[D]")).astype("datetime64[D]")}))
        next_opp += n
    return pl.concat(parts)
