"""A demo that can surprise its models (issue 14): `revintel generate --drift X`.

At drift 0 nothing here is used and the company is byte for byte the stationary one. At drift
X > 0 the world moves over the three years, each effect scaled by X:

* win odds fall: the win logit loses FALL * X between the first and the last day of history;
* seasonality is stronger: deal creation (month weights raised to the power 1 + 2X), the win
  logit (deals opened in the summer win less, in autumn more) and the run-rate purchase
  season (amplitude x (1 + X));
* rep turnover: up to TURNOVER * X of the reps (never the first rep of an office) leave on a day
  in the history, as many others join on one; a new rep starts RAMP * X below their skill and
  reaches it after a year; every rep's skill wanders (a slowly reverting monthly walk, centred
  on the team). Deals a rep would work outside their tenure go to a colleague of the same
  office who is there;
* a product is launched mid-history: before LAUNCH_DAY its deals are the division's entry SKU
  and its run-rate lines are not sold at all; after launch it wins more (new and wanted).

The draws come from their own seed-tree nodes (team: (5,), block b: (6, b)), so the streams of
the stationary company are untouched. The truth file keeps the honest p of each deal on the
day its Prospecting ends, drift effects included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from revintel_assets.demo import catalog as C

FALL = 1.0  # win-logit fall over the whole history at drift 1 (~50% -> ~30% closed win rate)
TURNOVER = 0.3  # share of reps who leave (and, as many, who join) at drift 1
RAMP = 1.0  # a new rep's skill deficit on their first day at drift 1, gone after a year
WANDER_SD = 0.15  # monthly step of the skill walk at drift 1 ...
WANDER_PHI = 0.95  # ... which reverts slowly (stationary sd ~0.5 logit)
WIN_SEASON = 0.5  # amplitude of the win-logit season at drift 1 (peak in October, trough April)
LAUNCH_SKU = "NMB-PLUS"  # Cloud Platform's mid-tier major SKU
LAUNCH_DAY = int((np.datetime64("2024-07-01") - C.EPOCH).astype(np.int64))
LAUNCH_EFFECT = 0.5  # the new product's extra win logit at drift 1


@dataclass(frozen=True)
class Drift:
    level: float
    start: np.ndarray  # first working day per rep (0 = there from the start)
    end: np.ndarray  # last working day per rep (past the export = stays)
    wander: np.ndarray  # (reps, months) skill offset
    launch_sku: int
    launch_alt: int  # the SKU the launched product's deals are before the launch

    def active(self, rep: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (self.start[rep] <= day) & (day <= self.end[rep])

    def skill_shift(self, rep: np.ndarray, day: np.ndarray) -> np.ndarray:
        tenure = (day - self.start[rep]) / 365.0
        ramp = np.where(self.start[rep] > 0, RAMP * self.level * np.clip(1.0 - tenure, 0, 1), 0.0)
        return self.wander[rep, np.clip(C.month_index(day), 0, C.N_MONTHS - 1)] - ramp

    def win_shift(self, day: np.ndarray, sku: np.ndarray) -> np.ndarray:
        month = C.month_index(day) % 12
        season = WIN_SEASON * self.level * np.cos(2 * np.pi * (month - 9) / 12)
        launched = LAUNCH_EFFECT * self.level * (sku == self.launch_sku)
        return -FALL * self.level * day / C.EXPORT_DAY + season + launched

    def creation_weights(self, base: np.ndarray) -> np.ndarray:
        return base ** (1.0 + 2.0 * self.level)

    def purchase_season(self, season: np.ndarray) -> np.ndarray:
        return season * (1.0 + self.level)


def build_drift(level: float, team: C.Team, cat: C.Catalog, rng: np.random.Generator) -> Drift | None:
    """The company-wide drift (None at level 0: the stationary company)."""
    if not level > 0:
        if level != 0:
            raise ValueError(f"drift must be >= 0, got {level}")
        return None
    n = len(team.region)
    anchors = np.array([reps[0] for reps in team.region_reps])
    movable = np.setdiff1d(np.arange(n), anchors)
    k = min(len(movable) // 2, round(min(0.45, TURNOVER * level) * n))
    picked = rng.permutation(movable)[: 2 * k]
    start, end = np.zeros(n, np.int64), np.full(n, C.EXPORT_DAY + 10_000, np.int64)
    end[picked[:k]] = rng.integers(200, 950, k)  # leavers
    start[picked[k:]] = rng.integers(150, 900, k)  # joiners
    steps = rng.normal(0, WANDER_SD * level, (n, C.N_MONTHS))
    wander = np.zeros_like(steps)
    for m in range(C.N_MONTHS):  # loop over months: an AR(1) walk, so no rep runs away
        wander[:, m] = (WANDER_PHI * wander[:, m - 1] if m else 0.0) + steps[:, m]
    wander -= wander.mean(axis=0)  # reps wander apart; the team's mean skill does not move
    sku = {s: i for i, s in enumerate(cat.sku)}[LAUNCH_SKU]
    alt = int(cat.majors[(cat.division[cat.majors] == cat.division[sku]) & (cat.tier[cat.majors] == 0)][0])
    return Drift(float(level), start, end, wander, sku, alt)


def reassign_reps(drift: Drift, team: C.Team, rep: np.ndarray, region: np.ndarray, created: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Deals whose rep is not there on the creation day go to a colleague of the office who is
    (loops over draw rounds, not deals; the office's first rep never leaves)."""
    rep = rep.copy()
    todo = np.flatnonzero(~drift.active(rep, created))
    for _ in range(30):
        if len(todo) == 0:
            break
        rep[todo] = C.pick_region_rep(team, region[todo], rng)
        todo = todo[~drift.active(rep[todo], created[todo])]
    anchors = np.array([reps[0] for reps in team.region_reps])
    rep[todo] = anchors[region[todo]]
    return rep


def launch_mask(drift: Drift, sku: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Rows for the launched product dated before its launch."""
    return (sku == drift.launch_sku) & (day < LAUNCH_DAY)
