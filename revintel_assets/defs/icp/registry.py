"""MLflow logging of a division model: one run and one registered model per division.

The registered model is a pyfunc wrapping the whole DivisionModel (booster, calibrator, feature
list), so `models:/revintel-icp-<division>@champion` scores a features.customer_division frame
of one cutoff on its own. `champion` points at the model of the scoring cutoff.
"""

from __future__ import annotations

import datetime as dt
import mlflow.pyfunc
import polars as pl

from revintel_assets.defs.icp.evaluate import MODEL_NAME
from revintel_assets.defs.icp.model import DivisionModel
from revintel_resources.tracking import MLflowResource, registered_name


EXPERIMENT = "revintel-icp"
PREFIX = "revintel-icp"


class PyfuncDivisionModel(mlflow.pyfunc.PythonModel):
    """Input: feature rows of one cutoff (pandas); output: the champion's calibrated probabilities
    (the blend of LightGBM and logistic unless another candidate won on validation; tag `champion`)."""

    def __init__(self, model: DivisionModel) -> None:
        self.model = model

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        return self.model.predict(frame)


# The models this process registered, by (store, model URI), until icp_scores takes them: it scores
# with the very objects MLflow pickled instead of unpickling each again (5 s of 20 models at scale 1
# on a busy box). Another process (or a retry) finds nothing here and loads from the registry.
_REGISTERED: dict[tuple[str, str], DivisionModel] = {}


def registered_model(tracking: MLflowResource, uri: str) -> DivisionModel:
    """The DivisionModel registered at `uri` (models:/name/version): this process's copy if it
    registered it (taken once), else loaded from MLflow."""
    model = _REGISTERED.pop((tracking.tracking_uri(), uri), None)
    return model if model is not None else tracking.load_model(uri).unwrap_python_model().model


def gains_figure(gains: pl.DataFrame, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, part in gains.group_by("model_name", maintain_order=True):
        ax.plot(part["decile"], part["cumulative_capture"], marker="o", label=name[0])
    ax.plot([1, 10], [0.1, 1.0], ls="--", c="grey", lw=1)
    ax.set(xlabel="decile (1 = top)", ylabel="cumulative share of buyers", title=title)
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9)  # fixed: tight_layout cost 55 ms a chart
    return fig


def log_and_register(tracking: MLflowResource, model: DivisionModel, cutoff: dt.date, role: str,
                     window_months: int, metrics: pl.DataFrame | None, gains: pl.DataFrame | None) -> tuple[str, str]:
    """Log the run, register the model; returns (registered name, version)."""
    name = registered_name(PREFIX, model.division)
    with tracking.run(EXPERIMENT, f"icp {model.division} {cutoff}",
                      tags={"division": model.division, "cutoff": cutoff.isoformat(), "role": role,
                            "champion": model.champion,
                            "champion_reason": model.info.get("champion_reason", "")}) as run:
        run.log_params({**model.info, "division": model.division, "cutoff": cutoff.isoformat(),
                        "window_months": window_months,
                        "train_cutoffs": ",".join(map(str, model.train_cutoffs))})
        # the model before the metrics: MLflow copies every metric already on the run to a logged
        # model, one history query each (2.4 s of the demo's 20 runs)
        uri = run.log_model(PyfuncDivisionModel(model))
        if metrics is not None:
            # the never-bought slice of the model only, as before every candidate had one: MLflow
            # writes each metric row by row (validation.model_metrics holds them all)
            logged = metrics.filter((pl.col("segment") == "all") | (pl.col("model_name") == MODEL_NAME))
            run.log_metrics({f"{r['split']}.{r['segment']}.{r['model_name']}.{r['metric']}": r["value"]
                             for r in logged.iter_rows(named=True)})
        run.log_features(model.features)
        # the chart for the holdout cutoff, the one the README and the pages report; every
        # cutoff's gains are in validation.holdout_gains (each chart cost 0.17 s of the demo)
        if gains is not None and role == "holdout":
            fig = gains_figure(gains, f"{model.division} @ {cutoff}")
            run.log_figure(fig, "gains.png")
            fig.clear()
            import matplotlib.pyplot as plt

            plt.close(fig)
        run_id = run.run_id
    version = tracking.register(uri, name, tags={"cutoff": cutoff.isoformat(), "role": role, "run_id": run_id,
                                                 "champion": model.champion})
    if role == "score":
        tracking.set_alias(name, "champion", str(version))
    _REGISTERED[(tracking.tracking_uri(), f"models:/{name}/{version}")] = model
    return name, str(version)
