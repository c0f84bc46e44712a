"""Benchmark of the forecast engine: 10,000 simulations x 100,000 open deals x 13 weekly periods
(+ the months they span, segments total / region / manager / rep / division, new pipeline).

Each run is a fresh process (python -c ...), so the time is the whole process (interpreter,
imports, input generation, engine, quantiles) and the peak memory is the child's max RSS
(getrusage RUSAGE_CHILDREN). Several runs, median reported. The engine's own time is printed too.

    python benchmarks/forecast_engine.py [--runs 3] [--sims 10000] [--deals 100000] [--naive-sims 1000]

The naive implementation (an n_sims x n_deals uniform matrix per chunk of sims, inverse CDF by
comparison) runs on the same inputs with fewer simulations (it is linear in them) and its time is
scaled to the full count for the ratio; say so when quoting it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from revintel_assets.defs.forecast import model, simulate
from tests import synthetic
from revintel_assets.defs.forecast.periods import calendar
import datetime as dt
sims, deals, naive = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "naive"
cal = calendar(dt.date(2025, 12, 31), 13)
inp = synthetic.engine_input(n_deals=deals, n_atoms=cal.n_atoms, seed=1)
reps = [f"r{i}" for i in range(inp.n_reps)]
members = [("total", "total", np.ones(inp.n_reps))]
members += [("region", f"g{k}", (np.arange(inp.n_reps) % 5 == k).astype(float)) for k in range(5)]
members += [("manager", f"m{k}", (np.arange(inp.n_reps) // 10 == k).astype(float)) for k in range(inp.n_reps // 10)]
seg = model.Segments(reps, [f"d{k}" for k in range(inp.n_divisions)], members)
t1 = time.perf_counter()
res = (simulate.naive_simulate if naive else simulate.simulate)(inp, n_sims=sims, seed=1)
labels, x = model.segment_sims(res, seg)
m = simulate.shock(sims, cal.atom_week_all, 0.2, 0.3, 1)
out = model.summarise(labels, {p: model.period_sims(x, cal, m, p) for p in ("week", "month")}, cal)
t2 = time.perf_counter()
print(json.dumps({"engine_s": t2 - t1, "inputs_s": t1 - t0, "rows": out.height, "bookings": res.bookings,
                  "segments": len(labels), "atoms": cal.n_atoms}))
"""


def run(sims: int, deals: int, mode: str) -> dict:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = r0.ru_maxrss
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(sims), str(deals), mode], capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = r1.ru_maxrss  # max over children so far
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    return {**rec, "process_s": wall, "cpu_s": cpu, "peak_mib": peak_kib / 1024, "peak_is_running_max": peak_kib == before}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sims", type=int, default=10_000)
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--naive-sims", type=int, default=1_000)
    a = ap.parse_args()
    fast = [run(a.sims, a.deals, "fast") for _ in range(a.runs)]  # fast first: ru_maxrss is a running max
    med = {k: statistics.median(r[k] for r in fast) for k in ("process_s", "engine_s", "inputs_s", "cpu_s")}
    peak = max(r["peak_mib"] for r in fast)
    print(f"engine: {a.sims:,} sims x {a.deals:,} deals, {fast[0]['atoms']} atoms (13 weeks + months), "
          f"{fast[0]['segments']} segments, {fast[0]['bookings']:,} bookings")
    runs = ", ".join(f"{r['process_s']:.2f}" for r in fast)
    print(f"  whole process median {med['process_s']:.2f} s (runs: {runs}); "
          f"engine + quantiles {med['engine_s']:.2f} s; inputs {med['inputs_s']:.2f} s; peak RSS {peak:,.0f} MiB; "
          f"CPU {med['cpu_s']:.1f} s (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    naive = run(a.naive_sims, a.deals, "naive")
    naive_full = naive["engine_s"] * a.sims / a.naive_sims
    print(f"naive: {a.naive_sims:,} sims took {naive['engine_s']:.2f} s -> {naive_full:.1f} s scaled to {a.sims:,} "
          f"(ratio naive / engine: {naive_full / med['engine_s']:.1f}x)")


if __name__ == "__main__":
    main()
