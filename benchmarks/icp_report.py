"""Issue 14 item 3 figures from a finished run's warehouse (read only):

    python benchmarks/icp_report.py DATA_DIR [DATA_DIR ...]

Per data dir: holdout AUC per model (validation.model_metrics, split 'holdout', the holdout cutoff),
the champion per division (validation.icp_models, if recorded), share of propensities >= 0.99
(scores.icp_scores at the scoring and holdout cutoffs), mean predicted vs observed per division on
the latest fully observed window (the holdout cutoff; all accounts, and the holdout accounts of
account_fold alone), the LightGBM/champion AUC on the holdout accounts from the scores, and the
whitespace top-k revenue of the three rankings on the holdout accounts. Works on runs made
before issue 14 too (no champion, no folds in their metrics: their holdout rows are all accounts).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from revintel_assets.defs.icp.model import HOLDOUT, account_fold
from revintel_assets.defs.icp.whitespace import whitespace_holdout_metrics, whitespace_holdout_sql


def report(data_dir: Path) -> dict:
    con = duckdb.connect(str(data_dir / "warehouse" / "revintel.duckdb"), read_only=True)
    q = lambda sql, *a: pl.from_pandas(con.execute(sql, list(a)).fetchdf())  # noqa: E731
    cut = q("SELECT cutoff_date, role FROM features.icp_cutoffs")
    hold = cut.filter(pl.col("role") == "holdout")["cutoff_date"][0]
    score = cut.filter(pl.col("role") == "score")["cutoff_date"][0]
    out: dict = {"holdout_cutoff": str(hold), "score_cutoff": str(score)}
    m = q("SELECT model_name, division, value FROM validation.model_metrics WHERE model_family = 'icp' "
          "AND split = 'holdout' AND segment = 'all' AND metric = 'auc' AND cutoff_date = ? AND division <> 'all'", hold)
    out["holdout_auc_by_model"] = {r["model_name"]: round(r["value"], 4) for r in
                                   m.group_by("model_name").agg(pl.col("value").mean()).sort("model_name").iter_rows(named=True)}
    out["holdout_auc"] = {f"{r['division']}|{r['model_name']}": round(r["value"], 4) for r in m.sort("division", "model_name").iter_rows(named=True)}
    # the generator's true propensity on the same holdout rows (demo only: NULL elsewhere)
    o = q("SELECT avg(value) AS v FROM validation.model_metrics WHERE model_family = 'icp' AND split = 'holdout' "
          "AND segment = 'all' AND metric = 'oracle_auc' AND cutoff_date = ? AND division <> 'all' "
          "AND model_name = 'division_propensity'", hold)["v"][0]
    out["holdout_oracle_auc_mean"] = None if o is None or o != o else round(float(o), 4)
    cols = [c[0] for c in con.execute("DESCRIBE validation.icp_models").fetchall()]
    if "champion" in cols:
        ch = q("SELECT cutoff_date, division, champion FROM validation.icp_models WHERE cutoff_date IN (?, ?)", hold, score)
        out["champion_holdout"] = dict(ch.filter(pl.col("cutoff_date") == hold).select("division", "champion").iter_rows())
        out["champion_score"] = dict(ch.filter(pl.col("cutoff_date") == score).select("division", "champion").iter_rows())
        champ = out["champion_holdout"]
        out["holdout_auc_champion_mean"] = round(float(np.mean([
            out["holdout_auc"][f"{d}|{c}"] for d, c in champ.items() if f"{d}|{c}" in out["holdout_auc"]])), 4)
    for name, c in (("score", score), ("holdout", hold)):
        s = q("SELECT propensity FROM scores.icp_scores WHERE cutoff_date = ?", c)["propensity"].to_numpy()
        accts = q("SELECT count(DISTINCT account_id) AS n, count(DISTINCT account_id) FILTER (WHERE propensity >= 0.99) AS k "
                  "FROM scores.icp_scores WHERE cutoff_date = ?", c).row(0)
        out[f"share_ge_099_{name}"] = round(float((s >= 0.99).mean()), 4)
        out[f"share_ge_0999_{name}"] = round(float((s >= 0.999).mean()), 4)
        out[f"share_le_0001_{name}"] = round(float((s <= 0.001).mean()), 4)
        out[f"accounts_any_ge_099_{name}"] = f"{accts[1]} of {accts[0]}"
    rows = q("SELECT s.division, s.account_id, s.propensity, f.label::INT AS label FROM scores.icp_scores s "
             "JOIN features.customer_division f USING (cutoff_date, division, account_id) WHERE s.cutoff_date = ?", hold)
    rows = rows.with_columns(h=pl.Series(account_fold(rows["account_id"].to_list()) == HOLDOUT))
    cal = {}
    for d, part in rows.group_by("division"):
        hp = part.filter(pl.col("h"))
        cal[d[0]] = {"pred_all": round(part["propensity"].mean(), 4), "obs_all": round(part["label"].mean(), 4),
                     "pred_h": round(hp["propensity"].mean(), 4), "obs_h": round(hp["label"].mean(), 4),
                     "auc_scores_h": round(roc_auc_score(hp["label"], hp["propensity"]), 4)}
    out["calibration_holdout_window"] = dict(sorted(cal.items()))
    out["mean_abs_rel_error_h"] = round(float(np.mean([abs(v["pred_h"] / v["obs_h"] - 1) for v in cal.values()])), 4)
    out["auc_scores_h_mean"] = round(float(np.mean([v["auc_scores_h"] for v in cal.values()])), 4)
    ws = q(whitespace_holdout_sql(hold))
    ws = ws.filter(pl.Series(account_fold(ws["account_id"].to_list()) == HOLDOUT)) if ws.height else ws
    out["whitespace_holdout_accounts"] = {f"{n}@{k}": [round(r, 0), b] for n, k, r, b in whitespace_holdout_metrics(ws)}
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps({"data_dir": arg, **report(Path(arg))}, indent=1, default=str))
