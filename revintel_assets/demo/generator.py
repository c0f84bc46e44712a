"""The embedded demo company of revintel: one synthetic B2B seller, 2023-01-01 .. 2025-12-31.

The generative story (details in the module named in brackets):

* A fixed catalogue of 33 SKUs in 5 divisions; 15 "major" SKUs are sold through CRM
  opportunities, all of them also appear in the sales log [catalog].
* A sales team of ~50 reps per unit of scale in 5 regional offices, one manager per ~7
  reps; reps differ in skill, discount habits and optimism about close dates [catalog].
* ~2,000 accounts per unit of scale with sector, size, revenue, country, age and ~10%
  subsidiaries, plus hidden propensity, taste per division and trend [accounts].
* ~10 opportunities per account over three years. Win probability p depends on what a model
  can see early (fit, rep, product, discount, size, early pushes, time in Prospecting) plus
  noise; outcome ~ Bernoulli(p); stages, slips, amounts and quarter-end habits follow
  [deals]. Won deals become orders on their close date for their SKU and division.
* Run-rate orders from a monthly purchase hazard per account and division that rises with
  firmographic fit, hidden propensity, season and ownership of other divisions [purchases].
* Truth files record the p of every deal and the run-rate purchase probability per account,
  division, cutoff and window; no asset reads them.

Determinism: accounts are simulated in blocks of BLOCK accounts; block b draws only from
the seed tree node SeedSequence(seed, spawn_key=(3, b)), the team and the name shuffle from
their own nodes, so a file's bytes depend on (seed, scale) alone, never on the wall clock.
Memory stays bounded: a block is written as soon as it is simulated; sales-log lines are
spooled per month to disk and pivoted to the wide layout one month at a time.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from revintel_assets.demo import catalog as C
from revintel_assets.demo.accounts import Accounts, account_ids, make_accounts
from revintel_assets.demo.deals import STAGES, Deals, simulate_deals
from revintel_assets.demo.drift import LAUNCH_DAY, Drift, build_drift, launch_mask
from revintel_assets.demo.purchases import (
    SEASON,
    division_truth,
    first_crm_win,
    hazards,
    realised_rates,
    run_rate_lines,
    truth_windows,
)
from revintel_assets.demo.quotas import QuotaPlan
from revintel_assets.demo.summary import Stats

BLOCK = 1000  # accounts per block: the unit of seeding and of memory (a constant: changing it
# changes the company, processing order never does)
# one spooled sales-log line; `order` is unique per account within its block
LINE = np.dtype([("account", "<i8"), ("day", "<i8"), ("division", "<i8"), ("order", "<i8"),
                 ("sku", "<i8"), ("qty", "<i8"), ("value", "<f8")])
CSV = {"float_scientific": False}


def company_size(scale: float) -> tuple[int, int]:
    """(accounts, reps) for a scale; tiny scales keep a handful of reps."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return max(10, round(2000 * scale)), max(3, round(50 * scale))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass(frozen=True)
class World:
    """What every block shares: seed, catalogue, sales team, name shuffle, truth windows."""
    seed: int
    cat: C.Catalog
    team: C.Team
    names: np.ndarray
    windows: list[tuple[int, int]]
    drift: Drift | None = None  # None: the stationary company (drift.py)
    fy_start_month: int = 1  # the fiscal year's first month: quotas and quarter-end habits follow it


def generate_company(out_dir: Path, scale: float = 1.0, seed: int = 42, progress: bool = True,
                     fy_start_month: int = 1, drift: float = 0.0) -> dict:
    """Writes the raw files; returns sanity figures (also written to out_dir/truth/summary.json).

    Files are built in out_dir/.generating and moved into place at the end, summary.json
    last, so a crash never leaves a complete-looking but partial company behind. quotas.csv's
    quarters and the deals' quarter-end habits follow `fy_start_month` (the fiscal year's first month).
    """
    out_dir = Path(out_dir)
    work = out_dir / ".generating"
    shutil.rmtree(work, ignore_errors=True)
    (work / "truth").mkdir(parents=True)
    (work / "spool").mkdir()
    n_accounts, n_reps = company_size(scale)
    cat, team = C.build_catalog(), C.build_team(n_reps, _rng(seed, 1))
    world = World(seed, cat, team, C.name_permutation(_rng(seed, 2)), truth_windows(scale),
                  build_drift(drift, team, cat, _rng(seed, 5)), fy_start_month)
    n_blocks = math.ceil(n_accounts / BLOCK)
    stats = Stats(scale, seed, world.windows)
    with tqdm(total=n_blocks + C.N_MONTHS, desc="demo company", unit="step",
              disable=not progress, file=sys.stderr) as bar:
        plan = QuotaPlan(n_reps, fy_start_month)
        owners = _simulate_blocks(work, world, n_accounts, stats, bar, plan)
        _write_sales_log(work, owners, world, stats, bar)
    _write_static(work, world.cat, world.team)
    plan.frame(world.team, _rng(seed, 5)).write_csv(work / "quotas.csv")
    summary = stats.summary(n_reps=n_reps, team=world.team, cat=world.cat)
    if world.drift is not None:  # the stationary company's summary stays as it was
        summary["drift"] = _drift_summary(world)
    (work / "truth" / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    _publish(work, out_dir)
    return summary


def _simulate_blocks(work: Path, world: World, n_accounts: int, stats: Stats, bar, plan: QuotaPlan) -> np.ndarray:
    """Simulates and writes the accounts block by block; returns every account's owner rep.
    Block b draws only from SeedSequence(seed, spawn_key=(3, b)) (accounts, deals, purchases)."""
    owners, next_opp = [], 1
    with ExitStack() as stack:
        files = {k: stack.enter_context(open(work / k, "wb")) for k in (
            "accounts.csv", "sales_pipeline.csv", "opportunity_history.csv",
            "truth/deal_truth.csv", "truth/division_truth.csv")}
        spool = [stack.enter_context(open(work / "spool" / f"{m:02d}.bin", "wb"))
                 for m in range(C.N_MONTHS)]
        for b in range(math.ceil(n_accounts / BLOCK)):
            rngs = [np.random.Generator(np.random.PCG64(s))
                    for s in np.random.SeedSequence(world.seed, spawn_key=(3, b)).spawn(3)]
            first = b * BLOCK
            acc = make_accounts(first, min(BLOCK, n_accounts - first), world.names, world.team, rngs[0])
            dr = world.drift
            drng = None if dr is None else _rng(world.seed, 6, b)
            deals = simulate_deals(acc, world.team, world.cat, rngs[1], dr, drng, world.fy_start_month)
            season = SEASON if dr is None else dr.purchase_season(SEASON)
            lam, buying = hazards(acc, first_crm_win(len(acc), deals), rngs[2], season)
            lines = run_rate_lines(acc, buying, world.cat, rngs[2])
            if dr is not None:  # the launched product is not sold before its launch
                keep = ~launch_mask(dr, lines["sku"], lines["day"])
                lines = {k: v[keep] for k, v in lines.items()}
            _write_block(files, b == 0, acc, deals, world, next_opp, lam)
            _spool_lines(spool, acc, deals, lines)
            stats.add_block(acc, deals, lines, realised_rates(buying, lam, deals, world.windows))
            plan.add_block(deals.rep, deals.close, deals.p, deals.final_amount)
            owners.append(acc.owner)
            next_opp += len(deals.account)
            bar.update()
    return np.concatenate(owners)


def _drift_summary(world: World) -> dict:
    d = world.drift
    return {"level": d.level, "reps_leaving": int((d.end <= C.EXPORT_DAY).sum()),
            "reps_joining": int((d.start > 0).sum()), "launched_product": world.cat.sku[d.launch_sku],
            "launch_date": str(C.EPOCH + np.timedelta64(LAUNCH_DAY, "D"))}


def _write_block(files, header: bool, acc: Accounts, deals: Deals, world: World, next_opp: int,
                 lam: np.ndarray) -> None:
    team, cat = world.team, world.cat
    acc.frame().write_csv(files["accounts.csv"], include_header=header, float_precision=2, **CSV)
    opp_ids = C.prefixed_ids("O", next_opp + np.arange(len(deals.account)), 8, "opportunity_id")
    hist = deals.history
    last = hist.unique(subset="deal", keep="last", maintain_order=True)
    stage_names = pl.Series(STAGES)
    closed = deals.close <= C.EXPORT_DAY
    engaged = (deals.entry[:, 0] >= 0) & (deals.entry[:, 0] <= C.EXPORT_DAY)
    value = np.where(deals.won, deals.final_amount, 0).astype(float)
    pl.DataFrame({
        "opportunity_id": opp_ids,
        "sales_agent": team.name.gather(deals.rep),
        "product": pl.Series(cat.product).gather(deals.sku),
        "account": acc.name.gather(deals.account),
        "deal_stage": stage_names.gather(last["stage"]),
        "engage_date": C.to_pl_date(np.where(engaged, deals.entry[:, 0], -1), "engage_date"),
        "close_date": C.to_pl_date(np.where(closed, deals.close, -1), "close_date"),
        "close_value": pl.Series(np.where(closed, value, np.nan), nan_to_null=True).cast(pl.Int64),
    }).write_csv(files["sales_pipeline.csv"], include_header=header, **CSV)
    pl.DataFrame({
        "opportunity_id": opp_ids.gather(hist["deal"]),
        "changed_at": C.to_pl_date(hist["day"].to_numpy(), "changed_at"),
        "deal_stage": stage_names.gather(hist["stage"]),
        "expected_close_date": C.to_pl_date(hist["expected"].to_numpy(), "expected_close_date"),
        "amount": hist["amount"],
    }).write_csv(files["opportunity_history.csv"], include_header=header, **CSV)
    pl.DataFrame({"opportunity_id": opp_ids, "true_win_probability": deals.p}).write_csv(
        files["truth/deal_truth.csv"], include_header=header, float_precision=6, **CSV)
    division_truth(acc, lam, world.windows).write_csv(
        files["truth/division_truth.csv"], include_header=header, float_precision=6, **CSV)


def _spool_lines(spool, acc: Accounts, deals: Deals, lines: dict) -> None:
    """Appends this block's lines (won deals + run-rate) to per-month binary spool files."""
    won = deals.won & (deals.close <= C.EXPORT_DAY)
    rec = np.empty(int(won.sum()) + len(lines["sku"]), LINE)
    rec["account"] = acc.gidx[np.concatenate([deals.account[won], lines["account"]])]
    rec["day"] = np.concatenate([deals.close[won], lines["day"]])
    rec["division"] = np.concatenate([deals.division[won], lines["division"]])
    # a won deal is an order of its own; run-rate order numbers follow the deal numbers
    rec["order"] = np.concatenate([np.flatnonzero(won), len(deals.won) + lines["order"]])
    rec["sku"] = np.concatenate([deals.sku[won], lines["sku"]])
    rec["qty"] = np.concatenate([deals.qty[won], lines["qty"]])
    rec["value"] = np.concatenate([deals.final_amount[won].astype(float), lines["value"]])
    month = C.month_index(rec["day"])
    order = np.argsort(month, kind="stable")
    bounds = np.searchsorted(month[order], np.arange(C.N_MONTHS + 1))
    for m in range(C.N_MONTHS):  # loop over months
        rec[order[bounds[m]:bounds[m + 1]]].tofile(spool[m])


def _write_sales_log(work: Path, owners: np.ndarray, world: World, stats: Stats, bar) -> None:
    """Pivots each month's spooled lines to one wide row per order, ordered by date, customer,
    division and order number."""
    with open(work / "sales_log.csv", "wb") as fh:
        for m in range(C.N_MONTHS):
            rec = np.fromfile(work / "spool" / f"{m:02d}.bin", dtype=LINE)
            frame = _wide_orders(rec, owners, world, stats)
            frame.write_csv(fh, include_header=m == 0, float_precision=2, **CSV)
            bar.update()
    shutil.rmtree(work / "spool")


def _wide_orders(rec: np.ndarray, owners: np.ndarray, world: World, stats: Stats) -> pl.DataFrame:
    team, cat = world.team, world.cat
    rec = rec[np.lexsort((rec["sku"], rec["order"], rec["division"], rec["account"], rec["day"]))]
    key = np.column_stack([rec["account"], rec["order"]])
    new_order = np.r_[True, (key[1:] != key[:-1]).any(axis=1)] if len(rec) else np.zeros(0, bool)
    order = np.cumsum(new_order) - 1
    n_orders, n_sku = int(new_order.sum()), len(cat.sku)
    cell = order * n_sku + rec["sku"]  # SKUs are distinct within an order
    value = np.bincount(cell, rec["value"], n_orders * n_sku).reshape(n_orders, n_sku)
    qty = np.bincount(cell, rec["qty"], n_orders * n_sku).reshape(n_orders, n_sku)
    present = np.bincount(cell, minlength=n_orders * n_sku).reshape(n_orders, n_sku) > 0
    stats.add_orders(n_orders, int(present.sum()))
    head = rec[new_order]
    rep = owners[head["account"]]
    columns = {
        "CustomerId": account_ids(head["account"]),
        "Customer": C.account_names(head["account"], world.names),
        "Rec Date": C.to_pl_date(head["day"], "Rec Date"),
        "Division": pl.Series(C.DIVISIONS).gather(head["division"]),
        "Rep": team.name.gather(rep),
        "Branch": pl.Series(C.REGIONS).gather(team.region[rep]),
    }
    for j, sku in enumerate(cat.sku):
        columns[sku] = pl.Series(np.where(present[:, j], value[:, j], np.nan), nan_to_null=True)
        columns[f"{sku}_Qty"] = pl.Series(np.where(present[:, j], qty[:, j], np.nan),
                                          nan_to_null=True).cast(pl.Int64)
    return pl.DataFrame(columns)


def _write_static(work: Path, cat: C.Catalog, team: C.Team) -> None:
    cat.frame().write_csv(work / "products.csv")
    cat.frame().select("sku", "division").write_csv(work / "sku_map.csv")
    team.frame().write_csv(work / "sales_teams.csv")


def _publish(work: Path, out_dir: Path) -> None:
    """Moves finished files into out_dir; summary.json goes last as the completion marker."""
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    names = sorted(p.relative_to(work).as_posix() for p in work.rglob("*.csv"))
    for name in names + ["truth/summary.json"]:
        os.replace(work / name, out_dir / name)
    shutil.rmtree(work)
