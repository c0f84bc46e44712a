"""Judge a trained win model against its baselines on the same rows, and pick the champion.

Every model and baseline is scored on exactly the same validation and holdout rows; the oracle
(the demo's true probabilities) on those rows too, where the truth exists. The baseline stays
champion when the model does not beat it on validation: on data with no signal the product
says so instead of serving noise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from revintel_assets.deals.baselines import BASELINES
from revintel_assets.deals.win_model import Split, WinModel
from revintel_assets.validation.metrics import calibration_bins, classification_metrics

MODEL_NAME = "win_probability"
MIN_HOLDOUT_ROWS = 200


@dataclass
class Evaluation:
    metrics: pl.DataFrame  # CONTRACT validation.model_metrics rows
    bins: pl.DataFrame  # CONTRACT validation.calibration_bins rows
    best_baseline: str
    model_beats_baseline: bool

    def value(self, model: str, split: str, metric: str) -> float | None:
        row = self.metrics.filter((pl.col("model_name") == model) & (pl.col("split") == split)
                                  & (pl.col("metric") == metric))
        return float(row["value"][0]) if len(row) else None


def predictions(model: WinModel, split: Split, rows: pl.DataFrame) -> dict[str, np.ndarray]:
    out = {MODEL_NAME: model.predict(rows)}
    for name, fn in BASELINES.items():
        out[name] = fn(split.train, rows)
    return out


def evaluate(model: WinModel, split: Split, cutoff: dt.date, version: str,
             truth: pl.DataFrame | None = None) -> Evaluation:
    metric_rows, bin_rows = [], []
    for split_name, rows in (("validation", split.validation), ("holdout", split.holdout)):
        if len(rows) == 0:
            continue
        y = rows["is_won"].cast(pl.Int8).to_numpy()
        preds = predictions(model, split, rows)
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
            bin_rows.append(calibration_bins(y, p).with_columns(
                pl.lit(name).alias("model_name"), pl.lit(split_name).alias("split")))
    metrics = pl.DataFrame(metric_rows, schema=["model_name", "model_version", "split", "metric", "value"],
                           orient="row").with_columns(pl.lit(cutoff).alias("cutoff_date"),
                                                      pl.lit("all").alias("division"),
                                                      pl.lit("deals").alias("model_family"))
    bins = pl.concat(bin_rows).with_columns(pl.lit(cutoff).alias("cutoff_date"), pl.lit("all").alias("division"),
                                            pl.lit("deals").alias("model_family"))
    ev = Evaluation(metrics, bins, "", False)
    briers = {name: ev.value(name, "validation", "brier") for name in BASELINES}
    ev.best_baseline = min(briers, key=lambda k: briers[k])
    model_brier = ev.value(MODEL_NAME, "validation", "brier")
    ev.model_beats_baseline = model_brier is not None and model_brier < briers[ev.best_baseline]
    return ev
