"""The forecast engine revintel replaced, kept as the yardstick of `benchmarks/limits.py`.

What it did, faithfully: numpy Bernoulli draws (is deal d won in simulation s? which of the 13
weeks does it close in?), then a Python loop over simulations x deals adding each won deal's
amount into its week's bucket. Not used by the product.
"""

from __future__ import annotations

import numpy as np


def replaced_engine(q: np.ndarray, amount: np.ndarray, n_sims: int, seed: int) -> np.ndarray:
    """q: (n_deals, n_weeks) P(won and closes in week w); returns (n_sims, n_weeks) revenue."""
    rng = np.random.default_rng(seed)
    n_deals, n_weeks = q.shape
    p_win = q.sum(axis=1)
    cdf = np.cumsum(q, axis=1) / np.where(p_win > 0, p_win, 1.0)[:, None]
    won = rng.random((n_sims, n_deals)) < p_win  # the Bernoulli draws
    u = rng.random((n_sims, n_deals))
    week = np.zeros((n_sims, n_deals), dtype=np.int64)
    for w in range(n_weeks - 1):  # inverse CDF of the close week
        week += u >= cdf[:, w]
    buckets = np.zeros((n_sims, n_weeks))
    for s in range(n_sims):  # the loop it was replaced for: every simulation x every deal
        for d in range(n_deals):
            if won[s, d]:
                buckets[s, week[s, d]] += amount[d]
    return buckets
