"""Judge a trained win model against its baselines on the same rows, and pick the champion.

Every model and baseline is scored on exactly the same validation and holdout rows; the oracle
(the demo's true probabilities) on those rows too, where the truth exists. The baseline stays
champion when the model does not beat it on validation: on data with no signal the product
says so instead of serving noise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from revintel_assets.defs.deals.baselines import BASELINES
from revintel_assets.defs.deals.win_model import Split, WinModel
from revintel_assets.defs.validation.metrics import calibration_bins, classification_metrics

MODEL_NAME = "win_probability"
MIN_HOLDOUT_ROWS = 200


@dataclass
class Evaluation:
    metrics: pl.DataFrame  # CONTRACT.md validation.model_metrics rows
    bins: pl.DataFrame  # CONTRACT.md validation.calibration_bins rows
    best_baseline: str
    model_beats_baseline: bool  # on validation (cross-fitted calibration), by two standard errors
    holdout_baseline: str | None = None
    holdout_beats_baseline: bool | None = None  # None: too few holdout rows to say
    gains: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> brier_gain vs FALLBACK

    def value(self, model: str, split: str, metric: str) -> float | None:
        row = self.metrics.filter((pl.col("model_name") == model) & (pl.col("split") == split)
                                  & (pl.col("metric") == metric))
        return float(row["value"][0]) if len(row) else None


def baseline_fit_rows(split: Split, split_name: str) -> pl.DataFrame:
    """Baselines learn from everything labelled before the rows they score, as the model does
    (it calibrates on the validation slice): train for validation, train + validation for the
    holdout. A base rate frozen at the end of training would be a straw man. For the holdout
    that is every row known before the gap (`Split.baseline_rows`): the deal-disjoint train /
    validation cut drops half the straddling deals' rows on each side, which would shift the
    baselines' base rate (on MavenTech, Brier 0.2209 -> 0.2220) and flatter the model."""
    if split_name == "validation":
        return split.train
    if split.baseline_rows is not None:
        return split.baseline_rows
    return pl.concat([split.train, split.validation], how="diagonal")


def predictions(model: WinModel, split: Split, split_name: str) -> dict[str, np.ndarray]:
    rows = split.validation if split_name == "validation" else split.holdout
    out = {MODEL_NAME: model.validation_oof if split_name == "validation" else model.predict(rows)}
    fit = baseline_fit_rows(split, split_name)
    for name, fn in BASELINES.items():
        out[name] = fn(fit, rows)
    return out


def evaluate(model: WinModel, split: Split, cutoff: dt.date, version: str,
             truth: pl.DataFrame | None = None) -> Evaluation:
    metric_rows, bin_rows = [], []
    for split_name, rows in (("validation", split.validation), ("holdout", split.holdout)):
        if len(rows) == 0:
            continue
        y = rows["is_won"].cast(pl.Int8).to_numpy()
        deals = float(rows["opportunity_id"].n_unique())  # `n` counts (deal, week) rows: 702 rows were 99 deals
        preds = predictions(model, split, split_name)
        if truth is not None:
            oracle = rows.select("opportunity_id").join(truth, on="opportunity_id", how="left",
                                                        maintain_order="left")["true_win_probability"]
            if oracle.null_count() == 0:
                m = classification_metrics(y, oracle.to_numpy())
                metric_rows += [(MODEL_NAME, version, split_name, "oracle_auc", m["auc"]),
                                (MODEL_NAME, version, split_name, "oracle_brier", m["brier"])]
        for name, p in preds.items():
            v = version if name == MODEL_NAME else f"{name}@{cutoff}"
            metric_rows += [(name, v, split_name, k, val) for k, val in classification_metrics(y, p).items()]
            metric_rows.append((name, v, split_name, "deals", deals))
            bin_rows.append(calibration_bins(y, p).with_columns(
                pl.lit(name).alias("model_name"), pl.lit(split_name).alias("split")))
    metrics = pl.DataFrame(metric_rows, schema=["model_name", "model_version", "split", "metric", "value"],
                           orient="row").with_columns(pl.lit(cutoff).alias("cutoff_date"),
                                                      pl.lit("all").alias("division"),
                                                      pl.lit("deals").alias("model_family"))
    bins = pl.concat(bin_rows).with_columns(pl.lit(cutoff).alias("cutoff_date"), pl.lit("all").alias("division"),
                                            pl.lit("deals").alias("model_family"))
    ev = Evaluation(metrics, bins, "", False)
    ev.best_baseline, ev.model_beats_baseline = _versus_best_baseline(ev, model, split, "validation")
    if len(split.holdout) >= MIN_HOLDOUT_ROWS:
        ev.holdout_baseline, ev.holdout_beats_baseline = _versus_best_baseline(ev, model, split, "holdout")
    return ev


# What scores the deals while no model is champion (registry.decide_promotion), so what a model
# must beat by noise to replace: held to beat the best baseline by two standard errors instead,
# a model that beat the stage baseline clearly and naive Bayes by less than two standard errors
# was refused, and the stage baseline, worse than both, served (a held-out company of another
# generator, benchmarks/heldout_company.py: served AUC 0.648 on the deals open at the export
# date, the refused model's kind 0.74). The model must still have a lower Brier than every baseline.
FALLBACK = "baseline_stage"


def _versus_best_baseline(ev: Evaluation, model: WinModel, split: Split, split_name: str) -> tuple[str, bool]:
    """(the best baseline by Brier, does the model win): its Brier below every baseline's, and
    better than the FALLBACK by two standard errors of the per-deal paired gain (gain_is_significant)."""
    briers = {name: ev.value(name, split_name, "brier") for name in BASELINES}
    best = min(briers, key=lambda k: briers[k])
    rows = split.validation if split_name == "validation" else split.holdout
    p_model = model.validation_oof if split_name == "validation" else model.predict(rows)
    ev.gains[split_name] = brier_gain(rows, p_model, BASELINES[FALLBACK](baseline_fit_rows(split, split_name), rows))
    ev.gains[split_name]["auc"], ev.gains[split_name]["auc_se"] = auc_with_se(rows, p_model)
    below_every_baseline = ev.value(MODEL_NAME, split_name, "brier") < briers[best]
    return best, bool(below_every_baseline and gain_is_significant(ev.gains[split_name]))


def brier_gain(rows: pl.DataFrame, p_model: np.ndarray, p_base: np.ndarray) -> dict[str, float]:
    """The paired Brier comparison behind `beats`, as numbers that can be recorded and re-checked:
    per-deal mean Brier of each (rows of one deal are not independent, so each deal's rows are
    averaged first), the mean per-deal gain (base - model) and its standard error."""
    y = rows["is_won"].cast(pl.Float64).to_numpy()
    frame = pl.DataFrame({"deal": rows["opportunity_id"], "m": (p_model - y) ** 2, "b": (p_base - y) ** 2})
    per_deal = frame.group_by("deal").agg(pl.col("m").mean(), pl.col("b").mean())
    gain = (per_deal["b"] - per_deal["m"]).to_numpy()
    n = len(gain)
    return {"deals": float(n), "model_brier_per_deal": float(per_deal["m"].mean()) if n else float("nan"),
            "baseline_brier_per_deal": float(per_deal["b"].mean()) if n else float("nan"),
            "gain_mean": float(gain.mean()) if n else float("nan"),
            "gain_se": float(gain.std(ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")}


def gain_is_significant(g: dict[str, float]) -> bool:
    """The model wins by more than two standard errors of the per-deal paired gain, AND it
    ranks deals better than chance by two standard errors of its AUC (Hanley-McNeil, counted in
    deals, not rows: conservative). A Brier gain alone can come from calibration only: on
    MavenTech the model's holdout AUC is 0.500 and its Brier beats a base rate learned on older
    rows; that is no win signal, and the stage baseline stays champion."""
    if "auc" in g and not (g["auc"] == g["auc"] and g["auc"] > 0.5 + 2 * g["auc_se"]):
        return False
    return bool(g["deals"] >= 2 and g["gain_mean"] > 2 * g["gain_se"])


def auc_with_se(rows: pl.DataFrame, p: np.ndarray) -> tuple[float, float]:
    """AUC over the rows and its Hanley-McNeil standard error with n = won / lost DEALS."""
    y = rows["is_won"].cast(pl.Int8).to_numpy()
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    auc = classification_metrics(y, p)["auc"]
    per_deal = rows.select("opportunity_id", "is_won").unique("opportunity_id")
    n1 = max(int(per_deal["is_won"].cast(pl.Int8).sum()), 1)
    n2 = max(len(per_deal) - n1, 1)
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2) + (n2 - 1) * (q2 - auc ** 2)) / (n1 * n2)
    return float(auc), float(np.sqrt(max(var, 0.0)))


def beats(rows: pl.DataFrame, p_model: np.ndarray, p_base: np.ndarray) -> bool:
    """Is the model's Brier lower than the baseline's by more than noise? Rows of one deal are
    not independent, so the paired difference is averaged per deal before its standard error
    is taken; the model must win by two standard errors."""
    return gain_is_significant(brier_gain(rows, p_model, p_base))
