"""Benchmark of the Forecast page's what-if: one manager's pipeline recomputed after edits, on a
demo warehouse (`revintel demo --scale 1`), the limit checked in the same run.

    python benchmarks/whatif.py --data DIR [--runs 5] [--limit 2.0]

DIR is the demo's data directory (REVINTEL_DATA_DIR of the run); the published analyst file is
read as the page reads it. The inputs of the latest as-of date are rebuilt once (what the page
caches per date: timing refit, new pipeline; timed and reported apart), then the recompute the
page runs on every edit (leave out the manager's largest deal, move one close date, override one
probability, add a deal: the edited pipeline through the engine, 10,000 simulations, quantiles
per week / month / quarter) is timed `runs` times; the median is compared with the limit (2 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import duckdb
import numpy as np

from revintel_assets.defs.forecast import whatif

TIMING_COLUMNS = ("as_of_date, opportunity_id, stage, days_to_expected_close, n_pushes, deal_age_days, rep_id, "
                  "product_id, outcome_date, is_won")


def build(db: Path):
    """The page's rebuild (dashboards/forecast_whatif._prepared), reading the same tables."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        def q(sql, params=None):
            return con.sql(sql, params=params).pl()
        as_of = q("SELECT max(as_of_date) AS d FROM forecast.revenue_forecast")["d"][0]
        run = q("SELECT any_value(timing_cutoff) AS cutoff, any_value(sigma_horizon) AS sh, any_value(sigma_week) AS sw, "
                "any_value(n_sims) AS n FROM forecast.revenue_forecast WHERE as_of_date = ?", [as_of]).row(0, named=True)
        cutoff = run["cutoff"] or as_of
        rows = q("SELECT * EXCLUDE (outcome_date, is_won) FROM features.deal_snapshot WHERE as_of_date = ?", [as_of])
        stored = q("SELECT opportunity_id, win_probability, expected_close_date FROM forecast.deal_contributions "
                   "WHERE as_of_date = ?", [as_of])
        snaps = q(f"SELECT {TIMING_COLUMNS} FROM features.deal_snapshot WHERE as_of_date < ? AND as_of_date >= ?",
                  [cutoff, cutoff - dt.timedelta(days=whatif.TIMING_DAYS)])
        opps = q("SELECT o.opportunity_id, o.account_id, o.rep_id, o.product_id, o.division, o.created_date, "
                 "o.close_date, o.is_won, o.amount, p.list_price FROM star.fact_opportunity o "
                 "LEFT JOIN star.dim_product p USING (product_id)")
        dim_rep = q("SELECT rep_id, manager, region FROM star.dim_rep")
    finally:
        con.close()
    prep = whatif.prepare_date(as_of, rows, stored, snaps, opps, dim_rep, cutoff)
    return prep, (float(run["sh"]), float(run["sw"])), int(run["n"]), as_of


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--limit", type=float, default=2.0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    prep, sigma, n_sims, as_of = build(args.data / "warehouse" / "revintel.duckdb")
    build_s = time.perf_counter() - t0
    managers = [s for t, s, m in prep.segments.members if t == "manager"]
    # the manager with the most open deals: the largest pipeline the page recomputes
    sizes = {s: len(whatif.segment_base(prep, "manager", s, sigma).deals) for s in managers}
    manager = max(sizes, key=sizes.get)
    base = whatif.segment_base(prep, "manager", manager, sigma)
    value = base.q.sum(axis=1) * base.deals["amount"].to_numpy()
    ids = base.deals["opportunity_id"].to_list()
    order = np.argsort(-value)
    edits = whatif.Edits(exclude=frozenset({ids[order[0]]}), close_dates={ids[order[1]]: as_of + dt.timedelta(days=45)},
                         probabilities={ids[order[2]]: 0.9},
                         added=(whatif.NewDeal(250_000.0, as_of + dt.timedelta(days=20), 0.6, base.reps[0]),))
    times, out = [], None
    for _ in range(args.runs):
        t = time.perf_counter()
        out = whatif.recompute(base, edits, n_sims)
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    q = out.filter(out["period_type"] == "quarter").row(0, named=True) if "quarter" in out["period_type"] else {}
    print(json.dumps({"as_of": str(as_of), "manager": manager, "open_deals": len(base.deals), "reps": len(base.reps),
                      "n_sims": n_sims, "build_s": round(build_s, 3), "recompute_s": [round(x, 3) for x in times],
                      "median_s": round(median, 3), "limit_s": args.limit, "within_limit": median <= args.limit,
                      "quarter_p50": q.get("p50")}))
    return 0 if median <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
