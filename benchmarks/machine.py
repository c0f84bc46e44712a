"""How fast the box is right now: a fixed CPU workload timed next to every benchmark.

The same code measured 124 s for the scale-100 nightly on one day and 91 s on the next on this
shared 2-core VM (CPU seconds 207 -> 155: the box, not the code). A figure from another day
compares with today's only through a yardstick measured at the same time, so every benchmark
entry carries this probe:

    python -m benchmarks.machine            # prints the probe as JSON

Three pieces, each the median of 3 in this process, fixed inputs (seeded): `sort_s` sorts
1,000 rows of 10,000 float32 (the forecast's quantile kernel), `duckdb_s` a 2-thread GROUP BY
over 20 M generated rows (the warehouse's SQL), `python_s` a 10 M-step pure Python loop (Dagster's
and polars' glue). `total_s` is their sum: lower is a faster box.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time

import duckdb
import numpy as np

RUNS = 3


def _sort(x: np.ndarray) -> None:
    np.sort(x, axis=-1)


def _duckdb(con) -> None:
    con.sql("SELECT i % 1000 AS g, sum(i * 0.5) AS s, count(*) FROM range(20000000) t(i) GROUP BY 1").fetchall()


def _python() -> None:
    acc = 0
    for i in range(10_000_000):
        acc += i & 7


def _median(fn, *args) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def probe() -> dict:
    x = np.random.default_rng(0).lognormal(size=(1000, 10_000)).astype(np.float32)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    out = {"sort_s": _median(_sort, x), "duckdb_s": _median(_duckdb, con), "python_s": _median(_python)}
    con.close()
    out["total_s"] = round(sum(out.values()), 3)
    return out | {"measured_at": dt.datetime.now().isoformat(timespec="seconds")}


def describe(p: dict | None) -> str:
    """'box 1.23 s' for a table cell ('' without a probe: figures from before it existed)."""
    return f"box {p['total_s']:.2f} s" if p else ""


if __name__ == "__main__":
    print(json.dumps(probe()))
