"""The weekly digest: Mondays 06:00 UTC, for the day before the tick but never past the data's
last date (docs/CONTRACT.md §4), by the same rule as the nightly (ops/schedules.py): the latest
registered as-of date on or before both, skipped when that digest was already written since the
latest import (the shared tick, ops/schedules.py). Evaluating the schedule registers nothing."""

import dagster as dg

from revintel_assets import plan
from revintel_assets.defs.deals.partitions import as_of_dates
from revintel_assets.defs.ops.schedules import tick

DIGEST = dg.AssetKey(["reports", "weekly_digest"])


@dg.schedule(job_name=plan.job(plan.DIGEST_JOB).name, cron_schedule="0 6 * * 1", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Mondays 06:00 UTC: the weekly digest per manager for the day before (capped at the "
                         "data's last date; skipped when that digest exists).")
def weekly_digest_schedule(context: dg.ScheduleEvaluationContext):
    return tick(context, as_of_dates, DIGEST, "the digest", lambda key: dg.RunRequest(
        run_key=f"digest-{key}", partition_key=key, tags={"revintel/schedule": "weekly"}))


defs = dg.Definitions(schedules=[weekly_digest_schedule])
