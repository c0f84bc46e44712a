"""ICP on real data (Online Retail through the tidy importer), without Dagster: calendar,
features, division models vs baselines on the holdout, scores and whitespace. And the rule
that no ICP asset module reads the demo's ground truth."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from conftest import ONLINE_RETAIL, build_star, need

from revintel_assets.defs.icp.calendar import IcpPlan, default_window
from revintel_assets.defs.icp.evaluate import MODEL_NAME, evaluate, metric
from revintel_assets.defs.icp.features import divisions_sql, feature_sql
from revintel_assets.defs.icp.model import train_division
from revintel_assets.defs.icp.whitespace import whitespace_sql
from revintel_assets.defs.validation.metrics import deciles

ROOT = Path(__file__).resolve().parents[1]
DIVS = ["Garden", "Kitchen & Dining"]


def test_online_retail_holdout_and_whitespace():
    con = duckdb.connect()
    build_star(con, need(ONLINE_RETAIL))
    first, last = con.execute("SELECT min(order_date), max(order_date) FROM star.fact_transactions").fetchall()[0]
    plan = IcpPlan(first, last, default_window(first, last), n_train=4, n_eval=1)
    assert plan.window_months == 3 and plan.holdout_cutoff == dt.date(2011, 9, 1)
    assert all(plan.label_end(t) <= plan.holdout_cutoff for t in plan.train_cutoffs(plan.holdout_cutoff))
    modelled = [r[0] for r in con.sql(divisions_sql()).fetchall()]
    assert len(modelled) == 9 and "Non-product" not in modelled  # postage and fees: not sellable

    c = plan.holdout_cutoff
    frame = pl.concat([con.sql(feature_sql(t, DIVS, plan.window_months, plan.as_of)).pl()
                       for t in [*plan.train_cutoffs(c), c]])
    for d in DIVS:
        rows = frame.filter(pl.col("division") == d)
        train, hold = rows.filter(pl.col("cutoff_date") < c), rows.filter(pl.col("cutoff_date") == c)
        model = train_division(train, d)
        preds = model.predict_all(hold)
        ev = evaluate(hold, preds, c, d, versions={MODEL_NAME: "test"})
        auc, rfm = metric(ev["metrics"], MODEL_NAME, "auc"), metric(ev["metrics"], "baseline_rfm", "auc")
        assert auc > 0.70 and auc > rfm - 0.01, (d, auc, rfm)
        assert metric(ev["metrics"], MODEL_NAME, "lift_top_decile") > 1.5
        assert ev["gains"].filter(pl.col("model_name") == MODEL_NAME)["cumulative_capture"][-1] == 1.0
        assert ev["bins"]["n"].sum() == 4 * hold.height  # LightGBM, both baselines, the blend
        assert metric(ev["metrics"], MODEL_NAME, "oracle_auc") is None  # real data has no truth

    # scores and whitespace at the holdout cutoff for the two divisions
    con.execute("CREATE SCHEMA features; CREATE SCHEMA scores")
    con.register("f", frame.filter(pl.col("cutoff_date") == c))
    con.execute("CREATE TABLE features.customer_division AS SELECT * FROM f")
    scored = frame.filter(pl.col("cutoff_date") == c)
    p = np.concatenate([train_division(frame.filter((pl.col("division") == d) & (pl.col("cutoff_date") < c)), d)
                        .predict(scored.filter(pl.col("division") == d)) for d in DIVS])
    ordered = pl.concat([scored.filter(pl.col("division") == d) for d in DIVS])
    con.register("s", ordered.select("cutoff_date", "division", "account_id").with_columns(
        propensity=pl.Series(p), decile=pl.Series(deciles(p))))
    con.execute("CREATE TABLE scores.icp_scores AS SELECT * FROM s")
    ws = con.sql(whitespace_sql(c, plan.window_months)[0]).pl()
    # no CRM: no open opportunities; a division the account returned goods of is not whitespace either
    returned = con.sql(f"""SELECT DISTINCT account_id, division FROM star.fact_transactions
                           WHERE order_date <= DATE '{c}' AND (quantity < 0 OR amount < 0)""").pl()
    never = ordered.filter(~pl.col("is_buyer")).select("account_id", "division")
    assert ws.height == never.join(returned, on=["account_id", "division"], how="anti").height < never.height
    assert ws["rep_id"].null_count() == ws.height  # Online Retail has no reps


def test_no_asset_module_reads_truth(monkeypatch):
    """Only validation/oracle.py may name the truth files; features, models and scores never do."""
    offenders = []
    for path in [*(ROOT / "revintel_assets" / "defs" / "icp").glob("*.py"), ROOT / "revintel_assets" / "defs" / "validation" / "metrics.py"]:
        if re.search(r"truth", path.read_text(), re.I) and path.name not in {"assets.py", "evaluate.py"}:
            offenders.append(path.name)
    assert not offenders, offenders
    # assets.py and evaluate.py only pass truth through to evaluation, never to training or scoring
    src = (ROOT / "revintel_assets" / "defs" / "icp" / "assets.py").read_text()
    assert "division_truth.csv" not in src and "truth/" not in src
    monkeypatch.delenv("REVINTEL_TRUTH_DIR", raising=False)
    from revintel_resources.source import SourceResource

    assert SourceResource(path="/some/real/export").truth_folder() is None
