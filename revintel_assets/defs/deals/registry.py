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

from revintel_assets.defs.deals.evaluate import MIN_HOLDOUT_ROWS, MODEL_NAME, Evaluation
from revintel_assets.defs.deals.snapshot import OWN_HISTORY
from revintel_assets.defs.deals.win_model import Split, WinModel, Windows
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
                           # False when the source's history is derived (snapshot.model_features)
                           "own_history_features": any(f in OWN_HISTORY for f in model.encoder.features),
                           **{f"rows_{k}": v for k, v in n_rows.items()}})
        # the model before the metrics: MLflow copies every metric already on the run to a logged
        # model, one history query each (2.4 s of the demo's 20 ICP runs)
        info = mlflow.pyfunc.log_model(name="model", python_model=WinModelPyfunc(model), pip_requirements=[])
        mlflow.log_metrics({f"{row['split']}.{row['model_name']}.{row['metric']}": row["value"]
                            for row in ev.metrics.iter_rows(named=True)
                            if row["value"] == row["value"]})  # NaN metrics (one class only) are not logged
        # the paired comparison behind "beats the best baseline", re-checked by champion_beats_baseline
        mlflow.log_metrics({f"{split_name}.gate.{k}": v for split_name, g in ev.gains.items()
                            for k, v in g.items() if v == v})
        mlflow.log_dict({"features": model.encoder.features}, "features.json")
        if plot is not None:
            mlflow.log_artifact(str(plot))
        mlflow.set_tags({"cutoff": cutoff.isoformat(), "best_baseline": ev.best_baseline,
                         "beats_baseline": str(ev.model_beats_baseline)})
        run_id = run.info.run_id
    version = tracking.register(info.model_uri, MODEL_NAME, tags={"cutoff": cutoff.isoformat(), "run_id": run_id,
                                                                  "beats_baseline": str(ev.model_beats_baseline)})
    return version


def load(tracking: MLflowResource, version: str) -> WinModel:
    tracking.configure()
    # suppress_warnings: no pip-requirements check against the environment (6-7 s a load, same env)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}", suppress_warnings=True)
    return pyfunc.unwrap_python_model().model


def champion(tracking: MLflowResource) -> tuple[str, dt.date] | None:
    mv = tracking.get_alias(MODEL_NAME, CHAMPION)
    return None if mv is None else (mv.version, dt.date.fromisoformat(mv.tags["cutoff"]))


def latest_eligible(tracking: MLflowResource, as_of: dt.date) -> str | None:
    """The champion if it was trained by `as_of` (so moving the alias rolls scoring back or
    forward), else the newest promoted version that was."""
    return eligible_by_date(tracking, [as_of])[as_of]


def eligible_by_date(tracking: MLflowResource, dates: list[dt.date]) -> dict[dt.date, str | None]:
    """latest_eligible for every date, from one read of the registry (a range run scores 150+
    dates; each lookup is a registry query)."""
    pick = eligible_on(tracking)
    return {d: pick(d) for d in dates}


def eligible_version(current: tuple[str, dt.date] | None, promoted: list[tuple[dt.date, int]],
                     as_of: dt.date) -> str | None:
    """The rule behind latest_eligible, pure: `current` = (champion version, its cutoff),
    `promoted` = (cutoff, version) of every version the gate promoted."""
    if current is not None and current[1] <= as_of:
        return str(current[0])
    eligible = [p for p in promoted if p[0] <= as_of]
    return str(max(eligible)[1]) if eligible else None


def eligible_on(tracking: MLflowResource):
    """latest_eligible as a function of the date, reading the registry once (the forecast asks
    date by date as it walks a range)."""
    current = champion(tracking)
    promoted = [(dt.date.fromisoformat(v.tags["cutoff"]), int(v.version)) for v in tracking.versions(MODEL_NAME)
                if v.tags.get("promoted") == "true" and "cutoff" in v.tags]
    return lambda as_of: eligible_version(current, promoted, as_of)


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


def unseen_by_both(split: Split, champion_cutoff: dt.date) -> pl.DataFrame:
    """Labelled rows neither the challenger (cutoff C) nor the champion (cutoff C0) learned from.

    A model with cutoff C trains, early-stops and calibrates only on deals whose outcome was known
    by C, so a deal is unseen by it iff it closed after C. The challenger's holdout rows (as-of on
    or after C, so closed after C) whose as-of date is also on or after C0 are out of time and out
    of sample for both."""
    return split.holdout.filter((pl.col("as_of_date") >= champion_cutoff) & (pl.col("outcome_date") > champion_cutoff))


def decide_promotion(tracking: MLflowResource, model: WinModel, ev: Evaluation, split: Split,
                     version: str, cutoff: dt.date | None = None) -> tuple[bool, str]:
    """Promote `version` to champion only if
    1. the recipe has shown out-of-time skill: this model, or when it has no holdout yet (the
       model trained on everything) the latest version that had one, had a lower Brier than every
       baseline on its holdout and beat the stage baseline (what serves without a champion) by two
       standard errors (evaluate.FALLBACK);
    2. it does so on its validation slice (cross-fitted), likewise;
    3. it is not worse (Brier) than the current champion on rows NEITHER has seen (its holdout
       rows past the champion's cutoff, see `unseen_by_both`). A model with no such rows (trained
       on everything labelled) inherits the head-to-head verdict of the version that gave its
       holdout evidence, and may only move the champion forward in time.
    The evidence (rows, Brier of each, which versions) is recorded as version tags and as
    `gate.*` metrics on the challenger's run, where `champion_beats_baseline` re-checks it.
    Otherwise the champion stays, and with no champion the stage baseline scores the deals."""
    evidence, source, evidence_version = ev.holdout_beats_baseline, "its holdout", version
    inherited_h2h = None
    if evidence is None:
        evidence, source, evidence_version, inherited_h2h = _latest_holdout_evidence(tracking)
    checks = [
        (evidence is True, f"out-of-time skill on {source}" if evidence else
         f"no out-of-time skill on {source}" if evidence is False else "no holdout evidence yet"),
        (ev.model_beats_baseline, f"{'beats' if ev.model_beats_baseline else 'does not beat'} the baselines on "
                                  f"validation (best: {ev.best_baseline})"),
    ]
    current = champion(tracking)
    tags = {"evidence_version": evidence_version or "none", "gate_champion": "none", "beats_champion": "na"}
    metrics: dict[str, float] = {}
    if current is not None:
        old_version, old_cutoff = current
        tags["gate_champion"] = old_version
        rows = unseen_by_both(split, old_cutoff)
        if len(rows) >= MIN_HOLDOUT_ROWS:
            y = rows["is_won"].cast(pl.Float64).to_numpy()
            b_new = float(((model.predict(rows) - y) ** 2).mean())
            b_old = float(((load(tracking, old_version).predict(rows) - y) ** 2).mean())
            ok = b_new <= b_old
            metrics = {"gate.rows": float(len(rows)), "gate.deals": float(rows["opportunity_id"].n_unique()),
                       "gate.brier_challenger": b_new, "gate.brier_champion": b_old}
            tags |= {"beats_champion": str(ok).lower(), "gate_rows": f"{len(rows)} holdout rows, as-of "
                     f"{rows['as_of_date'].min()}..{rows['as_of_date'].max()}, deals closed after both cutoffs"}
            checks.append((ok, f"Brier {b_new:.4f} vs champion v{old_version}'s {b_old:.4f} on {len(rows)} "
                               f"rows neither has seen"))
        else:
            forward = cutoff is None or cutoff >= old_cutoff
            ok = inherited_h2h in ("true", "na") and forward
            tags |= {"beats_champion": inherited_h2h or "na",
                     "gate_rows": f"none unseen by both (inherits v{evidence_version}'s head-to-head)"}
            checks.append((ok, f"no rows unseen by both; v{evidence_version}'s head-to-head: {inherited_h2h or 'na'}"
                               + ("" if forward else f"; cutoff {cutoff} is older than the champion's {old_cutoff}")))
    verdict = all(ok for ok, _ in checks)
    why = "; ".join(text for _, text in checks) + ("" if verdict else " -> not promoted")
    tags |= {"promoted": str(verdict).lower(), "decision": why,
             "holdout_beats_baseline": "na" if ev.holdout_beats_baseline is None else str(ev.holdout_beats_baseline).lower()}
    run_id = _run_id(tracking, version)
    if metrics and run_id:
        tracking.log_run_metrics(run_id, metrics)
    tracking.tag_version(MODEL_NAME, version, tags)
    if verdict:
        tracking.set_alias(MODEL_NAME, CHAMPION, version)
    return verdict, why


def _run_id(tracking: MLflowResource, version: str) -> str | None:
    for v in tracking.versions(MODEL_NAME):
        if str(v.version) == str(version):
            return v.tags.get("run_id") or v.run_id
    return None


def _latest_holdout_evidence(tracking: MLflowResource) -> tuple[bool | None, str, str | None, str | None]:
    """(beat the baseline?, where, which version, its head-to-head with the champion then)."""
    judged = [v for v in tracking.versions(MODEL_NAME) if v.tags.get("holdout_beats_baseline") in ("true", "false")]
    if not judged:
        return None, "no earlier holdout", None, None
    latest = max(judged, key=lambda v: (v.tags["cutoff"], int(v.version)))
    return (latest.tags["holdout_beats_baseline"] == "true", f"v{latest.version}'s holdout (cutoff {latest.tags['cutoff']})",
            str(latest.version), latest.tags.get("beats_champion", "na"))
