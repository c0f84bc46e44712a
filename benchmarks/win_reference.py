"""The plain reference for the win model (issue 14): does revintel's deal model beat it?

The reference is what a competent analyst would write in an afternoon: LightGBM with near-default
hyperparameters on the snapshot's feature columns (as defined with it, FEATURES below), trained on every (deal, as-of) row whose
outcome is known by the cutoff, early-stopped on a deal-disjoint 20 % slice of those rows
(deals chosen by hash) and calibrated by isotonic regression on that slice. No weights, no
windows, no gap.

Both are judged on exactly the same rows: revintel's holdout for its evaluation cutoff (every
deal open on the as-of dates in [cutoff, cutoff + holdout), outcome known later), with the stage
baseline and, on the demo, the oracle (the generator's true win probability of the deal) beside
them. Nothing here is a test; it prints one JSON line per warehouse and can write a table.

    PYTHONPATH=$PWD python benchmarks/win_reference.py WAREHOUSE.duckdb [--truth DIR] [--label s42]

WAREHOUSE is a built analyst file (`revintel demo --no-serve`, REVINTEL_DATA_DIR/warehouse/
revintel.duckdb). The revintel model is trained by whatever `revintel_assets` is on PYTHONPATH,
so the same script measures the code before and after a change on the same rows (the holdout
is fingerprinted in the output so a before/after pair can be checked to be the same rows).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import polars as pl

from revintel_assets.defs.deals.baselines import BASELINES
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.evaluate import baseline_fit_rows
from revintel_assets.defs.deals.snapshot import FEATURES_CATEGORICAL, FEATURES_NUMERIC
from revintel_assets.defs.deals.win_model import split_by_time, train
from revintel_assets.defs.validation.metrics import classification_metrics
from revintel_assets.defs.validation.oracle import deal_truth

REFERENCE_PARAMS = dict(objective="binary", learning_rate=0.05, num_leaves=31, min_data_in_leaf=20,
                        feature_fraction=0.9, bagging_fraction=0.9, bagging_freq=1, verbose=-1, seed=1,
                        deterministic=True, force_row_wise=True, num_threads=1)
# the snapshot's feature columns as the reference was defined (issue 14): revintel's later
# features (snapshot.TRAILING, snapshot.DERIVED) are its own engineering, not the plain reference's
FEATURES = FEATURES_NUMERIC + FEATURES_CATEGORICAL
HOLDOUT_SHARE = 0.2  # of the known deals, for early stopping and isotonic calibration


def load_snapshot(db: Path) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql("SELECT * FROM features.deal_snapshot").pl()
    finally:
        con.close()


def _matrix(df: pl.DataFrame, vocab: dict[str, list[str]]) -> np.ndarray:
    """FEATURES_NUMERIC, then the categories of `vocab` in its order."""
    cols = [df[c].cast(pl.Float64).to_numpy() for c in FEATURES_NUMERIC]
    for c in vocab:
        codes = {v: i for i, v in enumerate(vocab[c])}
        cols.append(df[c].replace_strict(codes, default=None, return_dtype=pl.Float64).to_numpy())
    return np.column_stack(cols).astype(np.float64)


def _deal_hash(ids: pl.Series) -> np.ndarray:
    return np.array([int(hashlib.md5(str(i).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for i in ids])


def reference_predict(snap: pl.DataFrame, cutoff, rows: pl.DataFrame,
                      categorical: list[str] = FEATURES_CATEGORICAL) -> tuple[np.ndarray, int]:
    """Fit the reference on rows known by `cutoff` (as-of before it, outcome by it) and score `rows`.
    `categorical`: its category columns (default: as the reference was defined; heldout_company.py
    also fits it with the deal attributes, snapshot.DEAL_ATTRIBUTES, where the export has them)."""
    from sklearn.isotonic import IsotonicRegression

    known = snap.filter(pl.col("is_won").is_not_null() & (pl.col("outcome_date") <= cutoff)
                        & (pl.col("as_of_date") < cutoff))
    deals = known["opportunity_id"].unique().sort()
    slice_deals = set(deals.filter(pl.Series(_deal_hash(deals) < HOLDOUT_SHARE)).to_list())
    in_slice = known["opportunity_id"].is_in(list(slice_deals))
    fit, es = known.filter(~in_slice), known.filter(in_slice)
    vocab = {c: sorted(v for v in fit[c].unique().to_list() if v is not None) for c in categorical}
    cat_idx = list(range(len(FEATURES_NUMERIC), len(FEATURES_NUMERIC) + len(vocab)))
    y_fit, y_es = fit["is_won"].cast(pl.Int8).to_numpy(), es["is_won"].cast(pl.Int8).to_numpy()
    dfit = lgb.Dataset(_matrix(fit, vocab), y_fit, feature_name=FEATURES_NUMERIC + list(vocab), categorical_feature=cat_idx,
                       free_raw_data=False)
    des = lgb.Dataset(_matrix(es, vocab), y_es, reference=dfit)
    booster = lgb.train(REFERENCE_PARAMS, dfit, num_boost_round=3000, valid_sets=[des],
                        callbacks=[lgb.early_stopping(100, verbose=False)])
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
        booster.predict(_matrix(es, vocab), num_iteration=booster.best_iteration), y_es)
    p = iso.predict(booster.predict(_matrix(rows, vocab), num_iteration=booster.best_iteration))
    return np.clip(p, 1e-4, 1 - 1e-4), booster.best_iteration


def holdout_predictions(db: Path, truth_dir: Path | None) -> tuple[pl.DataFrame, dict[str, np.ndarray], dict]:
    """revintel's holdout rows for its evaluation cutoff, and on them the predictions of revintel's
    model (trained by the `revintel_assets` on PYTHONPATH), the reference, the stage baseline and,
    where the truth exists, the oracle; plus facts about the split (fingerprint, sizes, trees)."""
    snap = load_snapshot(db)
    first, last = snap["created_date"].min(), snap["as_of_date"].max()
    plan = DealPlan(first, last)
    cutoff, windows = plan.eval_cutoff, plan.windows
    split = split_by_time(snap, cutoff, windows)
    rows = split.holdout
    fingerprint = hashlib.md5("".join(sorted(f"{a}{b}" for a, b in zip(
        rows["opportunity_id"].to_list(), rows["as_of_date"].to_list()))).encode()).hexdigest()[:12]
    out = {"cutoff": str(cutoff), "holdout_rows": len(rows), "holdout_deals": rows["opportunity_id"].n_unique(),
           "holdout_fingerprint": fingerprint, "train_rows": len(split.train), "validation_rows": len(split.validation),
           "train_validation_shared_deals": len(set(split.train["opportunity_id"].to_list())
                                                & set(split.validation["opportunity_id"].to_list()))}
    t = time.perf_counter()
    model = train(split)
    out["revintel_seconds"] = round(time.perf_counter() - t, 1)
    out["revintel_trees"] = model.best_iteration
    preds = {"revintel": model.predict(rows)}
    t = time.perf_counter()
    preds["reference"], out["reference_trees"] = reference_predict(snap, cutoff, rows)
    out["reference_seconds"] = round(time.perf_counter() - t, 1)
    fit = baseline_fit_rows(split, "holdout")
    preds |= {name: fn(fit, rows) for name, fn in BASELINES.items()}
    truth = deal_truth(truth_dir)
    if truth is not None:
        oracle = rows.select("opportunity_id").join(truth, on="opportunity_id", how="left", maintain_order="left")
        if oracle["true_win_probability"].null_count() == 0:
            preds["oracle"] = oracle["true_win_probability"].to_numpy()
    return rows, preds, out


def measure(db: Path, truth_dir: Path | None) -> dict:
    rows, preds, out = holdout_predictions(db, truth_dir)
    y = rows["is_won"].cast(pl.Int8).to_numpy()
    for name, p in preds.items():
        m = classification_metrics(y, p)
        out[name] = {k: round(m[k], 4) for k in ("auc", "brier", "ece")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--truth", type=Path, help="the demo's truth/ folder (oracle figures)")
    ap.add_argument("--label", default="")
    ap.add_argument("--json", type=Path, help="append the result line to this file")
    args = ap.parse_args(argv)
    from benchmarks.heldout_company import emit  # here: heldout_company imports this module

    emit({"label": args.label, **measure(args.warehouse, args.truth)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
