"""How far below the oracle is the ICP champion, and how much of that could any model on
revintel's features close? (issue 14: "ICP within 0.03 of the oracle" on held-out companies)

On a finished run with ground truth (a demo, or `benchmarks/heldout_retail.py`'s companies), at
the holdout cutoff, on the holdout accounts (never trained on), per division then averaged:

* `champion`: the served propensities (scores.icp_scores), the AUC against the realised label;
* `oracle`: the generator's true probability of the same rows;
* `plain_lightgbm`: LightGBM with near-default settings on the same training rows and features;
* `noise_free_target`: the same LightGBM trained on the *true probability* instead of the 0/1
  label. It is not a model anyone could build (it reads the truth), but it measures what the
  features carry: where the champion is level with it, the rest of the gap to the oracle is
  information the purchase history does not hold (an account's latent buying rate estimated
  from a couple of years of counts), not a weakness of the model.

    python -m benchmarks.icp_ceiling DATA_DIR TRUTH_DIR [--label L] [--json OUT]
    python -c "from benchmarks.icp_ceiling import counts_ceiling; print(counts_ceiling())"

`counts_ceiling` is the illustration: accounts whose monthly buying rate is log-normal, seen for
3-21 months; the exact Bayes posterior of the rate from the counts (the best any model of the
history can do) against the rate itself, predicting a purchase in the next 3 months.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from revintel_assets.defs.icp import model as icp_model
from revintel_assets.defs.icp.calendar import IcpPlan
from revintel_assets.defs.icp.features import base_name, model_features

PLAIN = dict(objective="cross_entropy", learning_rate=0.05, num_leaves=15, min_data_in_leaf=50, verbose=-1,
             num_threads=1, seed=1, deterministic=True, force_row_wise=True)
ROUNDS = 300


def measure(data_dir: Path, truth_dir: Path) -> dict:
    con = duckdb.connect(str(data_dir / "warehouse" / "revintel.duckdb"), read_only=True)
    try:
        q = lambda sql, *a: con.sql(sql, params=list(a)).pl()  # noqa: E731
        plan = IcpPlan.from_row(q("SELECT * FROM features.icp_cutoffs LIMIT 1").row(0, named=True))
        c = plan.holdout_cutoff
        frame = q("SELECT * FROM features.customer_division WHERE cutoff_date IN (SELECT unnest(?))",
                  [*plan.train_cutoffs(c), c]).with_columns(pl.col("cutoff_date").cast(pl.Date))
        served = q("SELECT account_id, division, propensity FROM scores.icp_scores WHERE cutoff_date = ?", c)
    finally:
        con.close()
    truth = (pl.read_csv(truth_dir / "division_truth.csv", schema_overrides={"account_id": pl.Utf8, "cutoff_date": pl.Date})
             .filter(pl.col("window_months") == plan.window_months)
             .select("account_id", "division", "cutoff_date", "true_probability"))
    features = [f if base_name(f) in icp_model.CUTOFF_LEVEL else f"rank__{f}" for f in model_features(frame)]
    frame = frame.join(truth, on=["account_id", "division", "cutoff_date"], how="left")
    per = []
    for d in sorted(frame["division"].unique()):
        rows = frame.filter(pl.col("division") == d)
        train = icp_model.in_fold(rows.filter((pl.col("cutoff_date") != c) & pl.col("label").is_not_null()),
                                  icp_model.TRAIN)
        part = rows.filter(pl.col("cutoff_date") == c)
        part = part.filter(pl.Series(icp_model.account_fold(part["account_id"].to_list()) == icp_model.HOLDOUT))
        part = part.join(served, on=["account_id", "division"], how="inner")
        y = part["label"].cast(pl.Int8).to_numpy()
        if len(train) == 0 or not 0 < y.mean() < 1:
            continue
        x, xh = icp_model.matrix(train, features), icp_model.matrix(part, features)
        out = {"division": d, "rows": len(y), "champion": roc_auc_score(y, part["propensity"].to_numpy()),
               "oracle": roc_auc_score(y, part["true_probability"].fill_null(0.0).to_numpy())}
        for name, target in (("plain_lightgbm", train["label"].cast(pl.Float64).to_numpy()),
                             ("noise_free_target", train["true_probability"].fill_null(0.0).to_numpy())):
            booster = lgb.train(PLAIN, lgb.Dataset(x, target), num_boost_round=ROUNDS)
            out[name] = roc_auc_score(y, booster.predict(xh))
        per.append(out)
    df = pl.DataFrame(per)
    keys = ("champion", "oracle", "plain_lightgbm", "noise_free_target")
    return {"data": str(data_dir), "holdout_cutoff": str(c), "window_months": plan.window_months,
            "rows": int(df["rows"].sum()), **{k: round(float(df[k].mean()), 4) for k in keys},
            "champion_minus_oracle": round(float((df["champion"] - df["oracle"]).mean()), 4),
            "champion_minus_noise_free": round(float((df["champion"] - df["noise_free_target"]).mean()), 4),
            "divisions": {r["division"]: {k: round(r[k], 4) for k in keys} for r in per}}


def counts_ceiling(n: int = 20_000, sd: float = 1.0, median_rate: float = 0.25, seed: int = 0) -> dict:
    """AUC of the true rate (the oracle) and of the exact posterior mean given the purchase counts
    (the ceiling of any model of the history) for a purchase in the next 3 months."""
    from scipy.stats import poisson

    rng = np.random.default_rng(seed)
    rate = np.exp(rng.normal(np.log(median_rate), sd, n))
    months = rng.uniform(3, 21, n)
    counts = rng.poisson(months * rate)
    p = 1 - np.exp(-3 * rate)
    y = rng.random(n) < p
    grid = np.exp(np.linspace(np.log(median_rate) - 4 * sd, np.log(median_rate) + 4 * sd, 400))
    prior = np.exp(-0.5 * ((np.log(grid) - np.log(median_rate)) / sd) ** 2)
    like = poisson.pmf(counts[:, None], months[:, None] * grid[None, :]) * prior[None, :]  # vectorised over accounts
    posterior = (like * (1 - np.exp(-3 * grid))[None, :]).sum(axis=1) / like.sum(axis=1)
    return {"oracle_auc": round(roc_auc_score(y, p), 4), "history_ceiling_auc": round(roc_auc_score(y, posterior), 4)}


if __name__ == "__main__":
    from benchmarks.heldout_company import main  # the same command line: DATA_DIR TRUTH [--label] [--json]

    raise SystemExit(main(doc=__doc__, measure=measure))
