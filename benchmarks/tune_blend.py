"""Should the deal model be combined with a plain member? (issue 14), on DESIGN companies only.

On the issue's held-out companies (another generator) the plain reference (benchmarks/
win_reference.py) beat an older product by 0.013-0.019 AUC; on our own demo they are now about
equal. A safeguard that does not depend on our generator: combine the product's model with a
plain member. The plain member is what the product could ship: win_model.train on the stored
snapshot features only (snapshot.FEATURES_NUMERIC + FEATURES_CATEGORICAL: no DERIVED, no
TRAILING), no recency weights, the product's PARAMS, early-stopped on the same validation slice
(same split, same 1/sqrt(snapshots) and straddler weights). PARAMS rather than REFERENCE_PARAMS,
chosen before measuring: they were chosen on design validation rows for this very split and
weighting (REFERENCE_PARAMS never were), so the member differs from the product in what the
reference differs in (features, recency weights) and not in a second, untuned set of
hyperparameters; and 15-leaf trees stopping at ~100-170 rounds keep the extra TreeSHAP cost of
scoring it about one product model (31 leaves, patience 100, would cost more per tree).

Candidates, each per design setting and LightGBM seed, both members trained once and shared:

* product: win_model.train as it is;
* plain: the plain member alone (its own calibrator, as train fits it);
* blend: the two members' calibrated probabilities averaged;
* blend-raw: the two members' raw log-odds averaged, then ONE calibrator fitted as the product
  fits its own (calibration_rows: the validation slice plus censored deals' imputed rows,
  calibration_weight, cross-fitted out-of-fold copy for the gate). TreeSHAP stays additive (the
  average of the members' contributions sums to the averaged log-odds): the shippable form;
* select: whichever member has the lower Brier of its out-of-fold validation predictions
  (validation_oof, as the champion gate reads them), scored on the holdout;
* reference: benchmarks/win_reference.py.

Views as benchmarks/tune_drift.py (export labels, eventual outcomes; --export-date adds the deals
open at the export date with the models trained at it).

    PYTHONPATH=$PWD python -m benchmarks.tune_blend DATA_DIR:SEED:SCALE:DRIFT [...] --lgb-seeds 7 1 2 3 --export-date
    PYTHONPATH=$PWD python -m benchmarks.tune_blend --summarise OUT.jsonl [...]

Adoption rule (fixed before measuring): on the 4 design settings (seeds 42 and 7 x drift 0 and 1,
scale 0.5) with LightGBM seeds 7 1 2 3, against "product", a candidate must (a) lower mean
eventual-outcome AUC by at most 0.001 at drift 0 and at drift 1, (b) raise it by >= 0.002 at one
drift at least, (c) raise mean ECE by at most 0.003 in both views (export labels, eventual) at
both drifts. If several pass: blend-raw, then select, then blend.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.tune_drift import reference_line, setting_views, summary
from benchmarks.win_reference import REFERENCE_PARAMS
from revintel_assets.defs.deals.snapshot import FEATURES_NUMERIC
from revintel_assets.defs.deals.win_model import (CALIBRATION_HALF_LIFE_DAYS, P_FLOOR, calibration_rows,
                                                  calibration_weight, cross_fitted, split_by_time, train)
from revintel_assets.defs.validation.metrics import calibrate, classification_metrics

CANDIDATES = ("product", "plain", "blend", "blend-raw", "select")
PREFERENCE = ("blend-raw", "select", "blend")
AUC_LOSS = 0.001  # (a)
AUC_GAIN = 0.002  # (b)
ECE_SLACK = 0.003  # (c)


# --plain-params reference (information only, after the verdict; not a candidate of the rule):
# the plain member with the reference's hyperparameters instead of PARAMS. LightGBM's defaults
# for what PARAMS sets and REFERENCE_PARAMS does not, so train's merge yields REFERENCE_PARAMS.
REFERENCE_AS_PLAIN = {**REFERENCE_PARAMS, "lambda_l2": 0.0, "cat_smooth": 10.0, "min_data_per_group": 100,
                      "metric": "binary_logloss"}


def members(split, lgb_seed: int | None, plain_params: dict | None = None):
    params = {} if lgb_seed is None else {"seed": lgb_seed}
    return (train(split, params=params),
            train(split, params={**(plain_params or {}), **params}, numeric=list(FEATURES_NUMERIC),
                  half_life_days=None))


def blend_raw(models, split):
    """(predict, out-of-fold validation predictions) of one calibrator on the averaged log-odds."""
    cal = calibration_rows(split)
    raw = np.mean([m.raw_log_odds(cal) for m in models], axis=0)
    y = cal["is_won"].cast(pl.Int8).to_numpy()
    w = calibration_weight(cal, CALIBRATION_HALF_LIFE_DAYS)
    calibrator = calibrate(raw, y, weight=w)
    oof = cross_fitted(raw, y, cal["opportunity_id"].to_numpy(), weight=w)[:len(split.validation)]
    return (lambda df: np.clip(calibrator(np.mean([m.raw_log_odds(df) for m in models], axis=0)),
                               P_FLOOR, 1 - P_FLOOR)), oof


def candidates(split, lgb_seed: int | None, plain_params: dict | None = None) -> tuple[dict, dict]:
    """Predict functions per candidate, and facts (trees, validation Briers, the selected member)."""
    product, plain = members(split, lgb_seed, plain_params)
    y_val = split.validation["is_won"].cast(pl.Int8).to_numpy()
    brier = {k: classification_metrics(y_val, m.validation_oof)["brier"] for k, m in
             (("product", product), ("plain", plain))}
    raw_predict, raw_oof = blend_raw((product, plain), split)
    brier["blend-raw"] = classification_metrics(y_val, raw_oof)["brier"]
    chosen = product if brier["product"] <= brier["plain"] else plain
    preds = {"product": product.predict, "plain": plain.predict,
             "blend": lambda df: (product.predict(df) + plain.predict(df)) / 2,
             "blend-raw": raw_predict, "select": chosen.predict}
    facts = {"trees": [product.best_iteration, plain.best_iteration],
             "validation oof brier": {k: round(v, 5) for k, v in brier.items()},
             "selected": "product" if chosen is product else "plain"}
    return preds, facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="*", help="DATA_DIR:SEED:SCALE:DRIFT")
    ap.add_argument("--lgb-seeds", type=int, nargs="+", default=[None])
    ap.add_argument("--export-date", action="store_true")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--plain-params", choices=("product", "reference"), default="product",
                    help="the plain member's hyperparameters: PARAMS (the rule's) or REFERENCE_PARAMS (information)")
    ap.add_argument("--summarise", type=Path, nargs="+", metavar="JSONL")
    ap.add_argument("--markdown", action="store_true", help="with --summarise: the table as markdown")
    args = ap.parse_args(argv)
    if args.summarise:
        lines = [json.loads(x) for f in args.summarise for x in f.read_text().splitlines() if x.strip()]
        fmt = {"tbl_formatting": "MARKDOWN", "tbl_hide_column_data_types": True,
               "tbl_hide_dataframe_shape": True} if args.markdown else {}
        with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=300, **fmt):
            print(summary(lines).sort("drift", descending=True, maintain_order=True))
        print(json.dumps(verdicts(lines), indent=1))
        return 0
    plain_params = REFERENCE_AS_PLAIN if args.plain_params == "reference" else None
    for setting in args.settings:
        snap, _, plan, views, export_view = setting_views(setting)
        if not args.no_reference:
            print(json.dumps(reference_line(setting, args.export_date)), flush=True)
        for lgb_seed in args.lgb_seeds:
            preds, facts = candidates(split_by_time(snap, plan.eval_cutoff, plan.windows), lgb_seed, plain_params)
            out = {c: {"setting": setting, "candidate": c, "lgb_seed": lgb_seed, **facts} | views(snap, preds[c])
                   for c in CANDIDATES}
            if args.export_date:
                preds, facts = candidates(split_by_time(snap, plan.as_of, plan.windows), lgb_seed, plain_params)
                for c in CANDIDATES:
                    out[c] |= export_view(snap, preds[c]) | {"export facts": facts}
            for line in out.values():
                print(json.dumps(line), flush=True)
    return 0


def verdicts(lines: list[dict], base: str = "product") -> dict:
    """Per candidate: mean differences from `base` per drift and whether the rule adopts it; and
    the one adopted (PREFERENCE among those that pass, else None)."""
    m = {(r["candidate"], r["drift"]): r for r in summary(lines).to_dicts()}
    out = {}
    for cand in [c for c in CANDIDATES if c != base] + ["reference"]:
        d = {f"{k} drift {dr}": round(m[(cand, dr)][k] - m[(base, dr)][k], 4)
             for dr in ("1", "0") for k in ("eventual auc", "export labels ece", "eventual ece")}
        auc = [d[f"eventual auc drift {dr}"] for dr in ("1", "0")]
        ok = (min(auc) >= -AUC_LOSS and max(auc) >= AUC_GAIN
              and all(v <= ECE_SLACK for k, v in d.items() if "ece" in k))
        out[cand] = {**d, "passes": ok}
    out["adopted"] = next((c for c in PREFERENCE if out[c]["passes"]), None)
    return out


if __name__ == "__main__":
    sys.exit(main())
