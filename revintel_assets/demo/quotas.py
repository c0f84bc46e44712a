"""The demo company's quotas (quotas.csv): per rep and fiscal quarter a stretch above what the
rep could expect to book, rolled up to managers, regions and the total the way sales plans are
(over-assigned: a manager carries less than the sum of the reps' quotas).

* expected bookings E(rep, quarter) = sum of true win probability x amount of the rep's deals
  whose decision (close) day falls in the quarter (the capacity a planner would estimate);
* the quarter after the export (the one the demo forecasts) has few deals yet: its E is the
  mean of the rep's last four quarters;
* rep quota = E x STRETCH x lognormal(0, NOISE) (some reps get tougher plans than others),
  rounded to 100; manager = MANAGER_SHARE x sum of the reps', region = REGION_SHARE x sum of its
  managers', total = TOTAL_SHARE x sum of the regions'.

Reads the simulated deals only (no random number drawn from any other file's generators: its
own seed node SeedSequence(seed, spawn_key=(5,))), so every other file keeps its bytes.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets.demo import catalog as C
from revintel_assets.rules import add_months, fiscal_quarter_start

STRETCH = 1.1
NOISE = 0.12
MANAGER_SHARE, REGION_SHARE, TOTAL_SHARE = 0.92, 0.97, 0.97
LOOKBACK_QUARTERS = 4


class QuotaPlan:
    """Accumulates expected bookings per (rep, fiscal quarter) block by block, then writes quotas.csv."""

    def __init__(self, n_reps: int, fy_start_month: int = 1):
        self.fy = fy_start_month
        # fiscal quarter of every day up to a quarter past the export: index 0 = the one holding EPOCH
        days = np.arange(C.EXPORT_DAY + 1 + 100)
        months = C.month_index(days)
        self.q_of_day = np.floor_divide(months + (1 - fy_start_month) % 3, 3)
        self.n_q = int(self.q_of_day[-1]) + 1
        self.expected = np.zeros((n_reps, self.n_q))

    def add_block(self, rep: np.ndarray, close: np.ndarray, p: np.ndarray, amount: np.ndarray) -> None:
        ok = (close >= 0) & (close < len(self.q_of_day))
        q = self.q_of_day[close[ok]]
        np.add.at(self.expected, (rep[ok], q), p[ok] * amount[ok])

    def quarter_starts(self) -> list:
        first = fiscal_quarter_start(C.EPOCH.astype(object), self.fy)
        return [add_months(first, 3 * k) for k in range(self.n_q)]

    def frame(self, team: C.Team, rng: np.random.Generator) -> pl.DataFrame:
        last = int(self.q_of_day[C.EXPORT_DAY])  # the export's quarter; the next one is forecast
        e = self.expected[:, :last + 2].copy()
        e[:, last + 1] = e[:, max(0, last - LOOKBACK_QUARTERS + 1):last + 1].mean(axis=1)
        rep_q = np.round(e * STRETCH * rng.lognormal(0.0, NOISE, e.shape), -2)
        starts = self.quarter_starts()[:last + 2]
        managers = sorted(set(team.manager))
        m_of = np.array([managers.index(m) for m in team.manager])
        mgr_q = np.zeros((len(managers), e.shape[1]))
        np.add.at(mgr_q, m_of, rep_q)
        mgr_region = np.array([team.region[m_of == k][0] for k in range(len(managers))])
        reg_q = np.zeros((len(C.REGIONS), e.shape[1]))
        np.add.at(reg_q, mgr_region, mgr_q * MANAGER_SHARE)
        rows = [("rep", list(team.name), rep_q), ("manager", managers, np.round(mgr_q * MANAGER_SHARE, -2)),
                ("region", list(C.REGIONS), np.round(reg_q * REGION_SHARE, -2)),
                ("total", [""], np.round(reg_q.sum(axis=0, keepdims=True) * REGION_SHARE * TOTAL_SHARE, -2))]
        frames = [pl.DataFrame({"owner_type": t, "owner": np.repeat(names, len(starts)),
                                "period_start": starts * len(names), "period_type": "quarter",
                                "amount": q.ravel()}) for t, names, q in rows]
        out = pl.concat(frames).filter(pl.col("amount") > 0)
        return out.with_columns(pl.col("amount").cast(pl.Int64))

