"""Sensors: new source files start an import; an import rebuilds the transaction months; finished
runs publish the analyst file; a new ICP plan sets its models off."""

import time
from pathlib import Path

import dagster as dg

from revintel_assets import plan
from revintel_assets.defs.jobs import JOBS
from revintel_assets.defs.star.partitions import transaction_months
from revintel_assets.source_switch import fingerprint  # the import keeps the same one in meta.source
from revintel_resources.source import SourceResource, held_fingerprint, held_source
from revintel_resources.warehouse import PublishRefused, Warehouse


# An export is written over minutes (a Data Loader job, a copy): a folder is imported once none of
# its files has changed for this long. The sensor imported a half-written sales_pipeline.csv.
SETTLE_SECONDS = 120




def quiet_for(folder: Path) -> float:
    """Seconds since the last change to any file of the folder."""
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()]
    return time.time() - max(times) if times else float("inf")


@dg.sensor(job_name=plan.job("import_job").name, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts an import when files in the source folder appear or change, once they have "
                       f"not changed for {SETTLE_SECONDS} s.")
def source_files_changed(context: dg.SensorEvaluationContext, source: SourceResource):
    print_ = fingerprint(source.folder())
    if print_ == "missing":
        return dg.SkipReason(f"the source folder {source.folder()} is missing")
    if print_ == context.cursor:
        return dg.SkipReason(f"no change in {source.folder()}")
    quiet = quiet_for(source.folder())
    if quiet < SETTLE_SECONDS:  # the cursor stays: the next tick looks again
        return dg.SkipReason(f"files in {source.folder()} changed {quiet:.0f} s ago: waiting until they have not "
                             f"changed for {SETTLE_SECONDS} s (an export still being written)")
    first_look = context.cursor is None
    context.update_cursor(print_)
    if first_look and _already_imported(source.folder()):
        return dg.SkipReason("first look: this folder is what the published warehouse holds")
    return dg.RunRequest(run_key=f"source-{print_}", tags={"revintel/trigger": "source files"})


def _already_imported(folder: Path) -> bool:
    """Did the published warehouse come from this folder's files as they are? (read-only; readers
    never block). The folder alone said yes to a newer export copied in before the sensor's first
    settled look (after `revintel demo`, or before the first `revintel ui`): it was never imported (a
    re-check). A warehouse without a fingerprint is judged by its folder, as before."""
    held = held_source()
    if held is None or Path(held) != folder:
        return False
    kept = held_fingerprint()
    return kept is None or kept == fingerprint(folder)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitor_all_code_locations=False,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="After every successful run that wrote the warehouse, publish a consistent "
                                  "copy for readers (atomic rename; readers never wait).")
def publish_after_success(context: dg.RunStatusSensorContext):
    # the plan's jobs, and a materialization or backfill launched from the asset graph (Dagster's
    # __ASSET_JOB): every asset of the graph writes the warehouse (an audit: the runbook's own backfill
    # recipe wrote the work file and readers never saw it)
    job = context.dagster_run.job_name
    if job not in plan.warehouse_jobs() and not job.startswith("__ASSET_JOB"):
        return dg.SkipReason("run did not write the warehouse")
    # a run launched for a named source (launchpad, CLI) publishes only a warehouse of that source
    config = (context.dagster_run.run_config or {}).get("resources", {}).get("source", {}).get("config", {})
    try:
        wh = Warehouse.from_env()
        path = wh.publish(expected_source=config.get("path"))
    except PublishRefused as exc:
        return dg.SkipReason(str(exc))
    context.log.info(f"published {path}: {wh.last_publish}")


IMPORT, TRANSACTIONS = plan.job("import_job").name, plan.job("transactions_job").name


@dg.run_status_sensor(name="transactions_after_import", run_status=dg.DagsterRunStatus.SUCCESS,
                      default_status=dg.DefaultSensorStatus.RUNNING, monitored_jobs=[JOBS[IMPORT]],
                      request_job=JOBS[TRANSACTIONS],
                      description="After an import the CLI did not start (the source sensor's, the launchpad's): "
                                  "rebuild star.fact_transactions over every month the import registered.")
def transactions_after_import(context: dg.RunStatusSensorContext):
    # the import rebuilds the dimensions and opportunities but not the monthly order lines: after the
    # sensor imported a newer export, its new month stayed unbuilt, star_reconciles failed and the
    # monthly ICP refresh scored a cutoff without that month (an audit). Every month is rebuilt, as
    # `revintel run` does: a corrected export may change any of them.
    run = context.dagster_run
    if run.tags.get("revintel/launched_by") == "cli":
        return dg.SkipReason("the CLI runs transactions_job itself")
    keys = sorted(context.instance.get_dynamic_partitions(transaction_months.name))
    if not keys:
        return dg.SkipReason("no transaction month registered (a source without order lines or won deals)")
    return dg.RunRequest(run_key=f"transactions-{run.run_id}", tags={
        "revintel/trigger": "import", "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1]})


# The monthly ICP refresh, step by step: each job starts when the one before it succeeded, so
# features exist before models and models before whitespace. Only runs started by the monthly
# schedule carry the tag; the CLI sequences its own runs.
ICP_CHAIN = plan.icp_chain()
CHAIN_TAG = "revintel/schedule"


@dg.run_status_sensor(name="icp_monthly_chain", run_status=dg.DagsterRunStatus.SUCCESS,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      monitored_jobs=[JOBS[name] for name in ICP_CHAIN],
                      request_jobs=[JOBS[name] for name in ICP_CHAIN.values()],
                      description="Monthly ICP refresh: plan -> features -> models -> whitespace.")
def icp_monthly_chain(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    nxt = ICP_CHAIN.get(run.job_name)
    if nxt is None or run.tags.get(CHAIN_TAG) != "monthly":
        return dg.SkipReason("not part of the monthly ICP refresh")
    keys = context.repository_def.get_job(nxt).partitions_def.get_partition_keys(
        dynamic_partitions_store=context.instance)
    if not keys:
        return dg.SkipReason(f"{nxt}: no partitions")
    return dg.RunRequest(run_key=f"{nxt}-{run.run_id}", job_name=nxt, tags={
        CHAIN_TAG: "monthly", "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1]})


defs = dg.Definitions(sensors=[source_files_changed, publish_after_success, transactions_after_import,
                               icp_monthly_chain])
