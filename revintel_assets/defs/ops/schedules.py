"""Unattended operation: a nightly rescore and a monthly retrain.

Both compute their partition from the tick, never from the wall clock: the nightly run scores
as of the day before its tick (docs/CONTRACT.md §1), the monthly one trains a model with that day as its
cutoff. New keys are registered on the instance before the run is requested, since as-of dates
and cutoffs are dynamic partitions.
"""

import datetime as dt

import dagster as dg

from revintel_assets import plan
from revintel_assets.defs.deals.partitions import as_of_dates, training_cutoffs

NIGHTLY_JOB = plan.job(plan.NIGHTLY_JOB).name
MONTHLY_JOB = plan.job(plan.RETRAIN_JOB).name
ICP_FIRST = next(iter(plan.icp_chain()))  # the monthly ICP refresh starts with its first link


def _register(instance: dg.DagsterInstance, definition: dg.DynamicPartitionsDefinition, key: str) -> None:
    if not instance.has_dynamic_partition(definition.name, key):
        instance.add_dynamic_partitions(definition.name, [key])


def day_before(context: dg.ScheduleEvaluationContext) -> str:
    return (context.scheduled_execution_time.date() - dt.timedelta(days=1)).isoformat()


@dg.schedule(job_name=NIGHTLY_JOB, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every night at 02:00 UTC: the previous day's deal snapshot, scores, explanations "
                         "and forecast; a successful run publishes the analyst file.")
def nightly_rescore(context: dg.ScheduleEvaluationContext):
    key = day_before(context)
    _register(context.instance, as_of_dates, key)
    return dg.RunRequest(run_key=f"nightly-{key}", partition_key=key, tags={"revintel/schedule": "nightly"})


@dg.schedule(job_name=MONTHLY_JOB, cron_schedule="0 3 1 * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="On the 1st at 03:00 UTC: train the win model with the last day of the month as "
                         "cutoff (promoted only through its gate), and refresh the ICP plan (its models follow).")
def monthly_retrain(context: dg.ScheduleEvaluationContext):
    key = day_before(context)
    _register(context.instance, training_cutoffs, key)
    return [dg.RunRequest(run_key=f"retrain-{key}", partition_key=key, tags={"revintel/schedule": "monthly"}),
            dg.RunRequest(run_key=f"icp-plan-{key}", job_name=ICP_FIRST, tags={"revintel/schedule": "monthly"})]


defs = dg.Definitions(schedules=[nightly_rescore, monthly_retrain])
