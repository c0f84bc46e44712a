"""Choose the win model's hyperparameters on ONE design company's validation rows (issue 14).

Design data: the demo at seed 42 only (its evaluation cutoff's validation slice; never a
holdout, never another seed). Each candidate is early-stopped on the validation slice, and
judged by the cross-fitted (out-of-fold, grouped by deal) calibrated Brier and AUC on that same
slice, the figures the champion gate reads. The holdout of seed 42 and every row of the
reporting seeds (7, 11) are not read.

    PYTHONPATH=$PWD python benchmarks/tune_win_model.py /tmp/models-s42/warehouse/revintel.duckdb
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import polars as pl

from benchmarks.win_reference import load_snapshot
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.win_model import split_by_time, train
from revintel_assets.defs.validation.metrics import classification_metrics

GRID = {"learning_rate": [0.3, 0.1, 0.05], "num_leaves": [15, 31], "min_data_in_leaf": [50, 200]}
MAX_ROUNDS = {0.3: 150, 0.1: 600, 0.05: 1200}


def main(argv: list[str]) -> int:
    snap = load_snapshot(Path(argv[0]))
    plan = DealPlan(snap["created_date"].min(), snap["as_of_date"].max())
    split = split_by_time(snap, plan.eval_cutoff, plan.windows)
    split = type(split)(train=split.train, validation=split.validation, holdout=split.holdout.head(0))  # never read
    del snap
    y = split.validation["is_won"].cast(pl.Int8).to_numpy()
    results = []
    for lr, leaves, min_leaf in itertools.product(*GRID.values()):
        t = time.perf_counter()
        m = train(split, dict(learning_rate=lr, num_leaves=leaves, min_data_in_leaf=min_leaf),
                  max_rounds=MAX_ROUNDS[lr])
        met = classification_metrics(y, m.validation_oof)
        row = {"learning_rate": lr, "num_leaves": leaves, "min_data_in_leaf": min_leaf, "trees": m.best_iteration,
               "val_auc": round(met["auc"], 4), "val_brier": round(met["brier"], 5), "val_ece": round(met["ece"], 4),
               "seconds": round(time.perf_counter() - t, 1)}
        print(json.dumps(row), flush=True)
        results.append(row)
    best = min(results, key=lambda r: r["val_brier"])
    print("best by validation Brier:", json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
