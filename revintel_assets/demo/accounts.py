"""Accounts of the demo company: firmographics plus the hidden traits the simulation uses.

An account's visible side (sector, size, revenue, country, parent) is what a model can use;
its hidden side is a latent buying propensity `u` (shared by deals and purchases, so it shows
up in the account's track record), a per-division taste `v`, a slow trend `slope` (the
account grows or fades over the three years) and the sector/size `fit` for each division.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revintel_assets.demo import catalog as C

SUBSIDIARY_SHARE = 0.10
# revenue per employee (millions of USD) by sector, in SECTORS order
_REVENUE_PER_EMPLOYEE = np.array([0.11, 0.24, 0.35, 0.20, 0.22, 0.15, 0.17, 0.31, 0.29, 0.29])


@dataclass(frozen=True)
class Accounts:
    gidx: np.ndarray  # global account number
    name: pl.Series
    sector: np.ndarray
    log_emp: np.ndarray  # log10 employees
    employees: np.ndarray
    revenue: np.ndarray  # millions of USD
    country: np.ndarray
    region: np.ndarray
    year: np.ndarray
    parent: np.ndarray  # local index of the parent account, -1 if none
    owner: np.ndarray  # owning rep
    u: np.ndarray  # latent buying propensity
    v: np.ndarray  # (n, divisions) latent taste per division
    slope: np.ndarray  # trend of the propensity, logit per year
    fit: np.ndarray  # (n, divisions) sector and size fit, visible through firmographics

    def __len__(self) -> int:
        return len(self.gidx)

    def ids(self) -> pl.Series:
        return account_ids(self.gidx)

    def frame(self) -> pl.DataFrame:
        parent_name = self.name.gather(np.maximum(self.parent, 0))
        return pl.DataFrame({
            "account_id": self.ids(),
            "account": self.name,
            "sector": np.array(C.SECTORS)[self.sector],
            "year_established": self.year,
            "revenue": self.revenue,
            "employees": self.employees,
            "office_location": np.array(C.COUNTRIES)[self.country],
        }).with_columns(subsidiary_of=pl.when(pl.Series(self.parent >= 0)).then(parent_name))


def account_ids(gidx: np.ndarray) -> pl.Series:
    """A000001 for global account number 0."""
    return C.prefixed_ids("A", np.asarray(gidx) + 1, 6, "account_id")


def _pick_parents(log_emp: np.ndarray, is_sub: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Parents are drawn among stand-alone accounts, bigger companies more often."""
    parent = np.full(len(log_emp), -1)
    cands = np.flatnonzero(~is_sub)
    if len(cands) == 0 or not is_sub.any():
        return parent
    cdf = np.cumsum(10 ** log_emp[cands])
    draw = rng.random(int(is_sub.sum())) * cdf[-1]
    parent[is_sub] = cands[np.minimum(np.searchsorted(cdf, draw, side="right"), len(cands) - 1)]
    return parent


def _inherit(child: np.ndarray, parent: np.ndarray, attr: np.ndarray, share: float,
             rng: np.random.Generator) -> None:
    """Subsidiaries often share their parent's sector or country."""
    same = rng.random(len(child)) < share
    attr[child[same]] = attr[parent[child[same]]]


def make_accounts(first: int, n: int, name_perm: np.ndarray, team: C.Team,
                  rng: np.random.Generator) -> Accounts:
    gidx = np.arange(first, first + n, dtype=np.int64)
    sector = rng.choice(len(C.SECTORS), n, p=C.SECTOR_WEIGHT / C.SECTOR_WEIGHT.sum())
    country = rng.choice(len(C.COUNTRIES), n, p=C.COUNTRY_WEIGHT / C.COUNTRY_WEIGHT.sum())
    log_emp = np.clip(rng.normal(2.9, 0.6, n), 1.0, 5.2)
    is_sub = rng.random(n) < SUBSIDIARY_SHARE
    parent = _pick_parents(log_emp, is_sub, rng)
    child = np.flatnonzero(parent >= 0)
    # a subsidiary is smaller than its parent
    log_emp[child] = np.maximum(1.0, np.minimum(
        log_emp[child], log_emp[parent[child]] - rng.uniform(0.3, 1.3, len(child))))
    _inherit(child, parent, sector, 0.6, rng)
    _inherit(child, parent, country, 0.5, rng)

    region = C.COUNTRY_REGION[country].copy()
    us = region < 0
    region[us] = rng.integers(0, 3, int(us.sum()))  # US accounts split over the three US offices
    employees = np.rint(10 ** log_emp).astype(np.int64)
    revenue = np.round(employees * _REVENUE_PER_EMPLOYEE[sector] * rng.lognormal(0, 0.35, n), 2)
    # older firms tend to be bigger
    age = np.clip(np.exp(rng.normal(np.log(22) + 0.35 * (log_emp - 2.9), 0.55)), 2, 110)
    year = (2023 - np.rint(age)).astype(np.int64)

    u = rng.normal(0, 0.8, n)
    u[child] = 0.6 * u[parent[child]] + 0.8 * u[child]  # groups buy alike
    fit = C.SECTOR_AFFINITY[sector] - 0.25 * (log_emp[:, None] - C.DIVISION_IDEAL_SIZE) ** 2
    return Accounts(
        gidx=gidx, name=C.account_names(gidx, name_perm), sector=sector, log_emp=log_emp,
        employees=employees, revenue=revenue, country=country, region=region, year=year,
        parent=parent, owner=C.pick_region_rep(team, region, rng), u=u,
        v=rng.normal(0, 0.6, (n, len(C.DIVISIONS))), slope=rng.normal(0, 0.3, n), fit=fit,
    )
