"""The forecast's judges, weekly: Sundays 04:00 UTC, the backtest (and the swing it tunes, which the
nightly forecasts then use) and the deal outlook judged on past quarters, as of the day before the
tick but never past the data's last date, by the same rule as the nightly (ops/schedules.py `tick`).
They re-judge past origins, so they do not run every night: the nightly stays a rescore."""

import dagster as dg

from revintel_assets import plan
from revintel_assets.defs.deals.partitions import as_of_dates
from revintel_assets.defs.forecast.assets import BACKTEST
from revintel_assets.defs.ops.schedules import tick


@dg.schedule(job_name=plan.job(plan.JUDGES_JOB).name, cron_schedule="0 4 * * 0", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Sundays 04:00 UTC: backtest the forecast (tuning its swing) and judge the deal outlook as of "
                         "the day before (capped at the data's last date; skipped when already judged since the "
                         "latest import).")
def weekly_judges(context: dg.ScheduleEvaluationContext):
    return tick(context, as_of_dates, BACKTEST, "judging", lambda key: dg.RunRequest(
        run_key=f"judges-{key}", partition_key=key, tags={"revintel/schedule": "weekly"}))


defs = dg.Definitions(schedules=[weekly_judges])
