"""ICP calibrator design bench: every candidate retrained from a finished run's features (read
only) as the models asset trains them, then re-calibrated by each calibrator variant on the same
(score, outcome) pairs, so variants differ in the calibrator only. For design data only:

    python -m benchmarks.icp_calibration [--variants a,b] DATA_DIR [DATA_DIR ...] > rows.jsonl
    python -m benchmarks.icp_calibration --summary rows.jsonl

Rows per (data dir, cutoff, division, split, variant, candidate): Brier, log loss, AUC, mean
predicted vs observed, share >= 0.99; the scoring cutoff (split 'score', all accounts, no labels)
gives the share of accounts with any division >= 0.99, the issue-14 target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

import revintel_assets.defs.icp.model as icp_model
from revintel_assets.defs.icp.calendar import IcpPlan
from revintel_assets.defs.icp.model import (BLEND, HOLDOUT, MODEL_NAME, TRAIN, VALIDATION, NotEnoughData,
                                            account_fold, ceilings, in_fold, level_shift, same_season_shift, sample_accounts,
                                            train_division)
from revintel_assets.defs.validation.metrics import calibrate_bounded

# name -> calibrate_bounded keyword arguments (the default is base5)
VARIANTS = {
    "succession": {"base_rows": 2, "base_rate": 0.5},  # one pseudo-buyer and one non-buyer (before)
    "base5": {"base_rows": 5},  # pseudo-rows at the pooled rate
    "base10": {"base_rows": 10},
    "base20": {"base_rows": 20},
}


def _rows(model, scored: pl.DataFrame, splits, labelled: bool, key: dict):
    for split, mask in splits:
        part = scored.filter(pl.Series(mask))
        y = part["label"].cast(pl.Float64).to_numpy() if labelled else None
        for name, p in model.predict_all(part).items():
            row = {**key, "split": split, "model": name, "n": len(p), "mean_p": float(p.mean()),
                   "ge_099": float((p >= 0.99).mean()), "max_p": float(p.max())}
            if y is not None:
                pc = np.clip(p, 1e-12, 1 - 1e-12)
                row |= {"rate": float(y.mean()), "auc": float(roc_auc_score(y, p)), "brier": float(np.mean((p - y) ** 2)),
                        "logloss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))}
            else:
                row["accounts_ge_099"] = sorted(part.filter(pl.Series(p >= 0.99))["account_id"].cast(pl.Utf8).to_list())
                row["accounts"] = part["account_id"].n_unique()
            yield row


def rows_of(data_dir: Path, variants=VARIANTS):
    con = duckdb.connect(str(data_dir / "warehouse" / "revintel.duckdb"), read_only=True)
    q = lambda sql, *a: pl.from_pandas(con.execute(sql, list(a)).fetchdf())  # noqa: E731
    r = q("SELECT * FROM features.icp_cutoffs LIMIT 1").row(0, named=True)
    plan = IcpPlan(r["first_date"].date(), r["as_of"].date(), int(r["window_months"]), n_train=int(r["n_train"]),
                   n_eval=int(r["n_eval"]))
    recorded: list = []
    original = icp_model.calibrate_bounded

    def record(raw, y, *a, **k):
        recorded.append((np.asarray(raw, float), np.asarray(y, float)))
        return original(raw, y, *a, **k)

    icp_model.calibrate_bounded = record
    for c in plan.model_cutoffs:
        frame = q("SELECT * FROM features.customer_division WHERE cutoff_date IN (SELECT unnest(?))",
                  [*plan.train_cutoffs(c), c]).with_columns(pl.col("cutoff_date").cast(pl.Date))
        for d in sorted(frame["division"].unique()):
            rows = frame.filter(pl.col("division") == d)
            train = rows.filter((pl.col("cutoff_date") != c) & pl.col("label").is_not_null())
            labelled = plan.labelled(c)
            train = sample_accounts(in_fold(train, TRAIN) if labelled else train)
            scored = rows.filter(pl.col("cutoff_date") == c)
            recorded.clear()
            try:
                model = train_division(train, d, cutoff=c)
            except NotEnoughData:
                continue
            lgb_pair, log_pair, rfm_pair = recorded
            folds = account_fold(scored["account_id"].to_list())
            splits = ([("validation", folds == VALIDATION), ("holdout", folds == HOLDOUT)] if labelled
                      else [("score", np.ones(len(folds), bool))])
            labelled_train = train.filter(pl.col("label").is_not_null())
            newest = labelled_train.filter(pl.col("cutoff_date") == labelled_train["cutoff_date"].max())
            for v0, kwargs in variants.items():
                model.calibrator = calibrate_bounded(*lgb_pair, **kwargs)
                model.baselines.calibrators = {"baseline_logistic": calibrate_bounded(*log_pair, **kwargs),
                                               "baseline_rfm": calibrate_bounded(*rfm_pair, **kwargs)}
                model.season_shift = {}
                season, _ = same_season_shift(model, labelled_train, c)
                y_new = newest["label"].cast(pl.Float64).to_numpy()
                tops = ceilings(model)
                recent = {k: (level_shift(p, y_new, tops[k]), tops[k]) for k, p in model.predict_all(newest).items()
                          if k != BLEND}
                for v, shift in ((v0, {}), (v0 + "+season", season), (v0 + "+recent", recent)):
                    if v == v0 or shift:
                        model.season_shift = shift
                        yield from _rows(model, scored, splits, labelled,
                                         {"data": data_dir.name, "cutoff": str(c), "role": plan.role(c),
                                          "division": d, "variant": v})
    icp_model.calibrate_bounded = original


def summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Per data dir and variant, the blend (the default champion): validation Brier / log loss
    (mean over evaluation cutoffs and divisions), share >= 0.99 at the scoring cutoff, accounts
    with any division >= 0.99 there."""
    out = []
    for (data, v), g in frame.group_by("data", "variant"):
        # validation accounts of the evaluation cutoffs before the holdout cutoff (its window is reported)
        val = g.filter((pl.col("split") == "validation") & (pl.col("model") == BLEND) & (pl.col("role") != "holdout"))
        sc = g.filter((pl.col("split") == "score") & (pl.col("model") == BLEND))
        accts = set().union(*sc["accounts_ge_099"].to_list()) if sc.height else set()
        n_acc = sc["accounts"].max() if sc.height else None
        rel = val.filter(pl.col("rate") > 0).select(((pl.col("mean_p") / pl.col("rate") - 1).abs()))
        hold = g.filter((pl.col("split") == "holdout") & (pl.col("model") == BLEND) & (pl.col("role") == "holdout"))
        hold_rel = (hold["mean_p"] / hold["rate"] - 1).abs()
        out.append({"data": data, "variant": v, "val_rel_err": rel.to_series().mean(),
                    "val_within_25": float((rel.to_series() <= 0.25).mean()),
                    "REPORT_hold_within_25": f"{int((hold_rel <= 0.25).sum())}/{hold.height}",
                    "REPORT_hold_auc": hold["auc"].mean(), "val_auc": val["auc"].mean(), "val_brier": val["brier"].mean(), "val_logloss": val["logloss"].mean(),
                    "val_ge_099": val["ge_099"].mean(), "val_max_p": val["max_p"].max(),
                    "score_ge_099": sc["ge_099"].mean() if sc.height else None,
                    "score_accounts_any_ge_099": len(accts) / n_acc if n_acc else None,
                    "lgb_val_brier": g.filter((pl.col("split") == "validation") & (pl.col("model") == MODEL_NAME)
                                              & (pl.col("role") != "holdout"))["brier"].mean()})
    return pl.DataFrame(out).sort("data", "variant")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        frame = pl.concat([pl.read_ndjson(p, infer_schema_length=None) for p in sys.argv[2:]], how="diagonal_relaxed")
        with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=250):
            print(summary(frame))
    else:
        args, chosen = sys.argv[1:], VARIANTS
        if args[0] == "--variants":
            chosen, args = {v: VARIANTS[v] for v in args[1].split(",")}, args[2:]
        for arg in args:
            for row in rows_of(Path(arg), chosen):
                print(json.dumps(row), flush=True)
