"""Benchmark: scoring plus explanations for 100,000 open deals (issue 3 target: <= 60 s, 2 cores).

Each run is a fresh process that trains nothing: it loads a model trained once on synthetic
snapshot-shaped rows (150 trees, win_model's cap), then times what the deal_scores asset does
for one as-of date: calibrated probabilities, TreeSHAP contributions, the top-5 worded
explanations and the risk score. Reports whole-process wall time and peak RSS, median of runs.

    python benchmarks/deal_scoring.py [--deals 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def synthetic_rows(n: int, seed: int = 0) -> pl.DataFrame:
    from revintel_assets.defs.deals.snapshot import FEATURES_CATEGORICAL, FEATURES_NUMERIC, TRAILING

    rng = np.random.default_rng(seed)
    cols = {c: rng.gamma(2.0, 20.0, n) for c in FEATURES_NUMERIC + TRAILING}
    cols |= {"stage": rng.choice(["Prospecting", "Engaging", "Proposal", "Negotiation"], n),
             "product_id": rng.choice([f"P{i}" for i in range(15)], n),
             "division": rng.choice(["A", "B", "C", "D", "E"], n),
             "account_sector": rng.choice(["retail", "software", "medical", "finance"], n)}
    logit = 0.02 * cols["rep_win_rate"] - 0.01 * cols["days_in_stage"] + rng.normal(0, 1, n)
    df = pl.DataFrame(cols).with_columns(
        pl.lit(np.datetime64("2025-12-31")).cast(pl.Date).alias("as_of_date"),
        pl.Series("created_date", np.datetime64("2025-12-31") - rng.integers(0, 400, n).astype("timedelta64[D]")),
        pl.Series("opportunity_id", [f"O{i:08d}" for i in range(n)]),
        pl.Series("is_won", rng.random(n) < 1 / (1 + np.exp(-logit))),
        pl.lit(None, dtype=pl.Date).alias("expected_close_date"),
        pl.lit("A1").alias("account_id"), pl.lit("R1").alias("rep_id"))
    assert set(FEATURES_CATEGORICAL) <= set(df.columns)
    return df


def prepare(path: Path, trees: int = 150) -> None:
    """A model the size of the production one (150 trees of 15 leaves: win_model.train's cap),
    without early stopping so it really has all of them."""
    import lightgbm as lgb

    from revintel_assets.defs.deals.win_model import PARAMS, Encoder, WinModel
    from revintel_assets.defs.validation.metrics import calibrate

    rows = synthetic_rows(60_000, seed=1)
    enc = Encoder().fit(rows)
    y = rows["is_won"].cast(pl.Int8).to_numpy()
    booster = lgb.train({**PARAMS, "min_data_in_leaf": 20}, lgb.Dataset(
        enc.matrix(rows), y, feature_name=enc.features,
        categorical_feature=list(range(len(enc.numeric), len(enc.features)))), num_boost_round=trees)
    raw = booster.predict(enc.matrix(rows), raw_score=True)
    path.write_bytes(pickle.dumps(WinModel(booster, enc, calibrate(raw, y), trees, PARAMS)))


def one_run(model_path: Path, deals: int) -> dict:
    from revintel_assets.defs.deals.scoring import outcome_stats, score_deals

    model = pickle.loads(model_path.read_bytes())
    rows = synthetic_rows(deals, seed=2)
    as_of = rows["as_of_date"][0]
    history = rows.head(5000).with_columns(pl.col("as_of_date").alias("outcome_date"),
                                           (pl.col("as_of_date") - pl.duration(days=30)).alias("as_of_date"))
    start = time.perf_counter()
    scores, explanations = score_deals(rows, outcome_stats(history, as_of), as_of, model, "bench/1")
    seconds = time.perf_counter() - start
    return {"seconds_scoring": seconds, "scores": len(scores), "explanations": len(explanations),
            "trees": model.best_iteration}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trees", type=int, default=150,
                        help="model size; the win model is early-stopped (129-170 trees on the demo, issue 14)")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(one_run(Path(args._child), args.deals)))
        return
    model_path = Path(tempfile.mkdtemp()) / "model.pkl"
    prepare(model_path, trees=args.trees)
    runs = []
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--deals", str(args.deals), "--_child", str(model_path)],
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024 / 1024
        runs.append({**json.loads(out.stdout.strip().splitlines()[-1]), "wall_s": wall, "peak_gib": peak})
    summary = {"deals": args.deals, "runs": runs,
               "median_wall_s": statistics.median(r["wall_s"] for r in runs),
               "median_scoring_s": statistics.median(r["seconds_scoring"] for r in runs),
               "max_peak_gib": max(r["peak_gib"] for r in runs)}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
