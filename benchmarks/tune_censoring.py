"""Deals still open at the training cutoff (censoring.py), judged on DESIGN companies only.

Design data: the demo at seeds 42 and 7 (drift 0 and 1), never the report seeds of
benchmarks/seeds.py. For each design snapshot, trains revintel's model per candidate and prints
holdout AUC / Brier / ECE and mean predicted - won per deal-age band (0-14, 15-60, > 60 days)
twice: on the holdout as the product judges it (rows whose deal closed by the export date), and
on every holdout row with its deal's eventual outcome (benchmarks/eventual_outcomes.py: the
generator's replayed draws, which the product never reads), i.e. every deal open on the
holdout's as-of dates, as issue 14's held-out companies are judged. Candidates:

* none: closed deals only (win_model.CENSORING = None, the model before this benchmark);
* ipcw: labelled rows weighted 1 / P(closed by C | age band, weeks to C) (`closed_share_weight`;
  within a cell it cannot tell winners from losers, so it only moves weight between cells);
* remaining: labelled rows weighted 1 / P(known by C | days left to their close)
  (`remaining_time_weight`); neither adopted, so they live here, not in the product;
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
from revintel_assets.defs.deals.censoring import closed_by
from revintel_assets.defs.deals.win_model import Split, split_by_time, train
from revintel_assets.defs.validation.metrics import classification_metrics


AGE_BANDS = (15, 61)  # deal age on the as-of date: 0-14, 15-60, > 60 days
WEEKS = 2  # width of a weeks-to-cutoff cell, in weeks


def closed_share_weight(rows: pl.DataFrame, cutoff: dt.date) -> pl.DataFrame:
    """`label_weight` = 1 / (share of the rows in the cell, deal-age band x weeks to C, whose
    deal closed by C), on every row of `rows` (the slice's rows, closed or not; the caller keeps
    the closed ones)."""
    band = pl.col("deal_age_days").cut(list(np.array(AGE_BANDS) - 0.5), labels=["a", "b", "c"])
    weeks = ((pl.lit(cutoff) - pl.col("as_of_date")).dt.total_days() // (7 * WEEKS)).alias("_t")
    share = closed_by(cutoff).cast(pl.Float64).mean().over(band, weeks)
    return rows.with_columns((1.0 / share.clip(0.2)).alias("label_weight"))


def remaining_time_weight(rows: pl.DataFrame, cutoff: dt.date, cap: float = 10.0) -> pl.DataFrame:
    """`label_weight` = 1 / G(R) on rows whose deal closed by C: R = days from the as-of date to
    the close, G(R) = the share of the slice's as-of dates at least R days before C, i.e. the
    chance that a row with R days left, on an as-of date of the slice, had its outcome known by
    C. Slow deals (mostly losers) count more; the censored deals themselves are never read.
    Rows with more days left than any as-of date allows are lost to every weight (capped)."""
    dates = rows["as_of_date"].unique()
    t = np.sort(np.array([(cutoff - d).days for d in dates.to_list()], dtype=float))
    remaining = (rows["outcome_date"] - rows["as_of_date"]).dt.total_days().to_numpy().astype(float)
    share = 1.0 - np.searchsorted(t, remaining, side="left") / max(len(t), 1)
    return rows.with_columns(pl.Series("label_weight", 1.0 / np.maximum(share, 1.0 / cap)))


def reweighted(split: Split, snap: pl.DataFrame, cutoff: dt.date, mode: str) -> Split:
    """A closed-only split (censoring=None) with its train / validation rows weighted by `mode`
    ("ipcw" or "remaining"): `label_weight` multiplies `ipw` and `weight`, as split_by_time's
    weights do. The ipcw cells' shares are read on the whole slice (the open deals' rows too)."""
    def one(rows: pl.DataFrame) -> pl.DataFrame:
        if mode == "remaining":
            rows = remaining_time_weight(rows, cutoff)
        else:
            dates = rows["as_of_date"]
            cells = (closed_share_weight(snap.filter(pl.col("as_of_date").is_between(dates.min(), dates.max())), cutoff)
                     .filter(closed_by(cutoff)).select("opportunity_id", "as_of_date", "label_weight"))
            rows = rows.join(cells, on=["opportunity_id", "as_of_date"], how="left", maintain_order="left")
        return rows.with_columns(pl.col("ipw") * pl.col("label_weight"), pl.col("weight") * pl.col("label_weight"))
    return replace(split, train=one(split.train), validation=one(split.validation))


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
    ap.add_argument("--censoring-window", type=int, help="censoring.WINDOW_DAYS for every candidate")
    args = ap.parse_args(argv)
    if args.censoring_window is not None:
        from revintel_assets.defs.deals import censoring
        censoring.WINDOW_DAYS = args.censoring_window
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
                split = split_by_time(snap, cutoff, plan.windows, censoring="impute" if mode == "impute" else None)
                if mode in ("ipcw", "remaining"):
                    split = reweighted(split, snap, cutoff, mode)
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
