"""Benchmark: TreeSHAP of real open deals, the grouping by decisions against the two it replaced.

    python -m benchmarks.treeshap_grouping --data DIR [--rows 200000] [--runs 3]

DIR is a prepared revintel data directory (e.g. /tmp/revintel-bench/s100 after `python -m
benchmarks --scales 100`): its champion win model (MLflow) and the open deals of its latest as-of
date (the published warehouse). Each run is a fresh process per implementation, alternating
(replaced, intervals, current, replaced, ...), one thread, timing only `contributions` on the same
matrix: `benchmarks/replaced_treeshap.py` (session 9: rows grouped by their intervals among each
tree's thresholds, np.unique per tree, a numpy scatter; verbatim), `benchmarks/interval_treeshap.py`
(sessions 10-38: the same groups through pandas.factorize, numba key and scatter; verbatim) and
`revintel_assets/defs/deals/treeshap.py` (session 39: rows grouped by their decision at each split,
a compiled pass and a lookup table). All must return bit-identical values (a checksum of the bytes
is compared); medians of wall and CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

IMPLS = {"replaced": "benchmarks.replaced_treeshap", "intervals": "benchmarks.interval_treeshap",
         "current": "revintel_assets.defs.deals.treeshap"}


def one(impl: str, data: Path, rows: int) -> dict:
    import importlib

    import duckdb
    from threadpoolctl import threadpool_limits

    from revintel_assets.defs.deals import registry
    from revintel_resources.tracking import MLflowResource

    tracking = MLflowResource(data_dir=str(data))
    version, _ = registry.champion(tracking)
    model = registry.load(tracking, version)
    con = duckdb.connect(str(data / "warehouse" / "revintel.duckdb"), read_only=True)
    frame = con.sql("SELECT * FROM features.deal_snapshot WHERE as_of_date = (SELECT max(as_of_date) FROM "
                    "features.deal_snapshot) ORDER BY opportunity_id LIMIT ?", params=[rows]).pl()
    x = model.encoder.matrix(frame)
    mod = importlib.import_module(IMPLS[impl])
    mod.contributions(model.booster, x[:2000], model.best_iteration)  # compile / warm caches outside the clock
    with threadpool_limits(1):
        wall, cpu = time.perf_counter(), time.process_time()
        out = mod.contributions(model.booster, x, model.best_iteration)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"impl": impl, "rows": len(x), "trees": model.best_iteration, "seconds": round(wall, 3),
            "cpu_s": round(cpu, 3), "checksum": hashlib.sha256(out.tobytes()).hexdigest()[:16]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--one", choices=list(IMPLS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.data.resolve(), args.rows)), flush=True)
        return 0
    from benchmarks.__main__ import measure

    results: dict[str, list[dict]] = {k: [] for k in IMPLS}
    for _ in range(args.runs):
        for impl in IMPLS:
            r = measure([sys.executable, "-m", "benchmarks.treeshap_grouping", "--one", impl, "--data",
                         str(args.data), "--rows", str(args.rows)])
            if r["rc"] != 0:
                raise SystemExit(f"{impl} failed: {r}")
            results[impl].append(r["info"] | {"peak_rss_mb": r["peak_rss_mb"], "load": r["load_before"]})
            print(json.dumps(results[impl][-1]), flush=True)
    sums = {r["checksum"] for rs in results.values() for r in rs}
    summary = {impl: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "cpu_s", "peak_rss_mb", "load")}
               for impl, rs in results.items()}
    summary["bit_identical"] = len(sums) == 1
    summary["speedup_cpu"] = {k: round(summary[k]["cpu_s"] / summary["current"]["cpu_s"], 2) for k in IMPLS}
    print(json.dumps(summary, indent=1))
    return 0 if len(sums) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
