"""Run-rate purchases of one block of accounts, and the division ground truth.

Besides won CRM deals, accounts buy on their own: in every month m and division d an account
places at least one order with probability (the monthly hazard)

    lambda[a, d, m] = sigmoid( base_d + fit[a, d] + 2.0 * u[a] + 1.5 * v[a, d]
                               + slope[a] * (years since mid-2024) + season[calendar month]
                               + 0.45 * (number of OTHER divisions owned six months earlier) )

`fit` is the sector/size fit, `u`, `v`, `slope` the account's hidden propensity, taste and
trend (accounts.py); a model sees them only through firmographics and purchase history.
A division counts as owned in month m once the account bought it, through a run-rate order
or a won CRM deal, on or before the first day of month m. The process starts in January 2022
so accounts enter 2023 owning what they already buy (2022 orders are simulated, not written:
the history starts 2023-01-01). The cross-sell term uses ownership as of the first day of
month m-6: land-and-expand takes time, and the lag makes every hazard of the next six months
a function of what is known at any month start. Ownership updates once a month.

In a buying month the account places 1 + Poisson(size-driven) orders on business days from
the 2nd of the month on (never on the 1st, so a month-start cutoff splits months cleanly);
an order holds 1 + Binomial(SKUs in division - 1, q) distinct SKUs of that division, favouring
the add-on SKUs over the big CRM-sold ones; line value ~ list price x quantity x lognormal.

Ground truth, `truth/division_truth.csv`: for a month-start cutoff c and a window of W months,
true_probability = P(at least one run-rate order of the division in (c, c + W months] | the
state at c) = 1 - prod over the W months starting at c of (1 - lambda[a, d, month]). "State
at c" is every order and won deal dated on or before c plus the account's hidden traits.
This is exact, not a frozen-state approximation: no hazard inside the window depends on
anything after c (cross-sell lag 6 >= W; no own-division feedback). What it leaves out are
orders of CRM deals won inside the window (~10-15% of (account, division, window) positives,
more among divisions never bought); summary.json reports the mean truth next to the realised
share with run-rate orders only and with CRM orders added, so that gap is always visible.
Cutoffs: every month start 2024-01-01 .. 2025-07-01 whose window ends on or before
2025-12-31 (W = 3: 19 cutoffs, W = 6: 18); from scale 10 on, quarter starts only (7 and 6)
to bound the file size.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from revintel_assets.demo import catalog as C
from revintel_assets.demo.accounts import Accounts
from revintel_assets.demo.deals import Deals

N_DIV = len(C.DIVISIONS)
DIVISION_BASE = np.array([-4.5, -4.5, -4.6, -4.8, -4.3])
SEASON = np.array([-0.05, 0.0, 0.1, 0.0, 0.0, 0.05, -0.25, -0.35, 0.1, 0.05, 0.0, -0.3])
PROPENSITY_WEIGHT = 2.0
TASTE_WEIGHT = 1.5
CROSS_EFFECT = 0.45
CROSS_LAG = 6  # months; must be >= the longest truth window
BURN_IN = 12  # hidden months simulated before 2023-01
MAJOR_WEIGHT = 0.3  # CRM-sold SKUs are bought less often through the run-rate log
MONTH_START = C.month_start(np.arange(C.N_MONTHS + 1))


def first_crm_win(n_accounts: int, deals: Deals) -> np.ndarray:
    """(accounts, divisions) day of the first won deal closed by the export date; huge if none."""
    first = np.full((n_accounts, N_DIV), np.iinfo(np.int64).max)
    won = deals.won & (deals.close <= C.EXPORT_DAY)
    np.minimum.at(first, (deals.account[won], deals.division[won]), deals.close[won])
    return first


def hazards(acc: Accounts, first_win: np.ndarray, rng: np.random.Generator, season: np.ndarray = SEASON):
    """Monthly hazards and buying months, both (accounts, divisions, months). Loops over
    months, starting with a hidden year of 2022 so the accounts' ownership at the start of
    the history is not empty (those 2022 orders are not written)."""
    n = len(acc)
    base = DIVISION_BASE + acc.fit + PROPENSITY_WEIGHT * acc.u[:, None] + TASTE_WEIGHT * acc.v
    months = range(-BURN_IN, C.N_MONTHS)
    draws = rng.random((n, N_DIV, BURN_IN + C.N_MONTHS))
    lam = np.empty((n, N_DIV, BURN_IN + C.N_MONTHS))
    bought = np.zeros((n, N_DIV), bool)  # run-rate order in an earlier month
    owned = []  # ownership on the first day of each month, from 2022-01 on
    for i, m in enumerate(months):
        crm = first_win <= MONTH_START[m] if m >= 0 else False
        owned.append(bought | crm)
        lagged = owned[i - CROSS_LAG] if i >= CROSS_LAG else np.zeros((n, N_DIV), bool)
        others = lagged.sum(axis=1, keepdims=True) - lagged
        years = (m + 0.5 - 18) / 12
        logit = base + acc.slope[:, None] * years + season[m % 12] + CROSS_EFFECT * others
        lam[:, :, i] = 1.0 / (1.0 + np.exp(-logit))
        bought |= draws[:, :, i] < lam[:, :, i]
    return lam[:, :, BURN_IN:], (draws < lam)[:, :, BURN_IN:]


def _order_days(month: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly chosen business day from the 2nd to the last of each month."""
    second = MONTH_START[month] + 1
    count = C.business_days_between(second, MONTH_START[month + 1])
    return C.add_business_days(second, (rng.random(len(month)) * count).astype(np.int64))


def run_rate_lines(acc: Accounts, buying: np.ndarray, cat: C.Catalog, rng: np.random.Generator) -> dict:
    """Orders and their lines for every buying (account, division, month)."""
    a, d, m = np.nonzero(buying)
    size = 10 ** (acc.log_emp[a] - 2.9)
    n_orders = 1 + np.minimum(rng.poisson(0.8 * size ** 0.35 * np.exp(0.3 * acc.u[a])), 7)
    a, d, m = (np.repeat(x, n_orders) for x in (a, d, m))
    day = _order_days(m, rng)
    q = np.clip(0.28 + 0.06 * (acc.log_emp[a] - 2.9), 0.05, 0.5)
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
            "qty": qty, "value": value, "order": order_idx}


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
