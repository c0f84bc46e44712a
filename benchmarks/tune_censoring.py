"""Deals still open at the training cutoff (censoring.py), judged on DESIGN companies only.

Design data: the demo at seeds 42 and 7 (drift 0 and 1), never the report seeds of
benchmarks/seeds.py. For each design snapshot, trains revintel's model per candidate and prints
holdout AUC / Brier / ECE and mean predicted - won per deal-age band (0-14, 15-60, > 60 days)
twice: on the holdout as the product judges it (rows whose deal closed by the export date), and
on every holdout row with its deal's eventual outcome (benchmarks/eventual_outcomes.py: the
generator's replayed draws, which the product never reads), i.e. every deal open on the
holdout's as-of dates, as issue 14's held-out companies are judged. Candidates:

* none: closed deals only (win_model.CENSORING = None, the model before this benchmark);
* ipcw: labelled rows weighted 1 / P(closed by C | age band, weeks to C);
* remaining: labelled rows weighted 1 / P(known by C | days left to their close);
* impute: censored rows imputed (Aalen-Johansen q);
* X-cal: the correction X for the calibrator only (the booster trains as with none);
  impute-cal is the product's (win_model.CENSORING, CENSORED_IN_TRAINING).
* gap G: no correction, the validation slice ends G days before C (default 91).

    PYTHONPATH=$PWD python -m benchmarks.tune_censoring SNAPSHOT:SEED:SCALE:DRIFT [...]

SNAPSHOT is a warehouse data dir (DIR/warehouse/revintel.duckdb) or a parquet of its snapshot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.eventual_outcomes import eventual_outcomes
from benchmarks.win_reference import load_snapshot
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.censoring import AGE_BANDS
from revintel_assets.defs.deals.win_model import split_by_time, train
from revintel_assets.defs.validation.metrics import classification_metrics


def _score(rows: pl.DataFrame, p: np.ndarray, y: np.ndarray) -> dict:
    m = classification_metrics(y, p)
    band = np.digitize(rows["deal_age_days"].to_numpy(), AGE_BANDS)
    return {**{k: round(m[k], 4) for k in ("auc", "brier", "ece")}, "rows": len(y),
            "bias": round(float(p.mean() - y.mean()), 4),
            "bias by age": [round(float(p[band == k].mean() - y[band == k].mean()), 3) for k in range(3)]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--candidates", nargs="+", default=["none", "remaining", "remaining-cal", "ipcw", "ipcw-cal", "impute-cal", "impute", "gap 150"])
    args = ap.parse_args(argv)
    for setting in args.settings:
        path, seed, scale, drift = setting.split(":")
        path = Path(path)
        snap = pl.read_parquet(path) if path.suffix == ".parquet" else load_snapshot(path / "warehouse" / "revintel.duckdb")
        plan = DealPlan(snap["created_date"].min(), snap["as_of_date"].max())
        cutoff = plan.eval_cutoff
        truth = eventual_outcomes(int(seed), float(scale), float(drift)).select("opportunity_id", "eventual_won")
        every = (snap.filter(pl.col("as_of_date").is_between(cutoff, cutoff + dt.timedelta(days=plan.windows.holdout_days),
                                                               closed="left"))
                 .join(truth, on="opportunity_id", how="left", maintain_order="left"))
        assert every["eventual_won"].null_count() == 0, "snapshot and replayed generator disagree"
        for cand in args.candidates:
            if cand.startswith("gap"):
                split = split_by_time(snap, cutoff, replace(plan.windows, gap_days=int(cand.split()[1])), censoring=None)
            else:
                mode = cand.removesuffix("-cal") if cand != "none" else None
                split = split_by_time(snap, cutoff, plan.windows, censoring=mode)
            model = train(split, censored_in_training=not cand.endswith("-cal"))
            out = {"setting": setting, "candidate": cand, "trees": model.best_iteration}
            if split.censored is not None:
                c = split.censored.filter(pl.col("part") == "validation", pl.col("is_won"))
                c = c.join(truth, on="opportunity_id", how="left")
                out["censored validation rows"] = len(c)
                out["q vs eventual won"] = [round(float(c["label_weight"].mean()), 3), round(float(c["eventual_won"].mean()), 3)]
            h = split.holdout
            out["export labels"] = _score(h, model.predict(h), h["is_won"].cast(pl.Int8).to_numpy())
            out["eventual"] = _score(every, model.predict(every), every["eventual_won"].cast(pl.Int8).to_numpy())
            print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
