"""Design of the win model for a moving world, on DESIGN companies only (issue 14).

Design data: the demo at seeds 42 and 7 (drift 0 and 1), never the reporting seeds of
benchmarks/seeds.py. For each candidate (recency half-life of the training weights), trains
revintel's model on each design warehouse and prints holdout AUC / Brier / ECE (and the bias:
mean predicted minus observed) beside the plain reference of benchmarks/win_reference.py on the
same rows; --gaps tries shorter train/validation gaps (fresher training data) on the same holdout
rows; --without-derived also trains on the stored snapshot features alone (no snapshot.DERIVED);
--stop-metrics also early-stops on these LightGBM metrics (e.g. binary_logloss) instead of PARAMS'.

    PYTHONPATH=$PWD python -m benchmarks.tune_drift DATA_DIR [DATA_DIR ...] --half-lives none 365 180
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl

from benchmarks.win_reference import load_snapshot, reference_predict
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.snapshot import FEATURES_NUMERIC
from revintel_assets.defs.deals.win_model import split_by_time, train
from revintel_assets.defs.validation.metrics import classification_metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dirs", type=Path, nargs="+")
    ap.add_argument("--half-lives", nargs="+", default=["none", "365", "180"])
    ap.add_argument("--gaps", type=int, nargs="*", default=[],
                    help="also try these train/validation gaps in days (the holdout rows stay the same)")
    ap.add_argument("--without-derived", action="store_true",
                    help="also train on the stored snapshot features only (no derived model features)")
    ap.add_argument("--stop-metrics", nargs="*", default=[],
                    help="also early-stop on these LightGBM metrics (e.g. binary_logloss)")
    args = ap.parse_args(argv)
    for data_dir in args.data_dirs:
        snap = load_snapshot(data_dir / "warehouse" / "revintel.duckdb")
        plan = DealPlan(snap["created_date"].min(), snap["as_of_date"].max())
        split = split_by_time(snap, plan.eval_cutoff, plan.windows)
        rows = split.holdout
        y = rows["is_won"].cast(pl.Int8).to_numpy()
        def fmt(p):
            m = classification_metrics(y, p)
            return {**{k: round(m[k], 4) for k in ("auc", "brier", "ece")}, "bias": round(float(p.mean() - y.mean()), 4)}
        print(json.dumps({"data": str(data_dir), "model": "reference",
                          **fmt(reference_predict(snap, plan.eval_cutoff, rows)[0])}), flush=True)
        for hl in args.half_lives:
            half = None if hl == "none" else float(hl)
            m = train(split, half_life_days=half)
            print(json.dumps({"data": str(data_dir), "model": f"revintel half-life {hl}", "trees": m.best_iteration,
                              **fmt(m.predict(rows))}), flush=True)
        if args.without_derived:
            m = train(split, numeric=FEATURES_NUMERIC)
            print(json.dumps({"data": str(data_dir), "model": "revintel snapshot features only",
                              "trees": m.best_iteration, **fmt(m.predict(rows))}), flush=True)
        for metric in args.stop_metrics:
            m = train(split, params={"metric": metric})
            print(json.dumps({"data": str(data_dir), "model": f"revintel early-stopped on {metric}",
                              "trees": m.best_iteration, **fmt(m.predict(rows))}), flush=True)
        for gap in args.gaps:
            other = split_by_time(snap, plan.eval_cutoff, replace(plan.windows, gap_days=gap))
            assert other.holdout.height == rows.height
            m = train(other)
            print(json.dumps({"data": str(data_dir), "model": f"revintel gap {gap}", "trees": m.best_iteration,
                              **fmt(m.predict(rows))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
