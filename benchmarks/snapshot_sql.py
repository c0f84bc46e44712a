"""The deal snapshot's SQL over every as-of date (what a from-scratch build's `deal_snapshot`
backfill runs in one statement), this code against an earlier revision's, side by side:

    python -m benchmarks.snapshot_sql --data /tmp/revintel-bench/s100 --base cffac01 [--runs 3]

DIR is a data directory imported at least to the star schema (`benchmarks.stage import`). Each
arm is a whole process (`benchmarks.__main__.measure`: wall, CPU, peak RSS) that opens the work
file with the warehouse's settings (memory limit, ASOF threshold), runs `snapshot_sql` for every
as-of date the instance registered into a table inside a transaction, fingerprints the rows (an
order-free sum of row hashes) and rolls back: the warehouse is left as it was. The arms alternate;
the medians and whether every run's rows are identical are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.__main__ import REPO, measure
from benchmarks.job_ab import fingerprint

MODULE = "revintel_assets/defs/deals/snapshot.py"


def run_one(data: Path, module: Path) -> dict:
    """In this process: the statement of `module`'s snapshot_sql over every as-of date of `data`."""
    import importlib.util

    import dagster as dg
    import duckdb

    from revintel_resources.backends import memory_limit
    from revintel_resources.warehouse import _session_settings

    spec = importlib.util.spec_from_file_location("snapshot_under_test", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    keys = sorted(dg.DagsterInstance.from_config(str(data / "dagster_home")).get_dynamic_partitions("as_of_date"))
    dates = " UNION ALL ".join(f"SELECT DATE '{k}' AS as_of_date" for k in keys)
    con = duckdb.connect(str(data / "warehouse" / ".work" / "revintel.duckdb"))
    limit = memory_limit()
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    _session_settings(con)
    con.execute("BEGIN TRANSACTION")
    start = time.perf_counter()
    con.execute(f"CREATE TABLE bench_snapshot AS {mod.snapshot_sql(dates)}")
    took = time.perf_counter() - start
    n, fp = fingerprint(con, "bench_snapshot")
    con.execute("ROLLBACK")
    return {"dates": len(keys), "statement_s": round(took, 2), "rows": n, "fingerprint": fp}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--base", required=True, help="git revision whose snapshot.py is the yardstick")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: run one arm here
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.data.resolve(), args.one)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "snapshot_base.py"
        base.write_text(subprocess.run(["git", "show", f"{args.base}:{MODULE}"], cwd=REPO, check=True,
                                       capture_output=True, text=True).stdout)
        arms = {"base": base, "this": REPO / MODULE}
        runs: dict[str, list[dict]] = {name: [] for name in arms}
        for _ in range(args.runs):
            for name, module in arms.items():
                r = measure([sys.executable, "-m", "benchmarks.snapshot_sql", "--data", str(args.data),
                             "--base", args.base, "--one", str(module)])
                if r["rc"] != 0:
                    raise SystemExit(f"snapshot_sql: the {name} arm failed (exit {r['rc']})")
                runs[name].append(r)
    out = {"data": str(args.data), "base_revision": args.base, "runs": args.runs,
           "identical": len({(r["info"]["rows"], r["info"]["fingerprint"]) for rs in runs.values() for r in rs}) == 1}
    for name, rs in runs.items():
        out[name] = {"rows": rs[0]["info"]["rows"], "dates": rs[0]["info"]["dates"],
                     **{k: round(statistics.median(r[k] for r in rs), 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
                     "statement_s": statistics.median(r["info"]["statement_s"] for r in rs),
                     "wall_runs": [r["wall_s"] for r in rs],
                     "load": [f"{r['load_before']}->{r['load_after']}" for r in rs]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
