"""Materialize the whole asset graph through Dagster, job by job, as `revintel demo/run` do: the
steps of the run plan (plan.py) in order.

Same jobs, same instance (DAGSTER_HOME under the data dir) as the UI, so every CLI run shows up
in the Dagster UI's run history. Partitioned jobs run as one single-run backfill over all their
partitions. After the last job the warehouse is published for readers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import dagster as dg

from revintel_assets.plan import Job, cli_steps
from revintel_assets.progress import RunWatch, clock
from revintel_resources.instance import dagster_instance, recover_dead_runs, run_tags
from revintel_resources.source import SourceResource
from revintel_resources.warehouse import Warehouse

# Dagster's console logger prints a failed step's whole stack trace at ERROR; the CLI says what
# went wrong in one line instead (cli.py), and the steps' own warnings are echoed by _execute.
# The full events stay in Dagster's event log (the UI's run page).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


# Partitions the import adds dates to, run after run: they may hold dates past this run's as-of date
# (an earlier run's later export, or a run before this one's earlier --as-of)
DATED = ("as_of_date", "training_cutoff")


def _runs(step: Job, keys: list[str], as_of: str | None = None) -> list[dict[str, str]]:
    """Partition tags of the runs a step makes (`keys`: its dynamic partition keys in the order
    Dagster holds them, the order they were added). No dated key after `as_of` (the source's as-of
    date) is run: a "latest" step runs as of `as_of` (when a key, else the latest key before it),
    a range of dates ends there (issue 13: an earlier run's later keys must not win). A range tag
    covers the keys between its ends in Dagster's order, so when keys after `as_of` sit among the
    others (an --as-of earlier than a previous run's dates is added last: "to 2025-08-15" was every
    date up to 2025-09-30) each stretch of wanted keys is a run of its own, earliest first (a range
    step reads its dates in date order whatever their order in the run). Training cutoffs out of
    date order run one by one in date order: the win model's champion gate goes cutoff by cutoff."""
    if step.partitions is None:
        return [{}]
    if step.partitions in DATED and as_of is not None:
        wanted = sorted(k for k in keys if k <= as_of)
        if not wanted:
            return []
        if step.mode == "latest":
            return [{"dagster/partition": wanted[-1]}]
        stretches, current = [], []
        for k in keys:
            if k <= as_of:
                current.append(k)
            elif current:
                stretches.append(current)
                current = []
        stretches += [current] if current else []
        if step.partitions == "training_cutoff" and (len(stretches) > 1 or stretches[0] != wanted):
            stretches = [[k] for k in wanted]
        return [{"dagster/asset_partition_range_start": run[0], "dagster/asset_partition_range_end": run[-1]}
                for run in sorted(stretches, key=min)]
    if step.mode == "latest":
        return [{"dagster/partition": as_of if as_of in keys else max(keys)}]
    return [{"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}]


# Why a step has nothing to run, in the user's words (issue 13: every source completes the graph).
SKIP_REASONS = {
    "transaction_month": "the source has no transactions and no won deals",
    "as_of_date": "the source has no dated opportunities (deal scores, pipeline changes, the digest and the "
                  "forecast need a CRM export)",
    "training_cutoff": "the source has no dated opportunities to train the win model on",
    "icp_model_cutoff": "no ICP model cutoff (too little history for the ICP: a few months of sales are needed)",
    "*": "no ICP division and cutoff (the ICP needs a few months of sales in sellable divisions: products "
         "with a division or series, or a SKU map)",
}


def materialize_all(defs: dg.Definitions, say: Callable[[str], None] = print, resources: dict | None = None,
                    jobs: list[str] | None = None) -> list[dict]:
    """Run every step of the plan (or only `jobs`), with `resources` as run config (e.g.
    {"source": {"path": ...}}); returns one record per materialized asset (key, partitions, rows)."""
    instance = dagster_instance()
    for stale in Warehouse.from_env().remove_stale_publish_files():
        say(f"removed {stale.name}: the copy of a publish that was killed before it finished")
    run_config = {**QUIET, "resources": {name: {"config": cfg} for name, cfg in (resources or {}).items()}}
    steps = [s for s in cli_steps() if jobs is None or s.name in jobs]
    started = time.perf_counter()
    records: list[dict] = []
    for i, step in enumerate(steps, 1):
        job = defs.resolve_job_def(step.name)
        keys = (job.partitions_def.get_partition_keys(dynamic_partitions_store=instance) if step.partitions == "*"
                else instance.get_dynamic_partitions(step.partitions) if step.partitions else [])
        if step.partitions and not keys:
            reason = SKIP_REASONS.get(step.partitions, f"no {step.partitions} partitions in this source")
            say(f"[{i}/{len(steps)}] {step.name}: skipped, {reason}")
            continue
        runs = _runs(step, keys, _as_of(resources))
        if not runs:
            say(f"[{i}/{len(steps)}] {step.name}: skipped, no {step.partitions} partition up to the as-of date")
            continue
        for k, tags in enumerate(runs, 1):
            of = f"({k} of {len(runs)}) " if len(runs) > 1 else ""
            say(f"[{i}/{len(steps)}] {step.name} {_describe(tags)}{of}...")
            records.extend(_execute(job, instance, tags, say, run_config, started))
    Warehouse.from_env().publish(expected_source=(resources or {}).get("source", {}).get("path"))
    return records


def _as_of(resources: dict | None) -> str | None:
    """The date this run scores as of, by the source resource's own rule (override, else the export
    date the import recorded)."""
    day = SourceResource(**(resources or {}).get("source", {})).as_of_date(Warehouse.from_env())
    return day.isoformat() if day else None


def _describe(tags: dict[str, str]) -> str:
    if "dagster/partition" in tags:
        return f"[{tags['dagster/partition']}] "
    if tags:
        return f"[{tags['dagster/asset_partition_range_start']} .. {tags['dagster/asset_partition_range_end']}] "
    return ""


class RunFailed(Exception):
    """A job's run failed; the step's own error is the __cause__, its stack trace in the Dagster
    run log of `run_id`."""

    def __init__(self, job: str, run_id: str):
        self.job, self.run_id = job, run_id
        super().__init__(f"{job} failed (Dagster run {run_id})")


def _execute(job, instance, tags: dict[str, str], say, run_config: dict, started: float) -> list[dict]:
    start = time.perf_counter()
    partition = tags.pop("dagster/partition", None)
    for run_id in recover_dead_runs(instance):
        say(f"      recovered run {run_id[:8]}: its process had died; marked failed, pool slot freed")
    run_id = str(uuid.uuid4())
    try:
        with RunWatch(instance, run_id, say):  # the steps' warnings as they come, and a heartbeat
            result = job.execute_in_process(instance=instance, tags=run_tags({"revintel/launched_by": "cli", **tags}),
                                            partition_key=partition, run_config=run_config, raise_on_error=True,
                                            run_id=run_id)
    except Exception as exc:
        raise RunFailed(job.name, run_id) from exc
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
    say(f"      done in {clock(time.perf_counter() - start)} (run {result.run_id[:8]}; "
        f"{clock(time.perf_counter() - started)} since the start)")
    return list(seen.values())
