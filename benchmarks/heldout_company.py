"""Issue 14's held-out judgement on a company revintel was not designed on.

The issue judges the deal model on companies written by another generator, on the deals open at
the export date with their eventual outcomes. This script does that for any finished run whose
source came with its own truth file (another generator's, never the demo's):

    PYTHONPATH=$PWD python -m benchmarks.heldout_generator --seed 14 --drift 1 --out SRC --deals 12000
    REVINTEL_DATA_DIR=DATA_DIR revintel run --source SRC --no-serve
    PYTHONPATH=$PWD python -m benchmarks.heldout_company DATA_DIR SRC/truth/eventual.csv [--label NAME] [--json OUT]

DATA_DIR is the REVINTEL_DATA_DIR of a finished `revintel run --source SRC --no-serve`; TRUTH.csv
holds one row per deal of the source: `Id` (as the export wrote it), `eventual_won` (0/1),
`eventual_close_date` and optionally `true_p_at_creation` (the generator's win probability when
the deal was opened: the oracle). Judged, on exactly the same rows: the scores revintel served for
the export date (`scores.deal_scores`, by whichever model was champion), the plain as-of LightGBM
reference (benchmarks/win_reference.py, trained on every row known at the export date; where the
export has a deal type or lead source, also a second time with them) and the oracle. Nothing here is read by the product or tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb
import polars as pl

from benchmarks.seeds import deal_metrics
from benchmarks.win_reference import load_snapshot, reference_predict
from revintel_assets.defs.deals.snapshot import DEAL_ATTRIBUTES, FEATURES_CATEGORICAL

# Salesforce ids: 18 characters in exports, the first 15 are the id (ingest/salesforce.py)
SALESFORCE_ID = 15


def _truth(path: Path, ids: pl.Series) -> pl.DataFrame:
    """The truth keyed by the warehouse's opportunity ids (exact, else the 15-character id)."""
    t = pl.read_csv(path, infer_schema_length=0).with_columns(
        pl.col("eventual_won").cast(pl.Int8), pl.col("eventual_close_date").str.to_date(strict=False))
    if "true_p_at_creation" in t.columns:
        t = t.with_columns(pl.col("true_p_at_creation").cast(pl.Float64))
    known = set(ids.to_list())
    if not t["Id"].is_in(list(known)).any():
        t = t.with_columns(pl.col("Id").str.slice(0, SALESFORCE_ID))
    return t.rename({"Id": "opportunity_id"}).unique("opportunity_id", keep="first")


def judge(data_dir: Path, truth_csv: Path) -> dict:
    db = data_dir / "warehouse" / "revintel.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    try:
        served = con.sql("""SELECT opportunity_id, win_probability, model_version FROM scores.deal_scores
                            WHERE as_of_date = (SELECT max(as_of_date) FROM scores.deal_scores)""").pl()
    finally:
        con.close()
    snap = load_snapshot(db)
    export = snap["as_of_date"].max()
    truth = _truth(truth_csv, snap["opportunity_id"])
    rows = (snap.filter(pl.col("as_of_date") == export).drop("is_won")
            .join(served, on="opportunity_id", how="inner", maintain_order="left")
            .join(truth, on="opportunity_id", how="left", maintain_order="left")
            .rename({"eventual_won": "is_won"}))
    missing = rows["is_won"].null_count()
    rows = rows.filter(pl.col("is_won").is_not_null())
    preds = {"revintel": rows["win_probability"].to_numpy(), "reference": reference_predict(snap, export, rows)[0]}
    # the reference as defined reads the snapshot's columns of issue 14; where the export has the
    # deal attributes revintel reads since (type, lead source), it is also fitted with them
    attributes = [c for c in DEAL_ATTRIBUTES if c in snap.columns and snap[c].drop_nulls().len()]
    if attributes:
        preds["reference_with_attributes"] = reference_predict(snap, export, rows, FEATURES_CATEGORICAL + attributes)[0]
    if "true_p_at_creation" in rows.columns and rows["true_p_at_creation"].null_count() == 0:
        preds["oracle"] = rows["true_p_at_creation"].to_numpy()
    return {"export_date": str(export), "rows": len(rows), "won": int(rows["is_won"].sum()),
            "rows_without_truth": missing, "open_at_export_scored": len(served),
            "scoring_model": served["model_version"].unique().sort().to_list(),
            **deal_metrics(rows, preds)}


def main(argv: list[str] | None = None, doc: str = __doc__, measure=judge) -> int:
    """DATA_DIR TRUTH.csv [--label L] [--json OUT]: one JSON line of `measure(data_dir, truth)`
    (benchmarks/deal_attributes.py measures with its own function)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("truth", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", type=Path, help="append the result line to this file")
    args = ap.parse_args(argv)
    emit({"label": args.label, **measure(args.data_dir, args.truth)}, args.json)
    return 0


def emit(record: dict, path: Path | None) -> None:
    """Print one JSON line and append it to `path` (the benchmarks' result files)."""
    line = json.dumps(record)
    print(line)
    if path:
        with path.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
