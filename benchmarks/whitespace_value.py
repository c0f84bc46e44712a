"""Whitespace valued by a fitted first-purchase model vs the share-of-wallet rule, on the holdout
(issue 14 item 3: whitespace judged on the holdout, against ranking by propensity alone and RFM).

On a finished run (read only), at every labelled evaluation cutoff and on its holdout accounts,
the whitespace rows ranked six ways: the served propensity × the value `whitespace.fit_value` fits
on the training accounts' first purchases of the training windows (`fitted_value`: what
`scores.whitespace` holds), × the same fit without division levels (`fitted_size_only`), × a fit
of the mean by Poisson pseudo-likelihood (`ppml`), × the share-of-wallet rule used before
(`share_of_wallet`), the propensity alone and the RFM rule. For each: the area under the
cumulative share of the revenue the rows realised in the next window (`capture_auc`: 0.5 = a
random order), the share in the top 1 / 5 / 10 / 25 % of rows, the revenue of the top 25 / 100.

    python -m benchmarks.whitespace_value DATA_DIR [DATA_DIR ...] [--json OUT]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from benchmarks.heldout_company import emit
from revintel_assets.defs.icp.calendar import IcpPlan
from revintel_assets.defs.icp.model import HOLDOUT, TRAIN, account_fold, rfm_score
from revintel_assets.defs.icp.whitespace import first_purchases_sql, fit_value, whitespace_sql

DEPTHS = (0.01, 0.05, 0.10, 0.25)
TOP_K = (25, 100)


def fit_ppml(rows: pl.DataFrame):
    """Prototype: E[amount | division, spend] = exp(level + offset + b log1p(spend)) by Poisson
    pseudo-likelihood (the mean, not the log-mean: right under any spread of the amounts)."""
    from revintel_assets.defs.icp.whitespace import VALUE_MIN_ROWS, VALUE_SHRINK, ValueModel, _log_spend
    if rows.height < VALUE_MIN_ROWS:
        return None
    divisions = sorted(rows["division"].unique().to_list())
    dummies = (rows["division"].to_numpy()[:, None] == np.array(divisions, dtype=object)[None, :]).astype(float)
    x = np.column_stack([np.ones(rows.height), _log_spend(rows["monetary_12m"]), dummies])
    y = rows["label_amount"].cast(pl.Float64).to_numpy()
    scale = y.mean()
    y = y / scale
    pen = np.diag([0.0, 0.0] + [VALUE_SHRINK] * len(divisions))
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        mu = np.exp(x @ beta)
        step = np.linalg.solve(x.T @ (x * mu[:, None]) + pen, x.T @ (y - mu) - pen @ beta)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return ValueModel(float(beta[0] + np.log(scale)), float(beta[1]), 1.0, dict(zip(divisions, map(float, beta[2:]))), rows.height)


def _rows(con, plan: IcpPlan, c) -> tuple[pl.DataFrame, dict]:
    """The holdout accounts' whitespace rows of cutoff c with every ranking's key and the outcome."""
    firsts = con.sql(first_purchases_sql(), params=[plan.train_cutoffs(c)]).pl()
    firsts = firsts.filter(pl.Series(account_fold(firsts["account_id"].to_list()) == TRAIN))
    value = fit_value(firsts)
    flat = fit_value(firsts.with_columns(division=pl.lit("all")))  # no division levels: the size effect only
    labels = con.sql("SELECT cutoff_date, account_id, division, is_buyer, label, label_amount, recency_days, "
                     "frequency_12m, monetary_12m, div_recency_days, div_frequency_12m, div_monetary_12m "
                     "FROM features.customer_division WHERE cutoff_date = ?", params=[c]).pl()
    keys = ["account_id", "division"]
    rows = None
    ppml = fit_ppml(firsts)
    for name, v in (("fitted_value", value), ("fitted_size_only", flat), ("share_of_wallet", None), ("ppml", ppml)):
        if v is not None and name == "fitted_size_only":
            v = type(v)(v.level + next(iter(v.offsets.values())), v.elasticity, v.smear, {}, v.rows)
        sql, params = whitespace_sql(c, plan.window_months, v)
        got = con.sql(sql, params=params).pl().select(*keys, "propensity", pl.col("whitespace_score").alias(name))
        rows = got if rows is None else rows.join(got.drop("propensity"), on=keys)
    rows = rows.join(labels, on=keys).sort(keys)
    rows = rows.filter(pl.Series(account_fold(rows["account_id"].to_list()) == HOLDOUT) & pl.col("label").is_not_null())
    return rows, {"elasticity": None if value is None else round(value.elasticity, 3),
                  "elasticity_ppml": None if ppml is None else round(ppml.elasticity, 3),
                  "first_purchases": None if value is None else value.rows}


RANKINGS = ("fitted_value", "fitted_size_only", "share_of_wallet", "ppml", "propensity_only", "baseline_rfm")


def capture(amount: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, float]:
    """Rows in the ranking's order (ties: input order); the area under its cumulative revenue
    share (0.5 = a random order, 1 = all the revenue in the first row)."""
    order = np.lexsort((np.arange(len(key)), -np.nan_to_num(key.astype(float), nan=-np.inf)))
    cum = np.cumsum(amount[order]) / max(amount.sum(), 1e-12)
    return order, float(cum.mean())


def measure(data_dir: Path) -> list[dict]:
    """One record per labelled evaluation cutoff (holdout accounts)."""
    con = duckdb.connect(str(data_dir / "warehouse" / "revintel.duckdb"), read_only=True)
    out = []
    try:
        r = con.sql("SELECT * FROM features.icp_cutoffs LIMIT 1").pl().row(0, named=True)
        plan = IcpPlan(r["first_date"], r["as_of"], int(r["window_months"]), n_train=int(r["n_train"]),
                       n_eval=int(r["n_eval"]))
        for c in plan.eval_cutoffs:
            rows, fit = _rows(con, plan, c)
            amount = rows["label_amount"].fill_null(0).clip(0, None).to_numpy()
            keys = {"propensity_only": rows["propensity"].to_numpy(), "baseline_rfm": rfm_score(rows),
                    **{k: rows[k].to_numpy() for k in RANKINGS[:4]}}
            rec = {"data": str(data_dir), "cutoff": str(c), "holdout_cutoff": c == plan.holdout_cutoff,
                   "rows": rows.height, "buyers": int(rows["label"].sum()), "revenue": round(float(amount.sum()), 2), **fit}
            for name in RANKINGS:
                order, area = capture(amount, keys[name])
                rec[name] = {"capture_auc": round(area, 4),
                             **{f"share_top_{d:g}": round(float(amount[order[: max(1, int(d * rows.height))]].sum()
                                                              / max(amount.sum(), 1e-12)), 4) for d in DEPTHS},
                             **{f"revenue_top_{k}": round(float(amount[order[:k]].sum()), 2) for k in TOP_K}}
            out.append(rec)
    finally:
        con.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dirs", type=Path, nargs="+")
    ap.add_argument("--json", type=Path, help="append one line per data dir to this file")
    args = ap.parse_args(argv)
    for d in args.data_dirs:
        for rec in measure(d):
            emit(rec, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
