"""Run-rate purchases of one block of accounts, and the division ground truth.

Besides won CRM deals, accounts buy on their own: every month m and division d an account
places at least one order with probability (the monthly hazard)

    lambda[a, d, m] = sigmoid( base_d + fit[a, d] + 1.2 * u[a] + v[a, d]
                               + slope[a] * (years from mid-2024) + season[calendar month]
                               + 0.45 * (number of OTHER divisions owned six months earlier) )

`fit` is the sector/size fit, `u`, `v`, `slope` the account's hidden propensity, taste and
trend (see accounts.py). A division counts as owned once the account bought it, through a
run-rate order or a won CRM deal, on or before the first day of that month. The cross-sell
effect uses ownership as of the first day of month m-6: land-and-expand needs time, and
the lag means every hazard of the next six months is already fixed at any month start.

In a buying month the account places 1 + Poisson(size-driven) orders on business days from
the 2nd of the month on (never on the 1st, so a month-start cutoff splits months cleanly);
an order holds 1 + Binomial(SKUs in division - 1, q) distinct SKUs of that division, favouring
the add-on SKUs over the big CRM-sold ones; line value ~ list price x quantity x lognormal.

`division_truth.csv` (true_probability) is, for a month-start cutoff c and a window of W
months, P(the account places at least one run-rate order of the division in (c, c + W months]
| everything known at c) = 1 - prod over the window's months of (1 - lambda). This is exact
for the run-rate process: within the window no hazard depends on anything after c (the
cross-sell lag is 6 >= W). What it leaves out: orders from CRM deals won inside the window.
summary.json reports, per window length, the mean true probability next to the realised
share with run-rate orders only and with CRM orders added, so the size of that gap is known.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets.demo import catalog as C
from revintel_assets.demo.accounts import Accounts
from revintel_assets.demo.deals import Deals

N_DIV = len(C.DIVISIONS)
DIVISION_BASE = np.array([-3.1, -3.1, -3.2, -3.4, -2.9])
SEASON = np.array([-0.05, 0.0, 0.1, 0.0, 0.0, 0.05, -0.25, -0.35, 0.1, 0.05, 0.0, -0.3])
PROPENSITY_WEIGHT = 1.2
CROSS_EFFECT = 0.45
CROSS_LAG = 6  # months; must be >= the longest truth window
MAJOR_WEIGHT = 0.3  # CRM-sold SKUs are bought less often through the run-rate log
MONTH_START = C.month_start(np.arange(C.N_MONTHS + 1))


def first_crm_win(n_accounts: int, deals: Deals) -> np.ndarray:
    """(accounts, divisions) day of the first won deal closed by the export date; huge if none."""
    first = np.full((n_accounts, N_DIV), np.iinfo(np.int64).max)
    won = deals.won & (deals.close <= C.EXPORT_DAY)
    np.minimum.at(first, (deals.account[won], deals.division[won]), deals.close[won])
    return first


def hazards(acc: Accounts, first_win: np.ndarray, rng: np.random.Generator):
    """Monthly hazards and buying months, both (accounts, divisions, months); loops over months."""
    n = len(acc)
    base = DIVISION_BASE + acc.fit + PROPENSITY_WEIGHT * acc.u[:, None] + acc.v
    draws = rng.random((n, N_DIV, C.N_MONTHS))
    lam = np.empty((n, N_DIV, C.N_MONTHS))
    bought = np.zeros((n, N_DIV), bool)  # run-rate order in an earlier month
    owned = []
    for m in range(C.N_MONTHS):
        owned.append(bought | (first_win <= MONTH_START[m]))
        lagged = owned[m - CROSS_LAG] if m >= CROSS_LAG else np.zeros((n, N_DIV), bool)
        others = lagged.sum(axis=1, keepdims=True) - lagged
        years = (m + 0.5 - 18) / 12
        logit = base + acc.slope[:, None] * years + SEASON[m % 12] + CROSS_EFFECT * others
        lam[:, :, m] = 1.0 / (1.0 + np.exp(-logit))
        bought |= draws[:, :, m] < lam[:, :, m]
    return lam, draws < lam


def _order_days(month: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A business day from the 2nd to the last of each month."""
    start = MONTH_START[month]
    length = MONTH_START[month + 1] - start
    off = 1 + (rng.random(len(month)) * (length - 1)).astype(np.int64)
    wd = C.weekday(start + off)
    off = np.where(wd == 5, np.where(off >= 2, off - 1, off + 2), off)
    off = np.where(wd == 6, np.where(off + 1 <= length - 1, off + 1, off - 2), off)
    return start + off


def run_rate_lines(acc: Accounts, buying: np.ndarray, cat: C.Catalog, rng: np.random.Generator) -> dict:
    """Orders and their lines for every buying (account, division, month)."""
    a, d, m = np.nonzero(buying)
    size = 10 ** (acc.log_emp[a] - 2.9)
    n_orders = 1 + np.minimum(rng.poisson(0.6 * size ** 0.35 * np.exp(0.3 * acc.u[a])), 7)
    a, d, m = (np.repeat(x, n_orders) for x in (a, d, m))
    day = _order_days(m, rng)
    q = np.clip(0.2 + 0.06 * (acc.log_emp[a] - 2.9), 0.05, 0.5)
    per_div = np.bincount(cat.division, minlength=N_DIV)
    k = 1 + rng.binomial(per_div[d] - 1, q)
    order_idx, sku = [], []
    for div in range(N_DIV):  # loop over divisions
        orders = np.flatnonzero(d == div)
        skus = np.flatnonzero(cat.division == div)
        logw = np.log(np.where(cat.tier[skus] >= 0, MAJOR_WEIGHT, 1.0))
        keys = logw + rng.gumbel(size=(len(orders), len(skus)))  # Gumbel top-k = weighted
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)      # sampling w/o replacement
        o, j = np.nonzero(rank < k[orders, None])
        order_idx.append(orders[o]), sku.append(skus[j])
    order_idx, sku = np.concatenate(order_idx), np.concatenate(sku)
    oa = a[order_idx]
    qty = 1 + rng.poisson(cat.qty_extra[sku] * 10 ** (0.3 * (acc.log_emp[oa] - 2.9)))
    value = np.round(cat.price[sku] * qty * rng.lognormal(-0.06, 0.12, len(sku)), 2)
    return {"account": oa, "day": day[order_idx], "division": cat.division[sku], "sku": sku,
            "qty": qty, "value": value}


def truth_windows(scale: float) -> list[tuple[int, int]]:
    """(cutoff month, window months) pairs whose window ends on or before the export date.
    Month-start cutoffs 2024-01..2025-07; quarter starts only from scale 10 on (file size)."""
    step = 3 if scale >= 10 else 1
    return [(mo, w) for w in (3, 6) for mo in range(12, 31, step)
            if MONTH_START[mo + w] <= C.EXPORT_DAY]


def division_truth(acc: Accounts, lam: np.ndarray, windows: list[tuple[int, int]]) -> pl.DataFrame:
    surv = np.concatenate([np.zeros(lam.shape[:2] + (1,)), np.cumsum(np.log1p(-lam), axis=2)], axis=2)
    prob = np.stack([-np.expm1(surv[:, :, mo + w] - surv[:, :, mo]) for mo, w in windows], axis=2)
    n, k = len(acc), len(windows)
    a, d, j = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(N_DIV), np.arange(k), indexing="ij"))
    months = np.array([mo for mo, _ in windows])
    return pl.DataFrame({
        "account_id": acc.ids().gather(a),
        "division": pl.Series(C.DIVISIONS).gather(d),
        "cutoff_date": C.to_pl_date(MONTH_START[months[j]], "cutoff_date"),
        "window_months": np.array([w for _, w in windows])[j],
        "true_probability": prob.ravel(),
    })


def realised_rates(buying: np.ndarray, lam: np.ndarray, deals: Deals, windows) -> dict:
    """Per window length: summed truth, run-rate-only label and all-channel label (for summary)."""
    n = buying.shape[0]
    crm = np.zeros_like(buying)
    won = deals.won & (deals.close <= C.EXPORT_DAY)
    # a close on day 1 of a month belongs to the window ending that day
    crm[deals.account[won], deals.division[won], C.month_index(deals.close[won] - 1)] = True
    surv = np.concatenate([np.zeros(lam.shape[:2] + (1,)), np.cumsum(np.log1p(-lam), axis=2)], axis=2)
    out: dict = {}
    for mo, w in windows:
        acc_w = out.setdefault(w, np.zeros(4))
        rr = buying[:, :, mo:mo + w].any(axis=2)
        acc_w += [(-np.expm1(surv[:, :, mo + w] - surv[:, :, mo])).sum(), rr.sum(),
                  (rr | crm[:, :, mo:mo + w].any(axis=2)).sum(), n * N_DIV]
    return out
