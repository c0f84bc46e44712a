"""Does the deal's type and lead source (snapshot.DEAL_ATTRIBUTES) help the win model? Offline, on a
finished run of a held-out company (benchmarks/heldout_generator.py): the model that scores the export
date (trained at the export date, the product's windows and features for the source's history) with and
without the attributes, and the plain reference with and without them, judged on the deals open at the
export date by their eventual outcome, as benchmarks/heldout_company.py judges the served scores.

    PYTHONPATH=$PWD python -m benchmarks.deal_attributes DATA_DIR SRC/truth/eventual.csv [--label L] [--json OUT]

Used for design on held-out generator seeds 18 and 19 only (drift 0 and 1, exported without
OpportunityHistory.csv); the report seeds (11-17) were judged only after the change, by
heldout_company.py on the product's own runs (README "Held-out companies of another generator").
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from benchmarks.heldout_company import _truth, main
from benchmarks.seeds import deal_metrics
from benchmarks.win_reference import load_snapshot, reference_predict
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.snapshot import DEAL_ATTRIBUTES, FEATURES_CATEGORICAL, LOGGED_SHARE_SQL, model_features
from revintel_assets.defs.deals.win_model import split_by_time, train


def compare(data_dir: Path, truth_csv: Path) -> dict:
    db = data_dir / "warehouse" / "revintel.duckdb"
    snap = load_snapshot(db).sort(["as_of_date", "opportunity_id"])
    con = duckdb.connect(str(db), read_only=True)
    try:
        logged = float(con.execute(LOGGED_SHARE_SQL).fetchall()[0][0] or 0.0)
    finally:
        con.close()
    export = snap["as_of_date"].max()
    truth = _truth(truth_csv, snap["opportunity_id"])
    rows = (snap.filter(pl.col("as_of_date") == export).drop("is_won").join(truth, on="opportunity_id")
            .rename({"eventual_won": "is_won"}).filter(pl.col("is_won").is_not_null()))
    numeric, categorical = model_features(logged)
    split = split_by_time(snap, export, DealPlan(snap["created_date"].min(), export).windows)
    present = [c for c in DEAL_ATTRIBUTES if snap[c].drop_nulls().len()]
    preds = {"revintel_without": train(split, numeric=numeric,
                                       categorical=[c for c in categorical if c not in DEAL_ATTRIBUTES]).predict(rows),
             "revintel_with": train(split, numeric=numeric, categorical=categorical).predict(rows),
             "reference": reference_predict(snap, export, rows)[0],
             "reference_with": reference_predict(snap, export, rows, FEATURES_CATEGORICAL + present)[0]}
    return {"logged_history_share": round(logged, 3), "attributes": present, "rows": len(rows),
            **deal_metrics(rows, preds)}


if __name__ == "__main__":
    raise SystemExit(main(doc=__doc__, measure=compare))
