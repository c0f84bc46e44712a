"""The win model in MLflow: every training run logged, every model registered, one `champion`.

The registered model is a pyfunc wrapping the whole WinModel (booster + encoder + calibrator),
so what scores deals is exactly what was evaluated. The alias moves only through `promote`,
which the model asset calls when the gate in evaluate/decide says so.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import mlflow
import mlflow.pyfunc
import polars as pl

from revintel_assets.deals.evaluate import MIN_HOLDOUT_ROWS, MODEL_NAME, Evaluation
from revintel_assets.deals.snapshot import FEATURES
from revintel_assets.deals.win_model import Split, WinModel, Windows
from revintel_resources.tracking import MLflowResource

CHAMPION = "champion"


class WinModelPyfunc(mlflow.pyfunc.PythonModel):
    def __init__(self, model: WinModel):
        self.model = model

    def predict(self, context, model_input, params=None):
        return self.model.predict(pl.from_pandas(model_input))


def log_and_register(tracking: MLflowResource, model: WinModel, ev: Evaluation, cutoff: dt.date,
                     windows: Windows, n_rows: dict[str, int], plot: Path | None) -> str:
    """Log the run (params, metrics, features, reliability plot, model); returns the version."""
    with tracking.start_run(experiment="win_probability", run_name=f"cutoff {cutoff}") as run:
        mlflow.log_params({**{k: v for k, v in model.params.items() if k != "verbose"},
                           "best_iteration": model.best_iteration, "calibration": model.calibrator.method,
                           "cutoff": cutoff.isoformat(), **{f"window_{k}": v for k, v in vars(windows).items()},
                           **{f"rows_{k}": v for k, v in n_rows.items()}})
        for row in ev.metrics.iter_rows(named=True):
            if row["value"] == row["value"]:  # NaN metrics (one class only) are not logged
                mlflow.log_metric(f"{row['split']}.{row['model_name']}.{row['metric']}", row["value"])
        mlflow.log_dict({"features": FEATURES}, "features.json")
        if plot is not None:
            mlflow.log_artifact(str(plot))
        mlflow.set_tags({"cutoff": cutoff.isoformat(), "best_baseline": ev.best_baseline,
                         "beats_baseline": str(ev.model_beats_baseline)})
        info = mlflow.pyfunc.log_model(name="model", python_model=WinModelPyfunc(model), pip_requirements=[])
        run_id = run.info.run_id
    version = tracking.register(info.model_uri, MODEL_NAME, tags={"cutoff": cutoff.isoformat(), "run_id": run_id,
                                                                  "beats_baseline": str(ev.model_beats_baseline)})
    return version


def load(tracking: MLflowResource, version: str) -> WinModel:
    tracking.configure()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    return pyfunc.unwrap_python_model().model


def champion(tracking: MLflowResource) -> tuple[str, dt.date] | None:
    mv = tracking.get_alias(MODEL_NAME, CHAMPION)
    return None if mv is None else (mv.version, dt.date.fromisoformat(mv.tags["cutoff"]))


def latest_eligible(tracking: MLflowResource, as_of: dt.date) -> str | None:
    """The champion if it was trained by `as_of`, else the newest promoted version that was."""
    eligible = [v for v in tracking.versions(MODEL_NAME) if v.tags.get("promoted") == "true"
                and dt.date.fromisoformat(v.tags["cutoff"]) <= as_of]
    if not eligible:
        return None
    return max(eligible, key=lambda v: (v.tags["cutoff"], int(v.version))).version


def reliability_plot(ev: Evaluation, cutoff: dt.date) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, frame in ev.bins.filter(pl.col("split") == "holdout").group_by("model_name", maintain_order=True):
        ax.plot(frame["mean_predicted"], frame["observed_rate"], marker="o", label=name[0])
    ax.set(xlabel="predicted win probability", ylabel="observed win rate", title=f"Holdout reliability, cutoff {cutoff}")
    ax.legend(fontsize=8)
    path = Path(tempfile.mkdtemp()) / "reliability.png"
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def decide_promotion(tracking: MLflowResource, model: WinModel, ev: Evaluation, split: Split,
                     version: str) -> tuple[bool, str]:
    """Promote `version` to champion only if it beats the best baseline on validation and is
    not worse than the current champion on the same rows (the holdout when it has enough rows,
    else the validation slice, which the old champion never saw either)."""
    new_b = ev.value(MODEL_NAME, "validation", "brier")
    base_b = ev.value(ev.best_baseline, "validation", "brier")
    verdict, why = True, f"validation Brier {new_b:.4f} beats {ev.best_baseline} {base_b:.4f}"
    if not ev.model_beats_baseline:
        verdict, why = False, (f"validation Brier {new_b:.4f} does not beat {ev.best_baseline} {base_b:.4f}: "
                               "the baseline stays champion")
    current = champion(tracking)
    if verdict and current is not None:
        rows = split.holdout if len(split.holdout) >= MIN_HOLDOUT_ROWS else split.validation
        y = rows["is_won"].cast(pl.Float64).to_numpy()
        b_new = float(((model.predict(rows) - y) ** 2).mean())
        b_old = float(((load(tracking, current[0]).predict(rows) - y) ** 2).mean())
        if b_new > b_old:
            verdict, why = False, f"Brier {b_new:.4f} is worse than champion v{current[0]}'s {b_old:.4f} on the same rows"
        else:
            why += f"; not worse than champion v{current[0]} ({b_new:.4f} vs {b_old:.4f})"
    tracking.tag_version(MODEL_NAME, version, {"promoted": str(verdict).lower(), "decision": why})
    if verdict:
        tracking.set_alias(MODEL_NAME, CHAMPION, version)
    return verdict, why
