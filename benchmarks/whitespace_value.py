"""Whitespace: the share-of-wallet value against values fitted on first purchases, on the holdout
(issue 14 item 3: whitespace judged on the holdout, against ranking by propensity alone and RFM).

On a finished run (read only), at every labelled evaluation cutoff and on its holdout accounts,
the whitespace rows (never-bought pairs without an open opportunity) ranked six ways: propensity ×
the share-of-wallet value (`share_of_wallet`: the product's rule before session 30, still its
fallback: `whitespace.whitespace_sql` without a value model), the propensity × a value fitted on the training accounts' first purchases of the cutoff's
training windows (accounts that had never bought a division and bought it in the window, all
known at the cutoff) — `fitted_value`: least squares of log(revenue) on the division (levels
shrunk toward the overall one) and log(1 + the account's 12-month spend), times the mean of
exp(residual); `fitted_size_only`: the same without division levels; `ppml`: the mean fitted by
Poisson pseudo-likelihood, `whitespace.fit_value` —, the propensity alone and the RFM rule. The fitted values are not
capped. For each: the area under the cumulative share of the revenue the rows realised in the
next window (`capture_auc`: 0.5 = a random order), the share in the top 1 / 5 / 10 / 25 % of rows,
the revenue of the top 25 / 100. `ppml` is what `scores.whitespace` holds since session 30 (the
product's `whitespace.fit_value`, adopted on these figures: docs/icp_whitespace.md); the others are
the alternatives it was chosen among.

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
from revintel_assets.defs.icp.whitespace import fit_value, value_design, whitespace_sql

DEPTHS = (0.01, 0.05, 0.10, 0.25)
TOP_K = (25, 100)
MIN_ROWS = 30  # first purchases to fit on
SHRINK = 1.0  # ridge on the division levels
RANKINGS = ("share_of_wallet", "fitted_value", "fitted_size_only", "ppml", "propensity_only", "baseline_rfm")
FIRST_PURCHASES = """SELECT division, account_id, monetary_12m, label_amount FROM features.customer_division
                     WHERE cutoff_date IN (SELECT unnest(?)) AND NOT is_buyer AND label AND label_amount > 0
                     ORDER BY cutoff_date, division, account_id"""


def fitted_values(firsts: pl.DataFrame, rows: pl.DataFrame, how: str) -> tuple[np.ndarray | None, float | None]:
    """(expected revenue of each of `rows` if it buys, elasticity) fitted on `firsts`; how =
    'log' (least squares of the log, smeared), 'flat' (the same, one level) or 'ppml' (the product's
    whitespace.fit_value)."""
    if how == "ppml":  # the product's fit
        v = fit_value(firsts)
        if v is None:
            return None, None
        offset = rows["division"].replace_strict(v.offsets, default=0.0, return_dtype=pl.Float64).to_numpy()
        return np.exp(v.level + offset + v.elasticity * value_design(rows, [])[:, 1]), v.elasticity
    if firsts.height < MIN_ROWS:
        return None, None
    divisions = ["all"] if how == "flat" else sorted(firsts["division"].unique().to_list())
    if how == "flat":
        firsts, rows = firsts.with_columns(division=pl.lit("all")), rows.with_columns(division=pl.lit("all"))
    x, xr = value_design(firsts, divisions), value_design(rows, divisions)
    pen = np.diag([0.0, 0.0] + [SHRINK] * len(divisions))
    y = firsts["label_amount"].cast(pl.Float64).to_numpy()
    coef = np.linalg.solve(x.T @ x + pen, x.T @ np.log(y))
    smear = float(np.mean(np.exp(np.log(y) - x @ coef)))
    return np.exp(xr @ coef) * smear, float(coef[1])


def capture(amount: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, float]:
    """Rows in the ranking's order (ties: input order); the area under its cumulative revenue
    share (0.5 = a random order, 1 = all the revenue in the first row)."""
    order = np.lexsort((np.arange(len(key)), -np.nan_to_num(key.astype(float), nan=-np.inf)))
    cum = np.cumsum(amount[order]) / max(amount.sum(), 1e-12)
    return order, float(cum.mean())


def _cutoff(con, plan: IcpPlan, c) -> dict:
    firsts = con.sql(FIRST_PURCHASES, params=[plan.train_cutoffs(c)]).pl()
    firsts = firsts.filter(pl.Series(account_fold(firsts["account_id"].to_list()) == TRAIN))
    keys = ["account_id", "division"]
    sql, params = whitespace_sql(c, plan.window_months)  # no value model: the share-of-wallet rule (before)
    ws = con.sql(sql, params=params).pl().select(*keys, "propensity", "whitespace_score")
    labels = con.sql("SELECT cutoff_date, account_id, division, is_buyer, label, label_amount, recency_days, "
                     "frequency_12m, monetary_12m, div_recency_days, div_frequency_12m, div_monetary_12m "
                     "FROM features.customer_division WHERE cutoff_date = ?", params=[c]).pl()
    rows = ws.join(labels, on=keys).sort(keys)
    rows = rows.filter(pl.Series(account_fold(rows["account_id"].to_list()) == HOLDOUT) & pl.col("label").is_not_null())
    p = rows["propensity"].to_numpy()
    ranks = {"share_of_wallet": rows["whitespace_score"].to_numpy(), "propensity_only": p, "baseline_rfm": rfm_score(rows)}
    rec = {"cutoff": str(c), "holdout_cutoff": c == plan.holdout_cutoff, "rows": rows.height,
           "buyers": int(rows["label"].sum()), "first_purchases": firsts.height}
    for name, how in (("fitted_value", "log"), ("fitted_size_only", "flat"), ("ppml", "ppml")):
        value, rec[f"elasticity_{name}"] = fitted_values(firsts, rows, how)
        ranks[name] = p * value if value is not None else ranks["share_of_wallet"]
    amount = rows["label_amount"].fill_null(0).clip(0, None).to_numpy()
    rec["revenue"] = round(float(amount.sum()), 2)
    for name in RANKINGS:
        order, area = capture(amount, ranks[name])
        rec[name] = {"capture_auc": round(area, 4),
                     **{f"share_top_{d:g}": round(float(amount[order[: max(1, int(d * rows.height))]].sum()
                                                      / max(amount.sum(), 1e-12)), 4) for d in DEPTHS},
                     **{f"revenue_top_{k}": round(float(amount[order[:k]].sum()), 2) for k in TOP_K}}
    return rec


def measure(data_dir: Path) -> list[dict]:
    """One record per labelled evaluation cutoff (holdout accounts)."""
    con = duckdb.connect(str(data_dir / "warehouse" / "revintel.duckdb"), read_only=True)
    try:
        plan = IcpPlan.from_row(con.sql("SELECT * FROM features.icp_cutoffs LIMIT 1").pl().row(0, named=True))
        return [{"data": str(data_dir), **_cutoff(con, plan, c)} for c in plan.eval_cutoffs]
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dirs", type=Path, nargs="+")
    ap.add_argument("--json", type=Path, help="append one line per data dir and cutoff to this file")
    args = ap.parse_args(argv)
    for d in args.data_dirs:
        for rec in measure(d):
            emit(rec, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
