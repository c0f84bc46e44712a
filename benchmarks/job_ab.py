"""One job of the run plan (or several, in one process), this code against an earlier revision's, on the same warehouse, side by
side (whole processes, alternating):

    python -m benchmarks.job_ab --data /tmp/revintel-bench/s100 --base 4b51db3 --job forecast_job \
        --tables forecast.revenue_forecast forecast.deal_contributions [--runs 2]

DIR is a data directory materialized up to the job (`python -m benchmarks --prepare-jobs ...` or a
full run). Each arm runs `benchmarks.stage prepare --jobs JOB` (every partition `revintel run`
gives the job) as its own process from a git worktree of the revision or from this tree, measured
by `benchmarks.__main__.measure` (wall, CPU, peak RSS of the process tree). After each run the
tables named are fingerprinted (row count and an order-free sum of row hashes over every column but
the run labels, and the sum of each float column): a change meant to keep the results shows them
identical; one that does not (new draws, rounding) shows how far the sums moved, in the JSON line
printed at the end.

Two things a fingerprint must not see, or two runs of the same code differ (session 43 took them for
nondeterminism in `scores.icp_scores` at scale 100):
- run labels (RUN_LABELS): every run registers new MLflow versions, so `model_version` and
  `model_uri` name the run, not the result (the models themselves were identical over six runs);
- the order DuckDB's threads add a float column in: `sum()` of the same 3.5 M propensities gave 12
  different values in 20 queries (~1e-15 apart); `fsum` (compensated) gave one, the correctly
  rounded sum, so the sums compare rows, not thread timing (NaN left out of the sums: the row
  hashes see it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.__main__ import REPO, measure


# columns that say which run or registry version wrote a row, not what it holds
RUN_LABELS = frozenset({"model_version", "model_uri", "win_model_version", "run_id", "loaded_at", "written_at"})


def fingerprint(con, table: str) -> tuple[int, str]:
    """(rows, an order-free sum of every row's hash over every column but the run labels) of a table."""
    cols = [r[0] for r in con.sql(f"DESCRIBE {table}").fetchall() if r[0] not in RUN_LABELS]
    n, fp = con.sql(f"SELECT count(*), sum(hash({', '.join(cols)})::HUGEINT) FROM {table}").fetchall()[0]
    return n, str(fp)


def fingerprints(data: Path, tables: list[str]) -> dict:
    import duckdb

    con = duckdb.connect(str(data / "warehouse" / ".work" / "revintel.duckdb"), read_only=True)
    out = {}
    for t in tables:
        desc = con.sql(f"DESCRIBE {t}").fetchall()
        n, fp = fingerprint(con, t)
        floats = [r[0] for r in desc if r[1] in ("DOUBLE", "FLOAT")]
        sums = con.sql(f"SELECT {', '.join(f'fsum({c}) FILTER (WHERE NOT isnan({c}))' for c in floats)} FROM {t}").fetchall()[0] if floats else []
        out[t] = [n, fp, dict(zip(floats, sums))]
    con.close()
    return out


def largest_gap(a: dict, b: dict) -> float | None:
    """The largest relative difference between two fingerprints' column sums (None: no float column)."""
    gaps = [abs(a[c] - b[c]) / max(abs(a[c]), abs(b[c]), 1e-300) for c in a if a[c] is not None and b.get(c) is not None]
    return max(gaps) if gaps else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--scale", type=float, default=100)
    ap.add_argument("--base", required=True, help="git revision whose code is the yardstick")
    ap.add_argument("--job", required=True, nargs="+", help="one job, or several run in one process in plan order")
    ap.add_argument("--tables", nargs="*", default=[])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--first", choices=["base", "this"], default="base")
    ap.add_argument("--log", type=Path, help="each run's stderr beside this path (PATH.base1.log, ...)")
    args = ap.parse_args(argv)
    data = args.data.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), args.base], cwd=REPO, check=True,
                       capture_output=True)
        try:
            arms = {"base": tree, "this": REPO}
            order = list(arms) if args.first == "base" else list(arms)[::-1]
            runs: dict[str, list[dict]] = {name: [] for name in arms}
            for i in range(args.runs):
                for name in order:
                    env = {**os.environ, "PYTHONPATH": str(arms[name]), "REVINTEL_DATA_DIR": str(data)}
                    r = measure([sys.executable, "-m", "benchmarks.stage", "prepare", "--data", str(data),
                                 "--scale", f"{args.scale:g}", "--jobs", *args.job], env=env, cwd=arms[name],
                                log=args.log and args.log.with_suffix(f".{name}{i + 1}.log"))
                    if r["rc"] != 0:
                        raise SystemExit(f"job_ab: the {name} arm failed (exit {r['rc']})")
                    r["tables"] = fingerprints(data, args.tables)
                    runs[name].append(r)
                    print(f"{name} run {i + 1}: {r['wall_s']:.1f} s, cpu {r['cpu_s']:.0f} s, "
                          f"{r['peak_rss_mb']:.0f} MiB", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    out = {"data": str(data), "job": args.job, "base_revision": args.base, "runs": args.runs,
           "identical": {t: len({json.dumps(r["tables"][t][:2]) for rs in runs.values() for r in rs}) == 1
                         for t in args.tables},
           # how far the float columns' sums moved between the arms' last runs (0: not at all)
           "largest_relative_gap_of_sums": {t: largest_gap(runs["base"][-1]["tables"][t][2], runs["this"][-1]["tables"][t][2])
                                            for t in args.tables}}
    for name, rs in runs.items():
        out[name] = {**{k: round(statistics.median(r[k] for r in rs), 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
                     "wall_runs": [r["wall_s"] for r in rs], "rows": rs[-1]["tables"],
                     "load": [f"{r['load_before']}->{r['load_after']}" for r in rs]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
