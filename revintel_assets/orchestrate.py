"""Materialize the whole asset graph through Dagster, job by job, as `revintel demo/run` do.

Same jobs, same instance (DAGSTER_HOME under the data dir) as the UI, so every CLI run shows up
in the Dagster UI's run history. Partitioned jobs run as one single-run backfill over all their
partitions. After the last job the warehouse is published for readers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from revintel_resources.instance import ensure_dagster_home, recover_dead_runs, run_tags
from revintel_resources.warehouse import Warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class Step:
    job: str
    partitions: str | None = None  # dynamic partitions name
    mode: str = "range"  # range: all keys in one run | each: one run per key | latest: the max key


STEPS = [
    Step("import_job"),
    Step("transactions_job", partitions="transaction_month"),
    Step("deal_snapshot_job", partitions="as_of_date"),
    Step("win_model_job", partitions="training_cutoff", mode="each"),
    Step("deal_scoring_job", partitions="as_of_date", mode="latest"),
    Step("forecast_job", partitions="as_of_date", mode="latest"),  # backtests + forecast of the as-of date
    Step("icp_plan_job"),
    Step("icp_features_job", partitions="*"),  # "*": the job's own (cutoff × division) keys
    Step("icp_models_job", partitions="*"),
    Step("icp_whitespace_job", partitions="icp_model_cutoff"),
]


def _runs(step: Step, keys: list[str]) -> list[dict[str, str]]:
    """Partition tags of the runs a step makes."""
    if step.partitions is None:
        return [{}]
    if step.mode == "each":
        return [{"dagster/partition": k} for k in sorted(keys)]
    if step.mode == "latest":
        return [{"dagster/partition": max(keys)}]
    return [{"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}]


def materialize_all(defs: dg.Definitions, say: Callable[[str], None] = print) -> list[dict]:
    """Run every step; returns one record per materialized asset (key, partitions, rows)."""
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    records: list[dict] = []
    for i, step in enumerate(STEPS, 1):
        job = defs.resolve_job_def(step.job)
        keys = (job.partitions_def.get_partition_keys(dynamic_partitions_store=instance) if step.partitions == "*"
                else instance.get_dynamic_partitions(step.partitions) if step.partitions else [])
        if step.partitions and not keys:
            say(f"[{i}/{len(STEPS)}] {step.job}: no {step.partitions} partitions in this source, skipped")
            continue
        for tags in _runs(step, keys):
            say(f"[{i}/{len(STEPS)}] {step.job} {_describe(tags)}...")
            records.extend(_execute(job, instance, tags, say))
    Warehouse.from_env().publish()
    return records


def _describe(tags: dict[str, str]) -> str:
    if "dagster/partition" in tags:
        return f"[{tags['dagster/partition']}] "
    if tags:
        return f"[{tags['dagster/asset_partition_range_start']} .. {tags['dagster/asset_partition_range_end']}] "
    return ""


def _execute(job, instance, tags: dict[str, str], say) -> list[dict]:
    start = time.perf_counter()
    partition = tags.pop("dagster/partition", None)
    for run_id in recover_dead_runs(instance):
        say(f"      recovered run {run_id[:8]}: its process had died; marked failed, pool slot freed")
    result = job.execute_in_process(instance=instance, tags=run_tags({"revintel/launched_by": "cli", **tags}),
                                    partition_key=partition, run_config=QUIET, raise_on_error=True)
    seen: dict[str, dict] = {}  # a range run reports each partition; the rows cover the range
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        rows = mat.metadata.get("dagster/row_count")
        record = seen.setdefault(mat.asset_key.to_user_string(), {
            "asset": mat.asset_key.to_user_string(), "partitions": 0, "rows": getattr(rows, "value", None)})
        record["partitions"] += mat.partition is not None
    for record in seen.values():
        parts = f" in {record['partitions']} partitions" if record["partitions"] > 1 else ""
        say(f"      {record['asset']}: {record['rows'] if record['rows'] is not None else '-'} rows{parts}")
    say(f"      done in {time.perf_counter() - start:.1f}s (run {result.run_id[:8]})")
    return list(seen.values())
