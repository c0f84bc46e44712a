"""forecast.deal_contributions, one row per deal (p_within_weeks) against the replaced layout (one row
per deal and horizon, 4..13), side by side on one as-of date of a built warehouse.

    python -m benchmarks.contributions_layout --data DIR [--runs 3]

DIR is a data directory a full run built (scale 100: 231,393 open deals on the latest date). The
inputs of the latest as-of date are rebuilt as the what-if page does (benchmarks/whatif.build), then
each layout is, `runs` times alternately: computed, written to a fresh DuckDB file (CHECKPOINTed), and
the file's size read. Both must agree: every (deal, horizon) probability of the replaced layout equals
element h of p_within_weeks. Prints one JSON line (medians, for that one date).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from benchmarks.whatif import build
from revintel_assets.defs.forecast import model


def replaced(prep: model.Prepared, horizons=range(4, 14)) -> pl.DataFrame:
    """The replaced `model.deal_contributions` (until 2026-12), verbatim: a row per deal and horizon."""
    cal = prep.cal
    q = prep.engine.q
    week = cal.atom_week
    rows = []
    for h in horizons:  # ten horizons
        inside = (week >= 0) & (week < h)
        pi = q[:, inside].sum(axis=1)
        rows.append(prep.deals.select("opportunity_id", "account_id", "rep_id", "division", "stage", "amount",
                                      "win_probability", "expected_close_date").with_columns(
            pl.lit(h, dtype=pl.Int32).alias("horizon_weeks"), pl.Series("p_in_horizon", pi),
            pl.Series("expected_revenue", pi * prep.engine.amount),
            pl.Series("sd_revenue", prep.engine.amount * np.sqrt(pi * (1 - pi)))))
    out = pl.concat(rows).with_columns(pl.lit(cal.as_of).alias("as_of_date"))
    return out.with_columns((pl.col("sd_revenue") ** 2 / (pl.col("sd_revenue") ** 2).sum().over("horizon_weeks"))
                            .alias("variance_share"))


def _one(fn, prep, folder: Path) -> dict:
    t = time.perf_counter()
    frame = fn(prep)
    compute_s = time.perf_counter() - t
    path = folder / f"{fn.__name__}_{time.monotonic_ns()}.duckdb"
    con = duckdb.connect(str(path))
    t = time.perf_counter()
    con.register("f", frame)
    con.execute("CREATE TABLE c AS SELECT * FROM f")
    con.execute("CHECKPOINT")
    write_s = time.perf_counter() - t
    con.close()
    size = path.stat().st_size
    path.unlink()
    return {"rows": frame.height, "compute_s": compute_s, "write_s": write_s, "mb": size / 1e6, "frame": frame}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    db = args.data / "warehouse" / "revintel.duckdb"
    prep, _, _, as_of = build(db)
    res = {"replaced": [], "one_row_per_deal": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            res["replaced"].append(_one(replaced, prep, Path(tmp)))
            res["one_row_per_deal"].append(_one(model.deal_contributions, prep, Path(tmp)))
    old, new = res["replaced"][-1]["frame"], res["one_row_per_deal"][-1]["frame"]
    both = old.select("opportunity_id", "horizon_weeks", "p_in_horizon").join(
        new.select("opportunity_id", "p_within_weeks"), on="opportunity_id").with_columns(
        pl.col("p_within_weeks").list.get(pl.col("horizon_weeks") - 1).alias("p_new"))
    worst = float((both["p_in_horizon"] - both["p_new"]).abs().max())
    out = {"as_of": str(as_of), "open_deals": new.height, "max_abs_difference": worst}
    for name, runs in res.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("compute_s", "write_s", "mb")}
        # per date only: earlier dates have fewer open deals, so x dates would overstate the history
        out[name] = {"rows": runs[0]["rows"], **{k: round(v, 3) for k, v in med.items()}}
    print(json.dumps(out))
    return 0 if worst < 1e-6 and len(both) == old.height else 1


if __name__ == "__main__":
    sys.exit(main())
