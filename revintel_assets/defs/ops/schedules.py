"""Unattended operation: a nightly rescore and a monthly retrain.

Both take their date from the tick *and the data*, never from the wall clock alone: a tick scores
(or trains) as of the day before it, but never past the data's last date, the export date in the
published analyst file (docs/CONTRACT.md §4: "scores never run past the data"). On a 2025 export
a 2026 tick therefore scores as of 2025-12-31, and skips when that date is already done since the
last import (no new data arrived).

Evaluating a schedule (a tick, or "Preview tick result" in the UI) registers nothing: it only
requests dates the import registered (the export date is always one), the latest of them on or
before the date it wants. (Dagster applies dynamic partition requests for sensors only, and a
run cannot start on an unregistered key, so "register at launch" is not available to a schedule.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb

from revintel_assets import plan
from revintel_assets.defs.deals.assets import SCORES
from revintel_assets.defs.deals.partitions import as_of_dates, training_cutoffs
from revintel_resources.publish import connect_published
from revintel_resources.warehouse import Warehouse

NIGHTLY_JOB = plan.job(plan.NIGHTLY_JOB).name
MONTHLY_JOB = plan.job(plan.RETRAIN_JOB).name
ICP_FIRST = next(iter(plan.icp_chain()))  # the monthly ICP refresh starts with its first link
IMPORT = dg.AssetKey(["staging", "source_import"])
NO_SOURCE = "no published warehouse with a source yet: run `revintel demo` or `revintel run`"


def day_before(context: dg.ScheduleEvaluationContext) -> dt.date:
    return context.scheduled_execution_time.date() - dt.timedelta(days=1)


def data_last_date(analyst_db: Path) -> dt.date | None:
    """The export date of the published warehouse (read-only: a tick never waits for a writer)."""
    if not analyst_db.exists():
        return None
    try:
        con = connect_published(analyst_db)
    except (duckdb.Error, FileNotFoundError):
        return None
    try:
        return con.execute("SELECT max(export_date)::DATE FROM meta.source").fetchone()[0]
    except duckdb.Error:
        return None
    finally:
        con.close()


def target_key(wanted: dt.date, last_date: dt.date | None, registered: list[str]) -> str | None:
    """The partition a tick runs: the latest registered key on or before min(wanted, last data
    date); None when there is no data or no such key. Pure, so the rule is tested on its own."""
    if last_date is None:
        return None
    limit = min(wanted, last_date).isoformat()
    eligible = [k for k in registered if k <= limit]  # ISO dates sort as dates
    return max(eligible) if eligible else None


def done_since_import(instance: dg.DagsterInstance, asset: dg.AssetKey, key: str) -> bool:
    """Was `asset` materialized for partition `key` after the latest import? Then nothing new
    arrived for it (and a source switch, an import, makes every date due again)."""
    imported = instance.get_latest_materialization_event(IMPORT)
    done = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[key]), limit=1)
    if not done.records:
        return False
    return imported is None or done.records[0].timestamp >= imported.timestamp


def _plan_tick(context: dg.ScheduleEvaluationContext, partitions: dg.DynamicPartitionsDefinition,
              asset: dg.AssetKey, what: str) -> str | dg.SkipReason:
    """The key a tick runs, or why it skips."""
    wanted = day_before(context)
    last = data_last_date(Warehouse.from_env().analyst_path)
    key = target_key(wanted, last, context.instance.get_dynamic_partitions(partitions.name))
    if last is None:
        return dg.SkipReason(NO_SOURCE)
    if key is None:
        registered = context.instance.get_dynamic_partitions(partitions.name)
        return dg.SkipReason(f"no registered {partitions.name} on or before {min(wanted, last)}" + (
            "" if registered else ": the source has no deals (a transaction log?); its ICP is refreshed by "
                                  "monthly_retrain after each import"))
    if done_since_import(context.instance, asset, key):
        return dg.SkipReason(f"{what} as of {key} is already done and no new data arrived (the data ends "
                             f"{last}; the tick wanted {wanted})")
    if key < wanted.isoformat():
        context.log.info(f"{what} as of {key}: the data ends {last}, the tick wanted {wanted}")
    return key


def tick(context: dg.ScheduleEvaluationContext, partitions: dg.DynamicPartitionsDefinition, asset: dg.AssetKey,
         what: str, requests: Callable[[str], dg.RunRequest | list[dg.RunRequest]]):
    """Every schedule's tick: the target key (_plan_tick), a skip when there is none or it is done,
    else the run requests `requests(key)` makes."""
    key = _plan_tick(context, partitions, asset, what)
    return key if isinstance(key, dg.SkipReason) else requests(key)


@dg.schedule(job_name=NIGHTLY_JOB, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every night at 02:00 UTC: deal snapshot, scores, explanations and forecast as of the "
                         "previous day, or the data's last date if that is earlier (skipped when already scored); "
                         "a successful run publishes the analyst file.")
def nightly_rescore(context: dg.ScheduleEvaluationContext):
    return tick(context, as_of_dates, SCORES, "scoring", lambda key: dg.RunRequest(
        run_key=f"nightly-{key}", partition_key=key, tags={"revintel/schedule": "nightly"}))


@dg.schedule(job_name=MONTHLY_JOB, cron_schedule="0 3 1 * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="On the 1st at 03:00 UTC: train the win model with the last day of the month (or the "
                         "data's last date if earlier) as cutoff, promoted only through its gate, and refresh the "
                         "ICP plan (its models follow); skipped when that cutoff is already trained.")
def monthly_retrain(context: dg.ScheduleEvaluationContext):
    if not context.instance.get_dynamic_partitions(training_cutoffs.name):
        return _icp_only(context)
    return tick(context, training_cutoffs, dg.AssetKey(["models", "win_probability"]), "training", lambda key: [
        dg.RunRequest(run_key=f"retrain-{key}", partition_key=key, tags={"revintel/schedule": "monthly"}),
        dg.RunRequest(run_key=f"icp-plan-{key}", job_name=ICP_FIRST, tags={"revintel/schedule": "monthly"})])


ICP_PLAN = dg.AssetKey(["features", "icp_cutoffs"])


def _icp_only(context: dg.ScheduleEvaluationContext):
    """A source with no deals (a transaction log) has no training cutoff, and the tick skipped for
    want of one: its only analysis, the ICP and whitespace, never refreshed unattended, whatever
    exports the sensor imported. Its ICP refresh runs once after each import."""
    last = data_last_date(Warehouse.from_env().analyst_path)
    if last is None:
        return dg.SkipReason(NO_SOURCE)
    imported = context.instance.get_latest_materialization_event(IMPORT)
    planned = context.instance.get_latest_materialization_event(ICP_PLAN)
    if planned is not None and (imported is None or planned.timestamp >= imported.timestamp):
        return dg.SkipReason(f"the source has no deals (no win model to train) and its ICP plan is up to date with "
                             f"the last import (the data ends {last})")
    stamp = f"{imported.timestamp:.6f}" if imported is not None else "0"
    return dg.RunRequest(run_key=f"icp-plan-{last}-{stamp}", job_name=ICP_FIRST, tags={"revintel/schedule": "monthly"})


defs = dg.Definitions(schedules=[nightly_rescore, monthly_retrain])
