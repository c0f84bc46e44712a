"""Calibrators conditioned on deal age, judged on DESIGN companies only (issue 14).

Design data: the demo at seeds 42 and 7 (drift 0 and 1), never the reporting seeds of
benchmarks/seeds.py. The drift-1 over-prediction sits in deals 15-60 days old, so: does a
calibrator that knows the deal's age band (0-14, 15-60, > 60 days) fix it? For each design
warehouse, trains revintel's model once (the booster is the same for every candidate) and
prints holdout AUC / Brier / ECE and mean predicted - won per age band for:

* unweighted: pooled isotonic on the validation slice, every row alike (win_model.train with
  calibration_half_life_days=None, the default);
* band-iso m=M: isotonic per band on the validation slice, shrunk toward the pooled one with
  M pseudo-rows (weight rows / (rows + M));
* logit-band on=raw|iso [+inter]: logistic regression of the outcome on [raw log-odds, or the
  logit of the pooled isotonic fitted out of fold (by deal)] and band indicators (and their
  interactions): one monotone curve per band;
* calib half-life H: pooled isotonic with the validation rows weighted 0.5 ** (days before the
  slice's last as-of date / H), i.e. the later validation months count more
  (win_model.CALIBRATION_HALF_LIFE_DAYS; H = 60 won on the design seeds, not on the report
  seeds, so it stays off: README design log);
* the plain reference (benchmarks/win_reference.py) beside them.

    PYTHONPATH=$PWD python -m benchmarks.tune_calibration DATA_DIR [DATA_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from benchmarks.win_reference import load_snapshot, reference_predict
from revintel_assets.defs.deals.calendar import DealPlan
from revintel_assets.defs.deals.win_model import P_FLOOR, calibration_rows, cross_fitted, split_by_time, train
from revintel_assets.defs.validation.metrics import calibrate, classification_metrics

BAND_EDGES = (15, 61)  # deal age in days: 0-14, 15-60, > 60


def band(age) -> np.ndarray:
    return np.digitize(np.asarray(age), BAND_EDGES)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def band_isotonic(raw, y, b, w, m: float):
    """Isotonic per band shrunk toward the pooled isotonic (bands under 200 rows: pooled only)."""
    pooled = calibrate(raw, y, weight=w)
    per_band = {k: (IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw[s], y[s], sample_weight=w[s]),
                    s.sum()) for k in range(3) if (s := b == k).sum() >= 200 and 0 < y[s].sum() < s.sum()}

    def predict(r, bb):
        p = pooled(r)
        for k, (iso, n) in per_band.items():
            s = bb == k
            p[s] = n / (n + m) * iso.predict(r[s]) + m / (n + m) * p[s]
        return p
    return predict


def logistic_band(raw, y, b, w, groups, on: str, interactions: bool):
    """Outcome ~ [x, band indicators (, x * indicators)], x = raw log-odds or the logit of the
    pooled isotonic (out of fold on the validation slice, the pooled fit when predicting)."""
    pooled = calibrate(raw, y, weight=w)
    x_fit = _logit(cross_fitted(raw, y, groups, weight=w)) if on == "iso" else raw

    def design(x, bb):
        d = np.column_stack([bb == 1, bb == 2]).astype(float)
        return np.hstack([x[:, None], d] + ([d * x[:, None]] if interactions else []))
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(design(x_fit, b), y, sample_weight=w)
    return lambda r, bb: lr.predict_proba(design(_logit(pooled(r)) if on == "iso" else r, bb))[:, 1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dirs", type=Path, nargs="+")
    ap.add_argument("--shrink", type=float, nargs="+", default=[250, 1000, 4000])
    ap.add_argument("--half-lives", type=float, nargs="+", default=[60, 30, 15])
    args = ap.parse_args(argv)
    for data_dir in args.data_dirs:
        snap = load_snapshot(data_dir / "warehouse" / "revintel.duckdb")
        plan = DealPlan(snap["created_date"].min(), snap["as_of_date"].max())
        split = split_by_time(snap, plan.eval_cutoff, plan.windows)
        # the calibrators below are fitted on the product's calibration rows: the validation
        # slice plus its censored deals' imputed rows (win_model.CENSORING)
        rows, val = split.holdout, calibration_rows(split)
        y, bh = rows["is_won"].cast(pl.Int8).to_numpy(), band(rows["deal_age_days"].to_numpy())
        model = train(split, calibration_half_life_days=None)
        rv, rh = model.raw_log_odds(val), model.raw_log_odds(rows)
        yv, bv = val["is_won"].cast(pl.Int8).to_numpy(), band(val["deal_age_days"].to_numpy())
        wv, gv = val["ipw"].to_numpy(), val["opportunity_id"].to_numpy()  # ipw includes label_weight
        cands = {"unweighted": model.predict(rows), "reference": reference_predict(snap, plan.eval_cutoff, rows)[0]}
        cands |= {f"band-iso m={m:g}": band_isotonic(rv, yv, bv, wv, m)(rh, bh) for m in args.shrink}
        cands |= {f"logit-band on={on}{' +inter' if inter else ''}": logistic_band(rv, yv, bv, wv, gv, on, inter)(rh, bh)
                  for on in ("raw", "iso") for inter in (False, True)}
        days_before = (val["as_of_date"].max() - val["as_of_date"]).dt.total_days().to_numpy().astype(float)
        cands |= {f"calib half-life {h:g}": calibrate(rv, yv, weight=wv * 0.5 ** (days_before / h))(rh)
                  for h in args.half_lives}
        for name, p in cands.items():
            p = np.clip(p, P_FLOOR, 1 - P_FLOOR)
            m = classification_metrics(y, p)
            print(json.dumps({"data": str(data_dir), "model": name, **{k: round(m[k], 4) for k in ("auc", "brier", "ece")},
                              "bias by age band": [round(float(p[bh == k].mean() - y[bh == k].mean()), 3)
                                                   for k in range(3)]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
