"""Run ONE benchmark stage in this process, the way `revintel demo/run` and the schedules run it.

    python -m benchmarks.stage STAGE --data DIR [--scale X]

DIR is a revintel data directory whose source is DIR/demo; run the stage with REVINTEL_DATA_DIR=DIR
(benchmarks/__main__.py does). Every stage
except `generate` and `prepare` is one Dagster job run (`execute_in_process` on the instance
under DIR/dagster_home, same jobs as the CLI and the UI) for the partitions a production run of
that stage would take:

| stage        | job (partitions)                                                                  |
| ------------ | --------------------------------------------------------------------------------- |
| generate     | `revintel generate --scale X` into DIR/gen (deleted afterwards)                    |
| import       | import_job, then transactions_job over every month (one range run)                |
| snapshot     | deal_snapshot_job for one as-of date (the export date)                            |
| win_model    | win_model_job for one training cutoff (the export date)                           |
| scoring      | deal_scoring_job for the export date (scores + SHAP explanations)                 |
| scoring_all  | deal_scoring_job over every as-of date (one range run, as `revintel demo/run`)    |
| forecast     | forecast_job, asset revenue_forecast (+ deal_contributions), export date          |
| backtest     | forecast_backtest_job, asset forecast_backtest, export date                       |
| icp_features | icp_features_job for the scoring cutoff x every division                          |
| icp_models   | icp_models_job for the scoring cutoff x every division (models + icp_scores)     |
| whitespace   | icp_whitespace_job for the scoring cutoff                                         |
| nightly      | nightly_rescore_job for the export date, then publish (what the sensor does)      |
| prepare      | the whole graph (orchestrate.materialize_all), as `revintel run --no-serve`       |

The caller (benchmarks/__main__.py) measures this whole process: wall time and peak RSS.
The stage prints one JSON line (`{"stage": ..., "inner_s": ...}`) on stdout at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from revintel_assets import plan

DATA: Path = Path("data")  # set by run_stage
FORECAST_SIMS: int | None = None

STAGES = ["generate", "import", "snapshot", "win_model", "scoring", "scoring_all", "forecast", "backtest",
          "icp_features", "icp_models", "whitespace", "nightly"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _source(data: Path) -> dict:
    """The `source` resource's run config: the data directory's demo (and its truth)."""
    truth = data / "demo" / "truth"
    return {"path": str(data / "demo"), **({"truth_dir": str(truth)} if truth.is_dir() else {})}


def _run_config(job, data: Path, forecast_sims: int | None) -> dict:
    """QUIET and the source, plus `--forecast-sims N`: the forecast's n_sims (ForecastConfig) for
    the jobs that hold revenue_forecast, a documented launchpad setting, not a code change."""
    config = {**QUIET, "resources": {"source": {"config": _source(data)}}}
    ops = {node.name for node in job.graph.node_defs} if forecast_sims else set()
    if "revenue_forecast" in ops:
        config["ops"] = {"revenue_forecast": {"config": {"n_sims": forecast_sims}}}
    return config


def _run(defs, instance, job_name: str, *, key: str | None = None, keys: list[str] | None = None,
         assets: list[list[str]] | None = None) -> None:
    import dagster as dg

    job = defs.resolve_job_def(plan.job(job_name).name)
    tags = {"revintel/launched_by": "benchmark"}
    if keys:
        tags |= {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    job.execute_in_process(instance=instance, partition_key=key, tags=tags, run_config=_run_config(job, DATA, FORECAST_SIMS),
                           asset_selection=[dg.AssetKey(a) for a in assets] if assets else None,
                           raise_on_error=True)


def _export_date(instance) -> str:
    """The latest as-of partition: the source's export date (what demo/run score as of)."""
    return max(instance.get_dynamic_partitions("as_of_date"))


def _score_cutoff_keys(defs, instance, job_name: str) -> list[str]:
    """The (cutoff|division) keys of the ICP scoring cutoff (the latest model cutoff)."""
    cutoff = max(instance.get_dynamic_partitions("icp_model_cutoff"))
    job = defs.resolve_job_def(job_name)
    keys = job.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    return sorted(k for k in keys if str(k).split("|")[0] == cutoff)


def run_stage(stage: str, data: Path, scale: float, jobs: list[str] | None = None,
              forecast_sims: int | None = None) -> dict:
    global DATA, FORECAST_SIMS
    DATA, FORECAST_SIMS = data, forecast_sims
    from revintel_resources.settings import settings

    if settings().resolved_data_dir() != data:
        raise SystemExit(f"--data {data} but REVINTEL_DATA_DIR is {settings().resolved_data_dir()}: run the stage "
                         f"with REVINTEL_DATA_DIR={data}")
    if stage == "generate":
        from revintel_assets.demo.generator import generate_company

        out = data / "gen"
        try:
            summary = generate_company(out, scale=scale, seed=42, progress=False)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return {"opportunities": summary.get("opportunities"), "transaction_lines": summary.get("transaction_lines")}

    from revintel_assets.definitions import load
    from revintel_resources.instance import dagster_instance, recover_dead_runs
    from revintel_resources.warehouse import Warehouse

    defs = load()
    instance = dagster_instance()
    if stage == "cleanup":  # a run killed mid-step (timeout, memory cap) keeps its pool slot
        return {"released_runs": recover_dead_runs(instance, every_started=True)}
    if stage == "prepare":
        from revintel_assets import orchestrate

        # jobs: a part of the plan only (e.g. a large scale prepared in steps)
        t0 = time.perf_counter()  # each step's start, for the per-job breakdown of a full run
        orchestrate.materialize_all(defs, say=lambda s: print(f"[{time.perf_counter() - t0:7.1f} s] {s}",
                                                              file=sys.stderr, flush=True),
                                    resources={"source": _source(data)}, jobs=jobs)
        return {}
    if stage == "import":
        _run(defs, instance, "import_job")
        months = sorted(instance.get_dynamic_partitions("transaction_month"))
        if months:
            _run(defs, instance, "transactions_job", keys=months)
        return {"months": len(months)}
    as_of = _export_date(instance)
    if stage == "snapshot":
        _run(defs, instance, "deal_snapshot_job", key=as_of)
    elif stage == "win_model":
        cutoffs = instance.get_dynamic_partitions("training_cutoff")
        _run(defs, instance, "win_model_job", key=as_of if as_of in cutoffs else max(cutoffs))
    elif stage == "scoring":
        _run(defs, instance, "deal_scoring_job", key=as_of)
    elif stage == "scoring_all":
        keys = sorted(instance.get_dynamic_partitions("as_of_date"))
        _run(defs, instance, "deal_scoring_job", keys=keys)
        return {"as_of": as_of, "as_of_dates": len(keys)}
    elif stage == "forecast":
        _run(defs, instance, "forecast_job", key=as_of,
             assets=[["forecast", "revenue_forecast"], ["forecast", "deal_contributions"]])
    elif stage == "backtest":  # the backtest's op also writes its shock tuning and validation rows
        _run(defs, instance, "forecast_backtest_job", key=as_of, assets=[["forecast", "forecast_backtest"],
                                                                 ["forecast", "shock_tuning"],
                                                                 ["validation", "revenue_forecast"]])
    elif stage in ("icp_features", "icp_models"):
        job = f"{stage}_job"
        _run(defs, instance, job, keys=_score_cutoff_keys(defs, instance, job))
    elif stage == "whitespace":
        _run(defs, instance, "icp_whitespace_job", key=max(instance.get_dynamic_partitions("icp_model_cutoff")))
    elif stage == "nightly":
        _run(defs, instance, "nightly_rescore_job", key=as_of)
        wh = Warehouse.from_env()
        wh.publish()  # the publish_after_success sensor's work, counted in
        return {"as_of": as_of, "publish": wh.last_publish}  # replayed or copied whole, and how long
    else:
        raise SystemExit(f"unknown stage {stage!r}; one of {STAGES + ['prepare']}")
    return {"as_of": as_of}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*STAGES, "prepare", "cleanup"])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--jobs", nargs="+", help="prepare: only these jobs of the run plan (revintel_assets/plan.py)")
    parser.add_argument("--forecast-sims", type=int, help="the forecast's n_sims (ForecastConfig), e.g. 2000")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    info = run_stage(args.stage, args.data.resolve(), args.scale, args.jobs, args.forecast_sims)
    print(json.dumps({"stage": args.stage, "inner_s": round(time.perf_counter() - start, 2), **info}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
