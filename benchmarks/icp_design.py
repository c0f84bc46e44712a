"""ICP design bench: every candidate's AUC on the validation and the holdout accounts at each
evaluation cutoff, retrained from a finished run's features (read only), as the models asset
trains them (training accounts only, same sampling, same code). For design seeds only:

    python -m benchmarks.icp_design DATA_DIR [DATA_DIR ...] > rows.jsonl

One JSON line per (data dir, cutoff, division, split, candidate): AUC, rows, and the share of
propensities >= 0.999 / <= 0.001 on that split. The champion rules are then compared on these
rows (`python -m benchmarks.icp_design --rules rows.jsonl`) without retraining.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from revintel_assets.defs.icp.calendar import IcpPlan
from revintel_assets.defs.icp.model import (HOLDOUT, TRAIN, VALIDATION, NotEnoughData, account_fold, choose_champion,
                                            in_fold, sample_accounts, train_division)


def rows_of(data_dir: Path):
    con = duckdb.connect(str(data_dir / "warehouse" / "revintel.duckdb"), read_only=True)
    q = lambda sql, *a: pl.from_pandas(con.execute(sql, list(a)).fetchdf())  # noqa: E731
    r = q("SELECT * FROM features.icp_cutoffs LIMIT 1").row(0, named=True)
    plan = IcpPlan(r["first_date"].date(), r["as_of"].date(), int(r["window_months"]), n_train=int(r["n_train"]),
                   n_eval=int(r["n_eval"]))
    for c in plan.eval_cutoffs:
        frame = q("SELECT * FROM features.customer_division WHERE cutoff_date IN (SELECT unnest(?))",
                  [*plan.train_cutoffs(c), c]).with_columns(pl.col("cutoff_date").cast(pl.Date))
        for d in sorted(frame["division"].unique()):
            rows = frame.filter(pl.col("division") == d)
            train = sample_accounts(in_fold(rows.filter((pl.col("cutoff_date") != c) & pl.col("label").is_not_null()),
                                            TRAIN))
            scored = rows.filter(pl.col("cutoff_date") == c)
            try:
                model = train_division(train, d)
            except NotEnoughData:
                continue
            folds = account_fold(scored["account_id"].to_list())
            for split, fold in (("validation", VALIDATION), ("holdout", HOLDOUT)):
                part = scored.filter(pl.Series(folds == fold))
                y = part["label"].cast(pl.Int8).to_numpy()
                for name, p in model.predict_all(part).items():
                    yield {"data": data_dir.name, "cutoff": str(c), "holdout": c == plan.holdout_cutoff,
                           "division": d, "split": split, "model": name, "n": len(y),
                           "auc": float(roc_auc_score(y, p)), "ge_0999": float((p >= 0.999).mean()),
                           "le_0001": float((p <= 0.001).mean()), "ge_099": float((p >= 0.99).mean()),
                           "mean_p": float(p.mean()), "rate": float(y.mean())}


def champion_table(rows: pl.DataFrame, rule=choose_champion) -> pl.DataFrame:
    """Per data dir: mean holdout AUC at the holdout cutoff of the champion (chosen by `rule` on
    the validation rows of the evaluation cutoffs before it) and of every candidate."""
    out = []
    for (data,), g in rows.group_by("data"):
        hold_cut = g.filter(pl.col("holdout"))["cutoff"][0]
        hold = g.filter((pl.col("cutoff") == hold_cut) & (pl.col("split") == "holdout"))
        champs = []
        for d in sorted(hold["division"].unique()):
            val = (g.filter((pl.col("division") == d) & (pl.col("split") == "validation")
                            & (pl.col("cutoff") < hold_cut))
                   .select(cutoff_date="cutoff", model_name="model", value="auc"))
            name, _ = rule(val)
            champs.append(hold.filter((pl.col("division") == d) & (pl.col("model") == name))["auc"][0])
        means = hold.group_by("model").agg(pl.col("auc").mean())
        out.append({"data": data, "champion": float(np.mean(champs)),
                    **{m: float(a) for m, a in means.iter_rows()}})
    return pl.DataFrame(out).sort("data")


if __name__ == "__main__":
    if sys.argv[1] == "--rules":
        frame = pl.concat([pl.read_ndjson(p) for p in sys.argv[2:]])
        with pl.Config(tbl_rows=50, tbl_cols=20):
            print(champion_table(frame))
    else:
        for arg in sys.argv[1:]:
            for row in rows_of(Path(arg)):
                print(json.dumps(row), flush=True)
